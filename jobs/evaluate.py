"""Evaluate a model on held-out benchmarks: Pass@1, Pass@k and Self-BLEU, printed as a Table-1-style grid
and logged to MLflow.

    python jobs/evaluate.py                                        # the tiny model on held-out arithmetic
    python jobs/evaluate.py --model runs/final_model --bench arith=data/arith.jsonl --k 8
    python jobs/evaluate.py --model runs:/<run_id>/final_model --config paper_math     # the preset's 6 sets
    python jobs/evaluate.py --model <run_id> --config paper_math --set eval.max_problems=50
    python jobs/evaluate.py --model Qwen/Qwen2.5-Math-1.5B-Instruct --config paper_math --method Base

--model: a Hugging Face model directory, an MLflow artifact URI (runs:/..., models:/...), an MLflow run id
(its final_model artifact), a hub name (with network), or nothing for the embedded tiny model.
Data settings (columns, templates, chat format) come from the --config preset's task section; benchmark
entries and layouts: docs/datasets.md.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

# This file is named like the `evaluate` library: drop its own directory from the path, or `import evaluate`
# (in the metric loader) would import this script. Then make the checkout importable (ray job submit).
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

from apmpo_ray.config import ConfigError, config_from_dict, config_to_dict, load_config  # noqa: E402
from apmpo_ray.data import DatasetError  # noqa: E402

_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="", help="HF dir | runs:/<id>/final_model | MLflow run id | '' (tiny)")
    p.add_argument("--bench", action="append", default=[], metavar="NAME=PATH",
                   help="a benchmark (repeatable); replaces the preset's eval.benchmarks")
    p.add_argument("--config", default=None, help="preset name or YAML path for task/eval settings (default tiny_cpu)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="config override")
    p.add_argument("--k", type=int, help="Pass@k (eval.k)")
    p.add_argument("--num-samples", type=int, help="responses per problem (default k)")
    p.add_argument("--temperature", type=float)
    p.add_argument("--top-p", type=float)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--max-problems", type=int, help="first N problems of each benchmark")
    p.add_argument("--reward", help="reward name or module:function (default: the task's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--method", default="", help="row label in the table (default: the model's name)")
    p.add_argument("--max-model-len", type=int, default=None)
    p.add_argument("--tracking-uri", default="", help="MLflow store (default: config, $MLFLOW_TRACKING_URI, mlflow's)")
    p.add_argument("--experiment", default="", help="MLflow experiment (default: <tracking.experiment>-eval)")
    p.add_argument("--run-id", default="", help="log into this existing MLflow run instead of a new one")
    p.add_argument("--no-mlflow", action="store_true")
    p.add_argument("--json", default="", help="also write the results to this file")
    return p.parse_args(argv)


def build_config(args: argparse.Namespace):
    cfg = load_config(args.config, args.set)
    flags = {"k": args.k, "num_samples": args.num_samples, "temperature": args.temperature, "top_p": args.top_p,
             "max_new_tokens": args.max_new_tokens, "max_problems": args.max_problems, "reward": args.reward,
             "seed": args.seed, "benchmarks": args.bench or None}
    data = config_to_dict(cfg)
    data["eval"].update({key: value for key, value in flags.items() if value is not None})
    if args.k is not None and args.num_samples is None and data["eval"]["num_samples"] < args.k:
        data["eval"]["num_samples"] = 0  # a preset's sample count below the requested k: sample k
    return config_from_dict(data)


def resolve_model(spec: str, tracking_uri: str) -> tuple[str, str]:
    """(local model directory or hub name, a short label for the table)."""
    if not spec or spec == "tiny":
        from apmpo_ray.models.tiny import tiny_model_path

        return str(tiny_model_path()), "tiny"
    if Path(spec).is_dir():
        return spec, Path(spec).resolve().name
    if _RUN_ID.match(spec):
        spec = f"runs:/{spec}/final_model"
    if ":/" in spec:  # runs:/, models:/, mlflow-artifacts:/
        import mlflow

        target = tempfile.mkdtemp(prefix="apmpo-eval-model-")
        local = mlflow.artifacts.download_artifacts(artifact_uri=spec, dst_path=target, tracking_uri=tracking_uri)
        if not (Path(local) / "config.json").exists():
            raise FileNotFoundError(f"{spec} downloaded to {local} but holds no config.json: not a model directory")
        return local, spec
    return spec, spec  # a hub name: vLLM and transformers fetch it when the hub is reachable


def log_to_mlflow(args, cfg, results, table: str, model_label: str, uri: str) -> str:
    from mlflow import MlflowClient

    from apmpo_ray.evaluation import log_eval_results

    client = MlflowClient(uri)
    run_id = args.run_id
    if not run_id:
        name = args.experiment or f"{cfg.tracking.experiment}-eval"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run_id = client.create_run(experiment_id, run_name=args.method or None,
                                   tags={"apmpo.model": model_label, "apmpo.kind": "evaluation"}).info.run_id
        e = cfg.eval
        params = {"model": model_label, "benchmarks": ",".join(e.benchmarks) or "(default)", "k": e.k,
                  "num_samples": e.samples_per_problem, "temperature": e.temperature, "top_p": e.top_p,
                  "max_new_tokens": e.max_new_tokens or cfg.rollout.max_new_tokens, "reward": e.reward or cfg.task.reward,
                  "seed": e.seed, "max_problems": e.max_problems}
        for key, value in params.items():
            client.log_param(run_id, f"eval.{key}", str(value)[:6000])
    log_eval_results(results, run_id=run_id, tracking_uri=uri, table=table)
    if not args.run_id:
        client.set_terminated(run_id)
    return run_id


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        cfg = build_config(args)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    from transformers import AutoTokenizer

    from apmpo_ray.evaluation import evaluate_config, format_table, load_benchmarks
    from apmpo_ray.tracking.compare import resolve_tracking_uri

    uri = resolve_tracking_uri(args.tracking_uri or cfg.tracking.tracking_uri or None)
    model_dir, label = resolve_model(args.model or cfg.model.path, uri)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    try:  # every benchmark is read and checked before the engine starts
        benchmarks = load_benchmarks(cfg.eval, cfg.task, tokenizer)
    except DatasetError as err:
        print(f"dataset error: {err}", file=sys.stderr)
        return 2
    from apmpo_ray.generators import VLLMGenerator

    r = cfg.rollout
    generator = VLLMGenerator(model_dir, seed=cfg.eval.seed, dtype=cfg.model.dtype, max_model_len=args.max_model_len,
                              kv_cache_gib=r.kv_cache_gib, gpu_memory_utilization=r.gpu_memory_utilization,
                              tensor_parallel_size=r.tensor_parallel_size)
    try:
        results = evaluate_config(cfg, generator.generate, tokenizer, benchmarks=benchmarks)
    finally:
        generator.close()
    method = args.method or label
    table = format_table({method: results})
    print(table)
    if args.json:
        Path(args.json).write_text(json.dumps({"method": method, **results.to_dict()}, indent=1))
    if not args.no_mlflow:
        run_id = log_to_mlflow(args, cfg, results, table, label, uri)
        print(f"MLflow run {run_id} ({uri})")
    return 0


if __name__ == "__main__":  # vLLM starts its engine in a child process that re-imports this module
    raise SystemExit(main(sys.argv[1:]))
