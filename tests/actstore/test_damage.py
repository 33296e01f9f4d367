"""Damage is always found: a truncated or damaged catalog is one line on every command, and verify
checks every chunk file's size against the format and reads every catalog table through."""

import hashlib
import importlib.util

import duckdb
import numpy as np
import pytest
import zarr
from click.testing import CliRunner

import actstore
from actstore import ArrayKey, ArraySpec, ModelInfo, Site
from actstore.cli import main
from actstore.errors import CatalogDamagedError
from actstore.verify import verify

HAS_MODEL_STACK = all(importlib.util.find_spec(m) for m in ("torch", "transformers", "ingest", "analyses"))


def _digest(path):
    return {p.relative_to(path): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], obj={})


def _one_line(r, *needles):
    lines = r.output.strip().splitlines()
    assert r.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error: "), r.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _commands(store):
    cmds = [("info", store), ("info", store, "--json"), ("sql", store, "SELECT count(*) FROM tokens"),
            ("verify", store)]
    if HAS_MODEL_STACK:
        cmds += [("analyze", "vectors", store, "--no-record"),
                 ("ingest", "capture", store, "--model", "no-such-model-is-loaded")]
    return cmds


@pytest.mark.parametrize("keep", [0, 100, 4096, 0.5, -1000])
def test_a_truncated_catalog_is_one_line_on_every_command(filled, keep):
    db = filled / "catalog.duckdb"
    size = db.stat().st_size
    n = int(size * keep) if isinstance(keep, float) else keep if keep >= 0 else size + keep
    with open(db, "r+b") as f:
        f.truncate(n)
    before = _digest(filled)
    for args in _commands(filled):
        _one_line(_run(*args), "catalog.duckdb is damaged or truncated", "restore it from a copy")
    with pytest.raises(CatalogDamagedError, match="damaged or truncated"):
        actstore.open(filled)
    with pytest.raises(CatalogDamagedError, match="damaged or truncated"):
        actstore.open(filled, read_only=False)  # a writer refuses it too, and leaves no working copy
    assert _digest(filled) == before


def _block_location(db, table):
    """Byte offset of the first data block of a table (DuckDB: 3 header blocks of 4 KiB, then
    blocks of the file's block size)."""
    con = duckdb.connect(str(db), read_only=True)
    block = con.execute(f"SELECT min(block_id) FROM pragma_storage_info('{table}') "
                        "WHERE persistent AND block_id >= 0").fetchall()[0][0]
    block_size = con.execute("SELECT block_size FROM pragma_database_size()").fetchall()[0][0]
    con.close()
    return 3 * 4096 + block * block_size


def test_damage_inside_a_table_is_one_line_and_verify_names_the_table(filled):
    db = filled / "catalog.duckdb"
    at = _block_location(db, "tokens")
    with open(db, "r+b") as f:
        f.seek(at + 200)
        f.write(b"\xff" * 64)
    before = _digest(filled)
    with actstore.open(filled) as st:  # the catalog's own metadata is intact: opening works
        assert st.n_rows > 0
    line = _one_line(_run("sql", filled, "SELECT sum(token_id) FROM tokens"), "damaged or truncated")
    assert "Corrupt database file" in line
    r = _run("verify", filled)
    assert r.exit_code == 1 and "catalog: table tokens is damaged" in r.output, r.output
    assert "Traceback" not in r.output
    assert _digest(filled) == before


def test_damage_with_a_crashed_writers_copy_names_that_fix(filled):
    (filled / "catalog.wip.duckdb").write_bytes((filled / "catalog.duckdb").read_bytes())
    with open(filled / "catalog.duckdb", "r+b") as f:
        f.truncate(100)
    _one_line(_run("info", filled), "damaged or truncated", "catalog.wip.duckdb", "open the store for writing")
    with actstore.open(filled, read_only=False) as st:  # and that fix works: the writer republishes
        n = st.n_rows
    with actstore.open(filled) as st:
        assert st.n_rows == n > 0 and verify(st).ok


# -- chunk file sizes -----------------------------------------------------------------------------------

def _chunk_file(store, name, chunk):
    return store / "arrays" / name / f"c.{chunk}.0"


def test_verify_finds_a_raw_chunk_cut_after_its_committed_rows(filled):
    """The case the checksums alone miss: the committed rows are intact, the file is short."""
    with actstore.open(filled) as st:
        meta = st.array_meta("resid_post", 0)
        last = (st.n_rows - 1) // meta.chunk_rows
        committed = st.n_rows - last * meta.chunk_rows
        assert committed < meta.chunk_rows, "the fixture must end in a partly filled chunk"
    f = _chunk_file(filled, meta.name, last)
    full = meta.chunk_rows * meta.row_bytes
    assert f.stat().st_size == full  # the format: a raw chunk is always full size
    with open(f, "r+b") as fh:
        fh.truncate(committed * meta.row_bytes)
    with actstore.open(filled) as st:
        rep = verify(st)
    # the committed rows still match their checksum: the size is the only thing that tells
    want = (f"{meta.name}: chunk {last} file {meta.name}/c.{last}.0 is {committed * meta.row_bytes} bytes; a raw "
            f"chunk is always {full} ({meta.chunk_rows} rows x {meta.row_bytes} bytes): truncated or damaged")
    assert rep.problems == [want], rep.problems
    with pytest.raises(ValueError):  # and plain Zarr, which the format promises works, cannot read it
        zarr.open_array(str(filled / "arrays"), path=meta.name, mode="r")[:]
    r = _run("verify", filled)
    assert r.exit_code == 1 and "truncated or damaged" in r.output


def test_verify_finds_short_long_empty_and_missing_chunk_files(filled):
    with actstore.open(filled) as st:
        meta = st.array_meta("mlp_act", 1)
    full = meta.chunk_rows * meta.row_bytes
    cut = _chunk_file(filled, meta.name, 0)
    with open(cut, "r+b") as fh:
        fh.truncate(full // 3)
    grown = _chunk_file(filled, meta.name, 1)
    with open(grown, "ab") as fh:
        fh.write(b"\0" * 8)
    _chunk_file(filled, meta.name, 2).write_bytes(b"")
    _chunk_file(filled, meta.name, 3).unlink()
    with actstore.open(filled) as st:
        probs = [p for p in verify(st).problems if p.startswith(meta.name)]
    assert any(f"chunk 0 file {meta.name}/c.0.0 is {full // 3} bytes" in p for p in probs), probs
    assert any(f"chunk 1 file {meta.name}/c.1.0 is {full + 8} bytes" in p for p in probs), probs
    assert any(f"chunk 2 file {meta.name}/c.2.0 is 0 bytes" in p for p in probs), probs
    assert any(f"chunk 3 is missing (no file {meta.name}/c.3.0)" in p for p in probs), probs
    assert len(probs) == 4  # one line per bad chunk, no second complaint from the checksum


def _store_with(path, codec, shard_chunks):
    key = ArrayKey(Site("resid_post", 0))
    rng = np.random.default_rng(3)
    data = rng.standard_normal((150, 16)).astype(np.float32)
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo("m", "float32", 1, 16))
        st.declare_arrays([ArraySpec(key, 16, "float32", chunk_rows=16, shard_chunks=shard_chunks, codec=codec)])
        for lo in range(0, 150, 50):
            st.append(actstore.Batch(n_tokens=[50], prompt_lens=[10], token_ids=np.zeros(50, np.int64),
                                     roles=np.zeros(50, np.int64), token_arrays={key: data[lo:lo + 50]},
                                     record_arrays={}, key=f"b{lo}"))
    return path, key.name


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_verify_checks_shard_files_against_their_index(tmp_path, codec):
    path, name = _store_with(tmp_path / "sharded", codec, shard_chunks=4)
    with actstore.open(path) as st:
        assert verify(st).ok
    shard = _chunk_file(path, name, 1)  # shard 1 holds chunks 4-7; chunk 9 is the last (rows 144-149)
    size = shard.stat().st_size
    index = 16 * 4 + 4
    data = shard.read_bytes()
    # cut the data of the shard's last inner chunk, keeping the index at the end intact
    shard.write_bytes(data[: size - index - 40] + data[size - index:])
    with actstore.open(path) as st:
        probs = verify(st).problems
    assert any("chunk 7 lies at bytes" in p and "truncated or damaged" in p for p in probs), probs
    assert not any("chunk 4 " in p for p in probs)  # the chunks before it are still whole
    last = _chunk_file(path, name, 2)
    last.write_bytes(last.read_bytes()[:50])  # shorter than its index
    with actstore.open(path) as st:
        probs = verify(st).problems
    assert any(f"chunk 8 shard file {name}/c.2.0 is 50 bytes, shorter than its {index}-byte index" in p
               for p in probs), probs


def test_verify_finds_an_empty_compressed_chunk(tmp_path):
    path, name = _store_with(tmp_path / "zstd", "zstd", shard_chunks=1)
    with actstore.open(path) as st:
        assert verify(st).ok
    _chunk_file(path, name, 4).write_bytes(b"")
    with actstore.open(path) as st:
        probs = verify(st).problems
    assert probs == [f"{name}: chunk 4 file {name}/c.4.0 is empty: truncated or damaged"]


def test_verify_by_url_checks_sizes(filled, tmp_path, monkeypatch):
    from tests.actstore.httpserver import StaticServer

    monkeypatch.setenv("ACTSTORE_CACHE", str(tmp_path / "cache"))
    with actstore.open(filled) as st:
        meta = st.array_meta("resid_post", 1)
    with open(_chunk_file(filled, meta.name, 0), "r+b") as fh:
        fh.truncate(meta.row_bytes * meta.chunk_rows - 1)
    with StaticServer(filled.parent) as srv:
        r = _run("verify", f"{srv.url}/{filled.name}")
    assert r.exit_code == 1 and f"chunk 0 file {meta.name}/c.0.0 is" in r.output, r.output
