"""Verifiable instructions: a suffix to append to a user query, and a checker for the response.

An :class:`Instruction` is a kind (``id``), a text template and its parameters; its checker comes from
:data:`CHECKERS` by ``id``. Checks are deterministic and literal on purpose (IFEval-style): a response
either has exactly three bullet points or it does not, so follow rates compare across steering
strengths without a judge.

Kinds: ``lowercase``, ``include_word`` (word), ``bullet_points`` (n), ``max_words`` (n),
``end_with`` (phrase), ``no_commas``, ``language`` (language: en/zh/es/fr/ko).
"""

from __future__ import annotations

import re
import string
import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from actstore.errors import InputError
from analyses.evals._data import package_json
from analyses.evals._text import detect_language, tokenize
from ingest.values import LANGUAGES

# A bullet is a line whose first non-blank characters are "-", "*" or "•" and a space. Numbered lists
# are not bullets: the prompt asks for bullet markers, and counting "1." would reward a different format.
_BULLET = re.compile(r"^[ \t]*[-*\u2022][ \t]+\S", re.MULTILINE)
_COMMAS = (",", "\uff0c", "\u3001")  # ASCII, full-width and ideographic commas


def _lowercase(response: str) -> bool:
    # At least one cased letter, and none upper-case: an empty or all-CJK answer follows nothing.
    has_cased = any(c.lower() != c.upper() for c in response)
    return has_cased and response == response.lower()


def _include_word(response: str, word: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", response, re.IGNORECASE) is not None


def _bullet_points(response: str, n: int) -> bool:
    return len(_BULLET.findall(response)) == n


def _max_words(response: str, n: int) -> bool:
    words = tokenize(response)
    return 0 < len(words) <= n


def _end_with(response: str, phrase: str) -> bool:
    # Trailing whitespace and Markdown emphasis markers are layout, not words.
    tail = response.rstrip().rstrip("*_").rstrip()
    return tail.casefold().endswith(phrase.casefold())


def _no_commas(response: str) -> bool:
    return bool(response.strip()) and not any(c in response for c in _COMMAS)


def _language(response: str, language: str) -> bool:
    return detect_language(response) == language


#: Checker per instruction kind: ``checker(response, **params) -> bool``.
CHECKERS: dict[str, Callable[..., bool]] = {
    "lowercase": _lowercase,
    "include_word": _include_word,
    "bullet_points": _bullet_points,
    "max_words": _max_words,
    "end_with": _end_with,
    "no_commas": _no_commas,
    "language": _language,
}

# The parameters (and their types) each kind needs.
_PARAMS: dict[str, dict[str, type]] = {
    "lowercase": {},
    "include_word": {"word": str},
    "bullet_points": {"n": int},
    "max_words": {"n": int},
    "end_with": {"phrase": str},
    "no_commas": {},
    "language": {"language": str},
}

_LANGUAGE_NAMES = {"en": "English", "zh": "Chinese", "es": "Spanish", "fr": "French", "ko": "Korean"}


@dataclass(frozen=True, slots=True)
class Instruction:
    """One verifiable instruction: a kind, the text to show the model, and its parameters.

    ``text_template`` is formatted with ``params`` (plus ``language_name`` for the language kind).
    ``params`` is stored read-only; equality compares all three fields, hashing uses ``id`` and the
    template only.
    """

    id: str
    text_template: str
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if self.id not in CHECKERS:
            raise InputError(f"unknown instruction kind {self.id!r}; use one of {', '.join(CHECKERS)}")
        expected = _PARAMS[self.id]
        given = dict(self.params)
        if set(given) != set(expected):
            raise InputError(
                f"instruction {self.id!r} takes parameters {sorted(expected)}, got {sorted(given)}"
            )
        for name, kind in expected.items():
            if not isinstance(given[name], kind) or isinstance(given[name], bool):
                raise InputError(
                    f"instruction {self.id!r}: parameter {name} must be {kind.__name__}, got {given[name]!r}"
                )
        if self.id in ("bullet_points", "max_words") and given["n"] < 1:
            raise InputError(f"instruction {self.id!r}: n must be at least 1, got {given['n']}")
        if self.id == "language" and given["language"] not in LANGUAGES:
            raise InputError(
                f"instruction 'language': unknown language {given['language']!r}; "
                f"use one of {', '.join(LANGUAGES)}"
            )
        fields = {f for _, f, _, _ in string.Formatter().parse(self.text_template) if f}
        unknown = fields - set(given) - {"language_name"}
        if unknown:
            raise InputError(
                f"instruction {self.id!r}: template names {sorted(unknown)} that are not parameters"
            )
        object.__setattr__(self, "params", types.MappingProxyType(given))

    @property
    def key(self) -> str:
        """A readable unique name, e.g. ``bullet_points(n=3)``."""
        args = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.id}({args})"

    def prompt_suffix(self) -> str:
        """The instruction text to append to a user query (starts with a blank line)."""
        extra = {"language_name": _LANGUAGE_NAMES.get(str(self.params.get("language")), "")}
        return "\n\n" + self.text_template.format(**self.params, **extra)

    def apply(self, query: str) -> str:
        """``query`` with the instruction appended."""
        return query.rstrip() + self.prompt_suffix()

    def check(self, response: str) -> bool:
        """True when ``response`` follows the instruction."""
        if not isinstance(response, str):
            raise InputError(f"check expects a response string, got {type(response).__name__}")
        return CHECKERS[self.id](response, **self.params)


@cache
def builtin_instructions() -> tuple[Instruction, ...]:
    """Our 30 instruction instances (``data/instructions.json``)."""
    rows = package_json("instructions.json")["instructions"]
    return tuple(Instruction(r["id"], r["text_template"], r.get("params", {})) for r in rows)


def _pairs(instructions: Sequence[Instruction], responses: Sequence[str]) -> list[tuple[Instruction, str]]:
    ins, res = list(instructions), list(responses)
    if len(ins) != len(res):
        raise InputError(
            f"got {len(ins)} instructions and {len(res)} responses; pass one instruction per response"
        )
    if not ins:
        raise InputError("follow_rate needs at least one (instruction, response) pair")
    return list(zip(ins, res))


def follow_rate(instructions: Sequence[Instruction], responses: Sequence[str]) -> float:
    """Share of responses that follow their instruction (``instructions[i]`` goes with ``responses[i]``)."""
    pairs = _pairs(instructions, responses)
    return sum(ins.check(r) for ins, r in pairs) / len(pairs)


def follow_rate_by_kind(instructions: Sequence[Instruction], responses: Sequence[str]) -> dict[str, float]:
    """Follow rate per instruction kind (``id``), for seeing which constraint steering breaks."""
    hits: dict[str, list[bool]] = {}
    for ins, r in _pairs(instructions, responses):
        hits.setdefault(ins.id, []).append(ins.check(r))
    return {k: sum(v) / len(v) for k, v in hits.items()}
