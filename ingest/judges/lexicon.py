"""A judge that looks for value phrases: exact, cheap and deterministic.

Right for text whose value content was planted with known phrases (the value-world corpus); a weak
proxy for free text. A value is expressed when at least ``min_hits`` of its phrases occur.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from actstore.errors import InputError
from ingest.values import parse_value

from .base import JudgeItem, Label, expand


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _spaced(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


def _pattern(phrase: str) -> re.Pattern[str]:
    # Whitespace-insensitive, and the phrase's final .!? is optional, so that a sentence the model ends
    # differently still counts. Word boundaries only where the phrase starts/ends with an ASCII word
    # character, so "power" does not match "empowerment" while CJK phrases still match inside a run.
    key = _normalize(phrase).rstrip(".!?。！？")
    esc = r"\s+".join(re.escape(w) for w in key.split(" "))
    left = r"\b" if _spaced(key[0]) else ""
    right = r"\b" if _spaced(key[-1]) else ""
    return re.compile(left + esc + right, re.IGNORECASE)


class LexiconJudge:
    """``phrases``: value (any spelling) -> phrases that signal it. Score = number of distinct hits."""

    def __init__(self, phrases: Mapping[str, Sequence[str]], judge_id: str = "lexicon", min_hits: int = 1) -> None:
        if not phrases:
            raise InputError("LexiconJudge needs at least one value with phrases; pass {value: [phrases]}")
        if min_hits < 1:
            raise InputError(f"min_hits={min_hits}; use 1 or more")
        self.judge_id = judge_id
        self.min_hits = min_hits
        self._patterns: dict[str, list[tuple[str, re.Pattern[str]]]] = {}
        for value, plist in phrases.items():
            kept = [p for p in plist if p and p.strip(" .!?。！？")]
            self._patterns[parse_value(value)] = [(p, _pattern(p)) for p in kept]

    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        out = []
        for item, value in expand(items):
            if value not in self._patterns:
                raise InputError(f"lexicon judge {self.judge_id!r} has no phrases for {value}; add them or drop the value")
            hits = [p for p, pat in self._patterns[value] if pat.search(item.response)]
            out.append(
                Label(item.response_id, value, len(hits) >= self.min_hits, float(len(hits)), self.judge_id, "|".join(hits))
            )
        return out


def valueworld_lexicon_judge(language: str | None = None, judge_id: str = "lexicon:valueworld") -> LexiconJudge:
    """A lexicon judge over the value-world corpus's phrase pools (``ingest.valueworld.pools.PHRASES``,
    ``{language: {value: phrases}}``); all languages merged unless ``language`` is given."""
    try:
        from ingest.valueworld import pools  # optional sibling package
    except ImportError as e:
        raise InputError(f"ingest.valueworld is not available ({e}); pass a phrase mapping to LexiconJudge") from None
    phrases: Mapping[str, Mapping[str, Sequence[str]]] = getattr(pools, "PHRASES", {})
    if not phrases:
        raise InputError("ingest.valueworld.pools has no PHRASES; pass a phrase mapping to LexiconJudge")
    if language is not None and language not in phrases:
        raise InputError(f"value-world has no phrases in {language!r}; use one of {', '.join(phrases)}")
    langs = [language] if language is not None else list(phrases)
    flat: dict[str, list[str]] = {}
    for lang in langs:
        for value, plist in phrases[lang].items():
            flat.setdefault(value, []).extend(plist)
    return LexiconJudge(flat, judge_id)
