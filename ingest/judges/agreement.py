"""How well two label sets agree, e.g. a model judge against Value Portrait's human-derived tags.

Pairs are matched on (response_id, value); labels present in only one set are ignored (and counted),
and so are abstentions (``expressed`` None) on either side. For intervals, ROC AUC and recorded
evaluations see :mod:`ingest.judges.stats` and ``actstore judge eval``.
Cohen's kappa corrects raw agreement for chance, which matters here: most (response, value) pairs are
"not expressed", so always answering No already scores high raw agreement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from actstore.errors import InputError

from .base import Label


@dataclass(frozen=True, slots=True)
class Agreement:
    n: int  # matched pairs
    unmatched: int  # pairs present in only one of the two sets
    accuracy: float
    kappa: float  # Cohen's kappa; nan when chance agreement is 1 (both sets constant and equal)
    precision: float  # of `pred` against `gold`, for "expressed"
    recall: float


def agreement(pred: Sequence[Label], gold: Sequence[Label]) -> Agreement:
    """Agreement of ``pred`` with ``gold`` on "expressed"."""
    p = {(lab.response_id, lab.value): lab.expressed for lab in pred if lab.expressed is not None}
    g = {(lab.response_id, lab.value): lab.expressed for lab in gold if lab.expressed is not None}
    keys = p.keys() & g.keys()
    if not keys:
        raise InputError("the two label sets share no (response_id, value) pair; judge the same responses")
    n = len(keys)
    tp = sum(p[k] and g[k] for k in keys)
    fp = sum(p[k] and not g[k] for k in keys)
    fn = sum(g[k] and not p[k] for k in keys)
    tn = n - tp - fp - fn
    acc = (tp + tn) / n
    p_yes, g_yes = (tp + fp) / n, (tp + fn) / n
    chance = p_yes * g_yes + (1 - p_yes) * (1 - g_yes)
    kappa = (acc - chance) / (1 - chance) if chance < 1 else float("nan")
    return Agreement(
        n=n,
        unmatched=len(p.keys() ^ g.keys()),
        accuracy=acc,
        kappa=kappa,
        precision=tp / (tp + fp) if tp + fp else float("nan"),
        recall=tp / (tp + fn) if tp + fn else float("nan"),
    )
