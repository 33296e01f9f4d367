"""The README's promises: its first two command lines, and CI running the second one verbatim."""

from pathlib import Path

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
