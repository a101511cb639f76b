"""Sample k responses per problem, score them, and summarise each benchmark: Pass@1, Pass@k, Self-BLEU.

``generate_fn`` has the signature of ``VLLMGenerator.generate``:
``generate_fn(prompts: list[list[int]], *, n, max_new_tokens, temperature, top_p, seed) -> list[list[Sample]]``,
so the trainer can pass a generator actor's method (``actor_generate_fn``) and ``jobs/evaluate.py`` an engine.
"""
from __future__ import annotations

import logging
import time
from typing import Any, Callable, Mapping, Protocol, Sequence

from ..data import encode_prompt
from .metric_modules import load_metric
from .results import BenchmarkResult, EvalResults, curve_points

log = logging.getLogger(__name__)
GenerateFn = Callable[..., list]


class Scorer(Protocol):
    def score(self, responses: list[str], references: list) -> list[float]: ...


class _InProcess:
    """A plain ``(response, reference) -> float`` reward as a Scorer."""

    def __init__(self, fn: Callable[[str, Any], float]):
        self.fn = fn

    def score(self, responses: list[str], references: list) -> list[float]:
        return [float(self.fn(r, ref)) for r, ref in zip(responses, references)]


def _scorer(reward, processes: int, timeout_s: float) -> tuple[Scorer, Callable[[], None]]:
    """A Scorer for ``reward`` and how to release it. A reward name runs in timed worker processes."""
    if isinstance(reward, str):
        from ..verifiers import TimeoutScorer

        scorer = TimeoutScorer(reward, processes=processes, timeout_s=timeout_s)
        return scorer, scorer.close
    if hasattr(reward, "score"):
        return reward, lambda: None
    if callable(reward):
        return _InProcess(reward), lambda: None
    raise TypeError(f"reward must be a reward name, a Scorer or a (response, reference) -> float function, "
                    f"got {reward!r}")


def actor_generate_fn(actor) -> GenerateFn:
    """``generate_fn`` over a Ray generator actor (``GeneratorActor``), for evaluation during training."""
    import ray

    def generate(prompts, **kwargs):
        return ray.get(actor.generate.remote(prompts, **kwargs))

    return generate


def _prompt_ids(problem: dict, tokenizer) -> list[int]:
    if "prompt_ids" in problem:
        return list(problem["prompt_ids"])
    if tokenizer is None:
        raise ValueError("problems without 'prompt_ids' need a tokenizer to encode their prompts")
    return encode_prompt(tokenizer, problem["prompt"], chat_template_applied=problem.get("chat_template", False))


def evaluate_benchmark(name: str, problems: Sequence[dict], generate_fn: GenerateFn, scorer: Scorer, *, k: int,
                       n: int, max_new_tokens: int, temperature: float, top_p: float, seed: int | None,
                       prompts_per_call: int, correct_threshold: float, tokenizer=None) -> BenchmarkResult:
    if not problems:
        raise ValueError(f"benchmark {name!r} has no problems")
    start = time.monotonic()
    num_correct, groups, rewards, lengths, truncated = [], [], [], [], 0
    for offset in range(0, len(problems), prompts_per_call):
        chunk = problems[offset:offset + prompts_per_call]
        outputs = generate_fn([_prompt_ids(p, tokenizer) for p in chunk], n=n, max_new_tokens=max_new_tokens,
                              temperature=temperature, top_p=top_p, seed=None if seed is None else seed + offset)
        if len(outputs) != len(chunk) or any(len(samples) != n for samples in outputs):
            raise RuntimeError(f"{name}: generate_fn returned {[len(s) for s in outputs]} samples for "
                               f"{len(chunk)} prompts x n={n}")
        texts = [s.text for samples in outputs for s in samples]
        scores = scorer.score(texts, [p["answer"] for p in chunk for _ in range(n)])
        for i, samples in enumerate(outputs):
            group = scores[i * n:(i + 1) * n]
            num_correct.append(sum(score >= correct_threshold for score in group))
            rewards.extend(group)
            groups.append([s.text for s in samples])
            lengths.extend(len(s.response_ids) for s in samples)
            truncated += sum(s.finish_reason == "length" for s in samples)
    passes = load_metric("pass_at_k").compute(num_samples=[n] * len(problems), num_correct=num_correct,
                                              k=curve_points(k))
    diversity = load_metric("self_bleu").compute(predictions=groups)["self_bleu"] if n > 1 else float("nan")
    return BenchmarkResult(name=name, num_problems=len(problems), samples_per_problem=n, k=k,
                           pass_at_1=passes["pass@1"], pass_at_k=passes[f"pass@{k}"], self_bleu=diversity,
                           mean_reward=sum(rewards) / len(rewards), mean_response_tokens=sum(lengths) / len(lengths),
                           truncated=truncated / len(lengths), seconds=time.monotonic() - start,
                           pass_at_curve={j: passes[f"pass@{j}"] for j in curve_points(k)})


def evaluate_benchmarks(generate_fn: GenerateFn, benchmarks: Mapping[str, Sequence[dict]], *, reward, k: int,
                        max_new_tokens: int, tokenizer=None, temperature: float = 0.6, top_p: float = 1.0,
                        num_samples: int | None = None, seed: int | None = 0, prompts_per_call: int = 64,
                        correct_threshold: float = 1.0, reward_processes: int = 1,
                        reward_timeout_s: float = 10.0) -> EvalResults:
    """Pass@1, Pass@k and Self-BLEU of every benchmark (``name -> problems`` with ``prompt``/``prompt_ids`` and
    ``answer``), from ``num_samples`` (default ``k``) responses per problem.

    ``reward``: a reward name (scored in worker processes with a per-sample timeout), a Scorer with
    ``score(responses, references)``, or a ``(response, reference) -> float`` function run in this process.
    """
    n = num_samples or k
    if n < k:
        raise ValueError(f"Pass@{k} needs at least k samples per problem, got num_samples={n}")
    scorer, release = _scorer(reward, reward_processes, reward_timeout_s)
    results = EvalResults(k=k)
    try:
        for name, problems in benchmarks.items():
            result = evaluate_benchmark(name, problems, generate_fn, scorer, k=k, n=n, max_new_tokens=max_new_tokens,
                                        temperature=temperature, top_p=top_p, seed=seed,
                                        prompts_per_call=prompts_per_call, correct_threshold=correct_threshold,
                                        tokenizer=tokenizer)
            log.info("eval %s: pass@1 %.3f pass@%d %.3f self-bleu %.3f (%d problems, %.1f s)", name,
                     result.pass_at_1, k, result.pass_at_k, result.self_bleu, result.num_problems, result.seconds)
            results.benchmarks[name] = result
    finally:
        release()
    return results
