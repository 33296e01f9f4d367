"""A store another process is writing is refused before any expensive work: before ingest or steer
load a model, not after (actstore.store.check_writable, a probe that changes nothing)."""

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import actstore
from actstore.cli import main
from actstore.errors import ReadOnlyError, WriterBusyError
from actstore.store import check_writable

ROOT = Path(__file__).resolve().parents[2]
HAS_MODEL_STACK = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "ingest", "analyses"))

_HOLD = """
import sys
import actstore
st = actstore.open(sys.argv[1], read_only=False)
print("ready", flush=True)
sys.stdin.read()  # hold the writer until the test closes our stdin
st.close()
"""


@pytest.fixture
def held(filled):
    """The ``filled`` store, with its writer held by another process for the test's duration."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(filled)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
        yield filled
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_check_writable_probes_without_changing_anything(held, tmp_path):
    before = sorted(p.name for p in held.iterdir())
    with pytest.raises(WriterBusyError, match="another process is writing to"):
        check_writable(held)
    with pytest.raises(WriterBusyError):
        actstore.open(held, read_only=False)  # the real acquisition agrees with the probe
    assert sorted(p.name for p in held.iterdir()) == before
    check_writable(tmp_path / "new-store")  # nothing there yet: nothing holds it
    assert not (tmp_path / "new-store").exists()
    with pytest.raises(ReadOnlyError, match="remote store and is read-only"):
        check_writable("https://example.org/store")


def test_a_lock_left_by_a_finished_writer_is_free(filled):
    assert (filled / ".writer.lock").exists()  # the fixture's writer closed; the file stays
    check_writable(filled)
    with actstore.open(filled, read_only=False) as st:  # this process's own writer counts too
        with pytest.raises(WriterBusyError):
            check_writable(filled)
        assert st.n_rows > 0
    check_writable(filled)


@pytest.mark.skipif(not HAS_MODEL_STACK, reason="needs the model stack (torch, transformers)")
def test_ingest_refuses_a_busy_store_before_loading_the_model(held, monkeypatch):
    import ingest.models
    from ingest import pipeline
    from ingest.config import IngestConfig

    touched = []

    def spy(name):
        def f(*a, **k):
            touched.append(name)
            raise AssertionError(f"{name} ran while another process held the store")
        return f

    for name in ("load_model", "model_shapes", "load_config"):
        if hasattr(ingest.models, name):
            monkeypatch.setattr(ingest.models, name, spy(name))
    config = IngestConfig(store=str(held), model="some/model")
    for stage in (pipeline.run, pipeline.generate, pipeline.capture, pipeline.label):
        with pytest.raises(WriterBusyError, match="another process is writing"):
            stage(config)
    assert touched == []
    t0 = time.monotonic()
    r = CliRunner().invoke(main, ["ingest", "capture", str(held), "--model", "some/model"], obj={})
    assert r.exit_code == 1 and r.output.strip().splitlines() == [
        f"error: another process is writing to {held}; wait for it to finish or open the store read-only"], r.output
    assert touched == [] and time.monotonic() - t0 < 30


@pytest.mark.skipif(not HAS_MODEL_STACK, reason="needs the model stack (torch, transformers)")
def test_steer_refuses_a_busy_store_before_loading_the_model(held, monkeypatch):
    import ingest.models
    from analyses.steering import sweep
    from analyses.steering.spec import SweepSpec

    def loaded(*a, **k):
        raise AssertionError("the model was loaded while another process held the store")

    monkeypatch.setattr(ingest.models, "load_model", loaded)
    # Everything the sweep reads before the model is made trivial: one setting with one eval to run.
    setting = type("S", (), {"setting_id": "s1"})()
    monkeypatch.setattr(sweep, "plan", lambda store, spec: ("sweep1", [setting]))
    monkeypatch.setattr(sweep, "build_evals", lambda store, spec: {})
    monkeypatch.setattr(sweep, "_done_pairs", lambda store, sweep_id: set())
    with actstore.open(held) as st, pytest.raises(WriterBusyError, match="another process is writing"):
        sweep.run_sweep(st, SweepSpec(model="some/model"))
