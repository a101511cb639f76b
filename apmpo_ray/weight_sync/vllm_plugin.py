"""vLLM general plugin: registers the gloo weight-transfer engine in every vLLM process."""


def register() -> None:
    pass
