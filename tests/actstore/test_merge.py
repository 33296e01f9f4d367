"""Sharded ingest and merge: disjoint shares, parts written by separate processes, a merge that
links array data and equals a single-process ingest row for row."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import actstore
from actstore.cli import main
from actstore.errors import SchemaMismatchError, UsageError
from actstore.merge import merge
from actstore.shard import Shard, detect, order_parts, part_path, shard_of
from tests.actstore import synth

ROOT = Path(__file__).resolve().parents[2]
N_BATCHES = 11


def _digest(path):
    return {p.relative_to(path): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != ".writer.lock"}


def test_shards_are_disjoint_contiguous_and_cover_everything():
    for n in (0, 1, 7, 100):
        for count in (1, 3, 8):
            got = [list(shard_of(n, f"{i}/{count}")) for i in range(count)]
            assert [i for share in got for i in share] == list(range(n))
            assert max(map(len, got)) - min(map(len, got)) <= 1
    assert shard_of(5, None, env={}) == range(5)


def test_launcher_environments_are_detected():
    assert detect({"RANK": "2", "WORLD_SIZE": "4"}) == Shard(2, 4)
    assert detect({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "8"}) == Shard(4, 8)
    assert detect({"RANK": "0", "WORLD_SIZE": "1"}) is None and detect({}) is None
    assert shard_of(10, None, env={"RANK": "1", "WORLD_SIZE": "2"}) == range(5, 10)
    for bad in ("3", "4/4", "-1/2", "a/b"):
        with pytest.raises(UsageError, match="shard"):
            Shard.parse(bad)


def test_parts_merge_in_shard_order_and_all_must_be_there(tmp_path):
    names = [tmp_path / f"part-{i:04d}-of-0003" for i in (2, 0, 1)]
    assert [p.name[5:9] for p in order_parts(names)] == ["0000", "0001", "0002"]
    with pytest.raises(UsageError, match="part-0001-of-0003 is missing"):
        order_parts([names[0], names[1]])  # 0 and 2: not consecutive
    assert order_parts([names[2], names[1]]) == [names[1], names[2]]  # 0 and 1: a partial merge
    with pytest.raises(UsageError, match="part-0002-of-0003 is missing"):
        order_parts([names[2], names[1]], complete=True)
    assert part_path(tmp_path / "s", Shard(3, 8)) == tmp_path / "s.parts" / "part-0003-of-0008"


def _worker(args, env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE") and not k.startswith("SLURM_")}
    env.update(env_extra)
    return subprocess.Popen([sys.executable, "-m", "tests.actstore.shard_writer", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """A single-process store and three parts written concurrently by three launcher styles."""
    tmp = tmp_path_factory.mktemp("shard")
    single, store = tmp / "single", tmp / "store"
    procs = [
        _worker([str(single), str(N_BATCHES)], {}),
        _worker([str(store), str(N_BATCHES), "0/3"], {}),                            # --shard
        _worker([str(store), str(N_BATCHES)], {"RANK": "1", "WORLD_SIZE": "3"}),     # torchrun
        _worker([str(store), str(N_BATCHES)], {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1",
                                               "SLURM_ARRAY_TASK_COUNT": "3"}),      # SLURM array
    ]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    return single, store


def test_merged_store_equals_a_single_process_ingest(sharded, tmp_path):
    single, store = sharded
    parts = store.parent / "store.parts"
    assert sorted(p.name for p in parts.iterdir()) == [f"part-000{i}-of-0003" for i in range(3)]
    before = {p.name: _digest(p) for p in parts.iterdir()}
    out = tmp_path / "merged"
    r = CliRunner().invoke(main, ["merge", str(parts), "--out", str(out)], obj={})
    assert r.exit_code == 0, r.output
    assert "3 parts" in r.output and "verified" in r.output
    assert "3 segments" in CliRunner().invoke(main, ["info", str(out)], obj={}).output
    with actstore.open(out) as m, actstore.open(single) as s:
        assert (m.n_rows, m.n_records) == (s.n_rows, s.n_records)
        for q in ("SELECT * FROM tokens ORDER BY row", "SELECT * FROM records ORDER BY record_id",
                  "SELECT * EXCLUDE (committed_at) FROM batches ORDER BY batch_id", "SELECT * FROM vocab",
                  "SELECT * EXCLUDE (created_at) FROM arrays ORDER BY name",
                  "SELECT * EXCLUDE (added_at) FROM models"):
            assert m.sql(q).fetchall() == s.sql(q).fetchall(), q
        assert m.sql("SELECT count(*) FROM segments").fetchall() == [(3,)]
        for meta in s.arrays():
            pool = meta.pool or "token"
            a = m.read(meta.site, meta.layer, pool=pool, dtype="native")
            assert np.array_equal(a, s.read(meta.site, meta.layer, pool=pool, dtype="native")), meta.name
        rows = np.random.default_rng(0).integers(0, s.n_rows, 300)
        assert np.array_equal(m.read("mlp_act", 1, rows, dtype="native"), s.read("mlp_act", 1, rows, dtype="native"))
        g = "SELECT row, role FROM tokens WHERE position % 2 = 0"
        gm, gs = m.group_means("resid_post", [0, 1], g), s.group_means("resid_post", [0, 1], g)
        assert np.array_equal(gm.means, gs.means) and np.array_equal(gm.counts, gs.counts)
        rec = m.group_means("resid_post", 1, "SELECT record_id, record_id % 3 FROM records", pool="mean_response")
        assert np.allclose(rec.means, s.group_means("resid_post", 1, "SELECT record_id, record_id % 3 FROM records",
                                                    pool="mean_response").means)
        try:
            import dask.array  # noqa: F401

            assert np.array_equal(m.dask_array("mlp_act", 0, dtype="native").compute(),
                                  s.read("mlp_act", 0, dtype="native"))  # blocks follow the segments
        except ImportError:
            pass
    # no array data was copied: the chunk files are the parts' own (hard links)
    chunk = out / "segments" / "0002" / "token" / "resid_post" / "0" / "c.0.0"
    assert chunk.is_file() and chunk.stat().st_nlink == 2
    assert {p.name: _digest(p) for p in parts.iterdir()} == before  # parts untouched


def test_merged_store_takes_appends_and_still_verifies(sharded, tmp_path):
    _, store = sharded
    out = tmp_path / "merged"
    merge([store.parent / "store.parts"], out, verify=False)
    with actstore.open(out, read_only=False) as w:
        synth.write(w, N_BATCHES + 2)  # batches 11 and 12 go to the last segment
    with actstore.open(out) as m:
        from actstore.verify import verify

        rep = verify(m)
        assert rep.ok, rep.problems
        want = np.concatenate([synth.batch(i).token_arrays[synth.keys()[0]] for i in range(N_BATCHES + 2)])
        assert np.array_equal(m.read(synth.keys()[0].site, dtype="native"), want)


def test_merge_refuses_mismatched_or_busy_parts(sharded, tmp_path):
    single, store = sharded
    other = tmp_path / "other"
    with actstore.open(other, read_only=False, create=True) as st:
        st.set_model(synth.MODEL)
        st.declare_arrays(synth.specs()[:2])
    with pytest.raises(SchemaMismatchError, match="different arrays"):
        merge([single, other], tmp_path / "m1")
    with actstore.open(single, read_only=False), pytest.raises(actstore.errors.WriterBusyError):
        merge([single], tmp_path / "m2")
    with pytest.raises(UsageError, match="already exists"):
        merge([single], store.parent / "store.parts")
    assert not (tmp_path / "m1").exists() and not (tmp_path / "m2").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_merging_merged_stores_and_serving_one(sharded, tmp_path, monkeypatch):
    from tests.actstore.httpserver import StaticServer

    monkeypatch.setenv("ACTSTORE_CACHE", str(tmp_path / "cache"))
    single, store = sharded
    parts = sorted((store.parent / "store.parts").iterdir())
    merge(parts[:2], tmp_path / "m01", verify=False)  # consecutive parts may be merged first
    merge([tmp_path / "m01", parts[2]], tmp_path / "m012")
    www = tmp_path / "www"
    from actstore.publish import publish

    publish(tmp_path / "m012", str(www / "m"))
    with StaticServer(www) as srv, actstore.open(f"{srv.url}/m") as rem, actstore.open(single) as s:
        assert rem.sql("SELECT count(*) FROM segments").fetchall() == [(3,)]
        assert rem.sql("SELECT * FROM tokens ORDER BY row").fetchall() == s.sql("SELECT * FROM tokens ORDER BY row").fetchall()
        rows = np.random.default_rng(1).integers(0, s.n_rows, 200)
        assert np.array_equal(rem.read("resid_post", 1, rows, dtype="native"), s.read("resid_post", 1, rows, dtype="native"))
        g = "SELECT row, role FROM tokens"
        assert np.array_equal(rem.group_means("mlp_act", [0, 1], g).means, s.group_means("mlp_act", [0, 1], g).means)
