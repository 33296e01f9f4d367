"""End to end on a tiny random Llama with the chat tokenizer: prompts -> generate -> label -> capture.

Parity *through the store*: what ``Store.read`` returns for a record equals what a plain forward pass
over that record's stored tokens computes (block l's output; the down projection's input):

* bit for bit (``torch.equal``), in float32 and in bfloat16, when each record is alone in its
  forward batch (``token_budget`` below any record's length, so the packer puts one per batch);
* ``allclose`` when records share a padded batch: kernels may block and reduce differently for
  another batch shape, which moves the last bits (see ``ingest.capture``).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import actstore
from actstore.verify import verify
from ingest import pipeline
from ingest.adapters import adapter_for
from ingest.config import IngestConfig


@pytest.fixture(autouse=True)
def _one_thread():
    # Tiny matmuls on a shared 2-core machine: one thread is faster and steadier.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_config(store: Path, model_dir: Path, inputs: Path, **kw) -> IngestConfig:
    base = {"store": str(store), "model": str(model_dir), "prompts": str(inputs / "q.jsonl"),
            "values": ("benevolence", "power"), "templates_per_value": 1, "samples": 2, "max_new_tokens": 4,
            "batch_size": 4, "judge": f"lexicon:{inputs / 'lex.json'}", "token_budget": 16, "quiet": True}
    return IngestConfig(**{**base, **kw})


def _plain_reference(model, ids: torch.Tensor) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
    """Block outputs and down-projection inputs of an unhooked-by-us forward over one sequence."""
    adapter = adapter_for(model)
    n = len(adapter.blocks_of(model))
    mlp_in = {}
    handles = [adapter.mlp_of(model, layer).register_forward_pre_hook(
        lambda mod, args, layer=layer: mlp_in.__setitem__(layer, args[0])) for layer in range(n)]
    try:
        with torch.no_grad():
            hs = model(input_ids=ids[None], output_hidden_states=True).hidden_states
    finally:
        for h in handles:
            h.remove()
    # HF's last hidden state has the final norm applied: compare the last block with a copy
    # whose final norm is the identity, so its last hidden state is the block's own output.
    clone = copy.deepcopy(model)
    parent, _, name = adapter.final_norm.rpartition(".")
    setattr(clone.get_submodule(parent), name, torch.nn.Identity())
    with torch.no_grad():
        last = clone(input_ids=ids[None], output_hidden_states=True).hidden_states[-1]
        acts = {l: (m := adapter.mlp_of(model, l)).act_fn(m.gate_proj(mlp_in[l])) * m.up_proj(mlp_in[l])
                for l in range(n)}
    resid = {l: hs[l + 1][0] for l in range(n - 1)}
    resid[n - 1] = last[0]
    return resid, {l: a[0] for l, a in acts.items()}


def _check_parity(store_dir: Path, model, exact: bool) -> None:
    with actstore.open(store_dir) as st:
        recs = st.sql("SELECT record_id, row_start, n_tokens, prompt_len FROM records ORDER BY record_id").fetchall()
        assert recs
        n_layers = st.model.n_layers
        for rid, start, n, plen in recs:
            rows = np.arange(start, start + n)
            ids = torch.tensor(st.sql(f'SELECT token_id FROM tokens WHERE "row" BETWEEN {start} AND {start + n - 1} '
                                      'ORDER BY "row"').fetchnumpy()["token_id"].astype(np.int64))
            resid, acts = _plain_reference(model, ids)
            for layer in range(n_layers):
                for kind, ref in (("resid_post", resid[layer]), ("mlp_act", acts[layer])):
                    got = st.read(kind, layer, rows, dtype="torch")
                    assert got.dtype == ref.dtype
                    if exact:
                        assert torch.equal(got, ref), f"{kind}.{layer} record {rid} differs"
                    else:
                        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
                    # Pools: float32 mean of the stored response rows; the stored last prompt row.
                    mean = st.read(kind, layer, [rid], pool="mean_response")[0]
                    np.testing.assert_allclose(mean, got[plen:].float().mean(0).numpy(), rtol=1e-5, atol=1e-6)
                    last = st.read(kind, layer, [rid], pool="last_prompt", dtype="torch")[0]
                    assert torch.equal(last, got[plen - 1])
        assert verify(st).ok


@pytest.fixture(scope="module")
def e2e_store(tmp_path_factory, tiny_model_dir, inputs) -> Path:
    store = tmp_path_factory.mktemp("e2e") / "store"
    torch.set_num_threads(1)
    rep = pipeline.run(make_config(store, tiny_model_dir, inputs))
    assert rep.counts == {"prompts": 9, "responses": 18, "labels": 36, "records": 18}
    return store


def test_end_to_end_tables(e2e_store: Path, inputs: Path, chat_tokenizer) -> None:
    with actstore.open(e2e_store) as st:
        prompts = st.sql("SELECT * FROM prompts").df()
        assert sorted(prompts.condition.value_counts().items()) == [("intrinsic", 3), ("prompted", 6)]
        assert prompts.chat_text.str.startswith("<|im_start|>").all()
        assert (prompts.chat_text.str.endswith("<|im_start|>assistant\n")).all()
        resp = st.sql("SELECT * FROM responses ORDER BY response_id").df()
        assert resp.response_id.tolist() == sorted(f"{p}#s{k}" for p in prompts.prompt_id for k in (0, 1))
        params = [json.loads(g) for g in resp.gen_params]
        assert {(p["max_new_tokens"], p["temperature"], p["top_p"]) for p in params} == {(4, 0.7, 0.95)}
        assert resp.seed.nunique() == len(resp)
        labels = st.sql("SELECT l.*, r.text FROM labels l JOIN responses r USING (response_id)").df()
        assert set(labels.judge_id) == {"lexicon:lex"} and len(labels) == 36
        # The judge's verdicts, recomputed: a value is expressed when one of its phrases occurs as a word.
        import re
        phrases = json.loads((inputs / "lex.json").read_text(encoding="utf-8"))
        for row in labels.itertuples():
            want = any(re.search(rf"\b{re.escape(p)}\b", row.text, re.IGNORECASE) for p in phrases[row.value])
            assert row.expressed == want
        # Response tokens are exactly the generated ids (teacher forcing what was sampled).
        for rid, gen in zip(resp.response_id, resp.gen_params):
            ids = st.sql("SELECT token_id FROM tokens_info WHERE response_id = ? AND role = 'response' "
                         "ORDER BY \"row\"", [rid]).fetchnumpy()["token_id"].tolist()
            assert ids == json.loads(gen)["token_ids"]
        kinds = st.sql("SELECT kind, status FROM runs ORDER BY run_id").fetchall()
        assert kinds == [("ingest:prompts", "done"), ("ingest:generate", "done"), ("ingest:label", "done"),
                         ("ingest:capture", "done")]


def test_store_holds_weights_and_float32_means(e2e_store: Path, tiny_model_dir) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    with actstore.open(e2e_store) as st:
        for layer in range(3):
            assert np.array_equal(st.weight("mlp_down", layer), model.model.layers[layer].mlp.down_proj.weight.detach().numpy())
        assert np.array_equal(st.weight("unembed"), model.lm_head.weight.detach().numpy())
        assert np.array_equal(st.weight("final_norm")[0], model.model.norm.weight.detach().numpy())
        dtypes = {(m.pool, m.logical_dtype) for m in st.arrays() if m.kind == "activation"}
        assert dtypes == {("token", "float32"), ("mean_response", "float32"), ("last_prompt", "float32")}


def test_parity_float32_alone_in_batch_is_bit_exact(e2e_store: Path, tiny_model_dir) -> None:
    from transformers import AutoModelForCausalLM

    _check_parity(e2e_store, AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), exact=True)


def test_parity_bfloat16_alone_in_batch_is_bit_exact(tmp_path, tiny_model_dir, inputs) -> None:
    from transformers import AutoModelForCausalLM

    store = tmp_path / "bf16"
    cfg = make_config(store, tiny_model_dir, inputs, dtype="bfloat16", values=("power",), samples=1)
    pipeline.generate(cfg)
    pipeline.capture(cfg)
    with actstore.open(store) as st:
        assert st.model.dtype == "bfloat16"
        assert {m.logical_dtype for m in st.arrays() if m.pool == "mean_response"} == {"float32"}
        assert {m.logical_dtype for m in st.arrays() if m.pool == "token"} == {"bfloat16"}
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.bfloat16).eval()
    _check_parity(store, model, exact=True)


def test_parity_padded_batches_is_allclose(tmp_path, tiny_model_dir, inputs) -> None:
    from transformers import AutoModelForCausalLM

    store = tmp_path / "padded"
    cfg = make_config(store, tiny_model_dir, inputs, values=("power",), token_budget=4096)
    pipeline.generate(cfg)
    pipeline.capture(cfg)
    with actstore.open(store) as st:  # every record went through one padded forward batch
        assert st.sql("SELECT count(DISTINCT batch_id) FROM records").fetchall()[0][0] == 1
    _check_parity(store, AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval(), exact=False)


def test_rerun_adds_nothing(e2e_store: Path, tiny_model_dir, inputs) -> None:
    before = _table_dump(e2e_store)
    rep = pipeline.run(make_config(e2e_store, tiny_model_dir, inputs))
    assert rep.counts == {"prompts": 0, "responses": 0, "labels": 0, "records": 0}
    assert _table_dump(e2e_store) == before


def _table_dump(store: Path) -> dict[str, list]:
    with actstore.open(store) as st:
        return {t: st.sql(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
                for t in ("prompts", "responses", "labels", "records", "tokens")}


def test_label_stage_judges_known_text(tmp_path, tiny_model_dir, inputs) -> None:
    store = tmp_path / "lab"
    cfg = make_config(store, tiny_model_dir, inputs, values=("benevolence", "power"), templates_per_value=0)
    pipeline.generate(cfg)
    with actstore.open(store, read_only=False) as st:
        pid = st.sql("SELECT prompt_id FROM prompts LIMIT 1").fetchall()[0][0]
        st.insert("responses", {"response_id": ["known"], "prompt_id": [pid], "sample_idx": [9],
                                "text": ["Caring for others matters."], "source": ["test"]})
    pipeline.label(cfg)
    with actstore.open(store) as st:
        got = dict(st.sql("SELECT value, expressed FROM labels WHERE response_id = 'known'").fetchall())
        raw = st.sql("SELECT raw FROM labels WHERE response_id = 'known' AND value = 'benevolence'").fetchall()[0][0]
    assert got == {"benevolence": True, "power": False}
    assert set(raw.split("|")) == {"caring", "others"}


def test_generation_seed_is_per_response(tiny_model_dir, chat_tokenizer) -> None:
    """A response depends on its seed, not on which prompts shared its batch."""
    from transformers import AutoModelForCausalLM

    from ingest.generate import GenParams, generate_batch
    from ingest.tokenize import tokenize_prompt

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    chat_tokenizer.padding_side = "left"
    a = tokenize_prompt(chat_tokenizer, [{"role": "user", "content": "Hello there!"}])
    b = tokenize_prompt(chat_tokenizer, [{"role": "system", "content": "You are a helpful assistant."},
                                         {"role": "user", "content": "What should I do this weekend?"}])
    params = GenParams(max_new_tokens=6, temperature=1.0, top_p=0.9)
    alone = generate_batch(model, chat_tokenizer, [a], [123], params)[0][0]
    both = generate_batch(model, chat_tokenizer, [b, a], [7, 123], params)[1][0]
    again = generate_batch(model, chat_tokenizer, [a], [123], params)[0][0]
    other = generate_batch(model, chat_tokenizer, [a], [124], params)[0][0]
    assert alone.tolist() == again.tolist() == both.tolist()
    assert alone.tolist() != other.tolist()


def test_value_portrait_import_needs_no_generation(tmp_path, tiny_model_dir) -> None:
    vp = Path(__file__).resolve().parents[3] / "shared" / "data" / "value-portrait"
    if not (vp / "tagged_responses.json").is_file():
        pytest.skip("Value Portrait data not found")
    store = tmp_path / "vp"
    # The tiny model's context (64 positions) is shorter than any Value Portrait record: say how far
    # it may read (RoPE has no position table), else the import refuses them (tests/analyses/test_value_portrait_cli.py).
    cfg = IngestConfig(store=str(store), model=str(tiny_model_dir), import_path=str(vp), max_queries=2,
                       layers="1", sites=("resid_post",), per_token=False, quiet=True, token_budget=4096,
                       max_tokens=4096)
    rep = pipeline.import_(cfg)
    assert rep.counts["responses"] == rep.counts["records"] > 0
    with actstore.open(store) as st:
        src = st.sql("SELECT DISTINCT source FROM responses").fetchall()
        judges = st.sql("SELECT DISTINCT judge_id FROM labels").fetchall()
        kinds = [k for (k,) in st.sql("SELECT kind FROM runs ORDER BY run_id").fetchall()]
        assert st.n_records == rep.counts["records"]
        assert not [m for m in st.arrays() if m.pool == "token"]
    assert src == [("imported:value-portrait",)] and judges == [("value-portrait:rho>=0.3",)]
    assert "ingest:generate" not in kinds and kinds[-2:] == ["ingest:import", "ingest:capture"]


@pytest.mark.parametrize("side", ["left", "right"])
def test_capture_into_caller_buffers_equals_own_buffers(make_tiny_model, side) -> None:
    from actstore.site import Site
    from ingest.capture import Capturer

    model = make_tiny_model("qwen2", dtype="bfloat16")
    torch.manual_seed(0)
    seqs = [torch.randint(0, 300, (n,)) for n in (7, 3, 5)]
    width = max(len(s) for s in seqs)
    ids = torch.zeros(3, width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, s in enumerate(seqs):
        cols = slice(width - len(s), width) if side == "left" else slice(0, len(s))
        ids[i, cols], mask[i, cols] = s, 1
    plens = [4, 1, 5]
    pools = ("token", "mean_response", "last_prompt")
    with Capturer(model, None, [0, 2], ["resid_post", "mlp_act"], pools=pools) as cap:
        own = cap.capture(ids, mask, plens).copy()
        into = {}
        for site in cap.sites:
            w = 32 if site.kind == "resid_post" else 48
            into[(site, "token")] = torch.empty(15, w, dtype=torch.bfloat16)
            into[(site, "last_prompt")] = torch.empty(3, w, dtype=torch.bfloat16)
            into[(site, "mean_response")] = torch.empty(3, w, dtype=torch.float32)
        got = cap.capture(ids, mask, plens, into=into)
    for site in cap.sites:
        for pool in pools:
            assert np.array_equal(got.get(site, pool), own.get(site, pool), equal_nan=True)
            assert np.shares_memory(got.get(site, pool), into[(site, pool)].view(torch.int16).numpy()
                                    if into[(site, pool)].dtype == torch.bfloat16 else into[(site, pool)].numpy())
    assert Site("resid_post", 0) in cap.sites
