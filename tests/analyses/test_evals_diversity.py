"""Diversity metrics: hand-computed values, tokenisation, EAD's length correction, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from actstore.errors import InputError
from analyses.evals._text import tokenize
from analyses.evals.diversity import (
    DEFAULT_VOCAB_SIZE,
    distinct_n,
    diversity_report,
    ead_n,
    expected_distinct,
    semantic_diversity,
    type_token_ratio,
)


def test_tokenize_splits_latin_on_space_and_punctuation_and_cjk_per_character() -> None:
    assert tokenize("Hello, World! Don't stop.") == ["hello", "world", "don't", "stop"]
    assert tokenize("我爱你。") == ["我", "爱", "你"]
    assert tokenize("안녕 친구") == ["안", "녕", "친", "구"]
    assert tokenize("l’homme Ｃａｆé") == ["l'homme", "café"]  # typographic apostrophe, full-width
    assert tokenize("The the", lowercase=False) == ["The", "the"]


def test_distinct_counts_ngrams_within_responses_only() -> None:
    texts = ["a b a", "b a"]
    # unigrams: a b a b a -> 2 distinct of 5; bigrams: (a b)(b a) + (b a) -> 2 of 3
    assert distinct_n(texts, 1) == pytest.approx(2 / 5)
    assert distinct_n(texts, 2) == pytest.approx(2 / 3)


def test_per_response_distinct_averages_each_response() -> None:
    texts = ["a a", "a b c", "x"]
    # per response: 1/2 and 3/3 ("x" has no bigram and is skipped for n=2)
    assert distinct_n(texts, 1, per_response=True) == pytest.approx((0.5 + 1.0 + 1.0) / 3)
    assert distinct_n(texts, 2, per_response=True) == pytest.approx((1.0 + 1.0) / 2)
    assert ead_n(texts, 1, vocab_size=10**12, per_response=True) == pytest.approx(
        distinct_n(texts, 1, per_response=True), rel=1e-6
    )
    assert distinct_n(["x"], 2, per_response=True) == 0.0


def test_distinct_of_nothing_is_zero_and_bad_order_is_an_error() -> None:
    assert distinct_n([], 2) == 0.0
    assert distinct_n(["one"], 2) == 0.0
    with pytest.raises(InputError):
        distinct_n(["a b"], 0)


def test_expected_distinct_matches_the_closed_form_and_limits() -> None:
    v, c = 1000, 250
    assert expected_distinct(c, v) == pytest.approx(v * (1 - ((v - 1) / v) ** c))
    assert expected_distinct(1, v) == pytest.approx(1.0)  # one draw is always new
    assert expected_distinct(10**7, v) == pytest.approx(v)  # saturates at the vocabulary
    assert expected_distinct(0, v) == 0.0
    with pytest.raises(InputError):
        expected_distinct(5, 0)


def test_ead_divides_by_the_expectation() -> None:
    texts = ["a b c d", "a b e f"]
    unique, total = 6, 8
    assert ead_n(texts, 1, vocab_size=10) == pytest.approx(unique / (10 * (1 - 0.9**total)))
    # with a huge vocabulary nearly every draw is new, so EAD tends to Distinct
    assert ead_n(texts, 1, vocab_size=10**12) == pytest.approx(distinct_n(texts, 1), rel=1e-6)


def test_ead_is_less_length_biased_than_distinct() -> None:
    rng = np.random.default_rng(0)
    vocab = [f"w{i}" for i in range(2000)]

    def sample(n_tokens: int) -> list[str]:
        return [" ".join(rng.choice(vocab, size=n_tokens))]

    short, long = sample(200), sample(5000)
    # uniform draws: Distinct collapses with length, EAD stays near 1 when V is the true vocabulary
    assert distinct_n(long, 1) < 0.6 * distinct_n(short, 1)
    assert ead_n(short, 1, vocab_size=2000) == pytest.approx(1.0, abs=0.05)
    assert ead_n(long, 1, vocab_size=2000) == pytest.approx(1.0, abs=0.05)


def test_type_token_ratio_is_the_mean_within_response_ratio() -> None:
    assert type_token_ratio(["a a", "a b", ""]) == pytest.approx((0.5 + 1.0) / 2)
    assert type_token_ratio([]) == 0.0


def test_semantic_diversity_is_mean_pairwise_cosine_distance() -> None:
    vecs = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    expected = np.mean([1.0, 1 - 1 / math.sqrt(2), 1 - 1 / math.sqrt(2)])
    assert semantic_diversity(["x", "y", "z"], lambda texts: vecs) == pytest.approx(expected)
    assert semantic_diversity(["x", "x"], lambda t: np.ones((2, 3))) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "texts, embed, message",
    [
        (["only one"], lambda t: np.ones((1, 2)), "at least 2"),
        (["a", "b"], lambda t: np.ones((3, 2)), "one row per text"),
        (["a", "b"], lambda t: np.array([[1.0, 0.0], [0.0, 0.0]]), "zero"),
    ],
)
def test_semantic_diversity_bad_input(texts, embed, message) -> None:
    with pytest.raises(InputError, match=message):
        semantic_diversity(texts, embed)


def test_a_single_string_is_rejected_with_the_fix() -> None:
    with pytest.raises(InputError, match=r"wrap it in a list"):
        distinct_n("a b c", 1)
    with pytest.raises(InputError, match="strings"):
        diversity_report(["ok", 3])  # type: ignore[list-item]


def test_report_collects_everything() -> None:
    texts = ["the cat sat", "the dog ran fast"]
    report = diversity_report(texts, embed=lambda t: np.eye(2))
    assert report.n_responses == 2 and report.n_tokens == 7
    assert report.distinct_2 == pytest.approx(distinct_n(texts, 2))
    assert report.ead_1 == pytest.approx(ead_n(texts, 1))
    assert report.semantic == pytest.approx(1.0)
    assert report.vocab_size == DEFAULT_VOCAB_SIZE
    flat = report.as_dict()
    assert set(flat) >= {"distinct_1", "distinct_2", "ead_1", "ead_2", "type_token_ratio", "semantic"}
    assert all(isinstance(v, float) for v in flat.values())
    assert "semantic" not in diversity_report(texts).as_dict()


def test_equal_size_removes_the_size_effect_and_keeps_a_real_difference() -> None:
    from analyses.evals.diversity import distinct_n, equal_size_reports

    rng = np.random.default_rng(0)

    def texts(n: int, words: int, length: int) -> list[str]:
        return [" ".join(f"w{x}" for x in rng.integers(0, words, length)) for _ in range(n)]

    small, big = texts(20, 40, 8), texts(300, 40, 16)  # one generator: same diversity per token
    assert distinct_n(small, 2) - distinct_n(big, 2) > 0.15  # raw numbers favour the small, short group
    eq = equal_size_reports({"small": small, "big": big}, n_rep=15, seed=1)
    assert eq["small"]["n"] == eq["big"]["n"] == 20
    assert abs(eq["small"]["tokens"] - eq["big"]["tokens"]) < 1
    s, b = eq["small"]["distinct_2"], eq["big"]["distinct_2"]
    assert abs(s[0] - b[0]) < 0.03 and b[1] <= s[0] + 0.03  # null: no difference at equal size
    narrow = texts(300, 12, 16)  # planted: a smaller vocabulary is less diverse at any size
    eq = equal_size_reports({"wide": big, "narrow": narrow}, n_rep=15, seed=1)
    assert eq["narrow"]["distinct_1"][2] < eq["wide"]["distinct_1"][1]  # ranges apart
