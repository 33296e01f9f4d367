"""The judge interface: items in, one label per (item, value) out.

A judge is anything with a ``judge_id`` and a ``judge(items)`` method; keeping it a Protocol lets a
lexicon, a local model, an HTTP endpoint or imported human labels stand in for each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from actstore.errors import InputError
from ingest.values import parse_value


@dataclass(frozen=True, slots=True)
class JudgeItem:
    """One response to judge, for each of ``values`` (slugs)."""

    response_id: str
    query: str
    response: str
    values: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.values:
            raise InputError(f"judge item {self.response_id!r} names no values; pass at least one value")
        object.__setattr__(self, "values", tuple(parse_value(v) for v in self.values))


@dataclass(frozen=True, slots=True)
class Label:
    """A verdict on one response for one value.

    ``score``: the judge's graded number (a 1-5 rating, a probability, a rho, a phrase count, 1.0/0.0
    for yes/no). ``expressed`` None is an *abstention*: the judge's output could not be read. It is not
    a "no": it is stored as NULL, left out of every analysis, counted by ``ingest label`` and ``judge
    eval``, and ``raw`` holds what the judge said, so the row can be found and re-judged.
    """

    response_id: str
    value: str
    expressed: bool | None
    score: float | None
    judge_id: str
    raw: str


@runtime_checkable
class Judge(Protocol):
    judge_id: str

    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        """Labels in item order, and per item in the order of ``item.values``."""
        ...


def abstention_rate(labels: Sequence[Label]) -> float:
    """Share of ``labels`` that are abstentions (NaN for none)."""
    return sum(lab.expressed is None for lab in labels) / len(labels) if labels else float("nan")


def expand(items: Sequence[JudgeItem]) -> list[tuple[JudgeItem, str]]:
    """The (item, value) pairs a judge answers, in the order the labels come back."""
    return [(it, v) for it in items for v in it.values]
