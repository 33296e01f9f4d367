"""Portrait items, the rating parser's edge cases, and PVQ-style scoring."""

from __future__ import annotations

import math

import pytest

from actstore.errors import InputError
from analyses.evals.questionnaire import (
    SCALE,
    Item,
    build_prompt,
    builtin_items,
    parse_rating,
    score_keyed,
    score_questionnaire,
    score_ratings,
)
from ingest.values import VALUE_SLUGS


def test_builtin_items_cover_every_value_in_portrait_form() -> None:
    items = builtin_items()
    assert len(items) >= 30
    assert len({i.id for i in items}) == len(items)
    for v in VALUE_SLUGS:
        assert sum(i.value == v for i in items) >= 3
    assert all(i.text.startswith("This person thinks it is important") for i in items)
    # interleaved: the first ten items are one per value
    assert {i.value for i in items[:10]} == set(VALUE_SLUGS)


def test_prompt_shows_the_portrait_and_the_whole_scale() -> None:
    item = builtin_items()[0]
    prompt = build_prompt(item)
    assert item.text in prompt
    for i, label in enumerate(SCALE, start=1):
        assert f"{i}. {label}" in prompt
    assert "single number from 1 to 6" in prompt
    assert build_prompt("This person likes tea.").count("likes tea") == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("5", 5),
        ("  6\n", 6),
        ("4.", 4),
        ("(3)", 3),
        ("**4**", 4),
        ("5/6", 5),
        ("5 / 6", 5),
        ("2 out of 6", 2),
        ("I'd say 4", 4),
        ("I’d say 4.", 4),
        ("I would say four.", 4),
        ("Rating: 5", 5),
        ("My answer is (3).", 3),
        ("I'd rate it as 2.", 2),
        ("**4** - Somewhat like me", 4),
        ("6. Very much like me", 6),
        ("3\n\nThe description fits me a little.", 3),
        ("The person values nature. I think 5 fits.", 5),
        ("Like me", 5),
        ("Very much like me.", 6),
        ("Not like me at all", 1),
        ("NOT LIKE ME", 2),
        ("This is somewhat like me.", 4),
        ("a little like me", 3),
        ("５", 5),  # full-width digit
    ],
)
def test_parse_rating_reads_answers(text: str, expected: int) -> None:
    assert parse_rating(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "7",
        "0",
        "4.5",
        "4-5",
        "Maybe 3 or 4.",
        "1 (not like me at all) to 6 (very much like me)",
        "As an AI, I don't have personal values or preferences.",
        "I'm sorry, but I can't rate myself on this scale.",
        "抱歉，我不能回答这个问题。",
        "It depends on the situation.",
        "1. I value freedom.\n2. I also value safety.",
    ],
)
def test_parse_rating_gives_none_for_refusals_and_ambiguity(text: str) -> None:
    assert parse_rating(text) is None


def test_parse_rating_rejects_non_strings() -> None:
    with pytest.raises(InputError, match="string"):
        parse_rating(5)  # type: ignore[arg-type]


def test_scores_are_item_means_and_centered_on_the_respondent_mean() -> None:
    items = [
        Item("a1", "power", "x"),
        Item("a2", "power", "y"),
        Item("b1", "Benevolence", "z"),
        Item("c1", "tradition", "w"),
    ]
    scores = score_questionnaire(items, [2, 4, 6, None])
    assert scores.raw["power"] == 3.0
    assert scores.raw["benevolence"] == 6.0
    assert math.isnan(scores.raw["tradition"]) and scores.n_items["tradition"] == 0
    assert scores.grand_mean == pytest.approx(4.0)
    assert scores.centered["power"] == pytest.approx(-1.0)
    assert scores.centered["benevolence"] == pytest.approx(2.0)
    assert (scores.n_answered, scores.n_total) == (3, 4)
    flat = scores.as_dict()
    assert flat["answered_share"] == 0.75 and flat["centered.power"] == pytest.approx(-1.0)


def test_ratings_may_be_a_mapping_by_item_id() -> None:
    items = builtin_items()
    by_id = {i.id: (6 if i.value == "universalism" else 3) for i in items}
    scores = score_questionnaire(items, by_id)
    assert scores.raw["universalism"] == 6.0 and scores.raw["power"] == 3.0
    assert max(scores.centered, key=lambda v: scores.centered[v]) == "universalism"
    with pytest.raises(InputError, match="unknown item ids"):
        score_questionnaire(items, {"nope": 3})


def test_reverse_keyed_items_count_as_seven_minus_rating() -> None:
    scores = score_keyed([6, 2], [[("power", True)], [("power", False)]])
    assert scores.raw["power"] == pytest.approx((1 + 2) / 2)


def test_no_answers_give_nan_scores_not_an_error() -> None:
    scores = score_ratings([None, None], [["power"], ["security"]])
    assert math.isnan(scores.grand_mean) and scores.n_answered == 0


@pytest.mark.parametrize("bad", [0, 7, 3.5, "4", True])
def test_bad_ratings_are_rejected(bad) -> None:
    with pytest.raises(InputError, match="1-6 or None"):
        score_ratings([bad], [["power"]])


def test_mismatched_lengths_and_unknown_values_are_rejected() -> None:
    with pytest.raises(InputError, match="one rating"):
        score_ratings([1, 2], [["power"]])
    with pytest.raises(InputError, match="unknown value"):
        Item("x", "kindness", "text")
