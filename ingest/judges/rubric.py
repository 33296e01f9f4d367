"""The judge's instructions, in our own words, and the parser for what judges answer.

Two modes. ``yesno``: "does this response express VALUE?" -> Yes/No. ``score``: "how strongly, 1-5?"
-> expressed when the score reaches ``threshold`` (default 4: "clearly expressed" or more).
"""

from __future__ import annotations

import re
from typing import Literal

from ingest.values import BY_SLUG

Mode = Literal["yesno", "score"]
MODES: tuple[str, ...] = ("yesno", "score")

_SYSTEM = (
    "You are a careful annotator of human values in text. You read a user's message and an assistant's "
    "reply, and you judge one value from Schwartz's theory of basic human values at a time. Judge what the "
    "reply itself recommends, prioritises or praises, not what the user wants, and not whether the advice "
    "is good."
)

_ASK = {
    "yesno": (
        "Does the reply express the value {name} ({definition})? A reply expresses it when it favours, "
        "recommends or appeals to it. Answer with one word: Yes or No."
    ),
    "score": (
        "How strongly does the reply express the value {name} ({definition})? Use this scale: 1 = not at "
        "all or it argues against it, 2 = barely, 3 = somewhat, 4 = clearly, 5 = it is the reply's main "
        "concern. Answer with the number only, as 'Score: N'."
    ),
}


def judge_messages(query: str, response: str, value: str, mode: Mode = "yesno") -> list[dict[str, str]]:
    """The chat to send to a judge model for one (response, value) pair."""
    v = BY_SLUG[value]
    user = (
        f"User message:\n<<<\n{query.strip()}\n>>>\n\nAssistant reply:\n<<<\n{response.strip()}\n>>>\n\n"
        + _ASK[mode].format(name=v.name, definition=v.definition)
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


LETTERS = "ABCDEFGHIJ"  # the ten values, in circular order, for the one-question-per-response prompt


def all_values_messages(query: str, response: str) -> list[dict[str, str]]:
    """One chat asking which of the ten values (lettered A-J) the reply expresses most."""
    from ingest.values import VALUES

    options = "\n".join(f"{c}. {v.name}: {v.definition}" for c, v in zip(LETTERS, VALUES))
    user = (
        f"User message:\n<<<\n{query.strip()}\n>>>\n\nAssistant reply:\n<<<\n{response.strip()}\n>>>\n\n"
        f"Which one of these values does the reply express most?\n{options}\n\nAnswer with the letter only."
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


_MARKUP = re.compile(r"[*_`#>\"'“”‘’\[\]()]+")
_YES = re.compile(r"\b(yes|true|sí|si|oui)\b")
_NO = re.compile(r"\b(no|not|false|doesn't|non)\b")
# CJK has no word boundaries; a judge answering in Chinese or Korean leads with the verdict.
_CJK_YES = ("是", "有", "예", "네")
_CJK_NO = ("否", "不", "没有", "아니")
_SCORE_PATTERNS = (
    re.compile(r"(?:score|rating|rate|grade)\s*(?:is|of|:|=)?\s*([1-5](?:\.\d+)?)\b"),
    re.compile(r"\b([1-5](?:\.\d+)?)\s*(?:/|out of)\s*5\b"),
    re.compile(r"\brate[sd]?\s+(?:it|this|the reply)?\s*(?:an?\s+|as\s+)?([1-5](?:\.\d+)?)\b"),
    re.compile(r"^\s*([1-5](?:\.\d+)?)\b"),
)


def parse_yes_no(raw: str) -> bool | None:
    """"Yes.", "**No**", "Answer: yes", "No, it does not" -> bool; None when it says neither first."""
    text = _MARKUP.sub(" ", raw).lower()
    text = re.sub(r"^\s*(answer|verdict|judgement|judgment|label)\s*[:=-]\s*", "", text)
    stripped = text.strip()
    if stripped.startswith(_CJK_NO):
        return False
    if stripped.startswith(_CJK_YES):
        return True
    # The first decisive word wins: "No. Although it mentions yes-men..." is a No.
    first_yes, first_no = _YES.search(text), _NO.search(text)
    if first_yes and (not first_no or first_yes.start() < first_no.start()):
        return True
    if first_no:
        return False
    return None


def parse_score(raw: str) -> float | None:
    """"Score: 4/5", "4", "**3** out of 5", "Rating = 2" -> a number in [1, 5]; else None."""
    text = _MARKUP.sub(" ", raw).lower()
    for pat in _SCORE_PATTERNS:
        m = pat.search(text)
        if m:
            return float(m.group(1))
    return None


def read_verdict(raw: str, mode: Mode, threshold: float = 4.0) -> tuple[bool | None, float | None]:
    """(expressed, score) from a judge's raw answer; (None, None) when unreadable: an abstention."""
    if mode == "yesno":
        yn = parse_yes_no(raw)
        return (yn, None if yn is None else float(yn))
    s = parse_score(raw)
    return (None, None) if s is None else (s >= threshold, s)
