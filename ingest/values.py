"""Schwartz's ten basic values: names, short definitions (our own words), circular order, groups.

Every other module refers to a value by its slug (``"self_direction"``); :func:`parse_value`
accepts the display name and common spellings too.
"""

from __future__ import annotations

from dataclasses import dataclass

from actstore.errors import InputError


@dataclass(frozen=True, slots=True)
class Value:
    slug: str
    name: str
    definition: str
    angle_deg: float  # position on the theoretical circle (36 degrees apart, in circular order)


# Circular order: neighbours are compatible, opposites conflict.
_DEFS = [
    ("self_direction", "Self-Direction", "thinking and acting for oneself: choosing one's own goals, creating, exploring"),
    ("stimulation", "Stimulation", "seeking novelty, excitement and challenge in life"),
    ("hedonism", "Hedonism", "pleasure and enjoyment for oneself, gratification of the senses"),
    ("achievement", "Achievement", "personal success shown through competence by the standards of others"),
    ("power", "Power", "social status, prestige, and control over people and resources"),
    ("security", "Security", "safety, stability and harmony of society, of relationships and of oneself"),
    ("conformity", "Conformity", "holding back actions and impulses that would upset others or break social norms"),
    ("tradition", "Tradition", "respect for and commitment to the customs and ideas of one's culture or religion"),
    ("benevolence", "Benevolence", "caring for the welfare of the people one is close to"),
    ("universalism", "Universalism", "understanding, tolerance and protection of the welfare of all people and of nature"),
]

VALUES: tuple[Value, ...] = tuple(
    Value(slug, name, definition, 36.0 * i) for i, (slug, name, definition) in enumerate(_DEFS)
)
VALUE_SLUGS: tuple[str, ...] = tuple(v.slug for v in VALUES)
BY_SLUG: dict[str, Value] = {v.slug: v for v in VALUES}

#: The four higher-order values. Hedonism sits between Openness to Change and Self-Enhancement
#: and is listed in both, as in Schwartz's own figure.
HIGHER_ORDER: dict[str, tuple[str, ...]] = {
    "openness_to_change": ("self_direction", "stimulation", "hedonism"),
    "self_enhancement": ("hedonism", "achievement", "power"),
    "conservation": ("security", "conformity", "tradition"),
    "self_transcendence": ("benevolence", "universalism"),
}

#: Languages the built-in prompt sets cover (ISO 639-1).
LANGUAGES: tuple[str, ...] = ("en", "zh", "es", "fr", "ko")


def _norm(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")


def parse_value(text: str) -> str:
    """Any common spelling ("Self-Direction", "self direction", "self_direction") -> slug."""
    key = _norm(text)
    if key in BY_SLUG:
        return key
    raise InputError(f"unknown value {text!r}; use one of {', '.join(VALUE_SLUGS)}")


def circular_distance(a: str, b: str) -> int:
    """Steps between two values on the circle (0-5)."""
    i, j = VALUE_SLUGS.index(a), VALUE_SLUGS.index(b)
    d = abs(i - j) % 10
    return min(d, 10 - d)


def neighbours(slug: str) -> tuple[str, str]:
    i = VALUE_SLUGS.index(slug)
    return VALUE_SLUGS[(i - 1) % 10], VALUE_SLUGS[(i + 1) % 10]


def opposite(slug: str) -> str:
    return VALUE_SLUGS[(VALUE_SLUGS.index(slug) + 5) % 10]
