"""The SQLAlchemy declarations in actstore.tables agree with the DDL in schema/, column for column."""

import sqlalchemy as sa

import actstore
from actstore import tables


def test_declarations_match_the_catalog(filled):
    with actstore.open(filled) as st:
        cols = st.sql("SELECT table_name, column_name FROM information_schema.columns "
                      "WHERE table_catalog = current_database() ORDER BY table_name, ordinal_position").fetchall()
        have: dict[str, list[str]] = {}
        for t, c in cols:
            have.setdefault(t, []).append(c)
        for name, table in tables.metadata.tables.items():
            assert have.get(name) == [c.name for c in table.columns], name
        assert set(have) == set(tables.metadata.tables)
        # and the engine runs Core queries on them
        q = sa.select(tables.records_info.c.record_id).order_by(tables.records_info.c.record_id).limit(2)
        with st.engine.connect() as c:
            assert [r[0] for r in c.execute(q)] == [0, 1]
