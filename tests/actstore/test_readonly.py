"""Read-only means read-only: SQL on a read-only store runs in a locked DuckDB sandbox.

Every entry point (``Store.sql``, ``actstore sql``, the SQLAlchemy engine, a store opened by URL)
is tried with statements that would write files (COPY ... TO, EXPORT DATABASE), attach or create
databases, install or load extensions, or lift those limits with SET / RESET / PRAGMA; every file
of the store, and of a watched directory outside it (the working directory), is hashed before and
after. Legitimate SELECTs keep working in between, and export goes through ``--format/--out``.
"""

import hashlib
import json
import random

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import actstore
from actstore.cli import main
from actstore.errors import ActstoreError, QueryError, ReadOnlyError
from tests.actstore import synth
from tests.actstore.httpserver import StaticServer


def _digest(*dirs):
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest()
            for d in dirs for p in sorted(d.rglob("*")) if p.is_file()}


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], obj={})


@pytest.fixture
def outside(tmp_path, monkeypatch):
    """A watched directory outside the store, with files in it, made the working directory (so
    relative paths and DuckDB's default spill directory ``.tmp`` would land here)."""
    d = tmp_path / "outside"
    (d / "sub").mkdir(parents=True)
    (d / "keep.csv").write_text("a,b\n1,2\n")
    (d / "sub" / "data.parquet").write_bytes(b"PAR1 not really")
    monkeypatch.chdir(d)
    return d


def _chunk(store):
    return store / "arrays" / "token" / "resid_post" / "0" / "c.0.0"


# -- hostile statements, named by what they try ------------------------------------------------------

def _hostile(store, out):
    """(statement, what) pairs that a sandboxed read-only connection must refuse."""
    chunk = _chunk(store)
    return [
        (f"COPY (SELECT 1) TO '{chunk}'", "COPY over a chunk file"),
        (f"COPY (SELECT 1) TO '{store}/catalog.duckdb'", "COPY over the catalog"),
        (f"COPY tokens TO '{store}/tokens.csv'", "COPY a table into the store"),
        (f"COPY tokens TO '{out}/tokens.parquet' (FORMAT parquet)", "COPY outside the store"),
        ("COPY (SELECT 42) TO 'relative.csv'", "COPY to a relative path"),
        (f"EXPORT DATABASE '{out}/dump'", "EXPORT DATABASE"),
        (f"ATTACH '{store}/x.duckdb' AS x", "ATTACH a new database in the store"),
        (f"ATTACH '{out}/y.duckdb' AS y; CREATE TABLE y.t AS SELECT 1", "ATTACH and CREATE outside"),
        (f"ATTACH '{store}/catalog.duckdb' AS again", "ATTACH the catalog again, writable"),
        (f"ATTACH '{out}/z.sqlite' AS z (TYPE sqlite)", "ATTACH through an extension"),
        ("INSTALL httpfs", "INSTALL an extension"),
        ("FORCE INSTALL spatial", "FORCE INSTALL"),
        ("LOAD httpfs", "LOAD an extension that is not built in"),
        (f"LOAD '{out}/evil.duckdb_extension'", "LOAD a file"),
        ("SET enable_external_access = true", "lift the file lock"),
        ("RESET enable_external_access", "RESET the file lock"),
        ("SET lock_configuration = false", "unlock the configuration"),
        (f"SET allowed_directories = ['{out}']", "allow a directory"),
        (f"SET allowed_paths = ['{chunk}']", "allow a path"),
        (f"SET temp_directory = '{store}'", "spill into the store"),
        (f"SET profiling_output = '{store}/profile.json'", "profile into the store"),
        ("PRAGMA enable_profiling = 'json'", "PRAGMA a setting"),
        ("SET autoinstall_known_extensions = true", "turn autoinstall back on"),
        ("SET GLOBAL allow_community_extensions = true", "SET GLOBAL"),
        (f"CALL enable_logging(storage = 'file', storage_path = '{out}/logs')", "log to files"),
        ("INSERT INTO prompts (prompt_id, user_text) VALUES ('p', 'x')", "INSERT"),
        ("DELETE FROM tokens", "DELETE"),
        ("UPDATE arrays SET n_rows = 0", "UPDATE"),
        ("DROP TABLE records", "DROP"),
        ("CREATE TABLE t2 AS SELECT 1 AS a", "CREATE in the catalog"),
        (f"SELECT * FROM read_csv('{out}/keep.csv')", "read a file"),
        ("SELECT * FROM read_text('/etc/hostname')", "read a system file"),
        (f"SELECT count(*) FROM glob('{store}/**')", "list files"),
        (f"IMPORT DATABASE '{out}'", "IMPORT DATABASE"),
        (f"SELECT 1; COPY tokens TO '{out}/after.csv'", "a write after a SELECT"),
        (f"/* hidden */ copy (select 1) to '{chunk}' (format csv)", "lower case behind a comment"),
    ]


LEGIT = [
    ("SELECT count(*) FROM tokens", None),
    ("SELECT role, count(*) AS n FROM tokens GROUP BY role ORDER BY role", None),
    ("SELECT name, n_rows FROM arrays ORDER BY name", None),
    ("SELECT record_id, n_tokens FROM records_info ORDER BY record_id LIMIT 5", None),
    ("WITH t AS (SELECT token_id FROM tokens) SELECT sum(token_id) FROM t", None),
]


def _reference(store):
    con = duckdb.connect(str(store / "catalog.duckdb"), read_only=True)
    out = [con.execute(q).fetchall() for q, _ in LEGIT]
    con.close()
    return out


def test_store_sql_refuses_every_write_and_changes_no_file(filled, outside):
    before = _digest(filled, outside)
    ref = _reference(filled)
    with actstore.open(filled) as st:
        for q, what in _hostile(filled, outside):
            with pytest.raises(ReadOnlyError, match=r"^refused: .*read-only") as err:
                st.sql(q).fetchall()
            assert "\n" not in str(err.value), what
            assert _digest(filled, outside) == before, f"{what} changed a file"
        # the connection still answers, and reads arrays as before
        assert [st.sql(q).fetchall() for q, _ in LEGIT] == ref
        assert st.read("resid_post", 0, [0, 1]).shape == (2, synth.WIDTH["resid_post"])
    assert _digest(filled, outside) == before


def test_refused_lines_name_what_and_the_export_path(filled, outside):
    with actstore.open(filled) as st:
        with pytest.raises(ReadOnlyError) as err:
            st.sql(f"COPY tokens TO '{outside}/t.csv'")
        assert "cannot write or read files" in str(err.value) and "--out FILE" in str(err.value)
        with pytest.raises(ReadOnlyError, match="this statement writes"):
            st.sql("DELETE FROM tokens")
        with pytest.raises(ReadOnlyError, match="change settings"):
            st.sql("SET threads = 1")
        with pytest.raises(QueryError, match="^SQL error"):  # a plain mistake stays a plain SQL error
            st.sql("SELEC 1")


def test_cli_refuses_the_reported_copy_over_a_chunk(filled, outside):
    chunk = _chunk(filled)
    before = _digest(filled, outside)
    r = _run("sql", filled, f"COPY (SELECT 1) TO '{chunk}'")
    assert r.exit_code == 1
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: refused:") and "read-only" in lines[0]
    assert "--format csv|json|parquet --out FILE" in lines[0]
    r = _run("sql", filled, f"ATTACH '{filled}/x.duckdb' AS x; CREATE TABLE x.t AS SELECT 1")
    assert r.exit_code == 1 and r.output.startswith("error: refused:")
    assert _digest(filled, outside) == before


def test_export_goes_through_out_and_never_into_the_store(filled, outside):
    before = _digest(filled)
    q = "SELECT row, record_id, token_id, role FROM tokens ORDER BY row"
    with actstore.open(filled) as st:
        want = st.sql(q).df()
    r = _run("sql", filled, q, "--format", "parquet", "--out", outside / "t.parquet")
    assert r.exit_code == 0, r.output
    got = pq.read_table(outside / "t.parquet").to_pandas()
    assert got["row"].tolist() == want["row"].tolist() and got["token_id"].tolist() == want["token_id"].tolist()
    assert got["role"].astype(str).tolist() == want["role"].astype(str).tolist()
    assert _run("sql", filled, q, "--format", "csv", "--out", outside / "t.csv").exit_code == 0
    assert len((outside / "t.csv").read_text().splitlines()) == len(want) + 1
    assert _run("sql", filled, q, "--format", "json", "--out", outside / "t.json").exit_code == 0
    assert json.loads((outside / "t.json").read_text().splitlines()[-1])["row"] == int(want["row"].iloc[-1])
    empty = _run("sql", filled, "SELECT * FROM tokens WHERE false", "--format", "parquet", "--out", outside / "e.parquet")
    assert empty.exit_code == 0 and pq.read_table(outside / "e.parquet").num_rows == 0
    for dest in (_chunk(filled), filled / "export.parquet", filled / "catalog.duckdb"):
        r = _run("sql", filled, q, "--format", "parquet", "--out", dest)
        assert r.exit_code == 2 and "inside the store" in r.output and len(r.output.strip().splitlines()) == 1
    bad = _run("sql", filled, "SELECT 'x'::INTEGER", "--format", "parquet", "--out", outside / "bad.parquet")
    assert bad.exit_code == 1 and bad.output.startswith("error: SQL error")
    assert not (outside / "bad.parquet").exists() and not list(outside.glob(".bad.parquet*"))  # no partial file
    assert _digest(filled) == before


def test_engine_is_sandboxed(filled, outside):
    before = _digest(filled, outside)
    with actstore.open(filled) as st:
        for q, what in _hostile(filled, outside)[:12]:
            with st.engine.connect() as c, pytest.raises(sa.exc.DBAPIError):
                c.execute(sa.text(q)).fetchall()
            assert _digest(filled, outside) == before, f"{what} through the engine changed a file"
        with st.engine.connect() as c:
            assert c.execute(sa.text("SELECT count(*) FROM tokens")).scalar() == st.n_rows


def test_refresh_and_an_older_store_stay_sandboxed(filled, tmp_path, outside):
    from tests.actstore.test_migrations import _old_store

    before = _digest(filled, outside)
    with actstore.open(filled) as st:
        st.refresh()
        with pytest.raises(ReadOnlyError):
            st.sql(f"COPY (SELECT 1) TO '{_chunk(filled)}'")
    old = tmp_path / "old"
    _old_store(old)
    old_before = _digest(old)
    with actstore.open(old) as st:  # migrated in a private copy, then locked like any reader
        with pytest.raises(ReadOnlyError):
            st.sql(f"COPY (SELECT 1) TO '{old}/x.csv'")
        assert st.sql("SELECT count(*) FROM records_info").fetchall() == [(0,)]
    assert _digest(filled, outside) == before and _digest(old) == old_before


def test_store_by_url_is_sandboxed(filled, outside, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ACTSTORE_CACHE", str(cache))
    with StaticServer(filled.parent) as srv:
        url = f"{srv.url}/{filled.name}"
        with actstore.open(url) as st:
            cached = st.catalog_file
            before = _digest(filled, outside, cache)
            for q in (f"COPY (SELECT 1) TO '{cached}'", f"ATTACH '{cached}' AS w", "INSTALL httpfs",
                      "SET enable_external_access = true", f"COPY tokens TO '{outside}/r.csv'"):
                with pytest.raises(ReadOnlyError):
                    st.sql(q)
            assert st.sql("SELECT count(*) FROM tokens").fetchall() == [(st.n_rows,)]
            assert _digest(filled, outside, cache) == before
        r = _run("sql", url, f"COPY (SELECT 1) TO '{outside}/u.csv'")
        assert r.exit_code == 1 and r.output.startswith("error: refused:")
        assert _digest(filled, outside) == {k: v for k, v in before.items() if not k.startswith(str(cache))}


# -- the fuzz test -----------------------------------------------------------------------------------

_SETTINGS = ["enable_external_access", "lock_configuration", "allowed_directories", "allowed_paths",
             "temp_directory", "profiling_output", "enable_profiling", "autoload_known_extensions",
             "autoinstall_known_extensions", "allow_community_extensions", "allow_unsigned_extensions",
             "threads", "memory_limit", "max_temp_directory_size", "enable_logging"]
_VALUES = ["true", "false", "1", "'json'", "'{p}'", "['{p}']", "'/'", "'1GB'", "''"]
_EXTS = ["httpfs", "sqlite", "spatial", "postgres_scanner", "excel", "'{p}/e.duckdb_extension'"]
_TABLES = ["tokens", "records", "arrays", "chunk_checksums", "runs", "meta", "vocab", "batches"]
_FORMATS = ["", " (FORMAT csv)", " (FORMAT parquet)", " (FORMAT json)", " (HEADER, DELIMITER '|')"]


def _paths(store, out):
    return [str(_chunk(store)), f"{store}/catalog.duckdb", f"{store}/catalog.wip.duckdb", f"{store}/new.csv",
            f"{store}/arrays/zarr.json", f"{store}/.writer.lock", f"{out}/keep.csv", f"{out}/sub/data.parquet",
            f"{out}/fresh.out", "rel.csv", ".tmp/x", f"{out}/sub"]


def _hostile_statement(rng, store, out):
    """A random statement that the sandbox must refuse."""
    p = rng.choice(_paths(store, out))
    kind = rng.randrange(8)
    if kind == 0:
        sel = rng.choice(["SELECT 1", "SELECT * FROM tokens", "SELECT * FROM " + rng.choice(_TABLES), "FROM vocab"])
        return f"COPY ({sel}) TO '{p}'{rng.choice(_FORMATS)}"
    if kind == 1:
        return f"COPY {rng.choice(_TABLES)} TO '{p}'{rng.choice(_FORMATS)}"
    if kind == 2:
        return rng.choice([f"EXPORT DATABASE '{out}/exp{rng.randrange(9)}'", f"IMPORT DATABASE '{out}'",
                           f"COPY {rng.choice(_TABLES)} FROM '{p}'"])
    if kind == 3:
        alias = f"a{rng.randrange(99)}"
        tail = rng.choice(["", f"; CREATE TABLE {alias}.t AS SELECT 1", " (TYPE sqlite)", " (READ_ONLY)"])
        return f"ATTACH '{p}' AS {alias}{tail}"
    if kind == 4:
        verb = rng.choice(["INSTALL", "FORCE INSTALL", "LOAD"])
        ext = rng.choice(_EXTS).format(p=out)
        if verb == "LOAD" and not ext.startswith("'"):
            ext = rng.choice(["httpfs", "sqlite", "spatial"])  # not built into the wheel
        return f"{verb} {ext}"
    if kind == 5:
        name, value = rng.choice(_SETTINGS), rng.choice(_VALUES).format(p=p)
        form = rng.choice(["SET {n} = {v}", "SET GLOBAL {n} = {v}", "SET SESSION {n} = {v}", "PRAGMA {n} = {v}",
                           "RESET {n}", "SET {n} TO {v}"])
        return form.format(n=name, v=value)
    if kind == 6:  # reads of files (the attached catalog itself stays readable: DuckDB opened it)
        p = rng.choice([x for x in _paths(store, out) if not x.endswith("catalog.duckdb")])
        return rng.choice([f"CALL enable_logging(storage = 'file', storage_path = '{out}/logs')",
                           f"SELECT * FROM read_csv('{p}')", f"SELECT * FROM read_parquet('{p}')",
                           f"SELECT * FROM read_text('{p}')", f"SELECT * FROM read_blob('{p}')",
                           f"SELECT count(*) FROM glob('{out}/*')", f"SELECT * FROM '{out}/keep.csv'"])
    t = rng.choice(_TABLES)
    return rng.choice([f"DELETE FROM {t}", f"DROP TABLE {t}", f"INSERT INTO {t} SELECT * FROM {t}",
                       f"ALTER TABLE {t} RENAME TO z", "CREATE TABLE zz AS SELECT 1 AS a",
                       "CREATE VIEW v AS SELECT 1", "CREATE MACRO m(x) AS x + 1", "CREATE SEQUENCE s"])


#: Harmless statements, some surprising: they may run or fail, but must not change a file either.
_HARMLESS = ["CHECKPOINT", "FORCE CHECKPOINT", "VACUUM", "PRAGMA database_list", "ATTACH ':memory:' AS scratch",
             "CREATE TEMP TABLE tt AS SELECT 1 AS a", "SELECT * FROM duckdb_settings()", "LOAD parquet",
             "LOAD json", "SET VARIABLE v = 1", "SELECT current_setting('enable_external_access')", "DETACH cat"]


def _statement(rng, store, out):
    """One random statement and whether the sandbox must refuse it."""
    roll = rng.random()
    if roll < 0.45:
        return _hostile_statement(rng, store, out), True
    if roll < 0.60:  # several statements, one of them hostile
        bad, ok = _hostile_statement(rng, store, out), f"SELECT {rng.randrange(100)}"
        return (f"{ok}; {bad}" if rng.random() < 0.5 else f"{bad}; {ok}"), True
    if roll < 0.75:  # noise around a hostile statement
        bad = _hostile_statement(rng, store, out)
        bad = bad.lower() if "'" not in bad and rng.random() < 0.5 else bad
        return rng.choice(["/* c */ {s}", "-- c\n{s}", "  {s}  ;", "{s};", "{s} ;;"]).format(s=bad), True
    if roll < 0.85:
        return rng.choice(_HARMLESS), False
    return rng.choice(LEGIT)[0], False


def _try(fn):
    """Run one statement; only actstore's one-line errors (or the engine's DBAPI errors) may escape."""
    try:
        fn()
        return None
    except ActstoreError as err:
        assert "\n" not in str(err)
        return err


def test_fuzz_hostile_sql_changes_no_file(filled, outside):
    rng = random.Random(1234)
    before = _digest(filled, outside)
    ref = dict(zip([q for q, _ in LEGIT], _reference(filled)))
    tried = {"sql": 0, "cli": 0, "engine": 0}
    with actstore.open(filled) as st:
        for i in range(240):  # a few seconds: 240 statements, each followed by hashing every file
            q, must_refuse = _statement(rng, filled, outside)
            route = "sql" if i % 8 < 5 else "engine" if i % 8 < 7 else "cli"
            tried[route] += must_refuse
            if route == "sql":
                got = []

                def fetch(q=q, got=got):
                    rel = st.sql(q)
                    got.append(None if rel is None else rel.fetchall())

                err = _try(fetch)
                if must_refuse:
                    assert isinstance(err, ReadOnlyError), (q, err)
                if q in ref:
                    assert got == [ref[q]], q
            elif route == "engine":
                with st.engine.connect() as c:
                    try:
                        c.execute(sa.text(q.replace(":", "\\:")))  # ':x' is a bind parameter to text()
                        refused = False
                    except sa.exc.DBAPIError:
                        refused = True
                assert refused or not must_refuse, q
            else:
                r = _run("sql", filled, "--", q)  # a query may start with "--" (a comment)
                if must_refuse:
                    assert r.exit_code == 1 and len(r.output.strip().splitlines()) == 1, (q, r.output)
                    assert r.output.startswith("error: "), (q, r.output)
            after = _digest(filled, outside)
            assert after == before, f"{q!r} ({route}) changed {set(after.items()) ^ set(before.items())}"
        # legitimate reads still work on the same connection after all of that
        for q, want in ref.items():
            assert st.sql(q).fetchall() == want
        assert np.array_equal(st.read("resid_post", 1, dtype="native")[:5],
                              synth.batch(0).token_arrays[synth.keys()[1]][:5])
    assert min(tried.values()) >= 15, tried  # hostile statements per route
    assert _digest(filled, outside) == before
