"""Records of a data source, each with its row number, or the reason the row could not be read.

JSON and JSON Lines are parsed here with the standard library rather than through ``datasets``: its Arrow
reader turns a column holding both ``"1"`` and ``7`` into a JSON column that returns ``1`` for ``"1"``
(silently changing reference answers), and it cannot point at, or skip, one malformed line. Parquet, CSV
and hub datasets have a schema per column and go through ``datasets``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator, Union

from .errors import DatasetError

FILE_FORMATS = {".jsonl": "jsonl", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
Row = tuple[int, Union[dict, DatasetError]]  # (row number from 1, the record or why it is bad)


def resolve_path(path: str, root: str = "") -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() or not root else Path(root).expanduser() / p


def looks_like_file(name: str) -> bool:
    return Path(name).suffix.lower() in FILE_FORMATS or ("/" in name and Path(name).exists())


def read_file(path: Path) -> Iterator[Row]:
    if not path.exists():
        raise DatasetError("data file not found (see docs/datasets.md for the expected layout)", source=str(path))
    if path.is_dir():
        raise DatasetError("is a directory; point at a .jsonl, .json, .parquet or .csv file", source=str(path))
    kind = FILE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DatasetError(f"unsupported file type {path.suffix!r}; use one of {sorted(FILE_FORMATS)}",
                           source=str(path))
    if kind in ("json", "jsonl"):
        return _read_json(path, lines=kind == "jsonl")
    return _read_with_datasets(kind, path)


def _read_json(path: Path, *, lines: bool) -> Iterator[Row]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"cannot read: {err}", source=str(path)) from err
    if not lines:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            if not err.msg.startswith("Extra data"):  # "Extra data" = one object per line in a .json file
                raise DatasetError(f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}",
                                   source=str(path)) from err
        else:
            if not isinstance(data, list):
                raise DatasetError(f"expected a JSON list of records or JSON Lines, found a {type(data).__name__}",
                                   source=str(path))
            return ((i, _as_record(item, path, i)) for i, item in enumerate(data, 1))
    return _json_lines(text, path)


def _json_lines(text: str, path: Path) -> Iterator[Row]:
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            yield line_no, DatasetError(f"invalid JSON: {err.msg}", source=str(path), row=line_no)
            continue
        yield line_no, _as_record(item, path, line_no)


def _as_record(item, path: Path, row: int) -> dict | DatasetError:
    if isinstance(item, dict):
        return item
    return DatasetError(f"expected an object of fields, found a {type(item).__name__}", source=str(path), row=row)


def _read_with_datasets(kind: str, path: Path) -> Iterator[Row]:
    import datasets

    try:
        table = datasets.load_dataset(kind, data_files=str(path), split="train")
    except Exception as err:  # noqa: BLE001 - any reader failure is this file's problem, say so by name
        raise DatasetError(f"cannot read {kind} file: {type(err).__name__}: {err}", source=str(path)) from err
    return ((i, row) for i, row in enumerate(table, 1))


def read_hub(name: str, *, subset: str, split: str) -> Iterator[Row]:
    import datasets

    try:
        table = datasets.load_dataset(name, subset or None, split=split)
    except Exception as err:  # noqa: BLE001
        raise DatasetError(f"cannot load hub dataset (split {split!r}): {type(err).__name__}: {err}. Offline, "
                           "point task.dataset at a local file (docs/datasets.md)", source=name) from err
    return ((i, row) for i, row in enumerate(table, 1))
