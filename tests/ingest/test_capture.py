"""Capture parity: what the hooks store is what the model computed (DESIGN invariant 4).

References, all computed by separate forward passes without the Capturer:

* resid_post, layers 0..n-2: Hugging Face's ``hidden_states[l + 1]`` of a plain forward.
* resid_post, last layer: HF's last ``hidden_states`` entry has the final norm applied, so the
  reference is a plain forward of a deep copy whose final norm is replaced by ``nn.Identity``: its
  last hidden state *is* the last block's output (nothing is inverted or recomputed).
* mlp_act: a separate run with a pre-hook on each block's MLP records the MLP's *input*; the
  reference recomputes the neuron activations from the MLP's own submodules (``act(gate(x)) *
  up(x)``, Phi-3's fused ``gate_up_proj``, GPT-2's ``act(c_fc(x))``). The Capturer reads the
  down projection's input instead, so the two meet only if the adapter points at the right module.

All three are compared bit for bit (``torch.equal``) in float32 and bfloat16. Across batch
compositions (a record alone vs padded among others) only ``allclose`` is promised: matmul and
attention kernels may reduce in another order for another shape.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from actstore.errors import InputError, UsageError
from actstore.site import Site
from ingest.adapters import adapter_for
from ingest.capture import Capturer, decode

LAYERS = [0, 1, 2]
SITES = ["resid_post", "mlp_act"]


def _mlp_act_reference(family: str, mlp: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    if family == "gpt2":
        return mlp.act(mlp.c_fc(x))
    if family == "phi3":
        gate, up = mlp.gate_up_proj(x).chunk(2, dim=-1)
        return up * mlp.activation_fn(gate)
    return mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)


def _without_final_norm(model: torch.nn.Module) -> torch.nn.Module:
    clone = copy.deepcopy(model)
    parent, _, name = adapter_for(clone).final_norm.rpartition(".")
    setattr(clone.get_submodule(parent), name, torch.nn.Identity())
    return clone


def _reference(family, model, ids, mask=None, position_ids=None):
    """-> ({layer: resid_post [B, T, d]}, {layer: mlp_act [B, T, d_mlp]}) from plain forwards."""
    kwargs = {} if mask is None else {"attention_mask": mask, "position_ids": position_ids}
    adapter = adapter_for(model)
    n = len(adapter.blocks_of(model))
    mlp_in = {}
    handles = [adapter.mlp_of(model, layer).register_forward_pre_hook(
        lambda mod, args, layer=layer: mlp_in.__setitem__(layer, args[0])) for layer in range(n)]
    try:
        with torch.no_grad():
            hs = model(input_ids=ids, output_hidden_states=True, **kwargs).hidden_states
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        last = _without_final_norm(model)(input_ids=ids, output_hidden_states=True, **kwargs).hidden_states[-1]
        acts = {layer: _mlp_act_reference(family, adapter.mlp_of(model, layer), mlp_in[layer]) for layer in range(n)}
    resid = {layer: hs[layer + 1] for layer in range(n - 1)}
    resid[n - 1] = last
    return resid, acts


def _as_torch(batch, site, pool="token"):
    a = batch.get(site, pool)
    if batch.dtype == "bfloat16":
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_capture_equals_plain_forward_bit_for_bit(family, dtype, make_tiny_model):
    model = make_tiny_model(family, dtype=dtype)
    torch.manual_seed(1)
    ids = torch.randint(0, 300, (2, 11))
    with Capturer(model, None, LAYERS, SITES) as cap:
        got = cap.capture(ids, torch.ones_like(ids), [4, 6])
    resid, acts = _reference(family, model, ids)
    assert got.dtype == dtype and got.n_tokens == 22 and got.offsets.tolist() == [0, 11, 22]
    for layer in LAYERS:
        assert torch.equal(_as_torch(got, Site("resid_post", layer)), resid[layer].reshape(22, -1)), layer
        assert torch.equal(_as_torch(got, Site("mlp_act", layer)), acts[layer].reshape(22, -1)), layer
    # Sanity of the reference itself: the last block's output is not HF's normed last entry.
    with torch.no_grad():
        hf_last = model(input_ids=ids, output_hidden_states=True).hidden_states[-1]
    assert not torch.equal(resid[2], hf_last)


@pytest.mark.parametrize("side", ["left", "right"])
def test_padded_batch_packs_only_real_tokens_bit_for_bit(family, side, make_tiny_model):
    model = make_tiny_model(family)
    torch.manual_seed(2)
    lengths = [5, 9, 7]
    ids, mask = _pad([torch.randint(0, 300, (n,)) for n in lengths], side)
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with Capturer(model, None, LAYERS, SITES) as cap:
        got = cap.capture(ids, mask, [2, 4, 7])
    resid, acts = _reference(family, model, ids, mask, pos)
    real = mask.bool()
    assert got.lengths.tolist() == lengths and got.token_ids.tolist() == ids[real].tolist()
    for layer in LAYERS:
        assert torch.equal(_as_torch(got, Site("resid_post", layer)), resid[layer][real])
        assert torch.equal(_as_torch(got, Site("mlp_act", layer)), acts[layer][real])


def _pad(seqs, side, pad_id=0):
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        sl = slice(width - len(s), width) if side == "left" else slice(0, len(s))
        ids[i, sl], mask[i, sl] = s, 1
    return ids, mask


@pytest.mark.parametrize("family_", ["llama", "gemma2", "gpt2", "phi3"])
def test_record_in_padded_batch_matches_record_alone(family_, make_tiny_model):
    model = make_tiny_model(family_)
    torch.manual_seed(3)
    target = torch.randint(0, 300, (8,))
    others = [torch.randint(0, 300, (n,)) for n in (13, 4)]
    with Capturer(model, None, LAYERS, SITES) as cap:
        alone = cap.capture(target[None], torch.ones(1, 8, dtype=torch.long), [3]).copy()
        for side in ("left", "right"):
            ids, mask = _pad([others[0], target, others[1]], side)
            got = cap.capture(ids, mask, [5, 3, 2])
            for site in cap.sites:
                np.testing.assert_allclose(got.record(site, 1), alone.record(site, 0), rtol=1e-5, atol=1e-6)
                for pool in ("mean_response", "last_prompt"):
                    np.testing.assert_allclose(got.get(site, pool)[1], alone.get(site, pool)[0],
                                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_pools_are_last_prompt_row_and_float32_mean_of_response_rows(dtype, make_tiny_model):
    model = make_tiny_model("qwen3", dtype=dtype)
    torch.manual_seed(4)
    ids, mask = _pad([torch.randint(0, 300, (n,)) for n in (6, 10, 3)], "left")
    plens = [2, 9, 3]  # record 2 has no response tokens
    with Capturer(model, None, [1], SITES) as cap:
        got = cap.capture(ids, mask, plens)
    assert got.n_response.tolist() == [4, 1, 0]
    for site in cap.sites:
        tokens = _as_torch(got, site)
        last = _as_torch(got, site, "last_prompt")
        mean = torch.from_numpy(got.get(site, "mean_response"))  # float32 in every model dtype
        assert mean.dtype == torch.float32
        for b in range(3):
            rows = tokens[got.offsets[b]:got.offsets[b + 1]]
            assert torch.equal(last[b], rows[plens[b] - 1])
            if got.n_response[b]:
                # Same values summed in float32, maybe in another order.
                ref = rows[plens[b]:].float().mean(0)
                torch.testing.assert_close(mean[b], ref, rtol=1e-6, atol=1e-6)
            else:
                assert torch.isnan(mean[b]).all()


def test_bfloat16_is_exposed_as_raw_bits_with_logical_dtype(make_tiny_model):
    model = make_tiny_model("llama", dtype="bfloat16")
    ids = torch.randint(0, 300, (1, 5))
    got = Capturer(model, None, [0], ["resid_post"], pools=["token"]).capture(ids, torch.ones_like(ids), [2])
    a = got.get(Site("resid_post", 0), "token")
    assert got.dtype == "bfloat16" and a.dtype == np.uint16
    assert np.array_equal(decode(a, "bfloat16"), _as_torch(got, Site("resid_post", 0)).float().numpy())
    assert set(got.tokens) == {Site("resid_post", 0)} and not got.mean_response and not got.last_prompt


def test_forward_stops_after_deepest_needed_block(make_tiny_model):
    model = make_tiny_model("llama")
    ran = []
    probe = model.model.layers[2].register_forward_hook(lambda *a: ran.append(2))
    norm = model.model.norm.register_forward_hook(lambda *a: ran.append("norm"))
    try:
        ids = torch.randint(0, 300, (1, 5))
        Capturer(model, None, [0, 1], SITES).capture(ids, torch.ones_like(ids), [2])
    finally:
        probe.remove()
        norm.remove()
    assert ran == []


def test_hooks_are_removed_on_exit_and_after_a_bare_capture(make_tiny_model):
    model = make_tiny_model("gpt2")

    def n_hooks():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

    before = n_hooks()
    ids = torch.randint(0, 300, (1, 5))
    cap = Capturer(model, None, LAYERS, SITES)
    cap.capture(ids, torch.ones_like(ids), [2])
    assert n_hooks() == before
    with cap:
        assert n_hooks() > before
        cap.capture(ids, torch.ones_like(ids), [2])
    assert n_hooks() == before


def test_buffers_are_reused_and_copy_survives_next_capture(make_tiny_model):
    model = make_tiny_model("llama")
    site = Site("resid_post", 0)
    with Capturer(model, None, [0], ["resid_post"]) as cap:
        first = cap.capture(torch.randint(0, 300, (1, 6)), torch.ones(1, 6, dtype=torch.long), [2])
        kept = first.copy()
        before = first.get(site, "token").copy()
        cap.capture(torch.randint(0, 300, (1, 6)), torch.ones(1, 6, dtype=torch.long), [2])
    assert not np.array_equal(first.get(site, "token"), before)  # aliased buffer was overwritten
    assert np.array_equal(kept.get(site, "token"), before)


def test_site_widths(make_tiny_model):
    cap = Capturer(make_tiny_model("gpt2"), None, [0, 2], SITES)
    assert cap.site_widths() == {Site("mlp_act", 0): 128, Site("mlp_act", 2): 128,
                                 Site("resid_post", 0): 32, Site("resid_post", 2): 32}


def test_bad_arguments(make_tiny_model):
    model = make_tiny_model("llama")
    with pytest.raises(UsageError, match="layer 3 out of range"):
        Capturer(model, None, [0, 3], SITES)
    with pytest.raises(UsageError, match="unknown site kind 'attn_out'"):
        Capturer(model, None, [0], ["attn_out"])
    with pytest.raises(UsageError, match="unknown pool"):
        Capturer(model, None, [0], SITES, pools=["max"])
    cap = Capturer(model, None, [0], SITES)
    ids = torch.randint(0, 300, (2, 5))
    with pytest.raises(InputError, match="prompt_lens"):
        cap.capture(ids, torch.ones_like(ids), [0, 2])
    with pytest.raises(InputError, match="padding between real tokens"):
        cap.capture(ids, torch.tensor([[1, 0, 1, 1, 1], [1, 1, 1, 1, 1]]), [1, 1])
    with pytest.raises(InputError, match="no real tokens"):
        cap.capture(ids, torch.tensor([[0, 0, 0, 0, 0], [1, 1, 1, 1, 1]]), [1, 1])
    model.train()
    try:
        with pytest.raises(UsageError, match="model.eval"):
            cap.capture(ids, torch.ones_like(ids), [1, 1])
    finally:
        model.eval()


def test_installed_hooks_leave_other_forward_passes_alone(make_tiny_model):
    model = make_tiny_model("mistral")
    ids = torch.randint(0, 300, (1, 6))
    with torch.no_grad():
        ref = model(input_ids=ids).logits
        with Capturer(model, None, [0], SITES):
            out = model(input_ids=ids).logits  # e.g. generation between captures
    assert torch.equal(out, ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_capture_on_cuda_uses_pinned_buffers_and_matches_plain_forward(make_tiny_model):
    model = make_tiny_model("llama", dtype="bfloat16").to("cuda")
    ids, mask = _pad([torch.randint(0, 300, (n,)) for n in (7, 4)], "left")
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    with Capturer(model, None, LAYERS, SITES) as cap:
        got = cap.capture(ids.cuda(), mask.cuda(), [3, 2])
        assert all(buf.is_pinned() for buf in cap._host.values())
    resid, acts = _reference("llama", model, ids.cuda(), mask.cuda(), pos.cuda())
    real = mask.bool().cuda()
    for layer in LAYERS:
        assert torch.equal(_as_torch(got, Site("resid_post", layer)), resid[layer][real].cpu())
        assert torch.equal(_as_torch(got, Site("mlp_act", layer)), acts[layer][real].cpu())


def test_one_site_name_as_a_string_is_accepted(make_tiny_model):
    cap = Capturer(make_tiny_model("llama"), None, [1], "mlp_act", pools="last_prompt")
    assert cap.sites == (Site("mlp_act", 1),) and cap.pools == ("last_prompt",)


def test_tokenized_records_collated_and_captured_pool_over_response_role(chat_tokenizer, make_tiny_model):
    from ingest.tokenize import RESPONSE, collate, tokenize_record

    model = make_tiny_model("qwen2")
    records = [
        tokenize_record(chat_tokenizer, [{"role": "user", "content": "Hello there!"}], "I am fine, thank you."),
        tokenize_record(chat_tokenizer, [{"role": "system", "content": "Answer briefly."},
                                         {"role": "user", "content": "What should I do this weekend?"}],
                        "Something new."),
    ]
    ids, mask, plens = collate(records, chat_tokenizer.pad_token_id, side="left")
    with Capturer(model, None, [2], ["resid_post"]) as cap:
        got = cap.capture(ids, mask, plens)
    site = Site("resid_post", 2)
    for b, rec in enumerate(records):
        rows = got.record(site, b)
        assert got.token_ids[got.offsets[b]:got.offsets[b + 1]].tolist() == rec.input_ids.tolist()
        np.testing.assert_allclose(got.get(site, "mean_response")[b], rows[rec.roles == RESPONSE].mean(0),
                                   rtol=1e-5, atol=1e-6)
        assert np.array_equal(got.get(site, "last_prompt")[b], rows[rec.prompt_len - 1])
