"""Lexical and semantic diversity of a set of responses.

All lexical metrics use :func:`analyses.evals._text.tokenize` (whitespace and punctuation for Latin
scripts, one token per character for Chinese, Japanese and Korean; case-folded; punctuation dropped).
n-grams never cross from one response into the next.

- **Distinct-n** (Li et al. 2016): distinct n-grams over the whole set / all n-grams in the set.
- **EAD-n**, expectation-adjusted distinct (Liu et al. 2022): distinct n-grams divided by the number of
  distinct n-grams one would *expect* if the same number of n-grams were drawn uniformly at random from a
  vocabulary of size V:  E[distinct] = V * (1 - ((V - 1) / V) ** C),  C = total n-grams. Distinct-n
  shrinks as texts get longer even at equal diversity; EAD removes most of that length bias.
  V defaults to :data:`DEFAULT_VOCAB_SIZE` = 50,000 for every n, as in the paper's reference
  implementation (which uses one V, the tokenizer's vocabulary, for all n). 50,000 is the order of the
  number of word types in everyday English and of common subword vocabularies; pass the vocabulary size
  of your tokenizer if you tokenise differently. Only compare EAD numbers computed with the same V.
- **Type-token ratio**: the mean over responses of (distinct tokens / tokens) *within* each response,
  so it measures repetition inside an answer, where Distinct-1 measures variety across the set.
- **Semantic diversity**: mean pairwise cosine distance (1 - cosine similarity) between embeddings of
  the responses, from any ``embed(texts) -> array [n_texts, dim]`` callable.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from actstore.errors import InputError
from analyses.evals._text import tokenize

#: Vocabulary size V used by EAD unless told otherwise (see the module docstring).
DEFAULT_VOCAB_SIZE = 50_000

Embed = Callable[[list[str]], np.ndarray]


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise InputError("expected a list of responses, got one string; wrap it in a list: [text]")
    out = list(texts)
    bad = [type(t).__name__ for t in out if not isinstance(t, str)]
    if bad:
        raise InputError(f"responses must be strings, got {bad[0]}; pass the response texts")
    return out


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def _token_lists(texts: Sequence[str]) -> list[list[str]]:
    return [tokenize(t) for t in _check_texts(texts)]


def _counts(token_lists: list[list[str]], n: int) -> tuple[int, int]:
    """(distinct n-grams over the set, total n-grams) for n >= 1."""
    if n < 1:
        raise InputError(f"n-gram order must be at least 1, got {n}")
    seen: set[tuple[str, ...]] = set()
    total = 0
    for tokens in token_lists:
        grams = _ngrams(tokens, n)
        total += len(grams)
        seen.update(grams)
    return len(seen), total


def _distinct(token_lists: list[list[str]], n: int) -> float:
    unique, total = _counts(token_lists, n)
    return unique / total if total else 0.0


def _ead(token_lists: list[list[str]], n: int, vocab_size: int) -> float:
    unique, total = _counts(token_lists, n)
    expected = expected_distinct(total, vocab_size)
    return unique / expected if expected else 0.0


def _ttr(token_lists: list[list[str]]) -> float:
    ratios = [len(set(tokens)) / len(tokens) for tokens in token_lists if tokens]
    return float(np.mean(ratios)) if ratios else 0.0


def _per_response(token_lists: list[list[str]], n: int, metric: Callable[[list[list[str]]], float]) -> float:
    scores = [metric([tokens]) for tokens in token_lists if len(tokens) >= n]
    return float(np.mean(scores)) if scores else 0.0


def distinct_n(texts: Sequence[str], n: int, per_response: bool = False) -> float:
    """Distinct n-grams / total n-grams over the set; 0.0 when there are no n-grams.

    ``per_response=True`` gives instead the mean of each response's own Distinct-n (responses shorter
    than n skipped): papers report both, and the two differ a lot, so say which one a number is.
    """
    tokens = _token_lists(texts)
    if per_response:
        return _per_response(tokens, n, lambda one: _distinct(one, n))
    return _distinct(tokens, n)


def expected_distinct(total: int, vocab_size: int) -> float:
    """Expected number of distinct items in ``total`` uniform draws from ``vocab_size`` items."""
    if vocab_size < 1:
        raise InputError(f"vocab_size must be a positive integer, got {vocab_size}")
    if total <= 0:
        return 0.0
    # V * (1 - (1 - 1/V)^C), written with log1p/expm1 so that large V and C lose no precision.
    if vocab_size == 1:
        return 1.0
    return -vocab_size * math.expm1(total * math.log1p(-1.0 / vocab_size))


def ead_n(
    texts: Sequence[str], n: int, vocab_size: int = DEFAULT_VOCAB_SIZE, per_response: bool = False
) -> float:
    """Expectation-adjusted distinct n-grams (Liu et al. 2022); 0.0 when there are no n-grams.

    ``per_response=True``: the mean of each response's own EAD-n, as for :func:`distinct_n`.
    """
    tokens = _token_lists(texts)
    if per_response:
        return _per_response(tokens, n, lambda one: _ead(one, n, vocab_size))
    return _ead(tokens, n, vocab_size)


def type_token_ratio(texts: Sequence[str]) -> float:
    """Mean within-response type-token ratio; responses without tokens are skipped (0.0 if all are)."""
    return _ttr(_token_lists(texts))


def semantic_diversity(texts: Sequence[str], embed: Embed) -> float:
    """Mean pairwise cosine distance of ``embed(texts)``; needs at least two texts.

    ``embed`` gets the list of texts and returns a float array of shape [len(texts), dim]. Rows of zeros
    have no direction, so they are an error rather than a silent 0 or NaN.
    """
    items = _check_texts(texts)
    if len(items) < 2:
        raise InputError(f"semantic diversity needs at least 2 responses, got {len(items)}")
    vectors = np.asarray(embed(items), dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] != len(items):
        raise InputError(
            f"embed returned shape {vectors.shape}; it must return one row per text: ({len(items)}, dim)"
        )
    norms = np.linalg.norm(vectors, axis=1)
    if not np.all(np.isfinite(norms)) or np.any(norms == 0):
        raise InputError("embed returned a zero or non-finite vector; check the embedding model's output")
    unit = vectors / norms[:, None]
    sims = unit @ unit.T
    i, j = np.triu_indices(len(items), k=1)
    return float(np.mean(1.0 - sims[i, j]))


@dataclass(frozen=True, slots=True)
class DiversityReport:
    """Every diversity number for one set of responses (``semantic`` is None without an embedder)."""

    n_responses: int
    n_tokens: int
    distinct_1: float
    distinct_2: float
    ead_1: float
    ead_2: float
    type_token_ratio: float
    semantic: float | None
    vocab_size: int

    def as_dict(self) -> dict[str, float]:
        """Plain floats, for a results table (``semantic`` left out when not computed)."""
        out = {
            "n_responses": float(self.n_responses),
            "n_tokens": float(self.n_tokens),
            "distinct_1": self.distinct_1,
            "distinct_2": self.distinct_2,
            "ead_1": self.ead_1,
            "ead_2": self.ead_2,
            "type_token_ratio": self.type_token_ratio,
        }
        if self.semantic is not None:
            out["semantic"] = self.semantic
        return out


class DiversityCounter:
    """The lexical metrics of :func:`diversity_report`, fed one response at a time.

    Keeps the distinct 1- and 2-grams seen and running totals, never the texts, so a caller that
    streams responses from a store holds O(distinct n-grams) whatever the number of responses::

        counter = DiversityCounter()
        for text in texts:
            counter.add(text)
        counter.report()  # == diversity_report(texts) (semantic None)
    """

    def __init__(self, vocab_size: int = DEFAULT_VOCAB_SIZE, max_tokens: int | None = None) -> None:
        self.vocab_size = vocab_size
        #: Stop counting after this many tokens (the last response cut there): equal-size comparisons.
        self.max_tokens = max_tokens
        self.n_responses = 0
        self.n_tokens = 0
        self._seen: tuple[set[tuple[str, ...]], set[tuple[str, ...]]] = (set(), set())
        self._totals = [0, 0]
        self._ttr_sum = 0.0
        self._ttr_n = 0

    def add(self, text: str) -> None:
        if not isinstance(text, str):
            raise InputError(f"responses must be strings, got {type(text).__name__}; pass the response texts")
        self.add_tokens(tokenize(text))

    def add_tokens(self, tokens: list[str]) -> None:
        """Count one response given as its tokens (from :func:`analyses.evals._text.tokenize`)."""
        if self.max_tokens is not None:
            room = self.max_tokens - self.n_tokens
            if room <= 0:
                return
            tokens = tokens[:room]
        self.n_responses += 1
        self.n_tokens += len(tokens)
        for n in (1, 2):
            grams = _ngrams(tokens, n)
            self._totals[n - 1] += len(grams)
            self._seen[n - 1].update(grams)
        if tokens:
            self._ttr_sum += len(set(tokens)) / len(tokens)
            self._ttr_n += 1

    def _distinct(self, n: int) -> float:
        total = self._totals[n - 1]
        return len(self._seen[n - 1]) / total if total else 0.0

    def _ead(self, n: int) -> float:
        expected = expected_distinct(self._totals[n - 1], self.vocab_size)
        return len(self._seen[n - 1]) / expected if expected else 0.0

    def report(self, semantic: float | None = None) -> DiversityReport:
        return DiversityReport(
            n_responses=self.n_responses,
            n_tokens=self.n_tokens,
            distinct_1=self._distinct(1),
            distinct_2=self._distinct(2),
            ead_1=self._ead(1),
            ead_2=self._ead(2),
            type_token_ratio=self._ttr_sum / self._ttr_n if self._ttr_n else 0.0,
            semantic=semantic,
            vocab_size=self.vocab_size,
        )


#: The lexical metrics an equal-size comparison reports (what changes with the amount of text).
LEXICAL = ("distinct_1", "distinct_2", "ead_1", "ead_2", "type_token_ratio")


def equal_size_reports(groups: dict[str, Sequence[str]], n_rep: int = 20, seed: int = 0,
                       vocab_size: int = DEFAULT_VOCAB_SIZE, level: float = 0.95) -> dict[str, dict[str, object]]:
    """Groups compared at one size: each group subsampled, ``n_rep`` times, to the smallest group's
    number of responses, and counted up to one common number of tokens.

    Distinct-n falls as text piles up, so a bigger or wordier group looks less diverse for that
    alone; here every group gets the same number of responses (``n``) and of tokens (``tokens``,
    90% of what the shortest-texted group's subsample is expected to hold, so that nearly every
    subsample reaches it). Returns per group, per metric, ``(mean, lo, hi)`` over the repetitions
    (:mod:`analyses.stats`; the range is the spread over subsamples), and ``n``, ``tokens``.
    In memory; :mod:`analyses.run_diversity` does the same streaming from a store.
    """
    from analyses.stats import percentile_ci, subsample_indices

    lists = {g: [tokenize(t) for t in _check_texts(texts)] for g, texts in groups.items()}
    if not lists or min(len(v) for v in lists.values()) == 0:
        raise InputError("every group needs at least one response to be compared at equal size")
    n = min(len(v) for v in lists.values())
    per_resp = min(sum(map(len, v)) / len(v) for v in lists.values())
    cap = max(1, int(0.9 * per_resp * n))
    out: dict[str, dict[str, object]] = {}
    for k, (g, toks) in enumerate(lists.items()):
        reps = []
        for row in subsample_indices(len(toks), n, n_rep, seed + k):
            c = DiversityCounter(vocab_size, max_tokens=cap)
            for i in row:
                c.add_tokens(toks[i])
            reps.append([getattr(c.report(), m) for m in LEXICAL] + [c.n_tokens])
        arr = np.array(reps, dtype=np.float64)
        lo, hi = percentile_ci(arr, level)
        out[g] = {"n": n, "tokens": float(arr[:, -1].mean()),
                  **{m: (float(arr[:, j].mean()), float(lo[j]), float(hi[j])) for j, m in enumerate(LEXICAL)}}
    return out


def diversity_report(
    texts: Sequence[str], embed: Embed | None = None, vocab_size: int = DEFAULT_VOCAB_SIZE
) -> DiversityReport:
    """All diversity metrics of one set of responses (semantic only when ``embed`` is given)."""
    items = _check_texts(texts)
    counter = DiversityCounter(vocab_size)
    for text in items:  # tokenised once: sweeps score thousands of responses
        counter.add(text)
    return counter.report(semantic_diversity(items, embed) if embed is not None else None)
