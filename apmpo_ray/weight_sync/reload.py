"""Loading new weights into a live vLLM model: layerwise reload around ``load_weights``.

Layerwise reload stages each layer, loads the received tensors and re-runs the layer's weight processing
(on CPU, the prepacked kernel copies), so a model takes new weights the way it took its first ones. Both
the gloo engine (weights that arrive bucket by bucket) and a colocated learner (weights handed over in
memory) go through here.
"""
from __future__ import annotations

from collections.abc import Iterable

import torch


def refresh_tied_embedding_copies(model: torch.nn.Module) -> None:
    """Rebuilds the derived copies of tied embedding weights after a reload.

    On CPU, vLLM prepacks each embedding/LM-head weight into a kernel-specific copy when weights are
    processed. With tied embeddings (``lm_head.weight is embed_tokens.weight``) layerwise reload processes
    only the layer the weights were loaded into, so the LM head would keep sampling with the *old* packed
    copy. Re-running the unquantized embedding processing is idempotent (it rebuilds from ``weight``).
    """
    from vllm.model_executor.layers.vocab_parallel_embedding import UnquantizedEmbeddingMethod

    holders: dict[int, list[torch.nn.Module]] = {}
    for module in model.modules():
        for param in module._parameters.values():
            if param is not None:
                holders.setdefault(id(param), []).append(module)
    for modules in holders.values():
        if len(modules) < 2:
            continue
        for module in modules:
            method = getattr(module, "quant_method", None)
            if isinstance(method, UnquantizedEmbeddingMethod):
                method.process_weights_after_loading(module)


def start_reload(model: torch.nn.Module) -> None:
    from vllm.model_executor.model_loader.reload import initialize_layerwise_reload

    initialize_layerwise_reload(model)


def finish_reload(model: torch.nn.Module, model_config) -> None:
    from vllm.model_executor.model_loader.reload import finalize_layerwise_reload

    finalize_layerwise_reload(model, model_config)
    refresh_tied_embedding_copies(model)


def reload_weights(worker, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
    """Run in a vLLM worker (``LLM.collective_rpc``): every tensor, by Hugging Face name, into its model."""
    model = worker.model_runner.model
    start_reload(model)
    try:
        model.load_weights(named_tensors)
    finally:
        # on an error too: the layers staged on the meta device get real tensors back
        finish_reload(model, worker.model_runner.model_config)
