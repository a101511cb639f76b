"""The ``sql`` reward: execution match of the predicted query against the gold query on SQLite.

Reference: a dict ``{"sql": gold_sql, "db_path": "/path/to/database.sqlite"}``.

The predicted SQL is the last ```` ```sql ```` fenced block of the response, else the last plain ```` ``` ````
block, else the whole response. Both queries run against the database opened read-only
(``file:...?mode=ro``) behind an authorizer that allows reading only (no writes, DDL, ATTACH, PRAGMA,
transactions or extensions), with a wall-clock limit enforced by a progress handler and a row limit.
Reward 1.0 iff the result sets match: as multisets of rows, or as sequences when the gold query has an
ORDER BY (the Spider convention: any ``ORDER BY`` in the gold text counts). Column names are ignored.

A predicted query that fails, is denied, runs out of time or returns too many rows scores 0.0. A broken
reference (missing keys, missing database, gold query failing) raises ``ValueError``: that is a data bug
to surface, not a wrong answer.
"""
from __future__ import annotations

import functools
import os
import re
import sqlite3
import time
import urllib.parse
from collections import Counter
from pathlib import Path

TIME_LIMIT_S = 2.0  # per query; below TimeoutScorer's default 5 s so a slow query ends with 0, not a kill
MAX_ROWS = 10_000
MAX_VALUE_BYTES = 1_000_000  # longest string/blob a query may build (randomblob(1e12) must not OOM)
_PROGRESS_EVERY = 1000  # SQLite VM instructions between deadline checks

_ALLOWED_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                              sqlite3.SQLITE_RECURSIVE})
_DENIED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "writefile", "edit"})

_FENCE_SQL = re.compile(r"```[ \t]*sql[ \t]*\n?(.*?)(?:```|\Z)", re.IGNORECASE | re.DOTALL)
_FENCE_ANY = re.compile(r"```[^\n`]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_LITERALS_AND_COMMENTS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_ORDER_BY = re.compile(r"\border\s+by\b", re.IGNORECASE)


class QueryRejected(Exception):
    """The query could not produce a comparable result: error, denial, time or row limit."""


def extract_sql(response: str) -> str:
    """The SQL a response proposes: last ```sql block, else last ``` block, else the whole text."""
    for fence in (_FENCE_SQL, _FENCE_ANY):
        blocks = fence.findall(response)
        if blocks:
            return blocks[-1].strip()
    return response.strip()


def has_order_by(sql: str) -> bool:
    """Whether ``sql`` has an ORDER BY outside string literals and comments."""
    return bool(_ORDER_BY.search(_LITERALS_AND_COMMENTS.sub(" ", sql)))


def _authorize(action, arg1, arg2, db_name, trigger):
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


def _open_readonly(db_path: str, time_limit_s: float) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(os.path.abspath(db_path)) + "?mode=ro"
    # isolation_level=None: no implicit BEGIN, so nothing but the statement itself ever runs.
    conn = sqlite3.connect(uri, uri=True, timeout=time_limit_s, isolation_level=None)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.set_authorizer(_authorize)
    return conn


def execute_readonly(db_path: str, sql: str, *, time_limit_s: float = TIME_LIMIT_S,
                     max_rows: int = MAX_ROWS) -> list[tuple]:
    """Rows of ``sql`` on the read-only database; ``QueryRejected`` if it cannot give a result in limits."""
    if not Path(db_path).is_file():
        raise FileNotFoundError(f"no SQLite database at {db_path!r}")
    try:
        conn = _open_readonly(db_path, time_limit_s)
    except sqlite3.Error as err:
        raise FileNotFoundError(f"cannot open SQLite database {db_path!r} read-only: {err}") from err
    try:
        deadline = time.monotonic() + time_limit_s
        conn.set_progress_handler(lambda: time.monotonic() > deadline, _PROGRESS_EVERY)
        try:
            rows = conn.execute(sql).fetchmany(max_rows + 1)
        except (sqlite3.Error, sqlite3.Warning, ValueError, OverflowError, MemoryError) as err:
            raise QueryRejected(f"{type(err).__name__}: {err}") from err
        if len(rows) > max_rows:
            raise QueryRejected(f"more than {max_rows} rows")
        return rows
    finally:
        conn.close()


@functools.lru_cache(maxsize=512)
def _gold_rows(db_path: str, stamp: tuple, sql: str, time_limit_s: float, max_rows: int) -> tuple:
    # Cached per (database version, query): a group of G responses shares one gold query.
    del stamp  # part of the cache key only
    try:
        return tuple(execute_readonly(db_path, sql, time_limit_s=time_limit_s, max_rows=max_rows))
    except QueryRejected as err:
        raise ValueError(f"sql reward: the gold query fails on {db_path!r}: {err}") from err


def _check_reference(reference) -> tuple[str, str]:
    if not isinstance(reference, dict) or not isinstance(reference.get("sql"), str) \
            or not isinstance(reference.get("db_path"), (str, os.PathLike)):
        raise ValueError("sql reward: the reference must be a dict {'sql': gold_sql, 'db_path': path}, "
                         f"got {reference!r}")
    db_path = os.fspath(reference["db_path"])
    if not Path(db_path).is_file():
        raise ValueError(f"sql reward: no SQLite database at {db_path!r}")
    return reference["sql"], db_path


def score_sql(response: str, reference: dict, *, time_limit_s: float = TIME_LIMIT_S,
              max_rows: int = MAX_ROWS) -> float:
    """``score`` with explicit limits (wrap it with functools.partial in a plugin to change them)."""
    if not isinstance(response, str):
        raise TypeError(f"sql reward: the response must be a string, got {type(response).__name__}")
    gold_sql, db_path = _check_reference(reference)
    stat = os.stat(db_path)
    gold = _gold_rows(os.path.abspath(db_path), (stat.st_mtime_ns, stat.st_size), gold_sql,
                      time_limit_s, max_rows)
    predicted_sql = extract_sql(response)
    if not predicted_sql:
        return 0.0
    try:
        predicted = execute_readonly(db_path, predicted_sql, time_limit_s=time_limit_s, max_rows=max_rows)
    except QueryRejected:
        return 0.0
    if has_order_by(gold_sql):
        return 1.0 if list(gold) == predicted else 0.0
    return 1.0 if Counter(gold) == Counter(predicted) else 0.0


def score(response: str, reference: dict) -> float:
    """1.0 iff the response's SQL returns the same result set as ``reference["sql"]`` on its database."""
    return score_sql(response, reference)
