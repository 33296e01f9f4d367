"""Crash safety: a writer killed with SIGKILL at random moments leaves a store that opens, verifies
and holds exactly the batches committed before the kill; rerunning finishes the job, and the result
equals an uninterrupted run, row for row and bit for bit."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import actstore
from actstore.verify import verify
from tests.actstore import synth
from tests.actstore.conftest import expected

ROOT = Path(__file__).resolve().parents[2]
N = 200  # enough batches that random kills land all over the run, however fast appends get


def _spawn(path, mode="append"):
    return subprocess.Popen([sys.executable, "-m", "tests.actstore.writer_proc", str(path), str(N), "0", mode],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _check_prefix(st, ref):
    """The store holds exactly batches 0..k-1 for some k, and their data is exact."""
    keys = st.sql("SELECT key FROM batches ORDER BY batch_id").fetchall()
    k = len(keys)
    assert [x[0] for x in keys] == [f"batch-{i}" for i in range(k)]
    if k:
        want = expected(k)
        for name, arr in want.items():
            meta = next(m for m in st.arrays() if m.name == name)
            assert meta.n_rows == len(arr)
            assert np.array_equal(st.arrays_io.read_span(meta, 0, meta.n_rows), arr), name
    rep = verify(st)
    assert rep.ok, rep.problems
    return k


@pytest.mark.parametrize("mode", ["append", "split"])
def test_sigkill_at_random_points_then_resume(tmp_path, mode):
    """``split``: every batch written by write_batch and committed by commit_batch, so kills also
    land between the two halves, with rows on disk past the committed ones."""
    path = tmp_path / "s"
    rng = random.Random(1234)
    seen = []
    for attempt in range(12):
        p = _spawn(path, mode)
        p.stdout.readline()  # "ready": imports done, store open; now kill somewhere in the appends
        time.sleep(rng.uniform(0.0, 2.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        if not (path / "catalog.duckdb").exists() and not (path / "catalog.wip.duckdb").exists():
            continue
        if (path / "catalog.duckdb").exists():
            with actstore.open(path) as st:  # what readers see right after the crash
                _check_prefix(st, None)
        with actstore.open(path, read_only=False) as st:  # recovery publishes the working copy
            seen.append(_check_prefix(st, None))
    assert len(set(seen)) >= 3, f"kills landed at too few distinct points: {seen}"

    p = _spawn(path, mode)
    out, err = p.communicate(timeout=300)
    assert p.returncode == 0, err.decode()[-2000:]

    ref = tmp_path / "ref"
    with actstore.open(ref, read_only=False, create=True) as st:
        synth.write(st, N)
    with actstore.open(path) as a, actstore.open(ref) as b:
        assert _check_prefix(a, None) == N
        for table, order in (("records", "record_id"), ("tokens", '"row"'), ("batches", "batch_id")):
            cols = "* EXCLUDE (committed_at)" if table == "batches" else "*"
            qa = a.sql(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
            qb = b.sql(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
            assert qa == qb, table
        for ma in a.arrays():
            mb = next(m for m in b.arrays() if m.name == ma.name)
            assert ma == mb
            assert np.array_equal(a.arrays_io.read_span(ma, 0, ma.n_rows), b.arrays_io.read_span(mb, 0, mb.n_rows))


def test_second_writer_is_refused_and_changes_nothing(filled):
    from actstore.errors import WriterBusyError

    with actstore.open(filled, read_only=False) as st:
        before = st.n_rows
        try:
            actstore.open(filled, read_only=False)
        except WriterBusyError as err:
            assert "another process is writing" in str(err)
        else:
            raise AssertionError("a second writer was allowed")
        assert st.n_rows == before
    assert os.path.exists(filled / "catalog.duckdb")
