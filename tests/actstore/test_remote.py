"""Remote read-only stores against a real HTTP server on 127.0.0.1 (Range requests, no listing)."""

import hashlib
import importlib.util

import numpy as np
import pytest
from click.testing import CliRunner

import actstore
from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site
from actstore.cli import main
from actstore.errors import ReadOnlyError, RemoteError, UsageError
from tests.actstore import synth
from tests.actstore.httpserver import StaticServer, touch_later

WIDE = ArrayKey(Site("resid_post", 0))
ROW_BYTES = 256 * 4


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    d = tmp_path / "cache"
    monkeypatch.setenv("ACTSTORE_CACHE", str(d))
    monkeypatch.setenv("ACTSTORE_RETRY_WAIT", "0.01")  # the default backoff (0.5 s, 1 s, 2 s) slows tests
    return d


@pytest.fixture
def served(filled):
    with StaticServer(filled.parent) as srv:
        yield srv, f"{srv.url}/{filled.name}"


@pytest.fixture
def wide(tmp_path):
    """A float32 store with 1 KiB rows in 1 MiB chunks: 4096 rows, 4 chunks."""
    path = tmp_path / "wide"
    rng = np.random.default_rng(5)
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo("wide", "float32", 1, 256))
        st.declare_arrays([ArraySpec(WIDE, 256, "float32", chunk_rows=1024)])
        for i in range(4):
            nt = np.full(8, 128)
            st.append(Batch(n_tokens=nt, prompt_lens=nt // 2, token_ids=np.zeros(1024, np.int32),
                            roles=np.full(1024, 3), token_arrays={WIDE: rng.standard_normal((1024, 256), dtype=np.float32)},
                            key=f"b{i}"))
    return path


def _run(*args):
    return CliRunner().invoke(main, list(args), obj={})


def test_remote_results_equal_local(filled, served):
    _, url = served
    with actstore.open(filled) as loc, actstore.open(url) as rem:
        assert rem.is_remote and rem.n_rows == loc.n_rows and rem.n_records == loc.n_records
        q = "SELECT role, count(*) AS n, sum(position) AS p FROM tokens GROUP BY role ORDER BY role"
        assert rem.sql(q).fetchall() == loc.sql(q).fetchall()
        rows = np.array([loc.n_rows - 1, 0, 17, 17, 40, 3, 90])
        for kind in ("resid_post", "mlp_act"):
            for layer in (0, 1):
                assert np.array_equal(rem.read(kind, layer, rows, dtype="native"),
                                      loc.read(kind, layer, rows, dtype="native"))
        assert np.array_equal(rem.read("resid_post", 1, pool="mean_response"),
                              loc.read("resid_post", 1, pool="mean_response"))
        groups = "SELECT row, role FROM tokens WHERE position % 3 = 0"
        a, b = rem.group_means("mlp_act", [0, 1], groups), loc.group_means("mlp_act", [0, 1], groups)
        assert a.labels == b.labels and np.array_equal(a.means, b.means) and np.array_equal(a.counts, b.counts)


def test_small_gather_downloads_about_the_rows_touched(wide, cache):
    with StaticServer(wide.parent) as srv:
        url = f"{srv.url}/wide"
        with actstore.open(url) as rem, actstore.open(wide) as loc:
            rem.read("resid_post", 0, [1])  # array metadata (zarr.json) is fetched once per array
            srv.reset_counts()
            rows = np.arange(8) * 509 + 3  # 8 rows, ~0.5 MB apart, in all 4 chunks
            got = rem.read("resid_post", 0, rows)
            assert np.array_equal(got, loc.read("resid_post", 0, rows))
            touched = len(rows) * ROW_BYTES
            assert srv.body_bytes == touched  # exactly the rows: no chunk was fetched whole
            assert len(srv.requests) == len(rows)
            srv.reset_counts()
            near = np.array([100, 101, 105, 140])  # within 64 KiB: one coalesced request
            assert np.array_equal(rem.read("resid_post", 0, near), loc.read("resid_post", 0, near))
            assert len(srv.requests) == 1 and srv.body_bytes == 41 * ROW_BYTES
            assert srv.body_bytes < 1024 * ROW_BYTES / 20  # vs a whole 1 MiB chunk
            srv.reset_counts()
            groups = "SELECT row, row % 2 FROM tokens WHERE row IN (0, 500, 1001, 1500, 3000)"
            a, b = rem.group_means("resid_post", 0, groups), loc.group_means("resid_post", 0, groups)
            assert np.array_equal(a.means, b.means)
            assert srv.body_bytes == 5 * ROW_BYTES  # streaming reductions fetch rows, not spans


def test_catalog_is_cached_and_revalidated(filled, served, cache):
    srv, url = served
    actstore.open(url).close()
    srv.reset_counts()
    actstore.open(url).close()
    assert [m for m, _, _ in srv.requests] == ["HEAD"]  # unchanged: no download
    with actstore.open(filled, read_only=False) as st:
        st.insert("prompts", {"prompt_id": ["new"], "user_text": ["q"]})
    touch_later(filled / "catalog.duckdb")
    with actstore.open(url) as rem:
        assert rem.sql("SELECT count(*) FROM prompts").fetchall() == [(1,)]


def test_server_dying_mid_catalog_download_leaves_no_corrupt_cache(filled, served, cache):
    srv, url = served
    actstore.open(url).close()
    cached = next(cache.rglob("catalog.duckdb"))
    before = hashlib.sha256(cached.read_bytes()).hexdigest()
    touch_later(filled / "catalog.duckdb")  # the remote changed: the next open downloads
    srv.cut_after, srv.cut_times = 5000, 10**6  # every attempt is cut
    with pytest.raises(RemoteError) as err:
        actstore.open(url)
    assert "\n" not in str(err.value) and "catalog.duckdb" in str(err.value) and "4 attempts" in str(err.value)
    srv.cut_after = None
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == before
    assert not [p for p in cached.parent.iterdir() if ".tmp-" in p.name]
    with actstore.open(url) as rem:  # a healthy server again
        assert rem.n_rows > 0


def test_first_download_cut_leaves_nothing_then_works(served, cache):
    srv, url = served
    srv.cut_after, srv.cut_times = 100, 10**6
    with pytest.raises(RemoteError):
        actstore.open(url)
    assert not list(cache.rglob("catalog.duckdb*"))
    srv.cut_after = None
    with actstore.open(url) as rem:
        assert rem.sql("SELECT count(*) FROM records").fetchall()[0][0] == rem.n_records


def test_server_dying_mid_read_is_one_clear_error(filled, served):
    srv, url = served
    rem = actstore.open(url)
    rem.read("resid_post", 0, [0])
    srv.cut_after, srv.cut_times = 10, 10**6
    with pytest.raises(RemoteError, match="bytes|failed"):
        rem.read("resid_post", 0, np.arange(30))
    srv.stop()
    with pytest.raises(RemoteError) as err:
        rem.read("mlp_act", 1, [1, 2, 3])
    assert "server is up" in str(err.value) and "\n" not in str(err.value)
    rem.close()


def test_a_dropped_connection_is_retried_and_the_result_is_exact(filled, served, cache, monkeypatch):
    srv, url = served
    srv.cut_after = 5000  # the first catalog download is cut once: a flaky link, not a dead server
    with actstore.open(url) as rem, actstore.open(filled) as loc:
        assert rem.n_rows == loc.n_rows
        gets = [r for r in srv.requests if r[0] == "GET" and r[1].endswith("catalog.duckdb")]
        assert len(gets) == 2  # cut, then whole
        rows = np.array([loc.n_rows - 1, 0, 17, 40])
        srv.cut_after = 10  # one range request of this read is cut; only it is sent again
        assert np.array_equal(rem.read("resid_post", 0, rows), loc.read("resid_post", 0, rows))
        assert srv.cut_after is None
        monkeypatch.setenv("ACTSTORE_RETRIES", "0")  # without retries the same cut is the error
        srv.cut_after = 10
        with pytest.raises(RemoteError, match="connection dropped|failed") as err:
            rem.read("mlp_act", 1, rows)
        assert "attempts" not in str(err.value)
        assert np.array_equal(rem.read("mlp_act", 1, rows), loc.read("mlp_act", 1, rows))


def test_remote_stores_are_never_written(served):
    _, url = served
    with pytest.raises(ReadOnlyError, match="actstore pull"):
        actstore.open(url, read_only=False)
    with actstore.open(url) as rem, pytest.raises(ReadOnlyError, match="actstore pull"):
        rem.insert("prompts", {"prompt_id": ["x"], "user_text": ["q"]})


def test_cli_reads_a_url(filled, served):
    _, url = served
    r = _run("info", url)
    assert r.exit_code == 0 and "synthetic" in r.output, r.output
    local = _run("sql", str(filled), "SELECT role, count(*) FROM tokens GROUP BY 1 ORDER BY 1", "--format", "csv")
    remote = _run("sql", url, "SELECT role, count(*) FROM tokens GROUP BY 1 ORDER BY 1", "--format", "csv")
    assert remote.exit_code == 0 and remote.output == local.output
    v = _run("verify", url)
    assert v.exit_code == 0 and v.output.startswith("ok:"), v.output


def test_verify_url_finds_a_flipped_byte(filled, served):
    _, url = served
    chunk = filled / "arrays" / "token" / "mlp_act" / "1" / "c.1.0"
    data = bytearray(chunk.read_bytes())
    data[37] ^= 0x01
    chunk.write_bytes(bytes(data))
    r = _run("verify", url)
    assert r.exit_code == 1 and "token/mlp_act/1: chunk 1 does not match its checksum" in r.output


def test_unreachable_and_unknown_urls_are_one_line(cache):
    with pytest.raises(RemoteError, match="server is up"):
        actstore.open("http://127.0.0.1:9/nothing")  # discard port: connection refused
    with pytest.raises(UsageError, match="fsspec URL"):
        actstore.open("nosuchproto://x/y")
    if importlib.util.find_spec("s3fs") is None:
        with pytest.raises(UsageError, match=r"actstore\[s3\]"):
            actstore.open("s3://bucket/store")


def test_compressed_and_sharded_arrays_read_whole_chunks_remotely(tmp_path):
    path = tmp_path / "packed"
    keys = synth.keys()
    specs = [ArraySpec(keys[0], synth.WIDTH["resid_post"], "bfloat16", codec="zstd", chunk_rows=32),
             ArraySpec(keys[1], synth.WIDTH["resid_post"], "bfloat16", chunk_rows=16, shard_chunks=4),
             *[ArraySpec(k, synth.WIDTH[k.site.kind], "bfloat16", codec="blosc-lz4", chunk_rows=32) for k in keys[2:]],
             ArraySpec(synth.POOLED, synth.WIDTH["resid_post"], "float32", chunk_rows=8)]
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(synth.MODEL)
        st.declare_arrays(specs)
        for i in range(5):
            st.append(synth.batch(i))
    with StaticServer(tmp_path) as srv, actstore.open(f"{srv.url}/packed") as rem, actstore.open(path) as loc:
        rows = np.array([rem.n_rows - 1, 0, 33, 34, 70, 5])
        for k in keys:
            assert np.array_equal(rem.read(k.site, rows=rows, dtype="native"), loc.read(k.site, rows=rows, dtype="native"))
        g = "SELECT row, role FROM tokens"
        assert np.array_equal(rem.group_means("resid_post", [0, 1], g).means, loc.group_means("resid_post", [0, 1], g).means)
        assert _run("verify", f"{srv.url}/packed").exit_code == 0
