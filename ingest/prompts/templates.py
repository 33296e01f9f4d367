"""Built-in value-priority system prompts.

``ingest/data/templates.json`` holds, per language, a few sentence *frames* ("Nothing matters more to
you than {ideal}.") and, per value and language, hand-written *ideals* (noun phrases naming what the
value cares about) and *practices* (one sentence on how that shows in an answer). A template is
frame x ideal, followed by one practice; so every template names its own value twice and the phrasing
varies along two axes. Index ``(f, i)`` means the same frame and ideal in every language, which keeps the
sets parallel: ``power/f2i3`` in Korean is the translation of ``power/f2i3`` in English.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from actstore.errors import InputError
from ingest.values import VALUE_SLUGS

from .model import Template

# Korean particles depend on whether the previous syllable ends in a consonant (batchim); frames write
# "{을/를}" and we resolve it here, so that ideals can be written as plain noun phrases.
_KO_PARTICLE = re.compile(r"\{(을/를|이/가|은/는|과/와|으로/로)\}")


def _has_batchim(ch: str) -> bool:
    code = ord(ch) - 0xAC00
    return 0 <= code < 11172 and code % 28 != 0


def _resolve_korean(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        with_final, without = m.group(1).split("/")
        prev = text[: m.start()].rstrip()
        last = prev[-1] if prev else ""
        if with_final == "으로":  # 'ㄹ' batchim takes 로 as if it had none
            code = ord(last) - 0xAC00 if last else -1
            return "로" if (not _has_batchim(last) or code % 28 == 8) else "으로"
        return with_final if _has_batchim(last) else without

    # Resolve left to right so each particle sees already-resolved text before it.
    while (m := _KO_PARTICLE.search(text)) is not None:
        text = text[: m.start()] + sub(m) + text[m.end():]
    return text


@lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    with resources.files("ingest.data").joinpath("templates.json").open("r", encoding="utf-8") as f:
        return json.load(f)


def template_languages() -> tuple[str, ...]:
    return tuple(_raw()["frames"])


def expand(frames: list[str], ideals: list[str], practices: list[str], value: str, language: str) -> list[Template]:
    """Every frame x ideal, each closed by a practice rotated so that all practices get used."""
    # Chinese runs sentences together; the other languages separate them with a space.
    sep = "" if language == "zh" else " "
    out = []
    for f, frame in enumerate(frames):
        for i, ideal in enumerate(ideals):
            text = frame.replace("{ideal}", ideal) + sep + practices[(f + i) % len(practices)]
            if language == "ko":
                text = _resolve_korean(text)
            out.append(Template(f"{value}/f{f}i{i}", value, language, text))
    return out


@cache
def builtin_templates(value: str, language: str) -> tuple[Template, ...]:
    """The built-in templates for one value (slug) in one language, in a fixed order."""
    raw = _raw()
    if language not in raw["frames"]:
        raise InputError(
            f"no built-in system prompts in language {language!r}; use one of "
            f"{', '.join(raw['frames'])} or pass your own templates"
        )
    if value not in VALUE_SLUGS:
        raise InputError(f"unknown value {value!r}; use one of {', '.join(VALUE_SLUGS)}")
    spec = raw["values"][value][language]
    return tuple(expand(raw["frames"][language], spec["ideals"], spec["practices"], value, language))
