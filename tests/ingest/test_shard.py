"""Sharded ingest: ``actstore ingest ... --shard I/N`` in separate processes, then ``actstore merge``,
gives the store one process writes: prompts, responses, labels, records, tokens, batches and every
array bit for bit (see ``ingest.units`` for why).

What differs by design: the ``runs`` table (each part logs its own stage runs, the merge adds one)
and so the ``run_id`` columns, commit and creation timestamps, and the ``segments`` table.

The workers and the single-process reference run as subprocesses with the same thread settings;
records share padded forward batches (``--token-budget 64``), whose last bits depend on the batch's
shape: equal bits show that every batch is the same batch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner

import actstore
from actstore.cli import main
from actstore.errors import StoreNotFoundError, UsageError
from actstore.shard import Shard
from actstore.verify import verify
from ingest import pipeline
from ingest.cli import _config
from ingest.config import IngestConfig

N = 3
UNIT = 5  # 18 responses -> units of 5, 5, 5, 3 -> shares of 1, 1 and 2 units; 5 is odd: a prompt's
#          two samples may fall in two units, so two parts hold the prompt
ROOT = Path(__file__).resolve().parents[2]
LAUNCH = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_COUNT")


def _args(store: Path, model_dir: Path, inputs: Path) -> list[str]:
    return [str(store), "--model", str(model_dir), "--prompts", str(inputs / "q.jsonl"), "--value", "benevolence",
            "--value", "power", "--samples", "2", "--max-new-tokens", "4", "--batch-size", "3",
            "--judge", f"lexicon:{inputs / 'lex.json'}", "--token-budget", "64", "--buffer-mb", "1",
            "--shard-unit", str(UNIT), "--quiet"]


def _env(**launch: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH}
    return {**env, **launch, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": str(ROOT)}


def _ingest(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from actstore.cli import run; run()", "ingest", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _make_config(store: Path, model_dir: Path, inputs: Path, **kw) -> IngestConfig:
    base = {"store": str(store), "model": str(model_dir), "prompts": str(inputs / "q.jsonl"),
            "values": ("benevolence", "power"), "samples": 2, "max_new_tokens": 4, "batch_size": 3,
            "judge": f"lexicon:{inputs / 'lex.json'}", "token_budget": 64, "buffer_mb": 1, "shard_unit": UNIT,
            "quiet": True}
    return IngestConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, tiny_model_dir, inputs):
    """One single-process ingest and three workers, started at once: by --shard, by torchrun's
    RANK/WORLD_SIZE and by a SLURM array's variables."""
    tmp = tmp_path_factory.mktemp("shard")
    single, store = tmp / "single", tmp / "store"
    procs = {
        "single": _ingest("run", *_args(single, tiny_model_dir, inputs), env=_env()),
        "flag": _ingest("run", *_args(store, tiny_model_dir, inputs), "--shard", f"0/{N}", env=_env()),
        "torchrun": _ingest("run", *_args(store, tiny_model_dir, inputs), env=_env(RANK="1", WORLD_SIZE=str(N))),
        "slurm": _ingest("run", *_args(store, tiny_model_dir, inputs),
                         env=_env(SLURM_ARRAY_TASK_ID="3", SLURM_ARRAY_TASK_MIN="1", SLURM_ARRAY_TASK_COUNT=str(N))),
    }
    out = {}
    for name, p in procs.items():
        stdout, stderr = p.communicate(timeout=600)
        assert p.returncode == 0, f"{name}: {stderr}"
        out[name] = stdout
    merged = tmp / "merged"
    r = CliRunner().invoke(main, ["merge", str(tmp / "store.parts"), "--out", str(merged)], obj={})
    assert r.exit_code == 0, r.output
    return single, store, merged, out


#: Every table a single process and a merge both write, keyed; columns that name runs left out.
TABLES = {
    "prompts": "SELECT * FROM prompts ORDER BY prompt_id",
    "responses": "SELECT * EXCLUDE (run_id) FROM responses ORDER BY response_id",
    "labels": "SELECT * EXCLUDE (run_id) FROM labels ORDER BY response_id, value, judge_id",
    "records": "SELECT * FROM records ORDER BY record_id",
    "tokens": 'SELECT * FROM tokens ORDER BY "row"',
    "batches": "SELECT * EXCLUDE (run_id, committed_at) FROM batches ORDER BY batch_id",
    "arrays": "SELECT * EXCLUDE (created_at) FROM arrays ORDER BY name",
    "models": "SELECT * EXCLUDE (added_at) FROM models",
    "vocab": "SELECT * FROM vocab",
}


def _assert_same_store(got: Path, want: Path) -> None:
    with actstore.open(got) as m, actstore.open(want) as s:
        assert (m.n_records, m.n_rows) == (s.n_records, s.n_rows)
        for name, q in TABLES.items():
            assert m.sql(q).fetchall() == s.sql(q).fetchall(), name
        metas = s.arrays()
        assert sorted(x.name for x in m.arrays()) == sorted(x.name for x in metas)
        for meta in metas:
            if meta.kind == "weight":
                a, b = m.weight(meta.site, meta.layer, dtype="native"), s.weight(meta.site, meta.layer, dtype="native")
            else:
                a = m.read(meta.site, meta.layer, pool=meta.pool or "token", dtype="native")
                b = s.read(meta.site, meta.layer, pool=meta.pool or "token", dtype="native")
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), meta.name
            assert a.tobytes() == b.tobytes(), meta.name  # bit for bit, NaN payloads and signed zeros too
        assert verify(m).ok


def test_merged_parts_equal_a_single_process_ingest(ingested) -> None:
    single, _, merged, _ = ingested
    with actstore.open(single) as s:
        # The fixture is what it claims: 18 responses in 4 units, records sharing forward batches.
        assert (s.sql("SELECT count(*) FROM responses").fetchall(), s.n_records) == ([(18,)], 18)
        assert s.sql("SELECT count(*) FROM batches").fetchall()[0][0] >= 4
        assert s.sql("SELECT max(n) FROM (SELECT count(*) AS n FROM records GROUP BY batch_id)").fetchall()[0][0] > 1
    _assert_same_store(merged, single)
    with actstore.open(merged) as m:
        assert m.sql("SELECT count(*) FROM segments").fetchall() == [(N,)]


def test_each_worker_took_its_share_and_said_how_to_merge(ingested) -> None:
    single, store, _, out = ingested
    parts = store.parent / "store.parts"
    names = [f"part-{i:04d}-of-{N:04d}" for i in range(N)]
    assert sorted(p.name for p in parts.iterdir()) == names
    assert not store.exists()  # workers write parts only
    ids = []
    for name in names:
        with actstore.open(parts / name) as st:
            ids.append(sorted(r for (r,) in st.sql("SELECT response_id FROM responses").fetchall()))
            assert st.n_records == len(ids[-1])
    with actstore.open(single) as s:
        every = sorted(r for (r,) in s.sql("SELECT response_id FROM responses").fetchall())
    # Disjoint, contiguous in response id order, whole units: 1, 1 and 2 of the 4 units.
    assert [len(x) for x in ids] == [5, 5, 8] and [r for x in ids for r in x] == every
    split = {r.split('#')[0] for r in ids[0]} & {r.split('#')[0] for r in ids[1]}
    assert split  # a prompt whose samples two workers share: both parts hold it, the merge keeps one
    for i, (who, text) in enumerate(zip(("flag", "torchrun", "slurm"), (out["flag"], out["torchrun"], out["slurm"]))):
        lines = text.strip().splitlines()
        assert lines[0].endswith(f"to {parts / names[i]} (shard {i}/{N})"), (who, text)
        assert lines[1] == f"next, once all {N} shards have finished: actstore merge {parts} --out {store}", who
    assert out["single"].strip().splitlines() == [f"ingest run: wrote 9 prompts, 18 responses, 36 labels, 18 records to {single}"]


def test_an_empty_share_still_merges(ingested, tiny_model_dir, inputs, tmp_path) -> None:
    """More shards than units: a worker with nothing to do writes a part that holds the model, its
    weights and the declared arrays, and merges (first, here) with the others."""
    single, store, _, _ = ingested
    torch.set_num_threads(1)
    cfg = _make_config(tmp_path / "s", tiny_model_dir, inputs, shard="0/7")  # 4 units over 7: shard 0 has none
    rep = pipeline.run(cfg)
    assert rep.store == str(tmp_path / "s.parts" / "part-0000-of-0007")
    assert rep.counts == {"prompts": 0, "responses": 0, "labels": 0, "records": 0}
    empty = tmp_path / "empty"
    Path(rep.store).rename(empty)  # merged with the parts of 3 below, so not named as a part of 7
    parts = [str(empty)] + [str(store.parent / "store.parts" / f"part-{i:04d}-of-{N:04d}") for i in range(N)]
    r = CliRunner().invoke(main, ["merge", *parts, "--out", str(tmp_path / "m")], obj={})
    assert r.exit_code == 0, r.output
    _assert_same_store(tmp_path / "m", single)


def test_staged_sharded_ingest_and_import(tiny_model_dir, inputs, tmp_path) -> None:
    """generate --shard, then label and capture --shard on the part, merged = one process's run;
    a missing part is named with the command that makes it."""
    torch.set_num_threads(1)
    single = _make_config(tmp_path / "single", tiny_model_dir, inputs, per_token=False, layers="1")
    pipeline.run(single)
    for i in range(2):
        cfg = _make_config(tmp_path / "st", tiny_model_dir, inputs, per_token=False, layers="1", shard=f"{i}/2")
        assert pipeline.generate(cfg).counts["responses"] == (10, 8)[i]  # units 0-1 and 2-3
        assert pipeline.label(cfg).counts["labels"] > 0
        assert pipeline.capture(cfg).counts["records"] == (10, 8)[i]
    r = CliRunner().invoke(main, ["merge", str(tmp_path / "st.parts"), "--out", str(tmp_path / "merged")], obj={})
    assert r.exit_code == 0, r.output
    _assert_same_store(tmp_path / "merged", tmp_path / "single")

    missing = _make_config(tmp_path / "nowhere", tiny_model_dir, inputs, shard="1/2")
    for stage in (pipeline.label, pipeline.capture):
        with pytest.raises(StoreNotFoundError, match=r"no part at .*nowhere\.parts/part-0001-of-0002; "
                                                             r"a sharded (label|capture) works on the part"):
            stage(missing)
    assert not (tmp_path / "nowhere.parts").exists()


VP = ROOT.parent / "shared" / "data" / "value-portrait"


@pytest.mark.skipif(not (VP / "tagged_responses.json").is_file(), reason="Value Portrait data not found")
def test_sharded_import_equals_one_import(tiny_model_dir, tmp_path) -> None:
    """Each worker imports its share (sample indexes still counted over the whole file)."""
    torch.set_num_threads(1)

    def cfg(store: Path, shard: str | None) -> IngestConfig:
        return IngestConfig(store=str(store), model=str(tiny_model_dir), import_path=str(VP), max_queries=2,
                            layers="1", sites=("resid_post",), per_token=False, quiet=True, token_budget=256,
                            shard_unit=3, shard=shard, max_tokens=4096)  # the tiny model's context is 64

    one = pipeline.import_(cfg(tmp_path / "one", None))
    n = 3
    got = [pipeline.import_(cfg(tmp_path / "vp", f"{i}/{n}")).counts["responses"] for i in range(n)]
    assert sum(got) == one.counts["responses"] and min(got) > 0
    r = CliRunner().invoke(main, ["merge", str(tmp_path / "vp.parts"), "--out", str(tmp_path / "merged")], obj={})
    assert r.exit_code == 0, r.output
    _assert_same_store(tmp_path / "merged", tmp_path / "one")


# -- the shard argument, before anything runs ------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    ("3/2", "bad shard 3/2; shards count from 0: 0/2 .. 1/2"),
    ("x", "bad shard 'x'; write I/N, e.g. 3/8"),
    ("1/0", "bad shard 1/0"),
])
@pytest.mark.parametrize("command", ["run", "generate", "label", "capture", "import"])
def test_bad_shard_is_one_error_line_and_writes_nothing(tmp_path, tiny_model_dir, inputs, command, bad, message,
                                                        monkeypatch) -> None:
    for k in LAUNCH:
        monkeypatch.delenv(k, raising=False)
    store = tmp_path / "store"
    args = [str(store), "--shard", bad]
    if command in ("run", "generate"):
        args += ["--model", str(tiny_model_dir), "--prompts", str(inputs / "q.jsonl")]
    r = CliRunner().invoke(main, ["ingest", command, *args], obj={})
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert list(tmp_path.iterdir()) == []


def test_launcher_environment_gives_the_shard(monkeypatch, tmp_path) -> None:
    for k in LAUNCH:
        monkeypatch.delenv(k, raising=False)
    store = str(tmp_path / "s")
    assert _config(store, None).shard is None
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("WORLD_SIZE", "4")
    cfg = _config(store, None)
    assert cfg.shard == "2/4" and cfg.shard_spec == Shard(2, 4)
    assert cfg.target == str(tmp_path / "s.parts" / "part-0002-of-0004")
    assert _config(store, None, shard="0/2").shard == "0/2"  # the flag wins over the launcher
    monkeypatch.setenv("LOCAL_RANK", "2")  # torchrun: one process per GPU of the node
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert _config(store, None, device="cuda").device == "cuda:2"
    assert _config(store, None, device="cuda:1").device == "cuda:1" and _config(store, None).device == "cpu"
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5")  # already one GPU per process
    assert _config(store, None, device="cuda").device == "cuda"
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")  # a world of one is no shard
    assert _config(store, None).shard is None and _config(store, None).target == store
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(UsageError, match="pass --shard I/N explicitly"):
        _config(store, None)


def test_units_are_shared_whole_and_in_order(tiny_model_dir, inputs, tmp_path) -> None:
    from ingest.generate import response_id

    def ids(shard: str | None, unit: int) -> list[list[str]]:
        cfg = _make_config(tmp_path / "s", tiny_model_dir, inputs, shard=shard, shard_unit=unit)
        units = pipeline.generation_units(pipeline.prompt_set(cfg), cfg)
        return [[response_id(p.prompt_id, k) for p, k in u] for u in units]

    for unit in (1, 4, 5, 18, 512):
        every = ids(None, unit)
        flat = [r for u in every for r in u]
        assert flat == sorted(flat) and len(flat) == 18 and all(len(u) == unit for u in every[:-1])
        for n in (1, 2, 3, 7, 20):
            shares = [ids(f"{i}/{n}", unit) for i in range(n)]
            assert [u for s in shares for u in s] == every  # whole units, concatenated in shard order


def test_capture_plans_unit_by_unit_and_resumes_within_a_unit() -> None:
    from ingest.packing import plan, plan_units

    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 90, 60)
    ids = [f"r{i:02d}" for i in range(60)]
    units = [i // 16 for i in range(60)]
    kw = {"token_budget": 128, "row_bytes": 8, "record_bytes": 4, "batch_bytes": 3000}
    assert [b.records.tolist() for b in plan_units(lengths, ids, [0] * 60, **kw)] == \
        [b.records.tolist() for b in plan(lengths, ids, **kw)]
    got = plan_units(lengths, ids, units, **kw)
    want = [[16 * u + i for i in b.records] for u in range(4)
            for b in plan(lengths[16 * u:16 * u + 16], ids[16 * u:16 * u + 16], **kw)]
    assert [b.records.tolist() for b in got] == want
    for k in range(len(got)):  # interrupted after k store batches: the plan of the rest is the rest
        done = {int(i) for b in got[:k] for i in b.records}
        rest = [i for i in range(60) if i not in done]
        again = plan_units(lengths[rest], [ids[i] for i in rest], [units[i] for i in rest], **kw)
        assert [[rest[i] for i in b.records] for b in again] == [b.records.tolist() for b in got[k:]]
