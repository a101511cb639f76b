"""``load_problems``: a task's data source -> ``[{"prompt": final prompt text, "answer": reference}, ...]``."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from ..config.task import TaskConfig
from .errors import DatasetError
from .prompting import format_prompt, uses_chat_template
from .readers import looks_like_file, read_file, read_hub, resolve_path
from .rows import BadRow, teacher_solutions, to_problem
from .sql_schema import sqlite_schema
from .templates import needs_schema

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    problems: list[dict]
    source: str  # the file, hub name or synthetic task the problems came from
    skipped: list[DatasetError] = field(default_factory=list)  # bad rows passed over (task.skip_bad_rows)
    chat_template: bool = False  # whether prompts went through the tokenizer's chat template


def synthetic_task(name: str):
    """The ``apmpo_ray.tasks`` module generating problems called ``name``, or None."""
    if not name.isidentifier() or importlib.util.find_spec(f"apmpo_ray.tasks.{name}") is None:
        return None
    module = importlib.import_module(f"apmpo_ray.tasks.{name}")
    return module if callable(getattr(module, "make_problems", None)) else None


def synthetic_problems(module, count: int, *, seed: int, task: TaskConfig) -> list[dict]:
    """``count`` problems; the task's difficulty fields (``max_operand``, ``num_terms``) go to the generator
    when its signature takes them."""
    accepted = inspect.signature(module.make_problems).parameters
    kwargs = {name: getattr(task, name) for name in ("max_operand", "num_terms") if name in accepted}
    return module.make_problems(count, seed=seed, **kwargs)


def read_problems(task: TaskConfig, tokenizer=None) -> LoadResult:
    """Every problem of ``task.dataset`` with its final prompt, plus the bad rows skipped on the way.

    Raises DatasetError for a missing or unreadable source, a chat template that cannot be applied, and (unless
    ``task.skip_bad_rows``) the first bad row, named by file and row number.
    """
    chat = uses_chat_template(task, tokenizer)
    path = resolve_path(task.dataset, task.data_root)
    module = None if looks_like_file(task.dataset) else synthetic_task(task.dataset)
    if module is not None:
        problems = synthetic_problems(module, task.num_problems, seed=task.seed, task=task)
        for row, p in enumerate(problems, 1):
            p["question"], p["prompt"] = p["prompt"], format_prompt(p["prompt"], task, tokenizer, chat=chat)
            if task.teacher_column:
                try:
                    p["teachers"] = teacher_solutions(p, task.teacher_column)
                except BadRow as err:
                    raise DatasetError(str(err), source=f"synthetic:{task.dataset}", row=row) from None
        return LoadResult(problems, source=f"synthetic:{task.dataset}", chat_template=chat)
    if looks_like_file(task.dataset) or path.exists():
        source, rows = str(path), read_file(path)
    else:
        source, rows = task.dataset, read_hub(task.dataset, subset=task.subset, split=task.split)
    if needs_schema(task.prompt_template) and not task.db_id_column:
        raise DatasetError("the prompt template uses {schema}: set task.db_id_column (and task.db_root)",
                           source=source)
    db_root = resolve_path(task.db_root, task.data_root) if task.db_id_column else None
    known_dbs: dict[str, bool] = {}
    problems, skipped = [], []
    for row, record in rows:
        try:
            if isinstance(record, DatasetError):
                raise record
            problem = to_problem(record, task, db_root, known_dbs)
            schema = sqlite_schema(problem["db_path"]) if needs_schema(task.prompt_template) else ""
        except (BadRow, DatasetError, sqlite3.Error) as err:
            reason = f"cannot read the database schema: {err}" if isinstance(err, sqlite3.Error) else str(err)
            bad = err if isinstance(err, DatasetError) else DatasetError(reason, source=source, row=row)
            if not task.skip_bad_rows:
                raise bad from None
            skipped.append(bad)
            continue
        problem["prompt"] = format_prompt(problem["question"], task, tokenizer, chat=chat, schema=schema)
        problem["source"] = f"{source}#{row}"
        problems.append(problem)
        if task.max_problems and len(problems) >= task.max_problems:
            break
    if not problems:
        raise DatasetError(f"no usable problems ({len(skipped)} bad rows skipped)", source=source)
    return LoadResult(problems, source=source, skipped=skipped, chat_template=chat)


def load_problems(task: TaskConfig, tokenizer=None) -> list[dict]:
    """``[{"prompt", "answer", "question", ...}]`` for ``task``; skipped bad rows are counted in the log."""
    result = read_problems(task, tokenizer)
    if result.skipped:
        log.warning("%s: skipped %d bad rows (first: %s)", result.source, len(result.skipped), result.skipped[0])
    return result.problems
