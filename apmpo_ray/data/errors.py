"""The one error a bad data source raises, so that it surfaces by name instead of deep inside an actor."""
from __future__ import annotations


class DatasetError(ValueError):
    """A missing or unreadable data source, or a bad row, named by file and row (rows count from 1)."""

    def __init__(self, message: str, *, source: str = "", row: int | None = None):
        where = f"{source}, row {row}: " if source and row is not None else f"{source}: " if source else ""
        super().__init__(f"{where}{message}")
        self.source = source
        self.row = row
        self.reason = message
