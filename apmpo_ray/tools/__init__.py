"""Tools the policy calls during tool-use rollouts: a sandboxed Python interpreter and local search.

``get_tool(name)`` is a plain callable ``(text) -> str``; ``ToolPool`` serves one through Ray actors.
Sandbox mechanism and its guarantees: docs/tools.md.
"""
from .pool import ToolPool, ToolReply
from .python_sandbox import PythonSandbox, SandboxLimits, SandboxUnavailable
from .registry import TOOL_NAMES, get_tool
from .search import SearchTool

__all__ = ["PythonSandbox", "SandboxLimits", "SandboxUnavailable", "SearchTool", "TOOL_NAMES", "ToolPool",
           "ToolReply", "get_tool"]
