"""One call for the training loop: evaluate the current policy on ``eval.benchmarks`` and log it at ``step``."""
from __future__ import annotations

from ..config import Config
from .benchmarks import load_benchmarks
from .results import EvalResults
from .runner import GenerateFn, evaluate_benchmarks
from .table import format_table
from .tracking import log_eval_results

# Loaded benchmarks by (task, eval, tokenizer): a run evaluates the same sets every few steps.
_CACHE: dict[tuple, dict[str, list[dict]]] = {}


def should_evaluate(cfg: Config, step: int) -> bool:
    return cfg.eval.every_steps > 0 and step > 0 and step % cfg.eval.every_steps == 0


def evaluate_config(cfg: Config, generate_fn: GenerateFn, tokenizer,
                    benchmarks: dict[str, list[dict]] | None = None) -> EvalResults:
    """``evaluate_benchmarks`` with every setting taken from ``cfg.eval`` (falling back to ``cfg.task``/``rollout``);
    ``benchmarks`` defaults to ``load_benchmarks(cfg.eval, cfg.task, tokenizer)``, loaded once per config."""
    if benchmarks is None:
        key = (repr(cfg.task), repr(cfg.eval), id(tokenizer))
        if key not in _CACHE:
            _CACHE.clear()
            _CACHE[key] = load_benchmarks(cfg.eval, cfg.task, tokenizer)
        benchmarks = _CACHE[key]
    e = cfg.eval
    return evaluate_benchmarks(
        generate_fn, benchmarks, reward=e.reward or cfg.task.reward, k=e.k, num_samples=e.samples_per_problem,
        max_new_tokens=e.max_new_tokens or cfg.rollout.max_new_tokens, tokenizer=tokenizer,
        temperature=e.temperature, top_p=e.top_p, seed=e.seed, prompts_per_call=e.prompts_per_call,
        correct_threshold=e.correct_threshold, reward_processes=e.reward_processes,
        reward_timeout_s=e.reward_timeout_s)


def run_periodic_eval(cfg: Config, generate_fn: GenerateFn, tokenizer, step: int, *, run_id: str | None = None,
                      method: str | None = None) -> EvalResults:
    """Evaluate, log metrics ``eval/<bench>/pass_at_1`` ... at ``step`` and the tables to MLflow run ``run_id``
    (tracking URI from ``cfg.tracking``; no logging when None), and return the results."""
    results = evaluate_config(cfg, generate_fn, tokenizer)
    if run_id is not None:
        table = format_table({method or cfg.algo.name: results})
        log_eval_results(results, run_id=run_id, tracking_uri=cfg.tracking.tracking_uri, step=step, table=table)
    return results
