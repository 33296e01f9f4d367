"""Numbered DDL migrations from ``schema/`` (shipped as ``actstore.schema``), applied in order.

A migration is a file ``NNNN_name.sql``. The store's format version is the highest applied
number, kept in ``meta.format_version``; each application is recorded in ``migrations``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources

def one(con, query: str, params=None):
    """First row of a query, or None. Drains the result: DuckDB 2 blocks a connection with an
    unfinished result, which fetchone() leaves behind."""
    rows = con.execute(query, params).fetchall() if params is not None else con.execute(query).fetchall()
    return rows[0] if rows else None


_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    out = []
    for entry in resources.files("actstore.schema").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m[1]), m[2], entry.read_text(encoding="utf-8")))
    return sorted(out, key=lambda m: m.version)


def latest_version() -> int:
    return available()[-1].version


def current_version(con) -> int:
    """Format version of an open catalog; 0 if it has no meta table (not initialised)."""
    has_meta = one(con, 
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'meta' "
        "AND table_catalog = current_database()"
    )[0]
    if not has_meta:
        return 0
    row = one(con, "SELECT value FROM meta WHERE key = 'format_version'")
    return int(row[0]) if row else 0


def apply(con, upto: int | None = None) -> list[int]:
    """Apply every migration newer than the catalog's version (up to ``upto``), each in a transaction."""
    done = []
    have = current_version(con)
    for mig in available():
        if mig.version <= have or (upto is not None and mig.version > upto):
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(mig.sql)
            con.execute(
                "INSERT INTO migrations VALUES (?, ?, ?)",
                [mig.version, mig.name, datetime.now(timezone.utc).replace(tzinfo=None)],
            )
            con.execute(
                "INSERT OR REPLACE INTO meta VALUES ('format_version', ?)", [str(mig.version)]
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        done.append(mig.version)
    return done
