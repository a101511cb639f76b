import pytest


@pytest.fixture(scope="module", autouse=True)
def _no_ray_across_modules():
    """Each test module starts from no Ray connection and leaves none behind: modules own their clusters."""
    yield
    import ray

    if ray.is_initialized():
        ray.shutdown()
