"""What the policy is trained and evaluated on: the task's data, prompt format, reward and held-out sets.

Nothing here touches the file system: a preset naming files that are not on this machine still loads,
and dataset loading (``apmpo_ray.data``) reports a missing file by name.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

# Fields a benchmark entry may override for its own file (``name=path?answer_column=query&db_root=...``):
# eval sets rarely share the training set's column names or databases.
BENCHMARK_OVERRIDES = ("prompt_column", "answer_column", "answer_format", "db_id_column", "db_root", "hint_column",
                       "prompt_template", "split", "subset", "max_problems")
ANSWER_FORMATS = ("plain", "boxed", "first")
NAMED_TEMPLATES = ("", "math", "sql")
# MLflow metric names allow only [/\w.\- :]; a benchmark name becomes part of ``eval/<name>/...``.
_BENCH_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")


def check_prompt_template(template: str, key: str) -> None:
    if template not in NAMED_TEMPLATES and "{prompt}" not in template:
        raise ValueError(f"{key}: {template!r} is neither a named template {list(NAMED_TEMPLATES[1:])} "
                         "nor a template containing '{prompt}'")


@dataclass
class TaskConfig:
    reward: str = "arithmetic"  # a built-in reward name or "package.module:function"
    # A synthetic task ("arithmetic"), a local .jsonl/.json/.parquet/.csv file, or a Hugging Face hub name.
    dataset: str = "arithmetic"
    data_root: str = ""  # relative dataset and database paths are resolved against it ("" = working dir)
    split: str = "train"  # hub datasets only
    subset: str = ""  # hub dataset configuration name
    prompt_column: str = "prompt"
    answer_column: str = "answer"
    # How the answer column holds the reference: "plain" text or number; "boxed": a worked solution whose last
    # \boxed{} is the answer (MATH, Minerva); "first": a list whose first entry is it (OlympiadBench).
    answer_format: Literal["plain", "boxed", "first"] = "plain"
    # Text-to-SQL: with a db-id column the reference becomes {"sql": answer, "db_path": <db_root>/<id>/<id>.sqlite}.
    db_id_column: str = ""
    db_root: str = ""
    hint_column: str = ""  # optional context put before the question, e.g. BIRD's "evidence"
    # AMPO's offline guidance: a column holding a list of {"teacher": name, "solution": text} per problem
    teacher_column: str = ""
    prompt_template: str = ""  # "" (the raw prompt), "math", "sql", or a literal text containing {prompt}
    system_prompt: str = ""
    # auto: on when the tokenizer has one. YAML 1.1 reads a bare on/off as true/false, so those mean on/off too.
    chat_template: Literal["auto", "on", "off", True, False] = "auto"
    skip_bad_rows: bool = False  # False: the first bad row raises DatasetError naming file and row
    max_problems: int = 0  # keep the first N problems of a file (0 = all)
    num_problems: int = 4096  # size of a synthetic training set
    max_operand: int = 9
    num_terms: int = 3  # synthetic chain task: terms per problem (the difficulty knob, with max_operand)
    seed: int = 0

    def __post_init__(self):
        if not self.dataset:
            raise ValueError("task.dataset must name a synthetic task, a data file or a hub dataset")
        check_prompt_template(self.prompt_template, "task.prompt_template")
        if isinstance(self.chat_template, bool):
            self.chat_template = "on" if self.chat_template else "off"
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(f"task.answer_format must be one of {list(ANSWER_FORMATS)}, got {self.answer_format!r}")
        if self.max_problems < 0 or self.num_problems < 1:
            raise ValueError("task.max_problems must be >= 0 and task.num_problems >= 1")


@dataclass(frozen=True)
class BenchmarkSpec:
    """One parsed ``eval.benchmarks`` entry: a name, where its data is, and per-benchmark field overrides."""

    name: str
    source: str  # a file path, a synthetic task name, or "" = look for <data_root>/<name>.*
    overrides: tuple[tuple[str, str], ...] = ()


def parse_benchmark(entry: str, key: str = "eval.benchmarks") -> BenchmarkSpec:
    """``name``, ``name=path`` or ``name=path?field=value&field=value`` (fields: BENCHMARK_OVERRIDES)."""
    name, sep, rest = entry.partition("=")
    name = name.strip()
    if not _BENCH_NAME.match(name):
        raise ValueError(f"{key}: benchmark name {name!r} in {entry!r} may use only letters, digits, '_', '.', '-'")
    if name == "avg":  # eval/avg/... holds the mean over benchmarks
        raise ValueError(f"{key}: 'avg' is reserved for the average over benchmarks")
    source, _, query = rest.partition("?")
    if sep and not source.strip():
        raise ValueError(f"{key}: {entry!r} has an empty path after '='")
    overrides = []
    for item in filter(None, query.split("&")):
        field_name, eq, value = item.partition("=")
        if not eq or field_name not in BENCHMARK_OVERRIDES:
            raise ValueError(f"{key}: {entry!r}: {item!r} is not field=value with a field of "
                             f"{list(BENCHMARK_OVERRIDES)}")
        if field_name == "prompt_template":
            check_prompt_template(value, f"{key}: {entry!r}")
        if field_name == "answer_format" and value not in ANSWER_FORMATS:
            raise ValueError(f"{key}: {entry!r}: answer_format must be one of {list(ANSWER_FORMATS)}")
        if field_name == "max_problems" and not value.isdigit():
            raise ValueError(f"{key}: {entry!r}: max_problems must be a non-negative integer")
        overrides.append((field_name, value))
    return BenchmarkSpec(name=name, source=source.strip(), overrides=tuple(overrides))


@dataclass
class EvalConfig:
    every_steps: int = 0  # 0 = no periodic evaluation during training
    # Entries "name=path[?field=value&...]", or a bare name: a synthetic task ("arithmetic") or the file
    # <data_root>/<name>.jsonl|.json|.parquet. Layouts of the paper's benchmarks: docs/datasets.md.
    benchmarks: list[str] = field(default_factory=list)
    data_root: str = ""  # "" = task.data_root
    k: int = 16  # Pass@k; the paper reports Pass@16 next to Pass@1 (§5.1)
    num_samples: int = 0  # responses per problem (0 = k); Pass@1 is their mean correctness
    temperature: float = 0.6  # the paper's evaluation temperature
    top_p: float = 1.0
    max_new_tokens: int = 0  # 0 = rollout.max_new_tokens
    reward: str = ""  # "" = task.reward
    correct_threshold: float = 1.0  # a response is correct when its reward reaches this (paper: binary 1/0)
    # Rewards are scored in worker processes with a per-sample deadline (verifiers.TimeoutScorer): math-verify's
    # own timeout does not work off the main thread, e.g. inside the trainer's actors.
    reward_processes: int = 1
    reward_timeout_s: float = 10.0
    max_problems: int = 0  # per benchmark, e.g. to keep periodic evaluation short (0 = all)
    synthetic_problems: int = 200  # size of a synthetic benchmark such as "arithmetic"
    prompts_per_call: int = 64  # prompts per generate call
    seed: int = 1234  # sampling seed; also seeds synthetic benchmarks, apart from the training seed

    def __post_init__(self):
        if self.every_steps < 0:
            raise ValueError(f"eval.every_steps must be >= 0, got {self.every_steps}")
        if self.k < 1:
            raise ValueError(f"eval.k must be >= 1, got {self.k}")
        if self.num_samples and self.num_samples < self.k:
            raise ValueError(f"eval.num_samples ({self.num_samples}) must be 0 or >= eval.k ({self.k})")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError("eval.temperature must be >= 0 and eval.top_p in (0, 1]")
        if self.max_new_tokens < 0 or self.max_problems < 0:
            raise ValueError("eval.max_new_tokens and eval.max_problems must be >= 0")
        if self.synthetic_problems < 1 or self.prompts_per_call < 1 or self.reward_processes < 1:
            raise ValueError("eval.synthetic_problems, eval.prompts_per_call and eval.reward_processes must be >= 1")
        if not self.reward_timeout_s > 0:
            raise ValueError(f"eval.reward_timeout_s must be > 0, got {self.reward_timeout_s}")
        names = [parse_benchmark(entry, f"eval.benchmarks[{i}]").name for i, entry in enumerate(self.benchmarks)]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"eval.benchmarks: duplicate benchmark names {duplicates}")

    @property
    def samples_per_problem(self) -> int:
        return self.num_samples or self.k

    def specs(self) -> list[BenchmarkSpec]:
        return [parse_benchmark(entry) for entry in self.benchmarks]
