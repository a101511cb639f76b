"""One dataset record -> one problem ``{"question", "answer"}``, or the reason the record is unusable."""
from __future__ import annotations

from pathlib import Path

from ..config.task import TaskConfig
from .sql_schema import database_path


class BadRow(ValueError):
    """Why a record cannot become a problem; the caller adds the file and row."""


def _text_field(record: dict, column: str, what: str) -> str:
    if column not in record:
        raise BadRow(f"missing field {column!r} ({what}); fields present: {sorted(record)}")
    value = record[column]
    if value is None:
        raise BadRow(f"field {column!r} ({what}) is null")
    if not isinstance(value, str):
        raise BadRow(f"field {column!r} ({what}) must be text, got {type(value).__name__} {_short(value)}")
    if not value.strip():
        raise BadRow(f"field {column!r} ({what}) is empty")
    return value


def _answer(record: dict, column: str, answer_format: str) -> str:
    if column not in record:
        raise BadRow(f"missing field {column!r} (answer); fields present: {sorted(record)}")
    value = record[column]
    if answer_format == "first":
        if not isinstance(value, (list, tuple)) or not value:
            raise BadRow(f"field {column!r} (answer, format 'first') must be a non-empty list, got "
                         f"{type(value).__name__} {_short(value)}")
        value = value[0]
    # Numbers are fine (AIME answers are often stored as integers); anything else is a column-mapping mistake.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadRow(f"field {column!r} (answer) must be text or a number, got {type(value).__name__} "
                     f"{_short(value)}")
    text = str(value).strip()
    if not text:
        raise BadRow(f"field {column!r} (answer) is empty")
    if answer_format == "boxed":
        from ..rewards.math_answer import last_boxed  # the same extraction the math reward applies to responses

        boxed = last_boxed(text)
        if boxed is None or not boxed.strip():
            raise BadRow(f"field {column!r} (answer, format 'boxed') has no non-empty \\boxed{{}}: {_short(text)}")
        text = boxed.strip()
    return text


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def teacher_solutions(record: dict, column: str) -> list[dict]:
    """AMPO's offline guidance: ``[{"teacher": name, "solution": text}, ...]``."""
    if column not in record:
        raise BadRow(f"missing field {column!r} (teacher solutions); fields present: {sorted(record)}")
    value = record[column]
    if not isinstance(value, (list, tuple)):
        raise BadRow(f"field {column!r} (teacher solutions) must be a list, got {type(value).__name__} {_short(value)}")
    out = []
    for i, entry in enumerate(value):
        if not (isinstance(entry, dict) and isinstance(entry.get("teacher"), str)
                and isinstance(entry.get("solution"), str) and entry["solution"].strip()):
            raise BadRow(f"field {column!r}[{i}] must be {{'teacher': name, 'solution': text}}, got {_short(entry)}")
        out.append({"teacher": entry["teacher"], "solution": entry["solution"]})
    return out


def to_problem(record: dict, task: TaskConfig, db_root: Path | None, known_dbs: dict[str, bool]) -> dict:
    """``{"question", "answer"}`` (plus ``"db_path"`` for SQL rows and ``"teachers"`` with a teacher column).
    ``known_dbs`` caches existence checks."""
    problem = _to_problem(record, task, db_root, known_dbs)
    if task.teacher_column:
        problem["teachers"] = teacher_solutions(record, task.teacher_column)
    return problem


def _to_problem(record: dict, task: TaskConfig, db_root: Path | None, known_dbs: dict[str, bool]) -> dict:
    question = _text_field(record, task.prompt_column, "prompt")
    if task.hint_column:
        if task.hint_column not in record:
            raise BadRow(f"missing field {task.hint_column!r} (hint); fields present: {sorted(record)}")
        hint = record[task.hint_column]
        if hint is not None and not isinstance(hint, str):
            raise BadRow(f"field {task.hint_column!r} (hint) must be text, got {type(hint).__name__}")
        if hint and hint.strip():
            # BIRD's convention: the external-knowledge evidence precedes the question.
            question = f"{hint.strip()}\n{question}"
    if not task.db_id_column:
        return {"question": question, "answer": _answer(record, task.answer_column, task.answer_format)}
    sql = _text_field(record, task.answer_column, "gold SQL")
    db_id = _text_field(record, task.db_id_column, "database id")
    db_path = database_path(db_root, db_id)
    if db_id not in known_dbs:
        known_dbs[db_id] = db_path.is_file()
    if not known_dbs[db_id]:
        raise BadRow(f"database {db_id!r} not found at {db_path}")
    return {"question": question, "answer": {"sql": sql, "db_path": str(db_path)}, "db_path": str(db_path)}
