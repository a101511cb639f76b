"""Self-BLEU (APMPO Appendix K.6), as an ``evaluate`` module loaded by local path.

Each response of a problem is scored with BLEU-4 against the problem's other responses as references; the
group's Self-BLEU is the mean over its responses, and the result the mean over groups. Lower = more diverse.

BLEU is the multi-reference BLEU of Papineni et al. (2002) over word/punctuation tokens, with the add-one
smoothing of orders >= 2 from Lin & Och (2004): sentence-level BLEU without smoothing is 0 whenever one order
has no match, which would rate short answers (a number, a one-line query) as maximally diverse. With it,
identical responses score exactly 1 and responses sharing no token exactly 0.
"""
import math
import re
from collections import Counter

import datasets
import evaluate

_DESCRIPTION = "Self-BLEU: mean BLEU-4 of each sampled response against the other responses to the same prompt."
_CITATION = """@inproceedings{zhu2018texygen, title={Texygen: A Benchmarking Platform for Text Generation Models},
author={Zhu, Yaoming and others}, booktitle={SIGIR}, year={2018}}"""
_INPUTS = """
Args:
    predictions: one list of response texts per prompt (groups of fewer than 2 responses are ignored).
    max_order: the largest n-gram order (4 = BLEU-4).
    smooth: add-one smoothing of orders >= 2 (Lin & Och, 2004).
Returns:
    {"self_bleu": mean over groups, "groups": number of groups scored}
"""
_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _ngrams(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def _bleu(hyp_len: int, matches: list[int], totals: list[int], ref_lens: list[int], smooth: bool) -> float:
    if hyp_len == 0 or matches[0] == 0:
        return 0.0
    log_p = 0.0
    for order, (m, t) in enumerate(zip(matches, totals), 1):
        if smooth and order > 1:
            m, t = m + 1, t + 1
        if m == 0:
            return 0.0
        log_p += math.log(m / t)
    closest = min(ref_lens, key=lambda r: (abs(r - hyp_len), r))
    brevity = 1.0 if hyp_len > closest else math.exp(1 - closest / hyp_len)
    return brevity * math.exp(log_p / len(matches))


def sentence_bleu(hypothesis: list[str], references: list[list[str]], max_order: int = 4, smooth: bool = True) -> float:
    """BLEU of one tokenized hypothesis against tokenized references (clipped counts, closest-length penalty)."""
    matches, totals = [], []
    for n in range(1, max_order + 1):
        hyp = _ngrams(hypothesis, n)
        ref_max: Counter = Counter()
        for ref in references:
            ref_max |= _ngrams(ref, n)  # | keeps the max count per n-gram: the clipping bound
        matches.append(sum(min(c, ref_max[g]) for g, c in hyp.items()))
        totals.append(sum(hyp.values()))
    return _bleu(len(hypothesis), matches, totals, [len(r) for r in references], smooth)


def group_self_bleu(texts: list[str], max_order: int = 4, smooth: bool = True) -> list[float]:
    """BLEU of each text against all the others, in O(total n-grams) per order rather than O(G^2)."""
    tokens = [tokenize(t) for t in texts]
    lengths = [len(t) for t in tokens]
    matches = [[0] * max_order for _ in texts]
    totals = [[0] * max_order for _ in texts]
    for n in range(1, max_order + 1):
        counts = [_ngrams(t, n) for t in tokens]
        # Per n-gram: the largest count, its owner and the second largest, so that "max over the others"
        # of response i is the largest unless i owns it.
        best: dict = {}
        for owner, counter in enumerate(counts):
            for gram, c in counter.items():
                first, who, second = best.get(gram, (0, -1, 0))
                best[gram] = (c, owner, first) if c > first else (first, who, max(second, c))
        for i, counter in enumerate(counts):
            clipped = 0
            for gram, c in counter.items():
                first, who, second = best[gram]
                clipped += min(c, second if who == i else first)
            matches[i][n - 1] = clipped
            totals[i][n - 1] = sum(counter.values())
    return [_bleu(lengths[i], matches[i], totals[i], lengths[:i] + lengths[i + 1:], smooth) for i in range(len(texts))]


def self_bleu(texts: list[str], max_order: int = 4, smooth: bool = True) -> float:
    scores = group_self_bleu(texts, max_order, smooth)
    return sum(scores) / len(scores)


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _INPUTS)
class SelfBleu(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_INPUTS,
            features=datasets.Features({"predictions": datasets.Sequence(datasets.Value("string"))}),
        )

    def _compute(self, predictions, max_order=4, smooth=True):
        groups = [list(g) for g in predictions if len(g) >= 2]
        if not groups:
            return {"self_bleu": float("nan"), "groups": 0}
        scores = [self_bleu(g, max_order, smooth) for g in groups]
        return {"self_bleu": sum(scores) / len(scores), "groups": len(groups)}
