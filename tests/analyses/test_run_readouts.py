"""Logit lens on a stored vector, and diversity of responses chosen by SQL."""

from __future__ import annotations

import pytest
import storebuild

import actstore
from actstore.errors import InputError, QueryError
from analyses.run_diversity import DiversitySpec
from analyses.run_diversity import run as diversity
from analyses.run_logit_lens import LogitLensSpec
from analyses.run_logit_lens import run as logit_lens


def test_logit_lens_reads_the_planted_token() -> None:
    path, _ = storebuild.cached(analysed=True)
    with actstore.open(path) as st:
        vid = st.sql("SELECT vector_id FROM vectors WHERE component = 'shared' AND value = 'benevolence' "
                     "AND layer = 2").fetchall()[0][0]
        res = logit_lens(st, LogitLensSpec(vector_id=vid, k=5, record=False))
        raw = logit_lens(st, LogitLensSpec(vector_id=vid, k=5, use_norm=False, record=False))
    assert res.promoted[0] == "help" and raw.promoted[0] == "help" and res.normed and not raw.normed
    assert len(res.suppressed) == 5 and res.entropy >= 0
    with pytest.raises(InputError, match="--k"):
        LogitLensSpec(vector_id=1, k=0)


def test_diversity_by_condition_and_where(tmp_path) -> None:
    src, _ = storebuild.cached()
    path = storebuild.copy_of(src, tmp_path / "s")
    with actstore.open(path) as st:
        res = diversity(st, DiversitySpec())
        assert set(res.groups) == {"intrinsic", "prompted"}
        assert res.groups["intrinsic"].n_responses == 256 and 0 < res.groups["prompted"].distinct_2 <= 1
        one = diversity(st, DiversitySpec(where="language = 'es' AND target_value = 'power'", by="all", record=False))
        assert list(one.groups) == ["all"] and one.groups["all"].n_responses == 32
        with pytest.raises(InputError, match="no responses match"):
            diversity(st, DiversitySpec(where="language = 'xx'"))
        with pytest.raises(QueryError):
            diversity(st, DiversitySpec(where="no_such_column = 1"))
        assert st.sql("SELECT count(*) FROM runs WHERE kind = 'diversity'").fetchall()[0][0] == 1


def test_diversity_at_equal_size_with_the_store_vocabulary(tmp_path) -> None:
    import json

    src, _ = storebuild.cached()
    path = storebuild.copy_of(src, tmp_path / "s")
    with actstore.open(path) as st:
        res = diversity(st, DiversitySpec(n_rep=5, seed=2))
        summary = json.loads(st.sql("SELECT message FROM runs WHERE run_id = ?", [res.run_id]).fetchall()[0][0])
        again = diversity(st, DiversitySpec(n_rep=5, seed=2, record=False))
        fixed = diversity(st, DiversitySpec(n_rep=0, vocab_size=50_000, record=False))
    assert (res.vocab_size, res.vocab_source) == (len(storebuild.WORDS), "model")
    t = res.table().set_index("group")
    # prompted has 640 responses, intrinsic 256: both measured on 256, on one token count
    assert (t.n_eq == 256).all() and t.tokens_eq.nunique() == 1
    assert ((t.distinct_2_lo <= t.distinct_2_eq) & (t.distinct_2_eq <= t.distinct_2_hi)).all()
    assert summary["vocab"] == {"size": len(storebuild.WORDS), "source": "model"}
    assert summary["equal_size"]["n_rep"] == 5
    assert again.table().equals(res.table())  # seeded: the same subsamples
    assert fixed.equal is None and fixed.vocab_source == "option" and fixed.groups["intrinsic"].vocab_size == 50_000
    assert res.sentences() and "equal size" in res.sentences()[0]
