"""Tools by name: ``get_tool(name, **options)`` returns a callable ``(text: str) -> str`` that needs no Ray."""
from __future__ import annotations

from typing import Callable

from .python_sandbox import SANDBOX_PYTHON, PythonSandbox, SandboxLimits
from .search import SearchTool

Tool = Callable[[str], str]


def _python(*, timeout_s: float = 10.0, memory_mb: int = 1024, output_bytes: int = 4096,
            python: str = SANDBOX_PYTHON) -> Tool:
    return PythonSandbox(SandboxLimits(timeout_s=timeout_s, memory_mb=memory_mb, output_bytes=output_bytes),
                         python=python)


def _search(*, paths: list[str], top_k: int = 3, output_bytes: int = 4096) -> Tool:
    return SearchTool(paths, top_k=top_k, max_chars=output_bytes)


_FACTORIES: dict[str, Callable[..., Tool]] = {"python": _python, "search": _search}
TOOL_NAMES: tuple[str, ...] = tuple(_FACTORIES)


def get_tool(name: str, **options) -> Tool:
    """The tool ``name`` built with ``options`` (python: timeout_s, memory_mb, output_bytes, python; search:
    paths, top_k, output_bytes)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise ValueError(f"unknown tool {name!r}; choose one of {sorted(_FACTORIES)}") from None
    return factory(**options)
