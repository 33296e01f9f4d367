"""Unit tests of the pipeline's pure parts: config validation and TOML, packing, progress."""

from __future__ import annotations

import io
from types import SimpleNamespace

import numpy as np
import pytest

from actstore.errors import InputError, UsageError
from ingest.config import IngestConfig, parse_judge, read_toml
from ingest.packing import batch_key, order_records, plan
from ingest.progress import Progress

SHAPES = SimpleNamespace(n_layers=8, d_model=512, d_mlp=1376, vocab_size=1000, dtype="bfloat16", family="llama")


def test_config_normalises_lists_and_values() -> None:
    cfg = IngestConfig(store="s", values=["Self-Direction", "power"], languages="en,ko", sites="resid_post")
    assert cfg.values == ("self_direction", "power")
    assert cfg.languages == ("en", "ko") and cfg.sites == ("resid_post",)


@pytest.mark.parametrize("kw, err, match", [
    ({"values": ["nonsense"]}, InputError, "unknown value 'nonsense'"),
    ({"values": []}, InputError, "values is empty"),
    ({"languages": ["xx"]}, InputError, "unknown language 'xx'"),
    ({"sites": ["attn_out"]}, UsageError, "unknown site 'attn_out'"),
    ({"pools": ["token"]}, UsageError, "unknown pool"),
    ({"layers": "1-x"}, UsageError, "bad layer list"),
    ({"samples": 0}, UsageError, "samples must be an integer >= 1"),
    ({"top_p": 0}, UsageError, "top_p"),
    ({"dtype": "int8"}, UsageError, "bad dtype"),
    ({"judge": "gpt4"}, UsageError, "bad judge"),
    ({"judge": "openai:localhost#m"}, UsageError, "openai:URL#MODEL"),
    ({"weights": ["embed"]}, UsageError, "unknown weight"),
    ({"include_intrinsic": False, "templates_per_value": 0}, InputError, "empty"),
])
def test_config_rejects_bad_input_with_one_line(kw, err, match) -> None:
    with pytest.raises(err, match=match) as info:
        IngestConfig(store="s", **kw)
    assert "\n" not in str(info.value)


def test_layer_range_checked_against_shapes() -> None:
    assert IngestConfig(store="s", layers="all").check_shapes(SHAPES) == list(range(8))
    assert IngestConfig(store="s", layers="2,4-5").check_shapes(SHAPES) == [2, 4, 5]
    with pytest.raises(UsageError, match="layer 8 out of range; this model has layers 0-7"):
        IngestConfig(store="s", layers="6-8").check_shapes(SHAPES)


def test_sizing_helpers() -> None:
    cfg = IngestConfig(store="s", layers="all", buffer_mb=3)
    assert cfg.bytes_per_token(SHAPES) == 8 * (512 + 1376) * 2
    assert cfg.bytes_per_record(SHAPES) == 8 * (512 + 1376) * (4 + 2)
    assert cfg.batch_bytes() == 1 << 20
    assert IngestConfig(store="s", per_token=False).bytes_per_token(SHAPES) == 0


def test_judge_specs() -> None:
    assert parse_judge("lexicon").kind == "lexicon"
    assert parse_judge("lexicon:x.json").target == "x.json"
    assert parse_judge("hf:/models/judge").target == "/models/judge"
    j = parse_judge("openai:http://localhost:8000/v1#qwen")
    assert (j.kind, j.target, j.model) == ("openai", "http://localhost:8000/v1", "qwen")


def test_toml_sections_flags_override_and_unknown_keys(tmp_path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('store = "a"\n[model]\nmodel = "m"\n[capture]\nlayers = "1-2"\nsites = ["mlp_act"]\n'
                 '[generate]\nsamples = 3\n', encoding="utf-8")
    cfg = IngestConfig.from_toml(f, samples=5, layers=None)
    assert (cfg.store, cfg.model, cfg.layers, cfg.sites, cfg.samples) == ("a", "m", "1-2", ("mlp_act",), 5)
    f.write_text('store = "a"\nsampels = 3\n', encoding="utf-8")
    with pytest.raises(UsageError, match="did you mean 'samples'"):
        IngestConfig.from_toml(f)
    f.write_text('store = "a\n', encoding="utf-8")
    with pytest.raises(InputError, match="not valid TOML"):
        read_toml(f)


def test_order_is_longest_first_then_id() -> None:
    order = order_records(np.array([3, 5, 3, 5]), ["d", "c", "a", "b"])
    assert order.tolist() == [3, 1, 2, 0]


def test_plan_respects_budget_and_bytes() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=200)
    ids = [f"r{i:03d}" for i in range(200)]
    batches = plan(lengths, ids, token_budget=256, row_bytes=10, record_bytes=5, batch_bytes=20_000)
    seen = np.concatenate([sb.records for sb in batches])
    assert sorted(seen.tolist()) == list(range(200))
    for sb in batches:
        size = sum(int(lengths[fb].sum()) * 10 + len(fb) * 5 for fb in sb.forward)
        assert size <= 20_000 or len(sb.forward) == 1
        for fb in sb.forward:
            assert len(fb) * lengths[fb].max() <= 256 or len(fb) == 1
            assert int(lengths[fb].sum()) * 10 + len(fb) * 5 <= 20_000 or len(fb) == 1


def test_forward_batches_shrink_to_the_buffer() -> None:
    """A big model's activations: the byte bound, not the token budget, sizes forward batches."""
    lengths = np.full(64, 100)
    batches = plan(lengths, [f"r{i:02d}" for i in range(64)], token_budget=8192, row_bytes=1 << 20,
                   record_bytes=0, batch_bytes=300 << 20)
    assert {len(fb) for sb in batches for fb in sb.forward} == {3, 1}


def test_plan_of_the_rest_is_the_rest_of_the_plan() -> None:
    """Resume: planning what is not yet committed gives the remaining batches unchanged."""
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 60, size=300)
    ids = [f"r{i:03d}" for i in rng.permutation(300)]
    full = plan(lengths, ids, token_budget=128, row_bytes=8, record_bytes=4, batch_bytes=3000)
    for k in (0, 1, len(full) // 2, len(full) - 1):
        done = set(np.concatenate([sb.records for sb in full[:k]]).tolist()) if k else set()
        rest = np.array([i for i in range(300) if i not in done])
        sub = plan(lengths[rest], [ids[i] for i in rest], token_budget=128, row_bytes=8, record_bytes=4,
                   batch_bytes=3000)
        got = [[rest[fb].tolist() for fb in sb.forward] for sb in sub]
        want = [[fb.tolist() for fb in sb.forward] for sb in full[k:]]
        assert got == want
        assert [batch_key([ids[i] for i in sb.records]) for sb in full[k:]] == \
               [batch_key([ids[i] for i in rest[sb.records]]) for sb in sub]


def test_progress_line_and_quiet() -> None:
    out = io.StringIO()
    with Progress("capture", 10, stream=out) as p:
        p.update(4, tokens=400)
    text = out.getvalue()
    assert text.count("\n") == 1 and "capture: 4/10 records (40%)" in text and "tokens/s" in text
    out = io.StringIO()
    with Progress("capture", 10, stream=out, quiet=True) as p:
        p.update(10)
    assert out.getvalue() == ""
