"""Format versions: older stores migrate (a private copy when read-only), newer ones are refused."""

import hashlib

import duckdb
import pytest

import actstore
from actstore import migrations
from actstore.errors import FormatVersionError


def _digest(path):
    return {p.relative_to(path): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _old_store(path):
    path.mkdir()
    con = duckdb.connect(str(path / "catalog.duckdb"))
    migrations.apply(con, upto=1)
    con.close()


def test_migrations_are_numbered_and_applied_in_order():
    ms = migrations.available()
    assert [m.version for m in ms] == list(range(1, len(ms) + 1))


def test_old_store_read_only_is_migrated_in_a_private_copy(tmp_path):
    path = tmp_path / "old"
    _old_store(path)
    before = _digest(path)
    with actstore.open(path) as st:
        assert st.sql("SELECT count(*) FROM records_info").fetchall() == [(0,)]  # a view of format 2
    assert _digest(path) == before


def test_old_store_opened_for_writing_is_migrated_and_recorded(tmp_path):
    path = tmp_path / "old"
    _old_store(path)
    with actstore.open(path, read_only=False) as st:
        pass
    with actstore.open(path) as st:
        rows = st.sql("SELECT version, name FROM migrations ORDER BY version").fetchall()
        assert [r[0] for r in rows] == [m.version for m in migrations.available()]
        assert st.sql("SELECT value FROM meta WHERE key='format_version'").fetchall()[0][0] == str(
            migrations.latest_version())


@pytest.mark.parametrize("read_only", [True, False])
def test_newer_store_is_refused_and_unchanged(filled, read_only):
    con = duckdb.connect(str(filled / "catalog.duckdb"))
    con.execute("UPDATE meta SET value = '999' WHERE key = 'format_version'")
    con.close()
    before = _digest(filled)
    with pytest.raises(FormatVersionError, match="newer than this actstore supports"):
        actstore.open(filled, read_only=read_only)
    assert _digest(filled) == before


def test_new_catalogs_use_small_blocks_and_stay_small(filled):
    """A new catalog is made with 64 KiB blocks (DuckDB's 256 KiB default left a small store's
    catalog at ~6 MiB, mostly empty blocks); writers keep a catalog's block size when they copy it."""
    from tests.actstore import synth

    with actstore.open(filled, read_only=False) as st:  # a second session: the catalog is copied
        synth.write(st, 8)
    con = duckdb.connect(":memory:")
    con.execute(f"ATTACH '{filled / 'catalog.duckdb'}' AS c (READ_ONLY)")
    assert con.execute("SELECT block_size FROM pragma_database_size() WHERE database_name = 'c'").fetchall() == [(65536,)]
    con.close()
    assert (filled / "catalog.duckdb").stat().st_size < 2 << 20
