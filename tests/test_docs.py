"""The README's promises: its first two command lines, and CI running the second one verbatim."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _command_lines() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_command_lines_and_ci_runs_the_second():
    lines = _command_lines()
    assert len(lines) == 2
    assert "actstore demo" in lines[0] and lines[0].startswith("pip install torch==2.13.0")
    assert "pytest" in lines[1] and lines[1].startswith("pip install torch==2.13.0")
    assert lines[1] in (ROOT / ".ci" / "run").read_text()


def test_every_cli_command_has_help():
    from click.testing import CliRunner

    from actstore.cli import main

    runner = CliRunner()
    names = main.list_commands(None)  # type: ignore[arg-type]
    assert {"info", "sql", "verify"} <= set(names)
    for name in names:
        r = runner.invoke(main, [name, "--help"], obj={})
        assert r.exit_code == 0, f"actstore {name} --help failed: {r.output}"
        assert "Usage:" in r.output


# -- every command: help with an example, and one exit-code rule --------------------------------

def _commands():
    """(argv path, click command) for every command and group under ``actstore``, plugins included."""
    import click

    from actstore.cli import main

    ctx = click.Context(main, obj={})
    out = []

    def walk(cmd, path):
        out.append((path, cmd))
        if isinstance(cmd, click.Group):
            for name in cmd.list_commands(ctx):
                walk(cmd.get_command(ctx, name), [*path, name])

    walk(main, [])
    return out


def test_every_command_help_has_an_example():
    from click.testing import CliRunner

    from actstore.cli import main

    runner = CliRunner()
    missing = []
    for path, _ in _commands():
        r = runner.invoke(main, [*path, "--help"], obj={})
        assert r.exit_code == 0, f"actstore {' '.join(path)} --help failed: {r.output}"
        if "Example" not in r.output:
            missing.append(" ".join(["actstore", *path]))
    assert not missing, f"--help without an example: {', '.join(missing)}"


def test_every_command_exits_2_on_a_usage_error():
    from click.testing import CliRunner

    from actstore.cli import main

    runner = CliRunner()
    for path, _ in _commands():
        r = runner.invoke(main, [*path, "--no-such-option"], obj={})
        assert r.exit_code == 2, f"actstore {' '.join(path)} --no-such-option: exit {r.exit_code}: {r.output}"


# The arguments each store-reading command needs besides STORE to get as far as opening it; commands
# that create their store (ingest run/generate/import, demo) have no "missing store".
_AFTER_STORE = {
    ("sql",): ["SELECT 1"],
    ("publish",): ["{tmp}/published"],
    ("pull",): ["{tmp}/pulled"],
    ("merge",): ["--out", "{tmp}/merged"],
    ("analyze", "logit-lens"): ["--vector", "1"],
    ("analyze", "top-examples"): ["--neuron", "1:1"],
    ("steer", "export"): ["--vectors", "1", "--format", "gguf", "--out", "{tmp}/v.gguf"],
    ("steer", "import"): ["{tmp}/v.npy"],
    ("judge", "eval"): ["--judge", "lexicon", "--gold", "{tmp}/vp"],
    ("steer", "run"): ["--model", "{tmp}/no-model"],
}
_CREATES = {("ingest", "run"), ("ingest", "generate"), ("ingest", "import"), ("demo",)}


def test_every_command_exits_1_on_a_missing_store(tmp_path):
    import click
    from click.testing import CliRunner

    from actstore.cli import main

    runner = CliRunner()
    missing = str(tmp_path / "no-such-store")
    checked = 0
    for path, cmd in _commands():
        if isinstance(cmd, click.Group) or tuple(path) in _CREATES:
            continue
        extra = [a.format(tmp=tmp_path) for a in _AFTER_STORE.get(tuple(path), [])]
        r = runner.invoke(main, [*path, missing, *extra], obj={})
        assert r.exit_code == 1, f"actstore {' '.join(path)} on a missing store: exit {r.exit_code}: {r.output}"
        assert r.output.strip().startswith("error: ") and len(r.output.strip().splitlines()) == 1, r.output
        assert not (tmp_path / "no-such-store").exists(), f"actstore {' '.join(path)} created the store"
        checked += 1
    assert checked >= 20


def test_config_keys_are_the_flag_names_and_the_readme_toml_is_valid(tmp_path):
    """Every ingest flag, spelled as on the command line, is a TOML key; the README's example loads."""
    import dataclasses

    import click

    from ingest.cli import ingest
    from ingest.config import FLAG_KEYS, IngestConfig, from_mapping, read_toml

    fields = {f.name for f in dataclasses.fields(IngestConfig)}
    for cmd in ingest.commands.values():
        for p in cmd.params:
            if isinstance(p, click.Option) and p.name != "config_file":
                flag = max(p.opts, key=len).removeprefix("--")
                key = flag.replace("-", "_")
                assert FLAG_KEYS.get(key, key) in fields, f"--{flag} is not a config key"
    text = (ROOT / "README.md").read_text()
    block = text.split("```toml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "ingest.toml").write_text(block)
    config = from_mapping({**read_toml(tmp_path / "ingest.toml"), "store": str(tmp_path / "s")})
    assert config.languages == ("en", "es") and config.values == ("benevolence", "security")
    assert config.max_queries == 8 and config.max_new_tokens == 40 and config.sites == ("resid_post", "mlp_act")


# -- the README's command-line examples, run as written on a small store -------------------------

#: Commands that read a store and need no model: these README examples run against the fixture.
_RUNNABLE = {"info", "sql", "verify", "analyze"}
_VALUE_PORTRAIT = ROOT.parent / "shared" / "data" / "value-portrait"


def _readme_blocks(lang: str) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [part.split("```", 1)[0] for part in text.split(f"```{lang}\n")[1:]]


def readme_cli_examples() -> list[list[str]]:
    """Every ``actstore ...`` command of the README's bash and console blocks, as argv lists (a
    command may continue over lines with a backslash or inside a quoted string)."""
    import shlex

    out = []
    for lang in ("bash", "console"):
        for block in _readme_blocks(lang):
            pending = ""
            for line in block.splitlines():
                if not pending:
                    if lang == "console":
                        if not line.startswith("$ "):
                            continue
                        line = line[2:]
                    if not line.startswith("actstore "):
                        continue
                pending += line.rstrip("\\") + ("\n" if not line.endswith("\\") else " ")
                try:
                    argv = shlex.split(pending, comments=True)
                except ValueError:  # an open quote: the command goes on
                    continue
                if line.endswith("\\"):
                    continue
                out.append(argv)
                pending = ""
    return out


def readme_sql_statements() -> list[str]:
    """The statements of the README's sql blocks, each with its leading ``--`` comment."""
    return [stmt.strip() for block in _readme_blocks("sql") for stmt in block.split(";\n") if stmt.strip()]


def test_the_readme_examples_are_found():
    examples = readme_cli_examples()
    assert ["actstore", "info", "demo-out/store"] in examples
    assert any(a[:2] == ["actstore", "sql"] and "\n" in a[3] for a in examples)  # a query over two lines
    assert sum(a[1] == "analyze" for a in examples) >= 9
    assert any(s.startswith("-- ") for s in readme_sql_statements())


@pytest.fixture(scope="module")
def demo_like_store(tmp_path_factory):
    """A small store of the demo's shape (planted, no model), writable: analyses record into it."""
    sys.path.insert(0, str(ROOT / "tests" / "analyses"))
    import storebuild

    src, _ = storebuild.cached(n_queries=16, int_samples=2)
    return storebuild.copy_of(src, tmp_path_factory.mktemp("readme") / "store")


def test_readme_cli_examples_run_as_written_on_a_small_store(demo_like_store, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from actstore.cli import main

    monkeypatch.chdir(tmp_path)  # plots and --out files land here
    runner = CliRunner()
    ran = []
    for argv in readme_cli_examples():
        if "demo-out/store" not in argv or argv[1] not in _RUNNABLE:
            continue
        if "../shared/data/value-portrait" in argv and not _VALUE_PORTRAIT.is_dir():
            continue
        args = [str(demo_like_store) if a == "demo-out/store" else
                str(_VALUE_PORTRAIT) if a == "../shared/data/value-portrait" else a for a in argv[1:]]
        r = runner.invoke(main, args, obj={})
        assert r.exit_code == 0, f"README example failed: {' '.join(argv)}\n{r.output}"
        ran.append(argv[1:3])
    assert len(ran) >= 12 and {"info", "sql", "verify"} <= {a[0] for a in ran}
    for stmt in readme_sql_statements():
        r = runner.invoke(main, ["sql", str(demo_like_store), stmt], obj={})
        assert r.exit_code == 0, f"README SQL failed:\n{stmt}\n{r.output}"
        assert "(no rows)" not in r.output or "benevolence_class" in stmt, f"README SQL found nothing:\n{stmt}"


def test_missing_values_print_as_null_everywhere(demo_like_store):
    from click.testing import CliRunner

    from actstore.cli import main

    r = CliRunner().invoke(main, ["sql", str(demo_like_store),
                                  "SELECT NULL::INT AS i, NULL::DOUBLE AS f, NULL::VARCHAR AS s, 1 AS one"], obj={})
    assert r.exit_code == 0 and r.output.split("\n")[1].split() == ["NULL", "NULL", "NULL", "1"], r.output
    r = CliRunner().invoke(main, ["analyze", "decompose", str(demo_like_store), "--no-record"], obj={})
    assert r.exit_code == 0 and "NULL" in r.output, r.output
    assert not any(w in r.output.split() for w in ("None", "NaN", "<NA>")), r.output


HEAVY = ("duckdb", "zarr", "numpy", "pandas", "pyarrow", "scipy", "matplotlib", "torch", "transformers")


@pytest.mark.parametrize("code", [
    "import actstore",
    "from actstore.cli import main\ntry:\n    main(['sql', '/nonexistent/store', 'SELECT 1'], obj={})\nexcept SystemExit:\n    pass",
    "from actstore.cli import main\ntry:\n    main(['analyze', 'vectors', '/nonexistent/store'], obj={})\nexcept SystemExit:\n    pass",
])
def test_start_up_and_a_bad_path_import_nothing_heavy(code):
    """`import actstore` and an error about a missing store come back at once: no heavy module loads
    (each of these costs 0.1-0.7 s to import; measured numbers in the README)."""
    import subprocess

    probe = f"{code}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1:] in ([], [""]), f"imported: {out}"
