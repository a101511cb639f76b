"""One vLLM engine that samples rollouts and takes new weights from the learner.

Behaviour log-probs: the engine runs with ``logprobs_mode="processed_logprobs"``, so ``Sample.logprobs``
are log-probs of the distribution the token was actually drawn from, i.e. after temperature scaling and
top-p truncation. At temperature 1 and top_p 1 they equal the model's log-probs, which is what the learner
recomputes; at other settings they are the true behaviour policy for importance ratios.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Any

from ..rollout.types import GenerationRequest, Sample

log = logging.getLogger(__name__)

# Finish reasons a rollout can carry; vLLM reports "abort" only for cancelled requests, which we never issue.
FINISH_REASONS = ("stop", "length")


def engine_options(cfg, index: int) -> dict[str, Any]:
    """What every engine takes from the run's config, whichever placement hosts it; engine ``index`` seeds
    its own sampling."""
    r = cfg.rollout
    return {"seed": cfg.trainer.seed + index, "dtype": cfg.model.dtype, "kv_cache_gib": r.kv_cache_gib,
            "gpu_memory_utilization": r.gpu_memory_utilization}


def _resolve_weight_sync_backend(backend: str) -> str:
    if backend == "auto":
        import torch

        return "nccl" if torch.cuda.is_available() else "gloo"
    return backend


class VLLMGenerator:
    """A vLLM engine for rollouts. ``kv_cache_gib`` sizes the KV cache on CPU, ``gpu_memory_utilization`` on GPU.

    ``enforce_eager`` (an addition to the shared interface) defaults to eager on CPU and compiled on GPU.
    ``in_process`` runs vLLM's engine core and its one worker in this process rather than two child processes;
    it defaults to on for a CPU engine without tensor parallelism, where it starts in 8 s instead of 20 s
    (sampling speed is within run-to-run noise of the other layout, benchmarks/README.md). On GPU the separate
    engine-core process overlaps scheduling with the model's work, which pays off there.

    ``colocated`` is for an engine inside a learner worker (``rollout.placement: colocated``): in process, on
    the worker's torch.distributed world (vLLM's external launcher, one engine per rank), without a
    weight-transfer group (the learner hands its tensors to :meth:`load_weights`), and on GPU with sleep mode,
    so the KV cache is released while the learner trains.

    Thread safety: one engine call at a time (sampling, scoring, loading weights), so an actor may call
    :meth:`receive_weights` from a thread of its own. An in-process engine on the gloo transport
    (``stages_weights``) receives a new version into a staging buffer while sampling goes on with the old
    one, and loads it before the next engine call; any other engine receives in place, between two calls.
    """

    def __init__(self, model_path: str, *, seed: int = 0, dtype: str = "float32", max_model_len: int | None = None,
                 kv_cache_gib: float = 0.5, gpu_memory_utilization: float = 0.1, tensor_parallel_size: int = 1,
                 weight_sync_backend: str = "auto", enforce_eager: bool | None = None,
                 in_process: bool | None = None, colocated: bool = False) -> None:
        import os

        import torch

        if colocated:
            in_process = True
        if in_process is None:
            in_process = not torch.cuda.is_available() and tensor_parallel_size == 1
        if in_process and tensor_parallel_size != 1:
            raise ValueError(f"an in-process engine has one worker; tensor_parallel_size is {tensor_parallel_size}")
        # read when the engine is built, not at import; said both ways, as an earlier engine here may have set it
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0" if in_process else "1"
        engine_options = {"distributed_executor_backend": "uni"} if in_process else {}
        backend = None if colocated else _resolve_weight_sync_backend(weight_sync_backend)
        if colocated:
            self.sleep_mode = torch.cuda.is_available()  # vLLM's CPU backend has no sleep mode
            engine_options = {"distributed_executor_backend": "external_launcher", "enable_sleep_mode": self.sleep_mode}
        else:
            self.sleep_mode = False
            engine_options["weight_transfer_config"] = {"backend": backend}
        # Staging needs the worker in this process (its tensors come back without a copy) and a transport
        # whose receive leaves the model alone; vLLM's NCCL engine receives straight into the weights.
        self.stages_weights = in_process and backend == "gloo"
        from vllm import LLM

        self.model_path = str(model_path)
        self.version = 0
        self.tensor_parallel_size = tensor_parallel_size
        # On CPU an explicit KV-cache size: vLLM otherwise reserves a fraction of *host* RAM, which fails on
        # small machines (a VLLM_CPU_KVCACHE_SPACE in the environment still overrides it). On GPU the
        # fraction of device memory sizes it, as usual.
        kv_cache_bytes = None if torch.cuda.is_available() else int(kv_cache_gib * 2**30)
        self._llm = LLM(
            model=self.model_path,
            seed=seed,
            dtype=dtype,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            kv_cache_memory_bytes=kv_cache_bytes,
            tensor_parallel_size=tensor_parallel_size,
            logprobs_mode="processed_logprobs",
            # branches and later turns of a trajectory continue a prefix the engine has already computed
            enable_prefix_caching=True,
            enforce_eager=self._default_eager() if enforce_eager is None else enforce_eager,
            use_tqdm_on_load=False,
            **engine_options,
        )
        self._tokenizer = self._llm.get_tokenizer()
        self.vocab_size = int(self._llm.llm_engine.model_config.get_vocab_size())
        self.max_model_len = self._llm.llm_engine.model_config.max_model_len
        self._sync_initialized = False
        self._incomplete_update: int | None = None  # version of an update that failed part-way
        self._asleep = False
        self._engine_lock = threading.RLock()
        self._staging_lock = threading.Lock()
        self._staged: tuple[int, list] | None = None  # the newest received version, not loaded yet
        # staged: receive_s is the receives (alongside sampling), load_s sampling paused for the loads; in place,
        # load_s is both. A staged version superseded before the next engine call is received, never loaded.
        self.weight_timing = {"received": 0, "loaded": 0, "receive_s": 0.0, "load_s": 0.0,
                              "staged": self.stages_weights}

    @staticmethod
    def _default_eager() -> bool:
        # On CPU, vLLM's inductor warm-up adds ~20-40 s to every start and bought nothing measurable for small
        # models here (benchmarks/README.md); on GPU the compiled graphs pay off.
        import torch

        return not torch.cuda.is_available()

    # ---- rollouts -------------------------------------------------------------------------------------------

    def generate(self, prompts: list[list[int]], *, n: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, seed: int | None = None, min_new_tokens: int = 0) -> list[list[Sample]]:
        """``n`` samples for each prompt (token ids), in prompt order.

        With ``seed`` set, prompt ``i`` samples with seed ``seed + i``: reproducible, yet identical prompts
        in one batch still draw different samples. ``min_new_tokens`` (for benchmarks) forbids eos before
        that many tokens; the behaviour log-probs then come from that constrained distribution.
        """
        requests = [GenerationRequest(list(p), n=n, max_tokens=max_new_tokens, seed=None if seed is None else seed + i,
                                      min_tokens=min_new_tokens) for i, p in enumerate(prompts)]
        return self.generate_requests(requests, temperature=temperature, top_p=top_p)

    def generate_requests(self, requests: list[GenerationRequest], *, temperature: float = 1.0,
                          top_p: float = 1.0) -> list[list[Sample]]:
        """One batched engine call for requests that each continue their own token ids (a multi-turn
        trajectory's context, a branch's shared prefix) with their own budget, seed and stop strings."""
        with self._engine_lock:
            self._load_staged()
            return self._generate(requests, temperature, top_p)

    def rollout_requests(self, requests: list[GenerationRequest], **sampling) -> tuple[int, list[list[Sample]]]:
        """:meth:`generate_requests` and the policy version that produced the samples."""
        with self._engine_lock:
            samples = self.generate_requests(requests, **sampling)
            return self.version, samples

    def current_version(self) -> int:
        """The policy version the next engine call samples with (a staged update is loaded first)."""
        with self._engine_lock:
            self._load_staged()
            return self.version

    def _generate(self, requests: list[GenerationRequest], temperature: float, top_p: float) -> list[list[Sample]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        self._check_weights()
        self.wake_up()
        for r in requests:
            if r.n < 1 or r.max_tokens < 1:
                raise ValueError(f"n and max_tokens must be at least 1, got {r.n} and {r.max_tokens}")
        params = [SamplingParams(n=r.n, max_tokens=r.max_tokens, temperature=temperature, top_p=top_p, seed=r.seed,
                                 logprobs=r.top_logprobs, skip_special_tokens=True, min_tokens=r.min_tokens,
                                 stop=list(r.stop) or None, include_stop_str_in_output=True)
                  for r in requests]
        outputs = self._llm.generate([TokensPrompt(prompt_token_ids=list(r.prompt_ids)) for r in requests], params,
                                     use_tqdm=False)
        return [[self._to_sample(c, r.top_logprobs_positions if r.top_logprobs else 0)
                 for c in sorted(out.outputs, key=lambda c: c.index)] for r, out in zip(requests, outputs)]

    @staticmethod
    def _to_sample(completion: Any, top_positions: int = 0) -> Sample:
        ids = list(completion.token_ids)
        logprobs = [float(step[token].logprob) for token, step in zip(ids, completion.logprobs)]
        if len(logprobs) != len(ids):
            raise RuntimeError(f"vLLM returned {len(logprobs)} logprobs for {len(ids)} tokens")
        reason = completion.finish_reason
        if reason not in FINISH_REASONS:
            raise RuntimeError(f"unexpected finish reason {reason!r} from vLLM")
        top = None
        if top_positions:
            # each position's dict holds the top-k and the sampled token (which may be outside the top-k)
            top = [sorted((float(lp.logprob) for lp in step.values()), reverse=True)
                   for step in completion.logprobs[:top_positions]]
        stop = completion.stop_reason if isinstance(completion.stop_reason, str) else None
        return Sample(response_ids=ids, logprobs=logprobs, text=completion.text, finish_reason=reason,
                      stop_reason=stop, top_logprobs=top)

    def sequence_logprobs(self, prompt_ids: list[int], response_ids: list[int]) -> list[float]:
        """Log-probs of ``response_ids`` after ``prompt_ids`` under the current weights, at temperature 1."""
        return self.continuation_logprobs([(prompt_ids, response_ids)])[0]

    def continuation_logprobs(self, pairs: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        """For each ``(context_ids, continuation_ids)``: the log-probs of the continuation's tokens after the
        context, under the current weights at temperature 1, in one batched engine call."""
        with self._engine_lock:
            self._load_staged()
            return self._score(pairs)

    def _score(self, pairs: list[tuple[list[int], list[int]]]) -> list[list[float]]:
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        self._check_weights()
        self.wake_up()
        sequences = []
        for context, continuation in pairs:
            ids = list(context) + list(continuation)
            if len(ids) >= self.max_model_len:
                raise ValueError(f"prompt + response is {len(ids)} tokens; the engine scores at most "
                                 f"{self.max_model_len - 1}")
            sequences.append(ids)
        scored = [i for i, (_, continuation) in enumerate(pairs) if continuation]
        out: list[list[float]] = [[] for _ in pairs]
        if not scored:
            return out
        params = SamplingParams(max_tokens=1, temperature=1.0, prompt_logprobs=0, detokenize=False)
        results = self._llm.generate([TokensPrompt(prompt_token_ids=sequences[i]) for i in scored], params,
                                     use_tqdm=False)
        for i, result in zip(scored, results):
            start = len(pairs[i][0])  # position 0 has nothing to condition on and is None
            out[i] = [float(result.prompt_logprobs[pos][token].logprob)
                      for pos, token in enumerate(sequences[i]) if pos >= start]
        return out

    # ---- weight sync ----------------------------------------------------------------------------------------

    def weight_sync_world_size(self) -> int:
        return self.tensor_parallel_size

    def init_weight_sync(self, init_info: dict) -> None:
        """Joins the trainer's weight-sync group (every worker of this engine); blocks until it is formed."""
        with self._engine_lock:
            if self._sync_initialized:
                self._llm.shutdown_weight_transfer_engine()
            self._sync_initialized = False
            self._llm.init_weight_transfer_engine({"init_info": dict(init_info)})
            self._sync_initialized = True

    def receive_weights(self, update_info: dict) -> int:
        """Receives every bucket of one broadcast; returns its policy version, which the next engine call
        samples with. Staged, the receive runs alongside sampling and a failed one leaves the weights as they
        were; in place, it waits for the engine call in flight and loads bucket by bucket."""
        if not self._sync_initialized:
            raise RuntimeError("receive_weights before init_weight_sync: the weight-sync group is not formed")
        payload = dict(update_info)
        version = int(payload.pop("version"))
        if self.stages_weights:
            from ..weight_sync.gloo_engine import receive_to_staging

            started = time.monotonic()
            (received,) = self._llm.collective_rpc(receive_to_staging, args=(payload,))
            with self._staging_lock:
                if self._staged is None or version > self._staged[0]:
                    self._staged = (version, received)
            self.weight_timing["receive_s"] += time.monotonic() - started
            self.weight_timing["received"] += 1
            return version
        with self._engine_lock:
            started = time.monotonic()
            self._incomplete_update = version
            self._llm.start_weight_update()
            self._llm.update_weights({"update_info": payload})
            self._llm.finish_weight_update(weight_version=str(version))
            self._new_weights_loaded(version, started)
            self.weight_timing["received"] += 1
        return version

    def _load_staged(self) -> None:
        with self._staging_lock:
            staged, self._staged = self._staged, None
        if staged is not None:
            self.load_weights(staged[1], staged[0])

    def _new_weights_loaded(self, version: int, started: float) -> None:
        # Cached prefixes hold keys/values computed by the old weights.
        self._llm.reset_prefix_cache()
        self._incomplete_update = None
        self.version = version
        self.weight_timing["loaded"] += 1
        self.weight_timing["load_s"] += time.monotonic() - started

    def load_weights(self, named_tensors, version: int) -> int:
        """Loads tensors held in this process (a colocated learner's parameters, a staged broadcast) as
        ``version``."""
        from ..weight_sync.reload import reload_weights

        with self._engine_lock:
            started = time.monotonic()
            self.wake_up()
            self._incomplete_update = version
            self._llm.collective_rpc(reload_weights, args=(list(named_tensors),))
            self._new_weights_loaded(version, started)
        return version

    def sleep(self) -> None:
        """Frees the KV cache and offloads the weights (GPU sleep mode) while a colocated learner trains."""
        if self.sleep_mode and not self._asleep:
            self._llm.sleep(level=1)
            self._asleep = True

    def wake_up(self) -> None:
        if self._asleep:
            self._llm.wake_up()
            self._asleep = False

    def _check_weights(self) -> None:
        if self._incomplete_update is not None:
            raise RuntimeError(f"the update to version {self._incomplete_update} failed part-way, leaving a mix of "
                               f"old and new weights; a complete broadcast must succeed before sampling again")

    def close(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is None:
            return
        if self._sync_initialized:
            try:
                llm.shutdown_weight_transfer_engine()
            except Exception as exc:  # the engine may already be gone; closing must not mask that
                log.warning("shutting down weight transfer failed: %s", exc)
        llm.llm_engine.engine_core.shutdown()
