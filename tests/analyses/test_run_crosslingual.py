"""Vectors per language agree for the same value (the planted vectors are shared by both languages)."""

from __future__ import annotations

import pytest
import storebuild

import actstore
from actstore.errors import InputError
from analyses.run_crosslingual import CrosslingualSpec, run


def test_same_value_aligns_across_languages(tmp_path) -> None:
    src, _ = storebuild.cached()
    path = storebuild.copy_of(src, tmp_path / "s")
    with actstore.open(path) as st:
        res = run(st, CrosslingualSpec())
        n = st.sql("SELECT count(DISTINCT language) FROM vectors WHERE run_id = ?", [res.run_id]).fetchall()[0][0]
    assert res.languages == ("en", "es") and n == 2
    assert res.cos[0, 1].min() > 0.97  # [V, C, L]: same value, en vs es
    assert res.share[0, 1].min() > 0.95
    # different values are far apart: the same-value cosine is not an artefact of a common offset
    from analyses.vectors import cosine

    assert abs(cosine(res.vectors[0, 0, 0], res.vectors[1, 5, 0])).max() < 0.7
    assert len(res.table()) == 10 * 2 * 3


def test_crosslingual_needs_two_languages(tmp_path) -> None:
    src, _ = storebuild.cached()
    with actstore.open(src) as st, pytest.raises(InputError, match="no labelled records in language 'fr'"):
        run(st, CrosslingualSpec(languages=("en", "fr")))
    with pytest.raises(InputError, match="two languages"):
        CrosslingualSpec(languages=("en",))
