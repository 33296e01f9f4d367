"""Value Portrait from the command line, on a tiny random model: `ingest import` (with the overlong
rule) -> `analyze vectors` (one condition) -> `analyze structure --human`; decompose and neurons
refuse one condition with one line. Skips when the Value Portrait data is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from ingest_fixtures import FX

import actstore
from actstore.cli import main

torch = pytest.importorskip("torch")

VP = Path(__file__).resolve().parents[3] / "shared" / "data" / "value-portrait"
pytestmark = pytest.mark.skipif(not (VP / "tagged_responses.json").is_file(), reason="Value Portrait data not found")

# The tiny tokenizer spends ~1 token per 2 characters: records have 130-1520 tokens, prompts up to
# ~1310. Of the first 40 queries' 200 records, ~90 have a prompt longer than 500 tokens (truncate must
# skip those: nothing of the response would be left) and ~10 more are cut.
QUERIES = 40
MAX_TOKENS = 500


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny llama with a context long enough for every record (the rule then acts on --max-tokens)."""
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    path = tmp_path_factory.mktemp("tiny-llama-long")
    config = FX.tiny_config("llama")
    config.max_position_embeddings = 4096
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).eval().save_pretrained(path)
    tok = PreTrainedTokenizerFast(tokenizer_object=FX._train_bpe(), bos_token="<|endoftext|>",
                                  eos_token="<|im_end|>", pad_token="<|pad|>")
    tok.chat_template = FX.CHATML
    tok.save_pretrained(path)
    return path


def _cli(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, [str(a) for a in args])
    return res.exit_code, res.output


def _import(store: Path, model_dir: Path, *extra: str) -> tuple[int, str]:
    return _cli("ingest", "import", store, VP, "--model", model_dir, "--layers", "all", "--site", "resid_post",
                "--no-per-token", "--pool", "mean_response", "--quiet", *extra)


def _record_lengths(model_dir: Path) -> dict[str, tuple[int, int]]:
    """(prompt, whole record) tokens of every record of the first QUERIES queries (the prompt as the
    template renders it), counted independently."""
    from transformers import AutoTokenizer

    from ingest.prompts import Prompt, load_value_portrait_tagged
    from ingest.tokenize import tokenize_record

    tok = AutoTokenizer.from_pretrained(model_dir)
    tagged = load_value_portrait_tagged(VP)
    first = set(list(dict.fromkeys(t.query.query_id for t in tagged))[:QUERIES])
    out = {}
    for t in tagged:
        if t.query.query_id in first:
            rec = tokenize_record(tok, Prompt.make(t.query, "intrinsic").messages(), t.response)
            out[t.response_id] = (rec.prompt_len, int(rec.input_ids.shape[0]))
    return out


@pytest.fixture(scope="module")
def lengths(model_dir) -> dict[str, tuple[int, int]]:
    return _record_lengths(model_dir)


@pytest.fixture(scope="module")
def store(tmp_path_factory, model_dir) -> Path:
    path = tmp_path_factory.mktemp("vp") / "store"
    code, out = _import(path, model_dir, "--max-queries", QUERIES, "--max-tokens", MAX_TOKENS, "--overlong", "truncate")
    assert code == 0, out
    return path


def test_overlong_records_are_refused_by_default_and_nothing_is_written(tmp_path, model_dir, lengths) -> None:
    n_over = sum(n > MAX_TOKENS for _, n in lengths.values())
    assert 0 < n_over < len(lengths)
    code, out = _import(tmp_path / "s", model_dir, "--max-queries", QUERIES, "--max-tokens", MAX_TOKENS)
    assert code == 1
    assert f"{n_over} of {len(lengths)} records are longer than {MAX_TOKENS} tokens" in out
    assert "--overlong truncate" in out and "Traceback" not in out
    assert not (tmp_path / "s" / "catalog.duckdb").exists()


def test_truncate_cuts_each_overlong_response_and_records_it(store, lengths) -> None:
    too_long_prompt = {rid for rid, (p, _) in lengths.items() if p >= MAX_TOKENS}  # nothing left to keep
    cut_ = {rid for rid, (p, n) in lengths.items() if p < MAX_TOKENS < n}
    assert too_long_prompt and cut_
    with actstore.open(store) as st:
        rows = st.sql("SELECT response_id, gen_params FROM responses").fetchall()
        n_tokens = dict(st.sql("SELECT response_id, n_tokens FROM records").fetchall())
        params = json.loads(st.sql("SELECT params FROM runs WHERE kind = 'ingest:import'").fetchall()[0][0])
    assert {r for r, _ in rows} == set(lengths) - too_long_prompt == set(n_tokens)
    cut = {rid: json.loads(g)["overlong"] for rid, g in rows if g is not None}
    assert set(cut) == cut_
    for rid, how in cut.items():
        assert how == {"rule": "truncate", "tokens": lengths[rid][1], "kept": MAX_TOKENS}
        assert n_tokens[rid] == MAX_TOKENS
    for rid in set(n_tokens) - cut_:  # the others are captured whole
        assert n_tokens[rid] == lengths[rid][1]
    ov = params["overlong"]
    assert ov["rule"] == "truncate" and set(ov["truncated"]) == cut_ and set(ov["skipped"]) == too_long_prompt


def test_skip_leaves_overlong_responses_out_and_lists_them(tmp_path, model_dir, lengths) -> None:
    code, out = _import(tmp_path / "s", model_dir, "--max-tokens", MAX_TOKENS, "--overlong", "skip",
                        "--max-queries", 12)
    assert code == 0, out
    with actstore.open(tmp_path / "s") as st:
        have = {r[0] for r in st.sql("SELECT response_id FROM responses").fetchall()}
        labelled = {r[0] for r in st.sql("SELECT DISTINCT response_id FROM labels").fetchall()}
        params = json.loads(st.sql("SELECT params FROM runs WHERE kind = 'ingest:import'").fetchall()[0][0])
    skipped = set(params["overlong"]["skipped"])
    assert skipped and not skipped & have and not skipped & labelled
    assert all(lengths[r][1] > MAX_TOKENS for r in skipped) and all(lengths[r][1] <= MAX_TOKENS for r in have)


def test_vectors_use_the_one_condition_an_import_has(store) -> None:
    code, out = _cli("analyze", "vectors", store, "--min-count", 1, "--no-record")
    assert code == 0, out
    assert "conditions: intrinsic only" in out.splitlines()[0]
    code, out = _cli("analyze", "vectors", store, "--condition", "both", "--no-record")
    assert code == 1 and "no labelled prompted records" in out and "--condition intrinsic" in out
    code, out = _cli("analyze", "vectors", store, "--contrast", "prompted-intrinsic", "--no-record")
    assert code == 1 and "needs labelled records of both conditions" in out


def test_intrinsic_vector_is_the_difference_of_the_human_tagged_groups(store) -> None:
    """Recorded vector == mean pooled activation of responses people tag with the value minus the rest."""
    code, out = _cli("analyze", "vectors", store, "--condition", "intrinsic", "--layers", "2", "--min-count", 1)
    assert code == 0, out
    with actstore.open(store) as st:
        vec = np.asarray(st.sql("SELECT vec FROM vectors WHERE value = 'power' AND layer = 2 AND condition = "
                                "'intrinsic' AND component = 'diff_means'").fetchall()[-1][0])
        rows = st.sql("SELECT rec.record_id, l.expressed FROM records rec JOIN labels l USING (response_id) "
                      "WHERE l.value = 'power' ORDER BY 1").fetchall()
        ids = np.array([r[0] for r in rows])
        exp = np.array([r[1] for r in rows])
        acts = st.read("resid_post", 2, ids, pool="mean_response", dtype="float64")
        conds = {r[0] for r in st.sql("SELECT DISTINCT condition FROM vectors").fetchall()}
    want = acts[exp].mean(axis=0) - acts[~exp].mean(axis=0)
    assert conds == {"intrinsic"}
    np.testing.assert_allclose(vec, want, rtol=1e-4, atol=1e-6)


def test_decompose_and_neurons_refuse_one_condition_with_the_fix(store) -> None:
    assert _cli("analyze", "vectors", store, "--min-count", 1)[0] == 0
    for cmd in ("decompose", "neurons"):
        code, out = _cli("analyze", cmd, store)
        assert code == 1, out
        line = out.strip()
        assert "\n" not in line and "has intrinsic vectors only" in line and "--condition both" in line


def test_structure_against_humans_on_the_intrinsic_vectors(store) -> None:
    assert _cli("analyze", "vectors", store, "--min-count", 1)[0] == 0
    code, out = _cli("analyze", "structure", store, "--human", VP, "--n-perm", 20, "--no-record")
    assert code == 0, out
    assert "using the intrinsic diff_means vectors" in out
    line = next(x for x in out.splitlines() if x.startswith("vs human correlations"))
    pearson = float(line.split("Pearson ")[1].split()[0])
    assert np.isfinite(pearson) and -1 <= pearson <= 1
