"""Tool-use rollouts: the tools the policy may call (``tools``) and ARPO's branching (``arpo``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

TOOL_TAGS = ("python", "search")


@dataclass
class ToolsConfig:
    names: list[str] = field(default_factory=lambda: ["python"])  # tools a tool_use rollout offers
    timeout_s: float = 10.0  # per call: the sandbox's wall-clock and CPU limit; the pool's deadline adds 5 s
    memory_mb: int = 1024  # python sandbox address-space limit
    output_bytes: int = 4096  # a tool's output is cut to this size
    python: str = "/usr/bin/python3"  # the sandbox's interpreter: outside the project's environment, readable by nobody
    search_paths: list[str] = field(default_factory=list)  # search: local .jsonl / text files of passages
    search_top_k: int = 3
    num_actors: int = 1  # Ray actors per tool
    concurrency: int = 4  # calls one tool actor runs at once

    def __post_init__(self):
        unknown = sorted(set(self.names) - set(TOOL_TAGS))
        if unknown:
            raise ValueError(f"tools.names: unknown tool(s) {unknown}; choose from {list(TOOL_TAGS)}")
        if "search" in self.names and not self.search_paths:
            raise ValueError("tools.search_paths: the search tool needs local document files")
        if self.timeout_s <= 0 or self.memory_mb < 64 or self.output_bytes < 1:
            raise ValueError("tools.timeout_s must be > 0, tools.memory_mb >= 64 and tools.output_bytes >= 1")
        if self.num_actors < 1 or self.concurrency < 1 or self.search_top_k < 1:
            raise ValueError("tools.num_actors, tools.concurrency and tools.search_top_k must be >= 1")

    def options(self, name: str) -> dict:
        """The keyword options of ``apmpo_ray.tools.get_tool(name)``."""
        if name == "python":
            return {"timeout_s": self.timeout_s, "memory_mb": self.memory_mb, "output_bytes": self.output_bytes,
                    "python": self.python}
        return {"paths": list(self.search_paths), "top_k": self.search_top_k, "output_bytes": self.output_bytes}


@dataclass
class ArpoConfig:
    """ARPO's entropy-based branching (used by ``algo.name=arpo`` with ``rollout.workflow=tool_use``).

    Of the ``rollout.group_size`` = M trajectories per prompt, ``initial_samples`` = N start from the prompt;
    the other M - N are branched after tool results, and whatever is left when every path has ended is filled
    with trajectories from the start.
    """

    initial_samples: int = 4
    branch_rule: Literal["code", "paper"] = "code"
    # code (released): branch when clip(u - β·ΔH, 0, 1) <= threshold, u ~ U(0, 1)
    entropy_weight: float = 0.2  # β
    branch_threshold: float = 0.5
    # paper: branch when α + β·ΔH > τ (β is entropy_weight)
    alpha: float = 0.5
    tau: float = 0.5
    branches_per_path: int = 1  # new branches per active path per round (beam 2)
    entropy_tokens: int = 20  # H over the first k tokens after a tool result (and of the first segment)
    entropy_top_k: int = 10  # from the top-k log-probs vLLM returns
    attribution: Literal["soft", "hard"] = "soft"

    def __post_init__(self):
        if self.initial_samples < 1 or self.branches_per_path < 1:
            raise ValueError("arpo.initial_samples and arpo.branches_per_path must be >= 1")
        if self.entropy_tokens < 1 or self.entropy_top_k < 1:
            raise ValueError("arpo.entropy_tokens and arpo.entropy_top_k must be >= 1")
