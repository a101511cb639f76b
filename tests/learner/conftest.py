import os
import socket

import pytest


@pytest.fixture(scope="session")
def single_process_group():
    """DeepSpeed expects a launcher's rendezvous variables; one local process stands in for it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0",
                      LOCAL_WORLD_SIZE="1")
    yield
