"""The store commands: thin, one line per error, every command has help."""

import json

import duckdb
import numpy as np
from click.testing import CliRunner

from actstore.cli import main


def _run(*args):
    return CliRunner().invoke(main, list(args), obj={})


def test_info_and_json(filled):
    r = _run("info", str(filled))
    assert r.exit_code == 0, r.output
    assert "synthetic" in r.output and "token/resid_post" in r.output
    data = json.loads(_run("info", str(filled), "--json").output)
    assert data["counts"]["records"] > 0 and data["format_version"] >= 2


def test_sql_formats(filled, tmp_path):
    q = "SELECT role, count(*) AS n FROM tokens GROUP BY role ORDER BY role"
    table = _run("sql", str(filled), q)
    assert table.exit_code == 0 and "response" in table.output
    csv = _run("sql", str(filled), q, "--format", "csv").output.splitlines()
    assert csv[0] == "role,n" and len(csv) == 5
    rows = [json.loads(x) for x in _run("sql", str(filled), q, "--format", "json").output.splitlines()]
    assert sum(r["n"] for r in rows) == duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/x.parquet')").fetchall()[0][0] if _run(
        "sql", str(filled), "SELECT * FROM tokens", "--format", "parquet", "--out", str(tmp_path / "x.parquet")
    ).exit_code == 0 else False


def test_errors_are_one_line_with_exit_codes(filled, tmp_path):
    bad = _run("sql", str(filled), "SELEC 1")
    assert bad.exit_code == 1 and bad.output.strip().startswith("error: SQL error") and len(bad.output.strip().splitlines()) == 1
    assert _run("info", str(tmp_path / "nope")).exit_code == 1
    assert _run("sql", str(filled), "SELECT 1", "--format", "parquet").exit_code == 2  # usage: needs --out
    assert _run("sql", str(filled), "INSERT INTO prompts (prompt_id, user_text) VALUES ('a','b')").exit_code == 1


def test_verify_finds_a_flipped_byte(filled):
    assert _run("verify", str(filled)).exit_code == 0
    chunk = filled / "arrays" / "token" / "mlp_act" / "1" / "c.1.0"
    data = bytearray(chunk.read_bytes())
    data[37] ^= 0x01
    chunk.write_bytes(bytes(data))
    r = _run("verify", str(filled))
    assert r.exit_code == 1 and "token/mlp_act/1: chunk 1 does not match its checksum" in r.output


def test_verify_finds_a_catalog_row_past_the_arrays(filled):
    con = duckdb.connect(str(filled / "catalog.duckdb"))
    con.execute("UPDATE records SET row_start = row_start + 100000 WHERE record_id = 2")
    con.close()
    r = _run("verify", str(filled))
    assert r.exit_code == 1 and "record 2 points at rows" in r.output


def test_verify_finds_a_missing_chunk(filled):
    (filled / "arrays" / "token" / "resid_post" / "0" / "c.0.0").unlink()
    r = _run("verify", str(filled))
    assert r.exit_code == 1 and "chunk 0 is missing (no file token/resid_post/0/c.0.0)" in r.output


def test_every_command_has_help():
    for name in ("info", "sql", "verify"):
        r = _run(name, "--help")
        assert r.exit_code == 0 and "Usage:" in r.output and len(r.output) > 80
    assert _run("--help").exit_code == 0


def test_reads_from_cli_store_equal_library(filled):
    import actstore

    with actstore.open(filled) as st:
        rows = st.sql("SELECT row FROM tokens WHERE role = 'response' ORDER BY row DESC LIMIT 7").fetchnumpy()["row"]
        a = st.read("resid_post", 1, rows)
        b = np.stack([st.read("resid_post", 1, [r])[0] for r in rows])
    assert np.array_equal(a, b)
