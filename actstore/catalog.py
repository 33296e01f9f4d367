"""The DuckDB side of a store: connections, the writer protocol, bulk inserts.

Why a working copy: DuckDB lets one process write a database file and no other process read it
meanwhile. Readers must never wait on an ingest (DESIGN.md invariant 3), so the writer never
touches ``catalog.duckdb``. It holds ``.writer.lock``, works on ``catalog.wip.duckdb``, and
*publishes* by checkpointing the working copy, copying it to a temp file, fsyncing and renaming
it over ``catalog.duckdb``. A rename is atomic: a reader opens either the old or the new catalog,
and one already open keeps its snapshot. After a crash the working copy is the truth (every
transaction in it was durably committed) and the next writer publishes it on open.

Why a sandbox: a reader's SQL is the user's, and DuckDB can write files (``COPY ... TO``,
``EXPORT DATABASE``), attach and create databases, install and load extensions. A read-only open
attaches its catalog, then turns all of that off with DuckDB's own settings and locks them
(:func:`sandbox`), so no statement on a read-only store can change a file, in the store or
anywhere else. Exports go through Python (``actstore sql --format ... --out FILE``).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from actstore import migrations
from actstore.errors import (
    ActstoreError,
    CatalogDamagedError,
    FormatVersionError,
    NotAStoreError,
    QueryError,
    ReadOnlyError,
    WriterBusyError,
)

CATALOG = "catalog.duckdb"
WIP = "catalog.wip.duckdb"
LOCK = ".writer.lock"
ALIAS = "cat"


def _sql_str(text: str) -> str:
    return "'" + str(text).replace("'", "''") + "'"


def fsync_path(path: Path, advice: int | None = None) -> None:
    """fsync a file or directory (directories make renames durable); then, if given, pass
    ``advice`` (an ``os.POSIX_FADV_*``) for the whole file: advice only, a refusal is ignored."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        if advice is not None:
            try:
                os.posix_fadvise(fd, 0, 0, advice)
            except OSError:
                pass  # the data is durable either way
    finally:
        os.close(fd)


BLOCK_SIZE = 65536


def _attach(db_file: Path, read_only: bool) -> duckdb.DuckDBPyConnection:
    # A private in-memory instance per Store, with the catalog attached: two Stores in one process
    # never share DuckDB's per-path instance cache, so each sees the snapshot it opened.
    con = duckdb.connect(":memory:", config={"threads": "2"})
    # A new catalog gets 64 KiB blocks, not DuckDB's 256 KiB: every table with rows holds at least
    # a block, so a small store's catalog was ~6 MiB of mostly empty blocks (now ~1 MiB). Scans
    # of a 10M-row tokens table measured the same size on disk and within ~20% of the time.
    mode = " (READ_ONLY)" if read_only else "" if db_file.exists() else f" (BLOCK_SIZE {BLOCK_SIZE})"
    con.execute(f"ATTACH {_sql_str(str(db_file))} AS {ALIAS}{mode}")
    con.execute(f"USE {ALIAS}")
    return con


#: What a read-only connection is locked into, in order (see :func:`sandbox`).
SANDBOX = (
    "enable_external_access = false",  # no file or URL is opened by SQL: COPY, ATTACH, INSTALL, read_*
    "autoinstall_known_extensions = false",
    "autoload_known_extensions = false",
    "allow_community_extensions = false",
    "lock_configuration = true",  # no SET, RESET or PRAGMA can lift any of the above
)


def sandbox(con: duckdb.DuckDBPyConnection) -> None:
    """Lock a read-only connection: its SQL can no longer write, read or attach files, install
    or load extensions, or change a setting (DuckDB's ``enable_external_access`` off, extension
    autoloading off, then ``lock_configuration``). Files already attached stay readable.

    A query bigger than memory still spills, into a private directory under the system's temp
    directory that DuckDB makes on demand and removes when the connection closes (DuckDB's
    default, ``.tmp`` in the working directory, could be inside the store).
    """
    spill = Path(tempfile.gettempdir()) / f"actstore-spill-{os.getpid()}-{uuid.uuid4().hex[:12]}"
    con.execute(f"SET temp_directory = {_sql_str(str(spill))}")  # must precede the lock-down
    for setting in SANDBOX:
        con.execute(f"SET {setting}")


#: Phrases of DuckDB errors that mean the database file itself is bad: a block whose checksum
#: fails, a file cut short, a header that is not DuckDB's (what damaging and truncating catalogs at
#: random positions produced; see tests/actstore/test_damage.py).
_DAMAGE = ("corrupt database file", "could not read enough bytes", "not a valid duckdb database file")


def _first(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def damage(err: BaseException, where: "str | Path | None" = None, root: Path | None = None,
           file: str = CATALOG) -> CatalogDamagedError | None:
    """The one-line error for a DuckDB error that means a damaged or truncated catalog, else None.

    ``where`` names the store; ``root`` (a local store's directory) lets the line say whether a
    crashed writer's working copy can restore it; ``file`` is the catalog file that failed.
    """
    if not isinstance(err, duckdb.Error):
        return None
    first = _first(err)
    if not any(p in first.lower() for p in _DAMAGE):
        return None
    return damage_line(first, where, root, file)


_FILE_UNIT = 4096  # DuckDB's header blocks and every storage block size are multiples of this


def damage_line(first: str, where: "str | Path | None", root: Path | None = None,
                file: str = CATALOG) -> CatalogDamagedError:
    """The one-line damaged-catalog error for a reason found without DuckDB (see :func:`damage`)."""
    what = f"{where}: {file}" if where is not None else f"the store's {file}"
    if root is not None and file != WIP and (root / WIP).exists():
        fix = (f"a crashed writer's working copy {WIP} is there: open the store for writing "
               "(rerun the ingest) to publish it again")
    else:
        fix = ("restore it from a copy of the store ('actstore publish' and 'actstore pull' make one) "
               "or a backup, then check the store with 'actstore verify'")
    return CatalogDamagedError(f"{what} is damaged or truncated ({first}); {fix}")


def _check_version(con: duckdb.DuckDBPyConnection, where: "str | Path") -> int:
    have = migrations.current_version(con)
    if have == 0:
        raise NotAStoreError(f"{where} is not an actstore store (its catalog has no format version)")
    code = migrations.latest_version()
    if have > code:
        raise FormatVersionError(
            f"store {where} has format version {have}, newer than this actstore supports ({code}); "
            "upgrade actstore (pip install -U actstore)"
        )
    return have


def open_reader(root: Path, cache_dir: Path | None = None) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """Open the published catalog read-only. An older format is migrated in a private copy."""
    db = root / CATALOG
    if not db.exists():
        raise NotAStoreError(f"{root} is not an actstore store (no {CATALOG}); create one with 'actstore ingest'")
    return open_catalog_file(db, str(root), cache_dir, root=root)


def open_catalog_file(db: Path, where: "str | Path", cache_dir: Path | None = None,
                      root: Path | None = None) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """Open a catalog file read-only and sandboxed (a store's, or a remote store's cached copy).

    A truncated or damaged file raises :class:`CatalogDamagedError`, one line naming the fix.
    """
    size = db.stat().st_size
    if size % _FILE_UNIT:
        # DuckDB writes its file in whole 4 KiB header blocks and whole storage blocks; a file cut
        # anywhere else was truncated, even where the cut landed in free blocks DuckDB would not read.
        raise damage_line(f"its size, {size} bytes, is not a whole number of {_FILE_UNIT}-byte blocks",
                          where, root)
    opened: list[duckdb.DuckDBPyConnection] = []
    try:
        con = _attach(db, read_only=True)
        opened.append(con)
        if _check_version(con, where) < migrations.latest_version():
            con.close()
            con, db = _migrated_copy(db, cache_dir)
            opened.append(con)
        sandbox(con)
    except (duckdb.Error, ActstoreError) as err:
        for c in opened:
            c.close()
        bad = damage(err, where, root)
        if bad is not None:
            raise bad from None
        if isinstance(err, duckdb.IOException):
            raise NotAStoreError(f"{where}: {CATALOG} cannot be opened as a DuckDB database ({_first(err)})") from None
        raise
    return con, db


def _migrated_copy(db: Path, cache_dir: Path | None) -> tuple[duckdb.DuckDBPyConnection, Path]:
    """Never write to a store opened read-only: migrate a private copy for this session."""
    tmp = Path(tempfile.mkdtemp(prefix="actstore-migrated-", dir=cache_dir))
    copy = tmp / CATALOG
    shutil.copyfile(db, copy)
    con = _attach(copy, read_only=False)
    try:
        migrations.apply(con)
        con.execute(f"USE memory; DETACH {ALIAS}")
        con.execute(f"ATTACH {_sql_str(str(copy))} AS {ALIAS} (READ_ONLY); USE {ALIAS}")
    except BaseException:
        con.close()
        raise
    return con, copy


def writer_active(root: Path) -> bool:
    """Whether a writer holds the store now, or crashed leaving unpublished work behind."""
    return (root / WIP).exists() or writer_busy(root)


def writer_busy(root: Path) -> bool:
    """Whether a writer holds the store's lock now (this process's own writer counts too).

    A probe that changes nothing: callers about to do expensive work before opening the store
    for writing (loading a model) ask this first, so a conflict is reported in seconds.
    """
    lock = root / LOCK
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's lock, if it got it
    return False


def busy_error(root: Path) -> WriterBusyError:
    return WriterBusyError(f"another process is writing to {root}; wait for it to finish or open the store read-only")


class WriterSession:
    """Exclusive write access to a store's catalog (see module docstring)."""

    def __init__(self, root: Path, create: bool) -> None:
        self.root = root
        self._lock_fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise busy_error(root) from None
        for stale in root.glob(CATALOG + ".tmp-*"):
            stale.unlink(missing_ok=True)  # a publish interrupted before its rename
        wip, published = root / WIP, root / CATALOG
        self.recovered = wip.exists()
        if not self.recovered:
            if published.exists() and published.stat().st_size % _FILE_UNIT:
                self._unlock()
                raise damage_line(f"its size, {published.stat().st_size} bytes, is not a whole number of "
                                  f"{_FILE_UNIT}-byte blocks", root, root)
            if published.exists():
                shutil.copyfile(published, wip)
            elif not create:
                self._unlock()
                raise NotAStoreError(f"{root} is not an actstore store (no {CATALOG})")
        try:
            self.con = _attach(wip, read_only=False)
            if published.exists() or self.recovered:
                _check_version(self.con, root)
            migrations.apply(self.con)
        except BaseException as err:
            if hasattr(self, "con"):
                self.con.close()
            if not self.recovered:  # the copy we just made: a refused open changes nothing
                wip.unlink(missing_ok=True)
                Path(str(wip) + ".wal").unlink(missing_ok=True)
            self._unlock()
            bad = damage(err, root, root, WIP if self.recovered else CATALOG)
            if bad is not None:
                raise bad from None
            raise
        self.closed = False

    def publish(self) -> None:
        """Make everything committed so far visible to readers, atomically."""
        self.con.execute(f"CHECKPOINT {ALIAS}")
        tmp = self.root / f"{CATALOG}.tmp-{os.getpid()}"
        shutil.copyfile(self.root / WIP, tmp)
        fsync_path(tmp)
        os.replace(tmp, self.root / CATALOG)
        fsync_path(self.root)

    def close(self, publish: bool = True) -> None:
        if self.closed:
            return
        if publish:
            self.publish()
        self.con.close()
        self.closed = True
        if publish:
            (self.root / WIP).unlink(missing_ok=True)
            Path(str(self.root / WIP) + ".wal").unlink(missing_ok=True)
        self._unlock()

    def _unlock(self) -> None:
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)


def to_arrow(data: Any):
    """dict of columns / pandas DataFrame / pyarrow Table -> pyarrow Table."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, dict):
        return pa.table(data)
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas
        return pa.Table.from_pandas(data, preserve_index=False)
    if isinstance(data, list):
        return pa.Table.from_pylist(data)
    raise TypeError(f"cannot insert {type(data).__name__}; pass a dict of columns, a DataFrame or an Arrow table")


_VERBS = {"error": "INSERT", "ignore": "INSERT OR IGNORE", "replace": "INSERT OR REPLACE"}


def insert(con: duckdb.DuckDBPyConnection, table: str, data: Any, on_conflict: str = "error") -> int:
    """Bulk insert through DuckDB's Arrow path (never executemany)."""
    tbl = to_arrow(data)
    if tbl.num_rows == 0:
        return 0
    cols = ", ".join(f'"{c}"' for c in tbl.column_names)
    name = f"_ins_{table}"
    con.register(name, tbl)
    try:
        con.execute(f"{_VERBS[on_conflict]} INTO {table} ({cols}) SELECT {cols} FROM {name}")
    finally:
        con.unregister(name)
    return tbl.num_rows


#: Phrases of DuckDB errors that mean the sandbox refused a statement (see :func:`sandbox`).
_SANDBOXED = ("disabled by configuration", "disabled through configuration", "configuration has been locked",
              "cannot change configuration option", "the file belongs to an attached database",
              "unique file handle conflict")
#: Statements that read or write files whatever their arguments: never allowed in the sandbox.
_FILE_STATEMENTS = ("COPY", "EXPORT")


def _file_statement(query: str) -> bool:
    try:
        return any(st.type.name in _FILE_STATEMENTS for st in duckdb.extract_statements(query))
    except duckdb.Error:
        return False


EXPORT_HINT = ("to export a result use 'actstore sql STORE QUERY --format csv|json|parquet --out FILE' "
               "(in Python: .arrow() or .df())")


def query_error(err: BaseException, where: "str | Path | None" = None,
                query: str | None = None) -> ActstoreError | None:
    """A DuckDB error from a user's SQL as one clear line: a refused statement, a damaged
    catalog, or the SQL error itself (None for anything that is not a DuckDB error). ``query``:
    the SQL, when it ran sandboxed (a COPY or EXPORT there is refused whatever DuckDB's reason)."""
    if not isinstance(err, duckdb.Error):
        return None
    bad = damage(err, where)
    if bad is not None:
        return bad
    first = _first(err)
    low = first.lower()
    if any(p in low for p in _SANDBOXED) or (query is not None and _file_statement(query)):
        return ReadOnlyError(f"refused: SQL on a read-only store cannot write or read files, attach databases, "
                             f"load extensions or change settings ({first}); {EXPORT_HINT}")
    if "read-only" in low or "read only" in low:
        return ReadOnlyError(f"refused: the store is open read-only and this statement writes ({first}); "
                             f"{EXPORT_HINT}, or open the store with read_only=False to change it")
    return QueryError(f"SQL error: {first}")


def run_query(con: duckdb.DuckDBPyConnection, query: str, params: Any = None,
              where: "str | Path | None" = None, sandboxed: bool = False) -> duckdb.DuckDBPyRelation:
    """A user's SQL, with DuckDB's errors turned into one clear line (see :func:`query_error`).

    A SELECT runs when its relation is fetched; errors raised then are DuckDB's own (the CLI maps
    them with :func:`query_error`)."""
    try:
        if params is None:
            return con.sql(query)
        return con.sql(query, params=params)
    except duckdb.Error as err:
        clear = query_error(err, where, query if sandboxed else None)
        if clear is None:  # not reached for a duckdb.Error; typed Optional for other exceptions
            raise
        raise clear from None
