"""vLLM general plugin: registers the gloo weight-transfer engine in every vLLM process.

vLLM loads general plugins in the engine-core and worker processes it spawns, which is where
``WeightTransferEngineFactory.create_engine`` runs; registering from the trainer process alone would not
reach them.
"""

import logging

GLOO_BACKEND = "gloo"
# Layers whose parameters a broadcast never carries: the LM head is tied to the embeddings and rotary
# embeddings have none. vLLM warns "<Layer>: Failed to load weights" for them on every weight update.
_EXPECTED_WITHOUT_WEIGHTS = ("ParallelLMHead", "RotaryEmbedding")
_LAYERWISE_LOGGER = "vllm.model_executor.model_loader.reload.layerwise"


class _ExpectedMissingWeights(logging.Filter):
    """Drops vLLM's per-update warning for layers that have no weights to receive; keeps it for any other."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.msg == "%s: Failed to load weights" and record.args
                    and record.args[0] in _EXPECTED_WITHOUT_WEIGHTS)


_CPU_WORKER_LOGGER = "vllm.v1.worker.cpu_worker"


class _SharedProcessThreads(logging.Filter):
    """Drops the CPU worker's warning that it ignores ``torch.set_num_threads``: an in-process engine shares
    its process with code that calls it, and the worker's own thread binding is what should hold."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`torch.set_num_threads` after the thread binding" not in str(record.msg)


def _add_filter(logger_name: str, kind: type[logging.Filter]) -> None:
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, kind) for f in logger.filters):
        logger.addFilter(kind())


def register() -> None:
    _add_filter(_LAYERWISE_LOGGER, _ExpectedMissingWeights)
    _add_filter(_CPU_WORKER_LOGGER, _SharedProcessThreads)
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    # vLLM may load plugins more than once per process, and register_engine refuses duplicates.
    if GLOO_BACKEND not in WeightTransferEngineFactory._registry:
        WeightTransferEngineFactory.register_engine(GLOO_BACKEND, "apmpo_ray.weight_sync.gloo_engine",
                                                    "GlooWeightTransferEngine")
