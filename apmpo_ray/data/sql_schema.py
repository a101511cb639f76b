"""Where a text-to-SQL row's database lives, and its schema as the model sees it."""
from __future__ import annotations

import contextlib
import functools
import sqlite3
from pathlib import Path


def database_path(db_root: Path, db_id: str) -> Path:
    # Spider (database/) and BIRD (train_databases/, dev_databases/) both lay databases out this way.
    return db_root / db_id / f"{db_id}.sqlite"


@functools.lru_cache(maxsize=512)
def sqlite_schema(db_path: str) -> str:
    """The CREATE statements of the database's tables, in creation order; opened read-only."""
    uri = Path(db_path).resolve().as_uri() + "?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as conn:
        rows = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL "
                            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid").fetchall()
    return "\n\n".join(sql.strip() + ";" for (sql,) in rows)
