"""`actstore demo --size small` end to end on the shipped value-world checkpoint."""

from pathlib import Path

import pytest

import actstore
from actstore.verify import verify

pytest.importorskip("torch")


@pytest.mark.slow
def test_small_demo_runs_the_study_end_to_end(tmp_path):
    from analyses.demo import run_demo

    lines: list[str] = []
    rep = run_demo(tmp_path / "demo", size="small", quiet=True, echo=lines.append)
    out = "\n".join(lines)
    assert (tmp_path / "demo" / "report.md").exists()
    for title in ("Value vectors", "Shared and unique parts", "Value neurons", "Circumplex structure",
                  "Logit lens", "Diversity"):
        assert title in out, f"the demo printed no {title!r} section"
    assert rep.plots and all(Path(p).exists() and Path(p).stat().st_size > 1000 for p in rep.plots)
    assert "What to try next" in out
    # findings stated in words with their intervals and baselines (issue 14)
    assert "Findings, with their intervals and baselines" in out
    for phrase in ("bootstrap intervals", "Split-half reliability", "Mantel p", "random directions",
                   "labels shuffled within value", "At equal size", "Wilson"):
        assert phrase in out, f"the demo states no {phrase!r}"
    with actstore.open(rep.store) as st:
        assert verify(st).ok
        kinds = {r[0] for r in st.sql("SELECT DISTINCT component FROM vectors").fetchall()}
        assert {"diff_means", "shared", "intrinsic_unique", "prompted_unique", "mean_delta"} <= kinds
        # The value-priority system prompt really moves the model: prompted responses express their
        # target value more often than unprompted responses express the same values.
        prompted, intrinsic = st.sql("""
            SELECT avg(CASE WHEN condition = 'prompted' AND value = target_value THEN expressed::INT END),
                   avg(CASE WHEN condition = 'intrinsic' THEN expressed::INT END)
            FROM record_labels""").fetchall()[0]
        assert prompted > intrinsic + 0.05, (prompted, intrinsic)
        assert st.sql("SELECT count(*) FROM neuron_scores").fetchall()[0][0] > 0
