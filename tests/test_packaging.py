"""Every package folder is installed, and actstore stays free of torch/transformers/ingest/analyses."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("actstore", "ingest", "analyses"):
        for init in (ROOT / top).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    found.add("actstore.schema")
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_actstore_never_imports_the_model_stack_or_other_packages():
    code = ("import sys, actstore, actstore.cli, actstore.verify, actstore.summary, actstore.tables;"
            "bad = [m for m in ('torch', 'transformers', 'ingest', 'analyses') if m in sys.modules];"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "", f"actstore imported {out.stdout.strip()}"
