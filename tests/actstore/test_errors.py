"""Bad input: each gets a clear error naming the bad value and the fix, and the store is unchanged."""

import hashlib

import numpy as np
import pytest

import actstore
from actstore import ArrayKey, Batch, Site
from actstore.errors import (
    NotAStoreError,
    QueryError,
    ReadOnlyError,
    SchemaMismatchError,
    StoreNotFoundError,
    UnknownArrayError,
    UsageError,
)
from tests.actstore import synth


def _digest(path):
    return {p.relative_to(path): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_missing_store(tmp_path):
    with pytest.raises(StoreNotFoundError, match="no store at"):
        actstore.open(tmp_path / "nope")


def test_not_a_store(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(NotAStoreError, match="not an actstore store"):
        actstore.open(tmp_path / "x")
    with pytest.raises(NotAStoreError):
        actstore.open(tmp_path / "x", read_only=False)
    assert not (tmp_path / "x" / "catalog.duckdb").exists()


def test_reads_with_bad_site_layer_rows_dtype(filled):
    before = _digest(filled)
    with actstore.open(filled) as st:
        with pytest.raises(UnknownArrayError, match=r"no stored array resid_post\.7.*this store has: .*resid_post\.0"):
            st.read("resid_post", 7, [0])
        with pytest.raises(UsageError, match="unknown site kind 'resid'"):
            st.read("resid", 0, [0])
        with pytest.raises(UsageError, match="bad site 'resid_post'"):
            st.read("resid_post", None, [0])
        with pytest.raises(UsageError, match=f"row {st.n_rows} out of range"):
            st.read("resid_post", 0, [0, st.n_rows])
        with pytest.raises(UsageError, match="unknown output dtype"):
            st.read("resid_post", 0, [0], dtype="int8")
        with pytest.raises(QueryError, match="SQL error"):
            st.sql("SELEC 1")
        with pytest.raises(UsageError, match="two columns"):
            st.group_means("resid_post", 0, "SELECT row FROM tokens")
    assert _digest(filled) == before


def test_writes_to_a_read_only_store(filled):
    before = _digest(filled)
    with actstore.open(filled) as st:
        with pytest.raises(ReadOnlyError, match="read-only"):
            st.append(synth.batch(99))
        with pytest.raises(ReadOnlyError, match="read-only"):
            st.insert("prompts", {"prompt_id": ["p"], "user_text": ["hi"]})
        with pytest.raises(ReadOnlyError, match="read-only"):
            st.sql("INSERT INTO prompts (prompt_id, user_text) VALUES ('p', 'hi')")
    assert _digest(filled) == before


def test_bad_batches_change_nothing(filled):
    with actstore.open(filled, read_only=False) as st:
        n = st.n_rows
        good = synth.batch(50)
        missing = Batch(**{**good.__dict__, "token_arrays": dict(list(good.token_arrays.items())[:1]), "key": "x"})
        with pytest.raises(SchemaMismatchError, match="lacks declared arrays"):
            st.append(missing)
        extra = dict(good.token_arrays)
        extra[ArrayKey(Site("resid_post", 9))] = next(iter(extra.values()))
        with pytest.raises(SchemaMismatchError, match="was not declared"):
            st.append(Batch(**{**good.__dict__, "token_arrays": extra}))
        wrong = {k: v[:, :3] for k, v in good.token_arrays.items()}
        with pytest.raises(SchemaMismatchError, match="has width 3"):
            st.append(Batch(**{**good.__dict__, "token_arrays": wrong}))
        f32 = {k: v.astype(np.float32) for k, v in good.token_arrays.items()}
        with pytest.raises(SchemaMismatchError, match="raw 16 bits"):
            st.append(Batch(**{**good.__dict__, "token_arrays": f32}))
        with pytest.raises(SchemaMismatchError, match="token ids"):
            st.append(Batch(**{**good.__dict__, "token_ids": good.token_ids[:-1]}))
        with pytest.raises(UsageError, match="written by the store itself"):
            st.insert("tokens", {"row": [0]})
        assert st.n_rows == n
        assert st.append(synth.batch(0)) == 0  # a committed key is skipped, not appended twice
        assert st.n_rows == n
    with actstore.open(filled) as st:
        assert st.n_rows == n


def test_site_parsing():
    assert Site.parse("mlp_act.12") == Site("mlp_act", 12)
    assert str(Site("resid_post", 3)) == "resid_post.3"
    with pytest.raises(UsageError):
        Site("resid_post", -1)
    from actstore.site import parse_layers

    assert parse_layers("0,2-4", 8) == [0, 2, 3, 4]
    with pytest.raises(UsageError, match="layer 9 out of range; this model has layers 0-7"):
        parse_layers("9", 8)


def test_a_failed_append_commits_nothing_and_the_next_one_works(filled, monkeypatch):
    """Array writes run while the catalog rows are prepared: a failure on either side rolls back."""
    from actstore.arrays import LocalGroup
    from actstore.verify import verify

    with actstore.open(filled, read_only=False) as st:
        n, n_batches = st.n_rows, st.sql("SELECT count(*) FROM batches").fetchall()[0][0]
        real = LocalGroup.write_rows
        calls = []

        def failing(self, meta, *a, **k):
            calls.append(meta.name)
            if len(calls) == 2:  # one array written, the next one fails
                raise OSError(28, "No space left on device")
            return real(self, meta, *a, **k)

        monkeypatch.setattr(LocalGroup, "write_rows", failing)
        with pytest.raises(OSError, match="No space"):
            st.append(synth.batch(50))
        monkeypatch.setattr(LocalGroup, "write_rows", real)
        assert st.n_rows == n and st.sql("SELECT count(*) FROM batches").fetchall()[0][0] == n_batches
        assert st.sql("SELECT count(*) FROM tokens").fetchall()[0][0] == n

        import actstore.catalog as cat
        real_insert = cat.insert

        def failing_insert(con, table, *a, **k):
            if table == "tokens":
                raise MemoryError("out of memory in the catalog")
            return real_insert(con, table, *a, **k)

        monkeypatch.setattr(cat, "insert", failing_insert)
        with pytest.raises(MemoryError):
            st.append(synth.batch(51))
        monkeypatch.setattr(cat, "insert", real_insert)
        assert st.n_rows == n and st.sql("SELECT count(*) FROM records WHERE response_id LIKE 'b51r%'").fetchall()[0][0] == 0
        m = st.n_rows
        st.append(synth.batch(52))
        assert st.n_rows > m
        assert verify(st).ok
    with actstore.open(filled) as st:
        assert verify(st).ok and st.n_rows > m
