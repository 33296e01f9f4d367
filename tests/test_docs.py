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
