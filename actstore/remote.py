"""Read-only stores behind a URL (http(s)://, s3://, gs://, hf://, anything fsspec opens).

Opening fetches ``catalog.duckdb`` once into a local cache and revalidates it cheaply on later
opens; arrays stay remote and are read chunk by chunk. For raw (uncompressed, unsharded) arrays
only the byte ranges of the rows asked for are fetched, nearby rows coalesced into one request;
other arrays go through Zarr's ``FsspecStore``, one whole chunk per request. fsspec is imported
only here, and only when a URL is opened.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from actstore.errors import ActstoreError, IntegrityError, RemoteError, UsageError
from actstore.layout import group_rows_by_chunk, spans

#: Rows closer than this many bytes apart are fetched in one request: a round trip costs far
#: more than 64 KiB of transfer on any link where remote reading makes sense.
COALESCE_GAP = 64 << 10
#: The catalog's validators: any of these changing means the cached copy is stale.
VALIDATORS = ("size", "ETag", "etag", "Last-Modified", "LastModified", "last_modified", "mtime", "updated",
              "created", "md5", "md5Hash", "Content-MD5", "blob_id", "sha")
#: fsspec protocols whose implementation lives in another package: the extra that brings it.
_EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "hf": "hf", "http": "remote", "https": "remote"}

T = TypeVar("T")


def is_url(text: str | os.PathLike[str]) -> bool:
    """``s3://b/x`` and ``https://h/x`` are URLs; plain paths (and ``file://``) are not remote."""
    s = str(text)
    return "://" in s and not s.startswith("file://")


def protocol(url: str) -> str:
    return url.split("://", 1)[0].lower()


def filesystem(url: str, asynchronous: bool = False) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URL, with one-line errors for missing packages."""
    proto = protocol(url)
    try:
        import fsspec
    except ImportError:
        raise UsageError("reading a store by URL needs fsspec; install it: pip install 'actstore[remote]'") from None
    try:
        if asynchronous:
            return fsspec.url_to_fs(url, asynchronous=True)
        return fsspec.url_to_fs(url)
    except ImportError as err:
        missing = getattr(err, "name", None) or f"the fsspec backend for {proto}://"
        extra = _EXTRAS.get(proto)
        how = f"pip install 'actstore[{extra}]'" if extra else f"install fsspec's backend for {proto}://"
        raise UsageError(f"{proto}:// URLs need {missing}, which is not installed; {how}") from None
    except ValueError as err:
        raise UsageError(f"cannot open {url}: {str(err).splitlines()[0]}; use a path or an fsspec URL "
                         "(http(s)://, s3://, gs://, hf://)") from None


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts if p]])


def _describe(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class Transient(RemoteError):
    """A transfer that may work when tried again: a dropped connection, a short read, a timeout."""


def retries() -> int:
    """Retries after a failed transfer: ``$ACTSTORE_RETRIES`` (default 3; 0 turns them off)."""
    try:
        return max(0, int(os.environ.get("ACTSTORE_RETRIES", "3")))
    except ValueError:
        raise UsageError(f"ACTSTORE_RETRIES must be a whole number, not {os.environ['ACTSTORE_RETRIES']!r}") from None


def _wait(attempt: int) -> None:
    # 0.5 s, 1 s, 2 s, ... ($ACTSTORE_RETRY_WAIT sets the first), capped at 30 s
    try:
        first = float(os.environ.get("ACTSTORE_RETRY_WAIT", "0.5"))
    except ValueError:
        first = 0.5
    time.sleep(min(30.0, first * 2 ** attempt))


def _permanent(err: BaseException) -> bool:
    # Missing files, refused permissions, bad arguments and actstore's own verdicts do not get better
    # by asking again; everything a transport raises otherwise (connection reset, timeout, 5xx) may.
    return isinstance(err, (ActstoreError, FileNotFoundError, PermissionError, ValueError, TypeError,
                            KeyError, NotImplementedError, AttributeError)) and not isinstance(err, Transient)


def call(what: str, attempt: Callable[[], T]) -> T:
    """Run one transfer, trying again after transient failures (see :func:`retries`); the last
    failure becomes one :class:`RemoteError` line that says how many attempts were made.

    ``attempt`` must be safe to repeat (every read is) and raises :class:`Transient` for failures
    it detects itself, such as a response shorter than asked.
    """
    tries = 1 + retries()
    for k in range(tries):
        try:
            return attempt()
        except BaseException as err:
            if isinstance(err, (KeyboardInterrupt, SystemExit)) or _permanent(err):
                raise
            if k + 1 < tries:
                _wait(k)
                continue
            after = f" after {tries} attempts" if tries > 1 else ""
            if isinstance(err, Transient):
                raise RemoteError(f"{err}{after}") from None
            raise RemoteError(f"{what} failed{after} ({_describe(err)}); check the URL, the network and that "
                              "the server is up, then retry") from None
    raise AssertionError("unreachable")


# -- the catalog cache ---------------------------------------------------------------------------
def cache_root() -> Path:
    """``$ACTSTORE_CACHE``, else ``$XDG_CACHE_HOME/actstore``, else ``~/.cache/actstore``."""
    env = os.environ.get("ACTSTORE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "actstore"


def cache_dir(url: str) -> Path:
    return cache_root() / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:20]


def _validators(info: dict) -> dict:
    return {k: str(info[k]) for k in VALIDATORS if info.get(k) is not None}


def fetch_catalog(url: str) -> Path:
    """The store's ``catalog.duckdb``, from the cache when the remote one is unchanged.

    A fresh copy is downloaded to a temp file, checked against the advertised size and only then
    renamed into place, so a transfer that dies halfway never leaves a corrupt cache. When the
    server offers no validator besides the size (which a rewritten DuckDB file often keeps), the
    catalog is downloaded on every open.
    """
    fs, base = filesystem(url)
    rpath = join(base, "catalog.duckdb")
    what = f"reading {join(url, 'catalog.duckdb')}"

    def stat() -> dict:
        try:
            return fs.info(rpath)
        except FileNotFoundError as err:
            cause = err.__cause__  # fsspec's HTTP info() reports any failure as not-found
            if cause is not None and getattr(cause, "status", None) not in (403, 404, 410):
                raise Transient(f"{what} failed ({_describe(cause)}); check the URL, the network and that the "
                                "server is up, then retry") from None
            raise

    try:
        info = call(what, stat)
    except FileNotFoundError:
        from actstore.errors import NotAStoreError

        raise NotAStoreError(f"{url} is not an actstore store (no catalog.duckdb there); check the URL") from None
    want = _validators(info)
    d = cache_dir(url)
    d.mkdir(parents=True, exist_ok=True)
    db, stamp = d / "catalog.duckdb", d / "catalog.json"
    strong = set(want) - {"size"}
    if strong and db.exists() and stamp.exists():
        try:
            if json.loads(stamp.read_text()).get("validators") == want:
                return db
        except (OSError, ValueError):
            pass  # an unreadable stamp only costs a download
    tmp = d / f"catalog.duckdb.tmp-{os.getpid()}-{threading.get_ident()}"
    what = f"downloading {join(url, 'catalog.duckdb')}"

    def download() -> None:
        fs.get_file(rpath, str(tmp))
        size = tmp.stat().st_size
        if info.get("size") is not None and size != int(info["size"]):
            raise Transient(f"{what} stopped at {size} of {info['size']} bytes; retry (the cache was left as it was)")

    try:
        call(what, download)
        # The stamp goes first: a crash between the two renames leaves no stamp, so the next
        # open downloads again instead of trusting a mismatched pair.
        stamp.unlink(missing_ok=True)
        os.replace(tmp, db)
        stamp_tmp = d / f"catalog.json.tmp-{os.getpid()}"
        stamp_tmp.write_text(json.dumps({"url": url, "validators": want}))
        os.replace(stamp_tmp, stamp)
    finally:
        tmp.unlink(missing_ok=True)
    return db


# -- arrays ----------------------------------------------------------------------------------------
def coalesce(local: np.ndarray, row_bytes: int, gap: int = COALESCE_GAP) -> list[tuple[int, int]]:
    """Sorted rows of one chunk -> row runs ``[a, b)`` to fetch, merging runs less than ``gap`` apart."""
    u = np.unique(local)
    if u.size == 0:
        return []
    max_skip = max(0, gap // max(1, row_bytes))
    cuts = np.flatnonzero(np.diff(u) - 1 > max_skip) + 1
    return [(int(p[0]), int(p[-1]) + 1) for p in np.split(u, cuts)]


class RemoteGroup:
    """One segment's Zarr group behind a URL, read-only, in local rows (see ``arrays.LocalGroup``)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.fs, self.base = filesystem(url)
        self._zstore = None
        self._open: dict[str, Any] = {}
        self.bytes_fetched = 0
        self.requests = 0

    def _zarr_store(self):
        if self._zstore is None:
            from zarr.storage import FsspecStore

            self._zstore = call(f"opening {self.url}", lambda: FsspecStore.from_url(self.url, read_only=True))
        return self._zstore

    def array(self, name: str):
        arr = self._open.get(name)
        if arr is None:
            import zarr

            try:
                arr = call(f"reading {join(self.url, name, 'zarr.json')}",
                           lambda: zarr.open_array(store=self._zarr_store(), path=name, mode="r", zarr_format=3))
            except FileNotFoundError:
                raise IntegrityError(f"{join(self.url, name)}: array metadata is missing; "
                                     "run 'actstore verify' on the store") from None
            self._open[name] = arr
        return arr

    def exists(self, name: str) -> bool:
        return bool(call(f"reading {self.url}", lambda: self.fs.exists(join(self.base, name, "zarr.json"))))

    def chunk_key(self, meta, chunk: int) -> str:
        return f"{meta.name}/" + self.array(meta.name).metadata.encode_chunk_key((chunk // meta.shard_chunks, 0))

    def file_size(self, key: str) -> int | None:
        """Bytes of the file ``key`` of this group (None when the server does not say); raises
        FileNotFoundError when it is not there. For verify's size checks."""
        path = join(self.base, key)
        size = call(f"reading {join(self.url, key)}", lambda: self.fs.info(path)).get("size")
        return None if size is None else int(size)

    def read_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes ``[start, end)`` of the file ``key`` of this group (a shard's index, for verify)."""
        path = join(self.base, key)
        return call(f"reading {join(self.url, key)}", lambda: self.fs.cat_file(path, start=start, end=end))

    def _fetch(self, meta, reqs: list[tuple[int, int, int]]) -> list[np.ndarray]:
        """Row runs ``(chunk, a, b)`` of a raw array -> ``[b - a, width]`` blocks, in one batch of requests."""
        rb = meta.row_bytes
        paths = [join(self.base, self.chunk_key(meta, c)) for c, _, _ in reqs]
        starts = [a * rb for _, a, _ in reqs]
        ends = [b * rb for _, _, b in reqs]
        got: list[bytes | None] = [None] * len(reqs)
        what = f"reading {join(self.url, meta.name)}"

        def attempt() -> None:
            # Only the requests still missing are sent again.
            todo = [i for i, g in enumerate(got) if g is None]
            res = self.fs.cat_ranges([paths[i] for i in todo], [starts[i] for i in todo], [ends[i] for i in todo],
                                     on_error="return")
            self.requests += len(todo)
            problem = None
            for i, data in zip(todo, res):
                c, a, b = reqs[i]
                if isinstance(data, FileNotFoundError):
                    raise IntegrityError(f"{join(self.url, meta.name)}: chunk {c} is missing; run 'actstore verify'")
                if isinstance(data, BaseException):
                    if _permanent(data):
                        raise RemoteError(f"{what} chunk {c} failed ({_describe(data)}); check the URL and "
                                          "your access to it") from None
                    problem = problem or f"{what} chunk {c} failed ({_describe(data)}); check the network " \
                                         "and that the server is up, then retry"
                    continue
                self.bytes_fetched += len(data)
                if len(data) > (b - a) * rb:  # a server that ignores Range sends the whole file
                    raise RemoteError(f"{join(self.url, meta.name)} chunk {c}: asked for {(b - a) * rb} bytes, got "
                                      f"{len(data)}; the server must support HTTP range requests")
                if len(data) < (b - a) * rb:  # one that dies mid-response sends less
                    problem = problem or (f"{join(self.url, meta.name)} chunk {c}: asked for {(b - a) * rb} bytes, "
                                          f"got {len(data)}; the connection dropped; retry")
                    continue
                got[i] = data
            if problem is not None:
                raise Transient(problem)

        call(what, attempt)
        blocks = [g for g in got if g is not None]  # all of them, once call returns
        return [np.frombuffer(data, dtype=meta.np_dtype).reshape(b - a, meta.width)
                for (c, a, b), data in zip(reqs, blocks)]

    def read_span(self, meta, lo: int, hi: int) -> np.ndarray:
        if not meta.raw:
            return call(f"reading {join(self.url, meta.name)}", lambda: np.asarray(self.array(meta.name)[lo:hi]))
        parts = spans(lo, hi, meta.chunk_rows)
        blocks = self._fetch(meta, [(sp.chunk, sp.lo - sp.start, sp.hi - sp.start) for sp in parts])
        return blocks[0].copy() if len(blocks) == 1 else np.concatenate(blocks)

    def gather(self, meta, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows), meta.width), dtype=meta.np_dtype)
        plan = group_rows_by_chunk(rows, meta.chunk_rows)
        if not meta.raw:
            for chunk, local, pos in plan:
                start = chunk * meta.chunk_rows
                lo, hi = int(local[0]), int(local[-1]) + 1
                out[pos] = self.read_span(meta, start + lo, start + hi)[local - lo]
            return out
        reqs, where = [], []
        for chunk, local, pos in plan:
            for a, b in coalesce(local, meta.row_bytes):
                i, j = np.searchsorted(local, [a, b])  # local is sorted
                reqs.append((chunk, a, b))
                where.append((local[i:j] - a, pos[i:j]))
        for block, (idx, pos) in zip(self._fetch(meta, reqs), where):
            out[pos] = block[idx]
        return out

    # A remote store is never written.
    def create(self, *a: Any, **k: Any) -> None:
        raise _read_only(self.url)

    def write_rows(self, *a: Any, **k: Any) -> list:
        raise _read_only(self.url)

    def trim(self, *a: Any, **k: Any) -> None:
        pass  # nothing was written, nothing to trim

    def discard_deferred(self) -> None:
        pass  # nothing was written, nothing queued


def _read_only(url: str) -> ActstoreError:
    from actstore.errors import ReadOnlyError

    return ReadOnlyError(f"{url} is a remote store and is read-only; copy it with 'actstore pull {url} DIR' "
                         "and write to the copy")
