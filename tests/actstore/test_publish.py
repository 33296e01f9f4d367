"""publish and pull: committed data only, verified copies, subsets that read the same numbers."""

import numpy as np
import pytest
from click.testing import CliRunner

import actstore
from actstore.cli import main
from actstore.errors import UsageError, WriterBusyError
from actstore.publish import Selection, publish, pull
from tests.actstore.httpserver import StaticServer


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTSTORE_CACHE", str(tmp_path / "cache"))


def _run(*args):
    return CliRunner().invoke(main, list(args), obj={})


def _same_catalog(a, b, tables=("records", "tokens", "batches", "vocab", "models")):
    for t in tables:
        q = f"SELECT * FROM {t} ORDER BY ALL"
        assert a.sql(q).fetchall() == b.sql(q).fetchall(), t


def test_publish_to_a_directory_then_serve_and_read(filled, tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    r = _run("publish", str(filled), str(www / "demo"))
    assert r.exit_code == 0 and "verified" in r.output, r.output
    assert not (www / "demo" / ".writer.lock").exists()  # only the catalog and committed chunks
    with StaticServer(www) as srv, actstore.open(f"{srv.url}/demo") as rem, actstore.open(filled) as loc:
        _same_catalog(rem, loc)
        rows = np.arange(0, loc.n_rows, 7)
        assert np.array_equal(rem.read("mlp_act", 1, rows, dtype="native"), loc.read("mlp_act", 1, rows, dtype="native"))
        g = "SELECT row, role FROM tokens"
        assert np.array_equal(rem.group_means("resid_post", [0, 1], g).means,
                              loc.group_means("resid_post", [0, 1], g).means)


def test_publish_copies_committed_chunks_only(filled, tmp_path):
    # a crashed writer can leave rows past the committed end: grow one array's Zarr shape
    import zarr

    arr = zarr.open_array(str(filled / "arrays"), path="token/resid_post/0", mode="r+")
    arr.resize((arr.shape[0] + 200, arr.shape[1]))
    arr[-200:] = 7
    rep = publish(filled, str(tmp_path / "pub"))
    chunks = sorted(p.name for p in (tmp_path / "pub" / "arrays" / "token" / "resid_post" / "0").iterdir()
                    if p.name.startswith("c."))
    with actstore.open(filled) as st:
        want = -(-st.n_rows // st.array_meta("resid_post", 0).chunk_rows)
    assert len(chunks) == want and rep.chunks_verified > 0


def test_publish_refuses_while_a_writer_holds_the_store(filled, tmp_path):
    with actstore.open(filled, read_only=False), pytest.raises(WriterBusyError, match="writer holds"):
        publish(filled, str(tmp_path / "pub"))
    assert not (tmp_path / "pub").exists()


def test_pull_subset_verifies_and_reads_the_same_numbers(filled, tmp_path):
    with StaticServer(filled.parent) as srv:
        url = f"{srv.url}/{filled.name}"
        r = _run("pull", url, str(tmp_path / "sub"), "--layers", "1", "--sites", "resid_post")
        assert r.exit_code == 0, r.output
        pulled_bytes = srv.body_bytes
    with actstore.open(tmp_path / "sub") as sub, actstore.open(filled) as loc:
        assert sorted(m.name for m in sub.arrays()) == ["mean_response/resid_post/1", "token/resid_post/1"]
        _same_catalog(sub, loc)
        assert np.array_equal(sub.read("resid_post", 1, dtype="native"), loc.read("resid_post", 1, dtype="native"))
        assert np.array_equal(sub.read("resid_post", 1, pool="mean_response"),
                              loc.read("resid_post", 1, pool="mean_response"))
        assert sub.sql("SELECT kind FROM runs ORDER BY run_id DESC LIMIT 1").fetchall() == [("pull",)]
        with pytest.raises(actstore.errors.UnknownArrayError):
            sub.read("mlp_act", 0, [0])
    assert _run("verify", str(tmp_path / "sub")).exit_code == 0
    # one layer of one site: far less than the whole store's arrays came down
    with actstore.open(filled) as loc:
        all_bytes = sum(m.n_rows * m.row_bytes for m in loc.arrays())
    assert pulled_bytes > 0 and (tmp_path / "sub" / "arrays" / "token" / "mlp_act").exists() is False
    assert all_bytes > 0


def test_pull_bad_selection_and_destination_change_nothing(filled, tmp_path):
    with pytest.raises(UsageError, match="no array"):
        pull(filled, tmp_path / "x", Selection(layers=(9,)))
    with pytest.raises(UsageError, match="unknown site"):
        Selection(sites=("resid_pre",))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an empty directory"):
        pull(filled, busy)
    assert [p.name for p in busy.iterdir()] == ["keep.txt"] and not (tmp_path / "x").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_pull_from_a_dying_server_leaves_no_store(filled, tmp_path):
    with StaticServer(filled.parent) as srv:
        url = f"{srv.url}/{filled.name}"
        actstore.open(url).close()  # the catalog is cached; the arrays are not
        srv.stop()
        r = _run("pull", url, str(tmp_path / "sub"))
    assert r.exit_code == 1 and r.output.startswith("error:") and len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "sub").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".sub")]


def test_publish_to_a_bucket_url_then_open_it(filled):
    # fsspec's in-memory filesystem stands in for s3:// or gs:// (same code path: put, then read by URL)
    url = "memory://bucket-for-tests/demo"
    rep = publish(filled, url)
    assert rep.dest == url and rep.chunks_verified > 0
    with actstore.open(url) as rem, actstore.open(filled) as loc:
        assert rem.is_remote and rem.n_rows == loc.n_rows
        rows = np.array([5, 1, 60])
        assert np.array_equal(rem.read("mlp_act", 0, rows, dtype="native"), loc.read("mlp_act", 0, rows, dtype="native"))
    assert _run("verify", url).exit_code == 0
    import fsspec

    fsspec.filesystem("memory").rm("/bucket-for-tests", recursive=True)


def _chunk_files(root):
    return sorted(p for p in (root / "arrays").rglob("*") if p.is_file() and p.name.startswith("c."))


def test_publishing_again_copies_only_what_changed(filled, tmp_path):
    from tests.actstore import synth

    pub = tmp_path / "pub"
    first = publish(filled, str(pub))
    assert first.unchanged == 0
    with actstore.open(filled, read_only=False) as st:
        synth.write(st, 9)  # three more batches: new chunks, and partly filled tail chunks grow
    again = _run("publish", str(filled), str(pub))
    assert again.exit_code == 0 and "unchanged files kept" in again.output, again.output
    second = publish(filled, str(pub))  # nothing changed since: every chunk file is kept
    assert second.unchanged == len(_chunk_files(pub))
    chunks = set(_chunk_files(pub))
    assert second.bytes == sum(p.stat().st_size for p in pub.rglob("*") if p.is_file() and p not in chunks)
    with actstore.open(pub) as cp, actstore.open(filled) as loc:
        assert cp.n_rows == loc.n_rows
        _same_catalog(cp, loc)
        for m in loc.arrays():
            assert np.array_equal(cp.arrays_io.read_span(m, 0, m.n_rows), loc.arrays_io.read_span(m, 0, m.n_rows)), m.name
    assert publish(filled, str(pub), full=True).unchanged == 0


def test_a_damaged_earlier_publish_is_caught_not_trusted(filled, tmp_path):
    from actstore.errors import IntegrityError

    pub = tmp_path / "pub"
    publish(filled, str(pub))
    victim = _chunk_files(pub)[0]
    data = bytearray(victim.read_bytes())
    data[3] ^= 0x10
    victim.write_bytes(bytes(data))
    before = victim.read_bytes()
    with pytest.raises(IntegrityError, match="failed verification"):
        publish(filled, str(pub))  # its catalog still vouches for the file; the verified copy does not
    assert victim.read_bytes() == before and not [p for p in tmp_path.iterdir() if p.name.startswith(".pub")]
    publish(filled, str(pub), full=True)
    assert _run("verify", str(pub)).exit_code == 0


def test_publishing_again_to_a_bucket_uploads_only_what_changed(filled):
    import fsspec

    from tests.actstore import synth

    url = "memory://bucket-incremental/demo"
    fs = fsspec.filesystem("memory")
    publish(filled, url)
    with actstore.open(filled, read_only=False) as st:
        synth.write(st, 8)
    stamps = {p: fs.info(p).get("created") for p in fs.find("/bucket-incremental/demo")}
    rep = publish(filled, url)
    assert rep.unchanged > 0
    with actstore.open(url) as rem, actstore.open(filled) as loc:
        assert rem.n_rows == loc.n_rows
        rows = np.arange(0, loc.n_rows, 5)
        assert np.array_equal(rem.read("mlp_act", 1, rows, dtype="native"), loc.read("mlp_act", 1, rows, dtype="native"))
    kept = [p for p, t in stamps.items() if p.rsplit("/", 1)[-1].startswith("c.") and fs.info(p).get("created") == t]
    assert len(kept) == rep.unchanged
    fs.rm("/bucket-incremental", recursive=True)
