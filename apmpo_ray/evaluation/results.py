"""Evaluation results per benchmark, their average, and their names as MLflow metrics."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field


@dataclass
class BenchmarkResult:
    name: str
    num_problems: int
    samples_per_problem: int  # n
    k: int
    pass_at_1: float  # mean correctness of all n samples (= the unbiased pass@1 estimate)
    pass_at_k: float  # unbiased estimate from the n samples (Chen et al., 2021)
    self_bleu: float  # NaN when n = 1
    mean_reward: float
    mean_response_tokens: float
    truncated: float  # share of responses cut by max_new_tokens
    seconds: float
    pass_at_curve: dict = field(default_factory=dict)  # {j: pass@j} for j = 1, 2, 4, ... up to k, and k


def curve_points(k: int) -> list[int]:
    """The k values of a Pass@k curve: powers of two below k, and k."""
    points, j = [], 1
    while j < k:
        points.append(j)
        j *= 2
    return points + [k]


@dataclass
class EvalResults:
    k: int
    benchmarks: dict[str, BenchmarkResult] = field(default_factory=dict)

    def average(self) -> dict[str, float]:
        """Unweighted mean over benchmarks, as in the paper's "Avg." column."""
        def mean(values):
            values = [v for v in values if not math.isnan(v)]
            return sum(values) / len(values) if values else float("nan")

        rows = list(self.benchmarks.values())
        out = {"pass_at_1": mean(r.pass_at_1 for r in rows), "pass_at_k": mean(r.pass_at_k for r in rows),
               "self_bleu": mean(r.self_bleu for r in rows)}
        points = set.intersection(*(set(r.pass_at_curve) for r in rows)) if rows else set()
        out.update({f"pass_at_{j}": mean(r.pass_at_curve[j] for r in rows) for j in sorted(points)})
        return out

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        """``eval/<bench>/pass_at_1``, ``eval/<bench>/pass_at_<k>``, ``eval/<bench>/self_bleu``, ..., and with more
        than one benchmark their mean ``eval/avg/*`` (with one, it would only repeat it).

        ``@`` is not allowed in MLflow metric names, hence ``pass_at_16`` for the paper's Pass@16.
        """
        out: dict[str, float] = {}
        for name, r in self.benchmarks.items():
            out.update({f"{prefix}/{name}/pass_at_{j}": value for j, value in r.pass_at_curve.items()})
            out.update({f"{prefix}/{name}/pass_at_1": r.pass_at_1, f"{prefix}/{name}/pass_at_{self.k}": r.pass_at_k,
                        f"{prefix}/{name}/self_bleu": r.self_bleu, f"{prefix}/{name}/mean_reward": r.mean_reward,
                        f"{prefix}/{name}/response_tokens": r.mean_response_tokens,
                        f"{prefix}/{name}/truncated": r.truncated})
        if len(self.benchmarks) > 1:
            out.update({f"{prefix}/avg/{key}": value for key, value in self.headline().items()})
        return out

    def headline(self) -> dict[str, float]:
        """``pass_at_<j>`` (the curve, 1 and k included) and ``self_bleu``, averaged over the benchmarks."""
        avg = self.average()
        out = {key: value for key, value in avg.items() if key.startswith("pass_at_") and key != "pass_at_k"}
        out.update({"pass_at_1": avg["pass_at_1"], f"pass_at_{self.k}": avg["pass_at_k"],
                    "self_bleu": avg["self_bleu"]})
        return out

    def rows(self) -> list[dict]:
        """One row per benchmark, for an MLflow table the UI can filter."""
        return [{"benchmark": name, "problems": r.num_problems, "samples": r.samples_per_problem,
                 "pass_at_1": r.pass_at_1, f"pass_at_{self.k}": r.pass_at_k, "self_bleu": r.self_bleu,
                 "mean_reward": r.mean_reward, "response_tokens": r.mean_response_tokens, "truncated": r.truncated}
                for name, r in self.benchmarks.items()]

    def to_dict(self) -> dict:
        return {"k": self.k, "benchmarks": {n: asdict(r) for n, r in self.benchmarks.items()},
                "average": self.average()}
