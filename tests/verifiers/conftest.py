import sys
import textwrap

import pytest

# Reward plugins for the tests, imported by name ("verifier_test_rewards:...") in worker processes.
PLUGIN = textwrap.dedent("""
    import math
    import os
    import threading
    import time

    def hang_on_request(response, reference):
        '''Equality, except that the response "hang" never returns.'''
        if response == "hang":
            while True:
                time.sleep(1)
        return 1.0 if response == reference else 0.0

    def raise_on_request(response, reference):
        if response == "raise":
            raise RuntimeError("reward bug")
        if response == "nan":
            return math.nan
        if response == "exit":
            os._exit(3)
        if response == "alloc":
            b = bytearray(2**31)
        return 1.0 if response == reference else 0.0

    def stubborn_on_request(response, reference):
        '''Equality, except that "stuck" never returns and ignores every interrupt.'''
        while response == "stuck":
            try:
                time.sleep(1)
            except BaseException:
                pass
        return 1.0 if response == reference else 0.0

    def spin_on_request(response, reference):
        '''Equality, except that "spin" computes forever (and would swallow an ordinary exception).'''
        if response == "spin":
            try:
                while True:
                    pass
            except Exception:
                return 1.0
        return 1.0 if response == reference else 0.0

    def slow(response, reference):
        '''Sleeps ``reference`` seconds, then returns 1.'''
        time.sleep(float(reference))
        return 1.0

    def pid(response, reference):
        return float(os.getpid())
""")


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("plugins")
    (path / "verifier_test_rewards.py").write_text(PLUGIN)
    sys.path.insert(0, str(path))
    yield str(path)
    sys.path.remove(str(path))


@pytest.fixture(scope="module")
def ray_cluster(plugin_dir):
    """A local Ray instance whose workers can import the test plugins; shut down after the module."""
    import ray

    if ray.is_initialized():  # another module's connection lacks the plugin path: start afresh
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": plugin_dir}})
    try:
        yield ray
    finally:
        ray.shutdown()
