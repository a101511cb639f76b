"""The held-out sets of ``eval.benchmarks``, loaded and encoded: ``name -> problems with prompt_ids``."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ..config.task import BenchmarkSpec, EvalConfig, TaskConfig
from ..data import DatasetError, read_problems
from ..data.problems import synthetic_task
from ..data.prompting import encode_prompt
from ..data.readers import FILE_FORMATS, resolve_path


def _find_by_name(name: str, root: str) -> str:
    """``<root>/<name>.<ext>`` or ``<root>/<name>/test.<ext>`` (docs/datasets.md)."""
    tried = [resolve_path(f"{stem}{ext}", root) for stem in (name, f"{name}/test") for ext in FILE_FORMATS]
    for path in tried:
        if path.is_file():
            return str(path)
    raise DatasetError(f"no data file for benchmark {name!r}; tried {[str(p) for p in tried]}. Give it as "
                       f"name=path or see docs/datasets.md", source=name)


def benchmark_task(spec: BenchmarkSpec, eval_cfg: EvalConfig, task: TaskConfig) -> TaskConfig:
    """The training task's data settings (columns, template, chat format) with this benchmark's source and
    overrides: evaluation prompts must look like training prompts."""
    root = eval_cfg.data_root or task.data_root
    source = spec.source or spec.name
    synthetic = synthetic_task(source) is not None and Path(source).suffix == ""
    # teacher solutions guide training only; a held-out set is scored on the student's own samples
    fields = dict(data_root=root, max_problems=eval_cfg.max_problems, split="test", teacher_column="")
    if synthetic:
        # A fresh draw under the evaluation seed: disjoint from training draws wherever the space allows.
        fields.update(dataset=source, num_problems=eval_cfg.synthetic_problems, seed=eval_cfg.seed)
    else:
        fields["dataset"] = spec.source or _find_by_name(spec.name, root)
    for key, value in spec.overrides:
        fields[key] = int(value) if key == "max_problems" else value
    return dataclasses.replace(task, **fields)


def default_specs(eval_cfg: EvalConfig, task: TaskConfig) -> list[BenchmarkSpec]:
    if eval_cfg.benchmarks:
        return eval_cfg.specs()
    if synthetic_task(task.dataset) is not None:
        return [BenchmarkSpec(name=task.dataset, source=task.dataset)]
    raise DatasetError("eval.benchmarks is empty and the training set is not synthetic: name the held-out sets "
                       "(e.g. eval.benchmarks=[math500=math500/test.jsonl])", source="eval.benchmarks")


def load_benchmarks(eval_cfg: EvalConfig, task: TaskConfig, tokenizer) -> dict[str, list[dict]]:
    """Every benchmark's problems, each with its final ``prompt`` and encoded ``prompt_ids``.

    With no ``eval.benchmarks`` and a synthetic training task, a held-out draw of that task is the benchmark.
    """
    out = {}
    for spec in default_specs(eval_cfg, task):
        bench_task = benchmark_task(spec, eval_cfg, task)
        loaded = read_problems(bench_task, tokenizer)
        for problem in loaded.problems:
            problem["prompt_ids"] = encode_prompt(tokenizer, problem["prompt"],
                                                  chat_template_applied=loaded.chat_template)
        out[spec.name] = loaded.problems
    return out
