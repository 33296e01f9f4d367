"""The raw write path: chunk writes with O_DIRECT for their aligned middles give the very bytes and
checksums of writes through the page cache (falling back to it where the file system refuses), and
chunk files sit side by side under the names Zarr itself gives them."""

from __future__ import annotations

import errno
import mmap
import os
import sys
import zlib

import numpy as np
import pytest

import actstore
import actstore.arrays as arrays_mod
from actstore.arrays import DIRECT_ALIGN, DIRECT_MIN, ArrayMeta, LocalGroup
from actstore.errors import UsageError

# (width, dtype, chunk_rows): rows of 2304, 3072 and 400 bytes; chunks of ~0.5-0.7 MiB that are
# not multiples of 4 KiB, so chunk starts, appends and block boundaries all fall out of line.
LAYOUTS = [(576, "float32", 227), (1536, "uint16", 233), (100, "float32", 1501)]


def _meta(width: int, dtype: str, chunk_rows: int) -> ArrayMeta:
    return ArrayMeta(name=f"activations/t{width}", kind="activation", site="resid_post", layer=0, pool="token",
                     n_rows=0, width=width, dtype=dtype, logical_dtype=dtype, chunk_rows=chunk_rows,
                     shard_chunks=1, codec="none")


def _appends(group: LocalGroup, meta: ArrayMeta, sizes: list[int], seed: int) -> tuple[list, np.ndarray]:
    """Append random rows in ``sizes`` steps, carrying each partly filled chunk's CRC as the store
    does; returns every append's (chunk, rows, crc) list and all the rows written."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 2**16, size=(sum(sizes), meta.width)).astype(meta.dtype)
    crcs, tails, lo = [], {}, 0
    for n in sizes:
        chunk = lo // meta.chunk_rows
        tail = tails.get(chunk) if lo % meta.chunk_rows else None
        out = group.write_rows(meta, lo, data[lo : lo + n], tail)
        tails.update({c: (rows, crc) for c, rows, crc in out})
        crcs.append(out)
        lo += n
    return crcs, data


def _direct_supported(path) -> bool:
    probe = path / "probe"
    probe.write_bytes(b"\0" * DIRECT_ALIGN)
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_DIRECT))
        return True
    except (OSError, AttributeError):
        return False
    finally:
        probe.unlink()


def _group(path, monkeypatch, direct: str) -> LocalGroup:
    monkeypatch.setenv("ACTSTORE_DIRECT_IO", direct)
    return LocalGroup(path, read_only=False, durable=True)


def _chunk_files(group: LocalGroup, meta: ArrayMeta) -> dict[str, bytes]:
    root = group.dir / meta.name
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
            and p.name != "zarr.json"}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_direct_writes_equal_buffered_writes_byte_for_byte(tmp_path, monkeypatch, seed):
    rng = np.random.default_rng(seed)
    for width, dtype, chunk_rows in LAYOUTS:
        meta = _meta(width, dtype, chunk_rows)
        # Appends from one row to several chunks: some spans too short for O_DIRECT, some long.
        sizes = [int(x) for x in rng.choice([1, 7, 31, 150, 600, 2 * chunk_rows + 3], size=14)]
        groups = {}
        for mode in ("1", "0"):
            g = _group(tmp_path / f"{mode}-{seed}", monkeypatch, mode)
            g.create(meta)
            crcs, data = _appends(g, meta, sizes, seed)
            g.sync()
            groups[mode] = (g, crcs)
            n = sum(sizes)
            np.testing.assert_array_equal(g.read_span(meta, 0, n), data)
            # The returned CRCs are those of the committed rows of each chunk, as before.
            for c in range(-(-n // chunk_rows)):
                block = data[c * chunk_rows : min(n, (c + 1) * chunk_rows)]
                last = [crc for out in crcs for cc, rows, crc in out if cc == c][-1]
                assert last == zlib.crc32(np.ascontiguousarray(block).data)
        (gd, crc_d), (gb, crc_b) = groups["1"], groups["0"]
        assert crc_d == crc_b
        assert _chunk_files(gd, meta) == _chunk_files(gb, meta)
        assert gb.direct_bytes == 0 and not gb.direct
        if _direct_supported(tmp_path):
            assert gd.direct and gd.direct_bytes > 0, "O_DIRECT works here but was not used"
            assert gd.direct_bytes % DIRECT_ALIGN == 0
        else:
            assert gd.direct_bytes == 0


def _resident_pages(path) -> int:
    """Pages of ``path`` in the page cache (mincore over a read-only mapping, which faults nothing in)."""
    import ctypes

    size = os.path.getsize(path)
    m = np.memmap(path, dtype=np.uint8, mode="r")
    n = -(-size // mmap.PAGESIZE)
    vec = (ctypes.c_ubyte * n)()
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    assert libc.mincore(ctypes.c_void_p(m.ctypes.data), ctypes.c_size_t(size), vec) == 0, ctypes.get_errno()
    del m
    return sum(v & 1 for v in vec)


@pytest.mark.skipif(not sys.platform.startswith("linux") or arrays_mod._FADV_DONTNEED is None,
                    reason="mincore and POSIX_FADV_DONTNEED are Linux's")
def test_synced_chunk_files_leave_the_page_cache_and_read_back(tmp_path, monkeypatch):
    """An ingest writes each page once: once fsynced, a chunk file's pages are dropped from the
    page cache (kept, the cache grew by every byte written and each new page cost its memory),
    and the rows read back from disk. Without the advice the pages stay (the check can fail)."""
    probe = tmp_path / "probe.bin"  # does this file system drop clean pages when advised? (tmpfs: no)
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.write(fd, b"x" * (1 << 20))
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if _resident_pages(probe) > 0:
        pytest.skip("this file system keeps pages in the page cache whatever the advice (tmpfs?)")
    meta = _meta(576, "float32", 227)
    resident = {}
    for mode in ("drop", "keep"):
        if mode == "keep":
            monkeypatch.setattr(arrays_mod, "_FADV_DONTNEED", None)
        g = _group(tmp_path / mode, monkeypatch, "0")
        g.create(meta)
        g.write_rows(meta, 0, data := np.random.default_rng(5).standard_normal((1000, 576), dtype=np.float32),
                     None, sync=False)
        files = [p for p in (g.dir / meta.name).iterdir() if p.name != "zarr.json"]  # (not read: no pages)
        before = sum(_resident_pages(f) for f in files)
        g.sync()
        resident[mode] = (before, sum(_resident_pages(f) for f in files))
        np.testing.assert_array_equal(g.read_span(meta, 0, 1000), data)
    assert resident["drop"][0] > 0 and resident["drop"][1] == 0, resident
    assert resident["keep"][1] >= resident["keep"][0] > 0, resident


def _refusing_direct(real_open):
    """``os.open`` as a file system without direct I/O answers: EINVAL for O_DIRECT."""
    def no_direct(path, flags, *a):
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *a)
    return no_direct


def test_refused_direct_open_falls_back_to_the_page_cache(tmp_path, monkeypatch):
    no_direct = _refusing_direct(os.open)
    meta = _meta(*LAYOUTS[0])
    ref = _group(tmp_path / "ref", monkeypatch, "0")
    ref.create(meta)
    ref_crcs, _ = _appends(ref, meta, [500, 900, 3], 5)
    g = _group(tmp_path / "g", monkeypatch, "1")
    monkeypatch.setattr(arrays_mod.os, "open", no_direct)
    g.create(meta)
    crcs, _ = _appends(g, meta, [500, 900, 3], 5)
    assert not g.direct and g.direct_bytes == 0
    assert crcs == ref_crcs and _chunk_files(g, meta) == _chunk_files(ref, meta)


def test_direct_write_refused_midway_is_finished_through_the_page_cache(tmp_path, monkeypatch):
    if not _direct_supported(tmp_path):
        pytest.skip("this file system refuses O_DIRECT")
    real_open, real_pwrite = os.open, os.pwrite
    direct_fds: set[int] = set()

    def tracking_open(path, flags, *a):
        fd = real_open(path, flags, *a)
        if flags & os.O_DIRECT:
            direct_fds.add(fd)
        return fd

    calls = {"n": 0}

    def refusing_pwrite(fd, buf, off):
        if fd in direct_fds:
            calls["n"] += 1
            if calls["n"] > 2:  # the first direct writes land, then the file system says no
                raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, buf, off)

    meta = _meta(*LAYOUTS[2])  # 600 KB chunks: each append spans several
    sizes = [4000, 1, 2999, 6000]
    ref = _group(tmp_path / "ref", monkeypatch, "0")
    ref.create(meta)
    ref_crcs, data = _appends(ref, meta, sizes, 9)
    g = _group(tmp_path / "g", monkeypatch, "1")
    monkeypatch.setattr(arrays_mod.os, "open", tracking_open)
    monkeypatch.setattr(arrays_mod.os, "pwrite", refusing_pwrite)
    g.create(meta)
    crcs, _ = _appends(g, meta, sizes, 9)
    assert calls["n"] == 3 and not g.direct and g.direct_bytes >= 2 * DIRECT_MIN
    assert crcs == ref_crcs and _chunk_files(g, meta) == _chunk_files(ref, meta)
    np.testing.assert_array_equal(g.read_span(meta, 0, len(data)), data)


def test_a_store_written_with_direct_io_verifies_and_reads_back(tmp_path, monkeypatch):
    from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site
    from actstore.verify import verify

    key = ArrayKey(Site("resid_post", 0))
    rng = np.random.default_rng(3)
    sizes = [[700, 1300], [5], [2500, 1, 900]]  # tokens per record, per batch
    data = [rng.standard_normal((sum(b), 576)).astype(np.float32) for b in sizes]
    used = {}
    for mode in ("1", "0"):
        monkeypatch.setenv("ACTSTORE_DIRECT_IO", mode)
        with actstore.open(tmp_path / mode, read_only=False, create=True) as st:
            st.set_model(ModelInfo("m", "float32", 1, 576, 1536))
            st.declare_arrays([ArraySpec(key, 576, "float32")])
            for i, (nt, x) in enumerate(zip(sizes, data)):
                nt = np.array(nt)
                st.append(Batch(n_tokens=nt, prompt_lens=nt // 2, token_ids=np.zeros(len(x), np.int64),
                                roles=np.zeros(len(x), np.int8), token_arrays={key: x}, record_arrays={},
                                response_ids=[f"b{i}r{j}" for j in range(len(nt))], key=f"b{i}"))
            used[mode] = sum(g.direct_bytes for g in st.arrays_io.groups)
    for mode in ("1", "0"):
        with actstore.open(tmp_path / mode) as st:
            assert verify(st).ok
            np.testing.assert_array_equal(st.read("resid_post", 0), np.concatenate(data))
    assert used["0"] == 0
    assert (used["1"] > 0) == _direct_supported(tmp_path)


def test_direct_io_is_off_unless_asked_for_and_a_bad_setting_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("ACTSTORE_DIRECT_IO", raising=False)
    assert not LocalGroup(tmp_path / "default", read_only=False).direct
    monkeypatch.setenv("ACTSTORE_DIRECT_IO", "sometimes")
    with pytest.raises(UsageError, match="ACTSTORE_DIRECT_IO must be 1 or 0"):
        actstore.open(tmp_path / "s", read_only=False, create=True)
    assert not (tmp_path / "s" / "catalog.duckdb").exists()


@pytest.mark.parametrize("encoding", [{"name": "default"}, {"name": "default", "separator": "."},
                                      {"name": "v2"}, {"name": "v2", "separator": "/"}])
def test_chunk_file_names_follow_zarrs_own_encoding(encoding):
    import json

    import zarr
    from zarr.core.buffer import default_buffer_prototype
    from zarr.storage import MemoryStore

    from actstore.arrays import _chunk_key

    a = zarr.create_array(store=MemoryStore(), shape=(100, 4), chunks=(10, 4), dtype="f4",
                          chunk_key_encoding=encoding)
    doc = json.loads(a.metadata.to_buffer_dict(default_buffer_prototype())["zarr.json"].to_bytes())
    for k in (0, 7, 123):
        assert _chunk_key(doc, k) == a.metadata.encode_chunk_key((k, 0))


def test_new_arrays_keep_chunk_files_side_by_side_and_zarr_reads_them(tmp_path):
    import zarr

    meta = _meta(*LAYOUTS[2])
    g = LocalGroup(tmp_path, read_only=False, durable=True)
    g.create(meta)
    _, data = _appends(g, meta, [4000, 2500], 1)
    names = sorted(p.name for p in (tmp_path / meta.name).iterdir())
    assert names == ["c.0.0", "c.1.0", "c.2.0", "c.3.0", "c.4.0", "zarr.json"]
    z = zarr.open_array(tmp_path / meta.name, mode="r")
    assert z.shape[0] >= 6500 and np.array_equal(z[:6500], data)


def test_arrays_of_older_stores_keep_one_directory_per_chunk(tmp_path):
    """An array made before side-by-side chunk files (``c/<i>/0``) is appended, trimmed and read
    under its own names."""
    import json

    import zarr

    meta = _meta(*LAYOUTS[2])
    g = LocalGroup(tmp_path, read_only=False, durable=True)
    g.create(meta)
    path = tmp_path / meta.name / "zarr.json"
    doc = json.loads(path.read_bytes())
    doc["chunk_key_encoding"] = {"name": "default", "configuration": {"separator": "/"}}
    path.write_bytes(json.dumps(doc).encode())
    old = LocalGroup(tmp_path, read_only=False, durable=True)  # a later writer opens the store
    _, data = _appends(old, meta, [4000, 2500], 2)
    old.sync()
    old.trim(meta, 6500)
    assert sorted(p.name for p in (tmp_path / meta.name / "c").iterdir()) == ["0", "1", "2", "3", "4"]
    assert not list((tmp_path / meta.name).glob("c.*"))
    z = zarr.open_array(tmp_path / meta.name, mode="r")
    assert z.shape[0] == 6500 and np.array_equal(z[:], data)
    np.testing.assert_array_equal(LocalGroup(tmp_path, read_only=True).read_span(meta, 100, 6400), data[100:6400])


@pytest.mark.parametrize("seed", range(3))
def test_chunk_checksums_are_zlibs_crc32_continued_across_appends(seed):
    """The write path's CRC-32 (zlib-ng's where installed) is the standard library's checksum,
    also when it continues a recorded prefix: stores written before and after agree, and verify
    compares against zlib's values."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=int(rng.integers(1, 3 << 20)), dtype=np.uint8)
    cuts = np.sort(rng.integers(0, len(data), size=5))
    crc, lo = 0, 0
    for hi in [*cuts, len(data)]:
        crc = arrays_mod.crc32(data[lo:hi].data, crc)
        lo = hi
    assert crc == zlib.crc32(data.data)
    assert arrays_mod.crc32(b"") == 0 and arrays_mod.crc32(b"", 77) == 77


def test_write_batch_then_commit_batch_equals_append_and_shows_nothing_before_the_commit(tmp_path):
    """The two halves of an append: the same rows, bits, catalog and checksums as append; between
    them the batch is invisible (even to the writer), its buffers may be overwritten, a second
    write_batch or a stranger's commit is one clear error, and the batch can be written again
    after a failed commit."""
    from actstore.verify import verify
    from tests.actstore import synth
    from tests.actstore.conftest import expected

    n = 12
    ref = actstore.open(tmp_path / "ref", read_only=False, create=True)
    synth.write(ref, n)
    st = actstore.open(tmp_path / "s", read_only=False, create=True)
    st.set_model(synth.MODEL, vocab=[f"tok{i}" for i in range(50)])
    st.declare_arrays(synth.specs())
    for i in range(n):
        b = synth.batch(i)
        w = st.write_batch(b)
        rows, records = st.n_rows, st.n_records
        assert st.sql("SELECT count(*) FROM batches").fetchall()[0][0] == i
        with pytest.raises(UsageError, match="waiting for its commit_batch"):
            st.write_batch(synth.batch(i + 1))
        with pytest.raises(UsageError, match="waiting for its commit_batch"):
            st.append(synth.batch(i + 1))  # its rows would land on the waiting batch's
        for a in (*b.token_arrays.values(), *b.record_arrays.values()):
            a[...] = 0  # the caller reuses its buffers: what was written must not change
        if i == 3:  # a commit that fails rolls back; the batch is written and committed again
            real, st._put_crcs_many = st._put_crcs_many, lambda *_: (_ for _ in ()).throw(OSError("disk gone"))
            with pytest.raises(OSError, match="disk gone"):
                st.commit_batch(w)
            st._put_crcs_many = real
            assert (st.n_rows, st.n_records) == (rows, records)
            with pytest.raises(UsageError, match="write it again"):
                st.commit_batch(w)
            w = st.write_batch(synth.batch(i))
        assert st.commit_batch(w) == i and st.commit_batch(w) == i  # a second commit is a no-op
        assert st.n_records == records + synth.batch(i).n_records
    assert st.write_batch(synth.batch(0)).batch_id == 0  # a committed key is skipped, as by append
    st.close()
    ref.close()
    with actstore.open(tmp_path / "s") as a, actstore.open(tmp_path / "ref") as b:
        assert verify(a).ok
        for table in ("records", "tokens", "chunk_checksums"):
            q = f"SELECT * FROM {table} ORDER BY ALL"
            assert a.sql(q).fetchall() == b.sql(q).fetchall(), table
        for name, want in expected(n).items():
            meta = next(m for m in a.arrays() if m.name == name)
            assert np.array_equal(a.arrays_io.read_span(meta, 0, meta.n_rows), want), name


def _aligned(a: np.ndarray) -> np.ndarray:
    """A page-aligned copy of ``a`` (an anonymous mapping), as the capture stage's buffers are."""
    m = mmap.mmap(-1, max(1, a.nbytes))
    b = np.frombuffer(m, dtype=a.dtype, count=a.size).reshape(a.shape)
    b[...] = a
    return b


def _deferred_supported(path) -> bool:
    return _direct_supported(path) and arrays_mod.dio_alignment(path) is not None


@pytest.mark.parametrize("seed", [0, 1])
def test_deferred_direct_writes_equal_buffered_writes_byte_for_byte(tmp_path, monkeypatch, seed):
    """write_rows(defer=True, sync=False), as Store.write_batch(defer=True) calls it: chunk files
    and checksums equal those of plain writes, from page-aligned sources (most bytes written
    with O_DIRECT by sync) and from unaligned ones (through the page cache)."""
    monkeypatch.delenv("ACTSTORE_DIRECT_IO", raising=False)
    rng = np.random.default_rng(seed)
    direct = 0
    for width, dtype, chunk_rows in LAYOUTS:
        meta = _meta(width, dtype, chunk_rows)
        sizes = [int(x) for x in rng.choice([1, 7, 31, 150, 600, 2 * chunk_rows + 3], size=12)]
        data = rng.integers(0, 2**16, size=(sum(sizes), width)).astype(dtype)
        ref = LocalGroup(tmp_path / f"ref-{width}-{seed}", read_only=False)
        g = LocalGroup(tmp_path / f"def-{width}-{seed}", read_only=False)
        for x in (ref, g):
            x.create(meta)
        tails: dict = {}
        lo = 0
        for i, n in enumerate(sizes):
            part = data[lo : lo + n]
            src = _aligned(part) if i % 3 else part[:, :].copy()
            tail = tails.get(lo // chunk_rows) if lo % chunk_rows else None
            want = ref.write_rows(meta, lo, part, tail)
            got = g.write_rows(meta, lo, src, tail, sync=False, defer=True)
            assert got == want
            tails.update({c: (r, crc) for c, r, crc in got})
            if i % 4 == 1:  # a sync between appends, as each commit is
                g.sync()
            lo += n
        g.sync()
        assert not g._deferred
        assert _chunk_files(g, meta) == _chunk_files(ref, meta)
        np.testing.assert_array_equal(g.read_span(meta, 0, lo), data)
        direct += g.direct_bytes
    # Rows of 400 bytes rarely start where a 512-byte aligned source meets an aligned offset;
    # the other layouts do, often.
    if _deferred_supported(tmp_path):
        assert direct > 0, "direct I/O works here but nothing was deferred"
    else:
        assert direct == 0


def test_deferred_bytes_are_read_from_the_callers_array_at_sync(tmp_path, monkeypatch):
    """No copy: what sync writes is the caller's array as it is then (so the capture stage keeps a
    batch's buffers until its commit), and only the aligned middle waits: the unaligned head and
    tail go through the page cache at once. Changed after sync, the file keeps what was synced."""
    monkeypatch.delenv("ACTSTORE_DIRECT_IO", raising=False)
    meta = _meta(576, "float32", 227)
    g = LocalGroup(tmp_path / "g", read_only=False)
    g.create(meta)
    [(_, n0, crc0)] = g.write_rows(meta, 0, np.full((1, 576), 0.5, np.float32), None)
    align = arrays_mod.dio_alignment(g._chunk_file(meta, 0))
    if align is None or not _direct_supported(tmp_path):
        pytest.skip("this file system has no direct I/O: nothing is deferred")
    buf = _aligned(np.full((201, 576), 1.0, np.float32))
    src = buf[1:]  # row 1 of a page-aligned buffer, bound for row 1 of the chunk: aligned alike
    g.write_rows(meta, 1, src, (n0, crc0), sync=False, defer=True)
    assert len(g._deferred) == 1 and g.direct_bytes == 0
    src[...] = 2.0
    g.sync()
    src[...] = 3.0
    got = g.read_span(meta, 0, 201).reshape(-1)
    a0 = -(-576 * 4 // align[1]) * align[1] // 4  # the first and last deferred values
    a1 = 201 * 576 * 4 // align[1] * align[1] // 4
    assert g.direct_bytes == (a1 - a0) * 4 > 0
    assert np.all(got[:576] == 0.5) and np.all(got[576:a0] == 1.0) and np.all(got[a1:] == 1.0)
    assert np.all(got[a0:a1] == 2.0)


def test_refused_deferred_writes_land_through_the_page_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("ACTSTORE_DIRECT_IO", raising=False)
    monkeypatch.setattr(arrays_mod, "dio_alignment", lambda path: (512, 512))
    no_direct = _refusing_direct(os.open)
    meta = _meta(*LAYOUTS[2])
    data = np.random.default_rng(4).standard_normal((5000, meta.width)).astype(np.float32)
    g = LocalGroup(tmp_path / "g", read_only=False)
    g.create(meta)
    monkeypatch.setattr(arrays_mod.os, "open", no_direct)
    src = _aligned(data)
    g.write_rows(meta, 0, src, None, sync=False, defer=True)
    assert g._deferred
    g.sync()
    assert not g.defer_direct and g.direct_bytes == 0
    np.testing.assert_array_equal(g.read_span(meta, 0, len(data)), data)


def test_a_failed_commit_drops_its_deferred_writes(tmp_path, monkeypatch):
    """A batch written with defer=True whose commit fails before its sync: written again, shorter,
    it must not get the failed attempt's bytes (queued, they would land over its unaligned tail,
    written through the page cache). The store verifies and holds the second attempt's rows."""
    from actstore import ArrayKey, ArraySpec, Batch, ModelInfo, Site
    from actstore.verify import verify

    monkeypatch.delenv("ACTSTORE_DIRECT_IO", raising=False)
    key = ArrayKey(Site("resid_post", 0))
    rng = np.random.default_rng(8)

    def batch(i, n, fill=None):
        x = _aligned(rng.standard_normal((n, 576)).astype(np.float32) if fill is None else np.full((n, 576), fill, np.float32))
        nt = np.array([n])
        return x, Batch(n_tokens=nt, prompt_lens=nt // 2, token_ids=np.zeros(n, np.int64), roles=np.zeros(n, np.int8),
                        token_arrays={key: x}, record_arrays={}, response_ids=[f"r{i}"], key=f"b{i}")

    with actstore.open(tmp_path / "s", read_only=False, create=True) as st:
        st.set_model(ModelInfo("m", "float32", 1, 576, 1536))
        st.declare_arrays([ArraySpec(key, 576, "float32")])
        x0, b0 = batch(0, 300)  # the next batch starts 512-byte aligned: most of it is deferred
        st.commit_batch(st.write_batch(b0, defer=True))
        _, b1 = batch(1, 900, fill=7.0)
        w = st.write_batch(b1, defer=True)
        real = st.arrays_io.sync
        st.arrays_io.sync = lambda *a: (_ for _ in ()).throw(OSError("disk gone"))
        with pytest.raises(OSError, match="disk gone"):
            st.commit_batch(w)
        st.arrays_io.sync = real
        x1, b1 = batch(1, 451)
        st.commit_batch(st.write_batch(b1, defer=True))
        deferred = sum(g.direct_bytes for g in st.arrays_io.groups)
    with actstore.open(tmp_path / "s") as st:
        assert verify(st).ok
        np.testing.assert_array_equal(st.read("resid_post", 0), np.concatenate([x0, x1]))
    assert (deferred > 0) == _deferred_supported(tmp_path)
