"""Results as a table shaped like the paper's Table 1: a row per method, a column per benchmark, then Avg."""
from __future__ import annotations

import math
from typing import Mapping

from .results import EvalResults


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}"


def _render(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"] + [line(r) for r in rows])


def format_table(rows: Mapping[str, EvalResults], *, self_bleu: bool = True) -> str:
    """Markdown: cells "Pass@1 / Pass@k" in percent, Avg. the unweighted mean over benchmarks (as in Table 1);
    then, when ``self_bleu``, the same grid of Self-BLEU (0-1, lower = more diverse; Table 4)."""
    if not rows:
        raise ValueError("no results to tabulate")
    benches = list(dict.fromkeys(name for results in rows.values() for name in results.benchmarks))
    ks = sorted({results.k for results in rows.values()})
    title = f"Pass@1 / Pass@{ks[0]}" if len(ks) == 1 else "Pass@1 / Pass@k (k per method)"
    header = ["Method"] + benches + ["Avg."]
    body = []
    for method, results in rows.items():
        cells = [method]
        for name in benches:
            r = results.benchmarks.get(name)
            cells.append("-" if r is None else f"{_pct(r.pass_at_1)} / {_pct(r.pass_at_k)}")
        avg = results.average()
        cells.append(f"{_pct(avg['pass_at_1'])} / {_pct(avg['pass_at_k'])}")
        body.append(cells)
    text = f"{title} (%)\n\n{_render(header, body)}"
    if self_bleu:
        bleu_rows = []
        for method, results in rows.items():
            values = [results.benchmarks[n].self_bleu if n in results.benchmarks else math.nan for n in benches]
            bleu_rows.append([method] + ["-" if math.isnan(v) else f"{v:.3f}" for v in values]
                             + ["-" if math.isnan(results.average()["self_bleu"]) else
                                f"{results.average()['self_bleu']:.3f}"])
        text += f"\n\nSelf-BLEU (lower = more diverse)\n\n{_render(header, bleu_rows)}"
    return text + "\n"
