"""Judge evaluation end to end on planted gold data (no shared data, no model), abstentions through the
label stage, the store's record of an eval, and --threshold from-eval."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

import actstore
from actstore import migrations
from actstore.cli import main
from ingest import pipeline
from ingest.judge_eval import evaluate_labels, recorded_threshold, value_portrait_gold
from ingest.judges import Label
from ingest.values import VALUE_SLUGS

WORDS = {v: f"zz{v.replace('_', '')}" for v in VALUE_SLUGS}  # one made-up marker word per value


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), obj={})


@pytest.fixture
def planted(tmp_path: Path) -> tuple[Path, Path]:
    """A Value Portrait-format file: 12 queries x 5 responses; a response carrying a value's marker
    word has rho 0.5 for it (expressed), others rho in [-0.2, 0.2]. And a lexicon of the markers."""
    entries = []
    for q in range(12):
        outputs = []
        for k in range(5):
            tagged = VALUE_SLUGS[(q + k) % 10] if k < 3 else None
            text = f"Answer {k} to question {q}." + (f" It is about {WORDS[tagged]}." if tagged else "")
            corr = [[v, 0.5 if v == tagged else ((q * 7 + k * 3 + i) % 5 - 2) / 10] for i, v in enumerate(VALUE_SLUGS)]
            outputs.append({"id": k + 1, "content": text, "correlations": corr})
        entries.append({"portrait_id": 1000 + q, "content": {"title": f"Q{q}", "text": f"Question {q}?"},
                        "outputs": outputs})
    vp = tmp_path / "vp"
    vp.mkdir()
    (vp / "tagged_responses.json").write_text(json.dumps(entries))
    lex = tmp_path / "lex.json"
    lex.write_text(json.dumps({v: [w] for v, w in WORDS.items()}))
    return vp, lex


def test_gold_from_value_portrait_format(planted) -> None:
    vp, _ = planted
    gs = value_portrait_gold(vp)
    assert len(gs.items) == 60 and len(gs.gold) == 600 and sum(gs.gold.values()) == 36
    assert len(set(gs.group.values())) == 12
    assert len(value_portrait_gold(vp, values=["power"], limit=2).gold) == 10


def test_eval_of_a_perfect_and_a_null_judge(planted) -> None:
    vp, _ = planted
    gs = value_portrait_gold(vp)
    perfect = [Label(r, v, g, float(g), "perfect", "") for (r, v), g in gs.gold.items()]
    ev = evaluate_labels(perfect, gs, "judge", n_boot=200)
    assert ev.metrics["all"].kappa.value == 1.0 and ev.metrics["all"].auc.value == 1.0
    assert ev.threshold is None and set(ev.metrics) == {*VALUE_SLUGS, "all"}
    # A judge that says yes to everything and abstains on a tenth: kappa 0, AUC 0.5, abstentions counted.
    keys = list(gs.gold)
    null = [Label(r, v, None if i % 10 == 0 else True, 1.0, "null", "??") for i, (r, v) in enumerate(keys)]
    ev = evaluate_labels(null, gs, "judge", n_boot=200)
    m = ev.metrics["all"]
    assert m.abstained == 60 and m.kappa.value == 0.0 and m.auc.value == 0.5


def test_cli_eval_records_in_the_store_and_label_uses_its_threshold(planted, tmp_path: Path) -> None:
    vp, lex = planted
    store = tmp_path / "store"
    with actstore.open(store, read_only=False, create=True) as st:
        st.insert("prompts", {"prompt_id": ["p1"], "query_id": ["q1"], "condition": ["intrinsic"],
                              "target_value": [None], "language": ["en"], "template_id": [None],
                              "system_text": [None], "user_text": ["What now?"], "chat_text": [None], "source": ["t"]})
        st.insert("responses", {"response_id": ["r1", "r2"], "prompt_id": ["p1", "p1"], "sample_idx": [0, 1],
                                "text": [f"Mind {WORDS['power']}.", "Nothing."], "gen_params": [None, None],
                                "seed": [0, 1], "source": ["t", "t"], "run_id": [None, None]})
    r = _invoke("judge", "eval", str(store), "--judge", f"lexicon:{lex}", "--gold", str(vp),
                "--bootstrap", "100", "--folds", "3", "--quiet")
    assert r.exit_code == 0, r.output
    assert "lexicon:lex vs value-portrait:" in r.output and "recorded as judge_evals.eval_id = 1" in r.output
    lines = {ln.split()[0]: ln for ln in r.output.splitlines() if ln.split() and ln.split()[0] in (*VALUE_SLUGS, "all")}
    assert "1.000 [1.000, 1.000]" in lines["all"]  # kappa: the lexicon finds exactly the planted words
    with actstore.open(store) as st:
        rows = st.sql("SELECT value, n, n_pos, abstained, kappa, auc, threshold FROM judge_evals ORDER BY value").fetchall()
        assert len(rows) == 11 and ("all", 600, 36, 0, 1.0, 1.0, 1.0) in rows
        assert recorded_threshold(st, "lexicon:lex") == 1.0
    r = _invoke("ingest", "label", str(store), "--judge", f"lexicon:{lex}", "--threshold", "from-eval", "--quiet")
    assert r.exit_code == 0, r.output
    assert "wrote 20 labels" in r.output and "abstentions: 0 of 20 labels (0.0%)" in r.output
    with actstore.open(store) as st:
        got = st.sql("SELECT response_id, value, judge_id FROM labels WHERE expressed").fetchall()
        assert got == [("r1", "power", "lexicon:lex@t=1")]
    # No eval of this judge recorded: one clear line, nothing written.
    r = _invoke("ingest", "label", str(store), "--judge", "embed:/nowhere.npz", "--threshold", "from-eval")
    assert r.exit_code == 1 and r.output.count("\n") == 1 and "error:" in r.output
    r = _invoke("ingest", "label", str(store), "--judge", f"lexicon:{lex}", "--threshold", "high")
    assert r.exit_code == 2 and "bad threshold 'high'" in r.output


def test_cli_eval_bad_input_is_one_line(planted, tmp_path: Path) -> None:
    vp, lex = planted
    r = _invoke("judge", "eval", "--judge", f"lexicon:{lex}", "--gold", str(vp), "--value", "power",
                "--method", "judge", "--bootstrap", "20", "--json", "--quiet")
    out = json.loads(r.output)
    assert out["method"] == "judge" and out["metrics"]["power"]["kappa"] == [1.0, 1.0, 1.0]
    assert set(out["metrics"]) == {"power", "all"}
    r = _invoke("judge", "eval", "--judge", f"lexicon:{lex}", "--gold", "labels:human")
    assert r.exit_code == 1 and "pass STORE" in r.output and r.output.count("\n") == 1
    r = _invoke("judge", "eval", "--judge", f"lexicon:{lex}", "--gold", str(tmp_path / "missing"))
    assert r.exit_code == 1 and r.output.count("\n") == 1
    r = _invoke("judge", "eval", "--judge", "hf:", "--gold", str(vp))
    assert r.exit_code == 2 and "bad judge" in r.output


class _Abstainer:
    """Says yes to benevolence, and cannot be read on power."""

    judge_id = "scripted"

    def judge(self, items):
        return [Label(it.response_id, v, None if v == "power" else v == "benevolence",
                      None if v == "power" else 1.0, self.judge_id, "mumble" if v == "power" else "ok")
                for it in items for v in it.values]


def test_label_stores_abstentions_as_null_and_prints_the_rate(tmp_path: Path, monkeypatch) -> None:
    store = tmp_path / "s"
    with actstore.open(store, read_only=False, create=True) as st:
        st.insert("prompts", {"prompt_id": ["p"], "user_text": ["Hi?"], "condition": ["intrinsic"]})
        st.insert("responses", {"response_id": ["a", "b"], "prompt_id": ["p", "p"], "sample_idx": [0, 1],
                                "text": ["x", "y"]})
    monkeypatch.setattr(pipeline, "_make_judge", lambda config: _Abstainer())
    r = _invoke("ingest", "label", str(store), "--judge", "lexicon", "--value", "power,benevolence", "--quiet")
    assert r.exit_code == 0, r.output
    assert "abstentions: 2 of 4 labels (50.0%)" in r.output
    with actstore.open(store) as st:
        rows = st.sql("SELECT value, expressed, raw FROM labels ORDER BY response_id, value").fetchall()
    assert rows == [("benevolence", True, "ok"), ("power", None, "mumble")] * 2


def test_record_labels_and_groups_skip_abstentions() -> None:
    from analyses.groups import exp_unexp

    con = duckdb.connect()
    migrations.apply(con)
    con.execute("INSERT INTO prompts (prompt_id, condition, user_text) VALUES ('p', 'intrinsic', 'q')")
    con.execute("INSERT INTO responses (response_id, prompt_id, sample_idx, text) VALUES ('a','p',0,'x'), ('b','p',1,'y'), ('c','p',2,'z')")
    con.execute("INSERT INTO records VALUES (0,'a','p',0,0,1,0), (1,'b','p',0,1,1,0), (2,'c','p',0,2,1,0)")
    con.execute("INSERT INTO labels (response_id, value, judge_id, expressed) VALUES "
                "('a','power','j',true), ('b','power','j',false), ('c','power','j',NULL)")
    assert con.execute("SELECT record_id FROM record_labels ORDER BY 1").fetchall() == [(0,), (1,)]
    g = exp_unexp(["power"])
    got = {(row, g.keys[gid][3]) for row, gid in con.execute(g.query).fetchall()}
    assert got == {(0, "exp"), (1, "unexp")}  # record 2 (an abstention) is in neither group
    # The raw table keeps it, for re-judging.
    assert con.execute("SELECT count(*) FROM labels WHERE expressed IS NULL").fetchall() == [(1,)]
