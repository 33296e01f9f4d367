"""Resume with a kill (DESIGN invariant 2): a capture SIGKILLed after a few committed batches and rerun
with the same arguments ends identical, row for row and bit for bit, to an uninterrupted capture.

Both captures run as subprocesses with the same thread settings (a different thread count may
change matmul blocking, hence the last bits). What may differ, by design: the ``runs`` table (the
killed run is marked failed, "interrupted", by the rerun), ``batches.run_id`` and commit timestamps.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import actstore
from ingest import pipeline
from ingest.config import IngestConfig

WORDS = ["weekend", "family", "career", "friends", "money", "travel", "health", "school", "music", "garden",
         "city", "rules", "nature", "power", "success", "habits", "dreams", "neighbours", "work", "rest"]


def _capture_cmd(store: Path) -> list[str]:
    return [sys.executable, "-c", "from actstore.cli import run; run()", "ingest", "capture", str(store),
            "--token-budget", "48", "--buffer-mb", "1", "--quiet"]


def _env() -> dict[str, str]:
    # Publish after every commit (the default is every 2 s): the whole capture can take less than
    # that, and the test must see batches committed while the writer still runs.
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
            "ACTSTORE_PUBLISH_INTERVAL": "0"}


@pytest.fixture(scope="module")
def base_store(tmp_path_factory, tiny_model_dir) -> Path:
    d = tmp_path_factory.mktemp("resume")
    q = d / "q.jsonl"
    q.write_text("".join(json.dumps({"id": f"q{i:02d}", "text": f"What do you think about {w}?"}) + "\n"
                         for i, w in enumerate(WORDS)), encoding="utf-8")
    store = d / "base"
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pipeline.generate(IngestConfig(store=str(store), model=str(tiny_model_dir), prompts=str(q),
                                       templates_per_value=0, samples=4, max_new_tokens=8, batch_size=40,
                                       quiet=True))
    finally:
        torch.set_num_threads(n)
    return store


def _committed(store: Path) -> int:
    try:
        with actstore.open(store) as st:
            return int(st.sql("SELECT count(*) FROM batches").fetchall()[0][0])
    except actstore.ActstoreError:
        return 0


def _dump(store: Path) -> dict:
    out: dict = {}
    with actstore.open(store) as st:
        for t in ("prompts", "responses", "labels", "records", "tokens", "vocab", "chunk_checksums"):
            out[t] = st.sql(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
        out["batches"] = st.sql("SELECT batch_id, key, record_start, n_records, row_start, n_rows FROM batches "
                                "ORDER BY batch_id").fetchall()
        out["models"] = st.sql("SELECT * EXCLUDE (added_at) FROM models").fetchall()
        out["array_meta"] = st.sql("SELECT * EXCLUDE (created_at) FROM arrays ORDER BY name").fetchall()
        for m in st.arrays():
            if m.kind == "activation":
                out[m.name] = st.read(m.site, m.layer, pool=m.pool, dtype="native").tobytes()
            else:
                out[m.name] = st.weight(m.site, m.layer, dtype="native").tobytes()
    return out


@pytest.mark.slow
def test_capture_killed_then_rerun_equals_uninterrupted(base_store: Path, tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(base_store, a)
    shutil.copytree(base_store, b)

    done = subprocess.run(_capture_cmd(a), check=False, env=_env(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    total = _committed(a)
    assert total >= 6, "too few store batches to interrupt in the middle"

    proc = subprocess.Popen(_capture_cmd(b), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while _committed(b) < 2:
            assert proc.poll() is None, "the capture finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    seen = _committed(b)
    assert 2 <= seen < total

    again = subprocess.run(_capture_cmd(b), check=False, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "records" in again.stdout

    got, want = _dump(b), _dump(a)
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], f"{key} differs after resume"
    with actstore.open(b) as st:
        runs = st.sql("SELECT kind, status, message FROM runs WHERE kind = 'ingest:capture' "
                      "ORDER BY run_id").fetchall()
    assert runs[0][1] == "failed" and "interrupted" in runs[0][2]
    assert runs[1][:2] == ("ingest:capture", "done") and len(runs) == 2
    from actstore.verify import verify

    with actstore.open(b) as st:
        assert verify(st).ok
    assert np.frombuffer(got["token/resid_post/0"], dtype=np.float32).size > 0
