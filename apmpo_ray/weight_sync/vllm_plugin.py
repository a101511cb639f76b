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


def register() -> None:
    layerwise = logging.getLogger(_LAYERWISE_LOGGER)
    if not any(isinstance(f, _ExpectedMissingWeights) for f in layerwise.filters):
        layerwise.addFilter(_ExpectedMissingWeights())
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    # vLLM may load plugins more than once per process, and register_engine refuses duplicates.
    if GLOO_BACKEND not in WeightTransferEngineFactory._registry:
        WeightTransferEngineFactory.register_engine(GLOO_BACKEND, "apmpo_ray.weight_sync.gloo_engine",
                                                    "GlooWeightTransferEngine")
