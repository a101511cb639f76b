"""vLLM general plugin: registers the gloo weight-transfer engine in every vLLM process.

vLLM loads general plugins in the engine-core and worker processes it spawns, which is where
``WeightTransferEngineFactory.create_engine`` runs; registering from the trainer process alone would not
reach them.
"""

GLOO_BACKEND = "gloo"


def register() -> None:
    from vllm.distributed.weight_transfer.factory import WeightTransferEngineFactory

    # vLLM may load plugins more than once per process, and register_engine refuses duplicates.
    if GLOO_BACKEND not in WeightTransferEngineFactory._registry:
        WeightTransferEngineFactory.register_engine(GLOO_BACKEND, "apmpo_ray.weight_sync.gloo_engine",
                                                    "GlooWeightTransferEngine")
