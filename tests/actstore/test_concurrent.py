"""Readers in another process query and read while a writer appends: no lock errors, never a partial batch."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import actstore
from tests.actstore.conftest import expected

ROOT = Path(__file__).resolve().parents[2]


def test_readers_never_wait_or_see_partial_batches(tmp_path):
    path = tmp_path / "s"
    n = 30
    writer = subprocess.Popen([sys.executable, "-m", "tests.actstore.writer_proc", str(path), str(n), "0.05"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    ref = expected(n)
    sizes, reads = set(), 0
    deadline = time.time() + 120
    while writer.poll() is None and time.time() < deadline:
        if not (path / "catalog.duckdb").exists():
            time.sleep(0.02)
            continue
        t0 = time.time()
        with actstore.open(path) as st:  # must never raise while the writer runs
            opened = time.time() - t0
            assert opened < 2.0, f"opening took {opened:.2f}s: readers must not wait on the writer"
            k = st.sql("SELECT count(*) FROM batches").fetchall()[0][0]
            n_rows = st.sql("SELECT coalesce(sum(n_tokens), 0) FROM records").fetchall()[0][0]
            assert n_rows == st.n_rows == st.sql("SELECT count(*) FROM tokens").fetchall()[0][0]
            if n_rows:
                name = "token/resid_post/1"
                got = st.read("resid_post", 1, dtype="native")
                assert np.array_equal(got, ref[name][:n_rows]), "a reader saw rows that differ from committed data"
                pooled = st.read("resid_post", 1, pool="mean_response", dtype="native")
                assert np.array_equal(pooled.view(np.float32), ref["mean_response/resid_post/1"][:st.n_records])
                reads += 1
            sizes.add(k)
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err.decode()[-2000:]
    assert reads >= 3 and len(sizes) >= 3, f"readers saw too few snapshots while writing: {sorted(sizes)}"
    with actstore.open(path) as st:
        assert st.sql("SELECT count(*) FROM batches").fetchall()[0][0] == n
