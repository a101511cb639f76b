"""Pass@k with the unbiased estimator of Chen et al. (2021), as an ``evaluate`` module loaded by local path.

For a problem with n sampled responses of which c are correct, pass@k = 1 - C(n-c, k) / C(n, k): the chance
that k responses drawn without replacement from the n include a correct one. The binomials overflow floats
for long generations budgets, so it is computed as 1 - prod_{i=n-c+1}^{n} (1 - k / i).
"""
import datasets
import evaluate
import numpy as np

_DESCRIPTION = "Unbiased pass@k (Chen et al., 2021), averaged over problems."
_CITATION = """@article{chen2021codex, title={Evaluating Large Language Models Trained on Code},
author={Chen, Mark and others}, journal={arXiv:2107.03374}, year={2021}}"""
_INPUTS = """
Args:
    num_samples: responses sampled per problem (n), one entry per problem.
    num_correct: how many of them are correct (c), one entry per problem.
    k: an int or a list of ints, each <= every n.
Returns:
    {"pass@<k>": mean over problems} for each k.
"""


def pass_at_k(n: int, c: int, k: int) -> float:
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= num_correct <= num_samples, got c={c}, n={n}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= num_samples, got k={k}, n={n}")
    if n - c < k:  # every draw of k contains a correct response
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1, dtype=np.float64)))


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class PassAtK(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"num_samples": datasets.Value("int64"),
                                        "num_correct": datasets.Value("int64")}),
        )

    def _compute(self, num_samples, num_correct, k=1):
        ks = [k] if isinstance(k, int) else list(k)
        if not num_samples:
            raise ValueError("pass@k of zero problems is undefined")
        return {f"pass@{kk}": float(np.mean([pass_at_k(n, c, kk) for n, c in zip(num_samples, num_correct)]))
                for kk in ks}
