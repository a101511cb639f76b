"""Local retrieval: BM25 over a document collection read from local files (SQLite FTS5).

Documents are JSON lines with a ``text`` field (and optionally ``title``), or plain-text files, one passage
per paragraph. The index lives in memory; building it is one pass over the files.
"""
from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Iterable, Sequence

_WORD = re.compile(r"\w+", re.UNICODE)


def read_documents(paths: Sequence[str | Path]) -> Iterable[tuple[str, str]]:
    """(title, text) pairs from ``.jsonl`` files (``text``, optional ``title``) and plain-text files."""
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"search collection {path} does not exist")
        if path.suffix == ".jsonl":
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    yield str(row.get("title", "")), str(row["text"])
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise ValueError(f"{path}:{number}: a document needs a JSON object with 'text' ({err})") from None
        else:
            for paragraph in re.split(r"\n\s*\n", path.read_text()):
                if paragraph.strip():
                    yield path.stem, paragraph.strip()


class SearchTool:
    """``SearchTool(paths)(query) -> str``: the ``top_k`` best passages by BM25, numbered."""

    name = "search"

    def __init__(self, paths: Sequence[str | Path], *, top_k: int = 3, max_chars: int = 4096):
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        self.top_k, self.max_chars = top_k, max_chars
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE docs USING fts5(title, text, tokenize='unicode61')")
        self._db.executemany("INSERT INTO docs VALUES (?, ?)", read_documents(paths))
        self.size = self._db.execute("SELECT count(*) FROM docs").fetchone()[0]
        if self.size == 0:
            raise ValueError(f"search collection {list(map(str, paths))} holds no documents")

    def search(self, query: str) -> list[tuple[str, str]]:
        # Quote every word: FTS5 syntax in a model-written query must not be an error or an operator.
        terms = " OR ".join(f'"{word}"' for word in _WORD.findall(query))
        if not terms:
            return []
        rows = self._db.execute("SELECT title, text FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT ?",
                                (terms, self.top_k)).fetchall()
        return [(str(title), str(text)) for title, text in rows]

    def __call__(self, query: str) -> str:
        hits = self.search(query)
        if not hits:
            return "No results."
        text = "\n".join(f"[{i}] {title + ': ' if title else ''}{body}" for i, (title, body) in enumerate(hits, 1))
        return text[: self.max_chars]
