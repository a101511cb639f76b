import pytest


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from transformers import AutoTokenizer

    from apmpo_ray.models.tiny import tiny_model_path

    return AutoTokenizer.from_pretrained(tiny_model_path())
