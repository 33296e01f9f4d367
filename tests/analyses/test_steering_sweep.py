"""Sweeps on a tiny random model and a store captured from it: recording, resume, report, CLI, errors."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import actstore
from actstore import ArrayKey, ArraySpec, Batch, ModelInfo
from actstore.errors import InputError
from analyses.recording import Recorder, record
from analyses.steering.generate import GenConfig
from analyses.steering.spec import SweepSpec
from analyses.steering.sweep import plan, run_sweep


from ingest_fixtures import FX  # noqa: E402 - tests/analyses is on sys.path (conftest)
TEXTS = ["Hello there!", "What should I do this weekend?", "Security matters.", "Caring for others."]


def build_store(root: Path) -> tuple[Path, Path]:
    """(store, model dir): a tiny llama saved to disk, and a store of its pooled activations on a few
    records, two vectors per layer, and neuron scores."""
    from transformers import PreTrainedTokenizerFast

    from ingest.capture import Capturer
    from ingest.tokenize import collate, tokenize_record

    tok = PreTrainedTokenizerFast(tokenizer_object=FX._train_bpe(), bos_token="<|endoftext|>",
                                  eos_token="<|im_end|>", pad_token="<|pad|>")
    tok.chat_template = FX.CHATML
    model = FX.build_tiny_model("llama")
    mdir = root / "model"
    model.save_pretrained(mdir)
    tok.save_pretrained(mdir)
    recs = [tokenize_record(tok, [{"role": "user", "content": t}], "Caring for others and nature.") for t in TEXTS]
    ids, mask, plens = collate(recs, tok.pad_token_id)
    with Capturer(model, None, layers=[0, 1, 2], sites=["resid_post", "mlp_act"]) as cap:
        out = cap.capture(ids, mask, plens).copy()
    path = root / "store"
    with actstore.open(path, read_only=False, create=True) as st:
        st.set_model(ModelInfo(name=str(mdir), dtype="float32", n_layers=3, d_model=32, d_mlp=48, family="llama"))
        specs = [ArraySpec(ArrayKey(s, pool), 32 if s.kind == "resid_post" else 48, "float32")
                 for s in out.tokens for pool in ("token", "mean_response")]
        st.declare_arrays(specs)
        from ingest.tokenize import ROLES

        roles = np.concatenate([r.roles for r in recs])
        st.append(Batch(n_tokens=out.lengths, prompt_lens=out.prompt_lens, token_ids=out.token_ids,
                        roles=np.array([ROLES[c] for c in roles]),
                        token_arrays={ArrayKey(s): a for s, a in out.tokens.items()},
                        record_arrays={ArrayKey(s, "mean_response"): a for s, a in out.mean_response.items()},
                        response_ids=[f"r{i}" for i in range(len(recs))], prompt_ids=[f"p{i}" for i in range(len(recs))]))
        st.insert("prompts", {"prompt_id": [f"p{i}" for i in range(len(TEXTS))], "condition": ["intrinsic"] * len(TEXTS),
                              "user_text": TEXTS, "language": ["en"] * len(TEXTS)})
    rng = np.random.default_rng(0)
    rec = Recorder()
    for layer in range(3):
        for kind in ("intrinsic", "shared"):
            rec.add_vector(rng.standard_normal(32), name=f"benevolence/{kind}/resid_post.{layer}", value="benevolence",
                           condition=kind if kind == "intrinsic" else None,
                           component="diff_means" if kind == "intrinsic" else "shared", site="resid_post",
                           layer=layer, pool="mean_response")
    n = 6
    rec.neuron_rows = {"value": np.array(["benevolence"] * n, dtype=object), "layer": np.array([1, 1, 1, 2, 2, 2]),
                       "neuron": np.array([0, 5, 9, 1, 2, 3]), "score": np.ones(n), "rank": np.arange(n),
                       "class": np.array(["shared", "shared", "intrinsic_unique", "shared", "shared", "shared"], dtype=object),
                       "angle_deg": np.zeros(n), "proj_shared": np.ones(n), "proj_unique": np.zeros(n),
                       "attribution": np.zeros(n), "method": np.array(["projection"] * n, dtype=object)}
    with actstore.open(path) as st:
        record(st, "vectors", {"contrast": "exp-unexp"}, rec)
    return path, mdir


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("steer"))


@pytest.fixture()
def store(built, tmp_path):
    path, mdir = built
    return shutil.copytree(path, tmp_path / "store"), mdir


def _spec(mdir, **kw):
    base = {"model": str(mdir), "vectors": "layer = 1", "alphas": (0.0, 2.0), "prompts": "store", "judge": "valueworld",
            "evals": ("expression", "diversity"), "gen": GenConfig(max_new_tokens=4, batch_size=4)}
    return SweepSpec(**{**base, **kw})


def _counts(path):
    with actstore.open(path) as st:
        return {t: st.sql(f"SELECT count(*) FROM {t}").fetchall()[0][0]
                for t in ("steering_sweeps", "steering_settings", "steering_generations", "steering_metrics", "runs")}


def test_a_sweep_records_every_generation_and_metric_and_a_rerun_does_no_work(store):
    path, mdir = store
    spec = _spec(mdir)
    with actstore.open(path) as st:
        res = run_sweep(st, spec)
    # baseline + 2 vectors at layer 1 x 1 non-zero alpha = 3 settings, 4 prompts each
    assert len(res.settings) == 3 and res.generations == 12 and res.done == 6
    c = _counts(path)
    assert c["steering_settings"] == 3 and c["steering_generations"] == 12
    with actstore.open(path) as st:
        kinds = dict(st.sql("SELECT kind, count(*) FROM steering_settings GROUP BY 1").fetchall())
        assert kinds == {"baseline": 1, "add": 2}
        metrics = {r[0] for r in st.sql("SELECT DISTINCT metric FROM steering_metrics").fetchall()}
        assert {"expression", "expression.benevolence", "distinct_2", "ead_2"} <= metrics
        rel = st.sql("SELECT scale, alpha, meta FROM steering_settings WHERE kind = 'add'").fetchall()
        assert all(r[0] > 0 and r[1] == 2.0 and "mean_norm" in r[2] for r in rel)
    # Re-running does no work: not even loading the model (a bogus loader would fail).
    with actstore.open(path) as st:
        again = run_sweep(st, spec, model=None)
    assert again.generations == 0 and again.done == 0 and again.skipped == 6
    assert _counts(path) == c


def test_an_interrupted_sweep_resumes_where_it_stopped(store, monkeypatch):
    path, mdir = store
    spec = _spec(mdir)
    from analyses.steering import sweep as sw

    real, calls = sw._run_pair, []

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*a, **kw)

    monkeypatch.setattr(sw, "_run_pair", flaky)
    with actstore.open(path) as st, pytest.raises(KeyboardInterrupt):
        run_sweep(st, spec)
    monkeypatch.setattr(sw, "_run_pair", real)
    with actstore.open(path) as st:
        res = run_sweep(st, spec)
        assert res.skipped == 2 and res.done == 4
        assert st.sql("SELECT status FROM runs WHERE kind = 'steer' ORDER BY run_id").fetchall() == [("failed",), ("done",)]
    assert _counts(path)["steering_generations"] == 12


def test_neuron_sets_come_from_neuron_scores_by_sql(store):
    path, mdir = store
    for mode in ("scale", "zero", "mean"):
        spec = _spec(mdir, vectors=None, neurons="value = 'benevolence' AND class = 'shared'", betas=(0.0, 2.0),
                     neuron_mode=mode, evals=("expression",))
        with actstore.open(path) as st:
            _, settings = plan(st, spec)
            run_sweep(st, spec)
            members = st.sql("SELECT layer, neuron, mean_act FROM steering_neuron_sets ORDER BY 1, 2").fetchall()
        assert [(r[0], r[1]) for r in members] == [(1, 0), (1, 5), (2, 1), (2, 2), (2, 3)]
        assert len(settings) == (3 if mode == "scale" else 2)
    assert all(r[2] is not None for r in members)  # the mean mode stored the means


def test_report_tables_and_plot(store, tmp_path):
    from analyses.steering.report import report

    path, mdir = store
    with actstore.open(path) as st:
        run_sweep(st, _spec(mdir, alphas=(1.0, 2.0)))
        rep = report(st, plot_path=tmp_path / "s.png")
    assert rep.plot is not None and rep.plot.stat().st_size > 1000
    assert set(rep.table.vector_kind.dropna()) == {"intrinsic", "shared"}
    assert {"expression", "distinct_2"} <= set(rep.table.columns)


def test_cli_runs_a_sweep_and_reports_it(store, tmp_path):
    from click.testing import CliRunner

    from actstore.cli import main

    path, mdir = store
    r = CliRunner().invoke(main, ["steer", str(path), "--model", str(mdir), "--vectors", "1,2", "--alphas", "0,3",
                                  "--eval", "expression,diversity,mcq,jailbreak,instructions,questionnaire",
                                  "--limit", "2", "--max-new-tokens", "3", "--prompts", "store", "--judge", "valueworld"],
                             obj={})
    assert r.exit_code == 0, r.output
    assert "sweep sw-" in r.output
    png = tmp_path / "r.png"
    r = CliRunner().invoke(main, ["analyze", "steering", str(path), "--plot", str(png)], obj={})
    assert r.exit_code == 0, r.output
    assert png.exists()
    r = CliRunner().invoke(main, ["steer", "report", str(path), "--long"], obj={})
    assert r.exit_code == 0 and "accuracy" in r.output and "asr" in r.output


@pytest.mark.parametrize("args, match", [
    (["--vectors", "value = 'nope'"], "no vectors match"),
    (["--vectors", "1", "--alphas", "x"], "bad number list"),
    (["--vectors", "1", "--eval", "vibes"], "unknown eval"),
    (["--neurons", "layer = 99"], "no neurons match"),
    (["--vectors", "1", "--samples", "3"], "greedy"),
])
def test_bad_input_is_one_line_and_changes_nothing(store, args, match):
    from click.testing import CliRunner

    from actstore.cli import main

    path, mdir = store
    before = _counts(path)
    r = CliRunner().invoke(main, ["steer", str(path), "--model", str(mdir), *args], obj={})
    assert r.exit_code != 0 and match in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1
    assert _counts(path) == before


def test_spec_rejects_what_cannot_run():
    with pytest.raises(InputError, match="--ablate needs --vectors"):
        SweepSpec(model="m", neurons="TRUE", ablate=True)
    with pytest.raises(InputError, match="alpha mode"):
        SweepSpec(model="m", vectors="TRUE", alpha_mode="huge")


def test_eval_sets_score_answers_without_a_model(value_portrait):
    from analyses.steering import evalsets as es

    q = es.questionnaire_set(4, str(value_portrait.parent))
    m, verdicts = q.score(q.items, ["5", "I would say 2.", "no idea", "6"], None)
    assert verdicts == [5.0, 2.0, None, 6.0] and m["answered_share"] == 0.75
    ours = es.questionnaire_set(2)
    assert ours.score(ours.items, ["1", "6"], None)[1] == [1.0, 6.0]
    jb = es.jailbreak_set("builtin", 2)
    m, v = jb.score(jb.items, ["I'm sorry, but I can't help with that.", "Sure, here is how."], None)
    assert m["asr"] == 0.5 and v == [0.0, 1.0]
    mcq = es.mcq_set("builtin", 2)
    answers = [it.payload.answer for it in mcq.items]
    assert mcq.score(mcq.items, answers, None)[0]["accuracy"] == 1.0
    ex = es.expression_set([es.EvalItem("a", "q")], "valueworld", 1)
    assert ex.score(ex.items, ["no values here"], "tradition")[0]["expression"] == 0.0
