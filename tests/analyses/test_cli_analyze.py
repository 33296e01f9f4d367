"""`actstore analyze ...` end to end: tables printed, bad input -> exit 1 with one line and the store
unchanged, and every command run with torch and transformers made unimportable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import storebuild
from click.testing import CliRunner

from actstore.cli import main


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    src, _ = storebuild.cached()
    return storebuild.copy_of(src, tmp_path_factory.mktemp("cli") / "store")


def commands(store, out) -> list[list[str]]:
    """Every command, in an order that works (decompose needs vectors, ...)."""
    s = str(store)
    return [
        ["analyze", "vectors", s, "--plot", str(out / "vectors.png"), "--bootstrap", "20", "--splits", "4", "--seed", "1"],
        ["analyze", "decompose", s],
        ["analyze", "neurons", s, "--top", "1%", "--plot", str(out / "neurons.png"), "--random", "10"],
        ["analyze", "top-examples", s, "--neuron", "1:7", "--k", "5"],
        ["analyze", "top-examples", s, "--vector", "1", "--k", "3", "--where", "role = 'user'"],
        ["analyze", "structure", s, "--permutations", "50", "--shuffles", "3", "--plot", str(out / "circle.png")],
        ["analyze", "crosslingual", s, "--layers", "1-2"],
        ["analyze", "logit-lens", s, "--vector", "1", "--k", "5"],
        ["analyze", "diversity", s, "--by", "language", "--repeats", "3"],
    ]


def test_vectors_table_without_recording(store) -> None:
    before = storebuild.snapshot(store)
    res = CliRunner().invoke(main, ["analyze", "vectors", str(store), "--layers", "1", "--value", "power",
                                    "--no-record"], obj={})
    assert res.exit_code == 0, res.output
    assert "cos_int_prompt" in res.output and "recorded" not in res.output and "power" in res.output
    assert storebuild.snapshot(store) == before


@pytest.mark.parametrize("args, message", [
    (["vectors", "{s}", "--value", "kindness"], "unknown value 'kindness'"),
    (["vectors", "{s}", "--layers", "3-9"], "layer 3 out of range"),
    (["vectors", "{s}", "--tokens", "sql:SELECT FROM WHERE"], "SQL error"),
    (["vectors", "{s}", "--judge", "nobody"], "no labels by judge 'nobody'"),
    (["neurons", "{s}", "--run", "999"], "no run 999"),
    (["top-examples", "{s}", "--neuron", "1:7", "--where", "bogus_col = 1"], "SQL error"),
    (["logit-lens", "{s}", "--vector", "424242"], "no vector 424242"),
    (["diversity", "{s}", "--where", "language = 'xx'"], "no responses match"),
])
def test_bad_input_exits_1_with_one_line_and_changes_nothing(store, args, message) -> None:
    before = storebuild.snapshot(store)
    res = CliRunner().invoke(main, ["analyze"] + [a.format(s=store) for a in args], obj={})
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], res.output
    assert storebuild.snapshot(store) == before


def test_no_labels_exits_1(tmp_path) -> None:
    storebuild.build(tmp_path / "s", n_queries=16, int_samples=1, tokens=False, mlp=False, labels=False)
    res = CliRunner().invoke(main, ["analyze", "vectors", str(tmp_path / "s")], obj={})
    assert res.exit_code == 1 and "no labels" in res.output


BLOCKED = textwrap.dedent("""
    import json, sys
    class Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split('.')[0] in ('torch', 'transformers'):
                raise ImportError(f'{name} is blocked in this test')
    sys.meta_path.insert(0, Blocked())
    for m in [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]:
        del sys.modules[m]
    from click.testing import CliRunner
    from actstore.cli import main
    codes = []
    for args in json.loads(sys.argv[1]):
        res = CliRunner().invoke(main, args, obj={})
        codes.append([res.exit_code, res.output[-300:]])
    leaked = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')]
    print(json.dumps({"codes": codes, "leaked": leaked}))
""")


def test_commands_run_with_torch_and_transformers_unimportable(tmp_path) -> None:
    """No analysis needs a forward pass or a model path: every command runs, prints its table, records
    its run and writes its plot with the model stack blocked (one interpreter for all: imports cost)."""
    src, _ = storebuild.cached()
    path = storebuild.copy_of(src, tmp_path / "store")
    cmds = commands(path, tmp_path)
    proc = subprocess.run([sys.executable, "-c", BLOCKED, json.dumps(cmds)], capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for args, (code, tail) in zip(cmds, out["codes"]):
        assert code == 0, (args, tail)
        assert "recorded as run" in tail, (args, tail)
    assert out["leaked"] == []
    for png in ("vectors.png", "vectors_norms.png", "neurons.png", "circle.png"):
        assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG", png


def test_every_analyze_command_has_help() -> None:
    runner = CliRunner()
    from analyses.cli import analyze

    for name in analyze.list_commands(None):  # type: ignore[arg-type]
        res = runner.invoke(main, ["analyze", name, "--help"], obj={})
        assert res.exit_code == 0 and "Usage:" in res.output and len(res.output) > 200, name


def test_statistics_options_reach_the_output(store) -> None:
    s = str(store)
    r = CliRunner().invoke(main, ["analyze", "vectors", s, "--layers", "1", "--bootstrap", "10", "--splits", "2"],
                           obj={})
    assert r.exit_code == 0, r.output
    assert "norm_lo" in r.output and "reliability" in r.output
    r = CliRunner().invoke(main, ["analyze", "vectors", s, "--no-record", "--layers", "1", "--bootstrap", "0",
                                  "--splits", "0"], obj={})
    assert r.exit_code == 0 and "norm_lo" not in r.output
    r = CliRunner().invoke(main, ["analyze", "structure", s, "--no-record", "--component", "diff_means",
                                  "--permutations", "30", "--shuffles", "2", "--seed", "3"], obj={})
    assert r.exit_code == 0, r.output
    assert "random directions" in r.output and "corrected" in r.output and "p_corrected" in r.output
    r = CliRunner().invoke(main, ["analyze", "diversity", s, "--no-record", "--repeats", "2"], obj={})
    assert r.exit_code == 0 and "distinct_2_eq" in r.output and "At equal size" in r.output
    r = CliRunner().invoke(main, ["analyze", "vectors", s, "--bootstrap", "-1"], obj={})
    assert r.exit_code == 2
def test_an_analysis_on_a_url_store_computes_and_does_not_try_to_record(store, tmp_path, monkeypatch) -> None:
    """A store opened by URL is read-only: the table is printed, the run is not recorded (and it says so)."""
    from tests.actstore.httpserver import StaticServer

    monkeypatch.setenv("ACTSTORE_CACHE", str(tmp_path / "cache"))
    before = storebuild.snapshot(store)
    with StaticServer(store.parent) as srv:
        res = CliRunner().invoke(main, ["analyze", "vectors", f"{srv.url}/{store.name}", "--layers", "1",
                                        "--value", "power,security"], obj={})
    assert res.exit_code == 0, res.output
    assert "power" in res.output and "security" in res.output and "recorded as run" not in res.output
    assert "not recorded" in res.output
    assert storebuild.snapshot(store) == before
