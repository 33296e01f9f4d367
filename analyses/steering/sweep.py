"""``run_sweep(store, spec)``: steer a model over a grid of settings, evaluate, record everything.

Flow: resolve the spec against the store (vectors, neuron set, residual norms, neuron means) and
check it all before the first write; then, per setting and eval, generate the answers still missing,
score them, and record generations and metrics of that (setting, eval) in one transaction. A crash
loses at most the (setting, eval) in progress; running the same spec again skips everything whose
metrics are recorded (see :mod:`.spec` for the keys), so a finished sweep does no work at all and
does not even load the model.

The store may be open read-only: it is opened writable only for the moment of each recording
(:func:`analyses.recording.writable`), so a long sweep never holds the writer lock while generating.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from actstore.errors import InputError
from actstore.store import Store, check_writable
from analyses.recording import writable
from analyses.steering import evalsets as es
from analyses.steering.sources import (
    NeuronSet,
    StoredVector,
    mean_neuron_activations,
    mean_resid_norm,
    require_judge,
    resolve_spec,
    select_neurons,
    select_vectors,
)
from analyses.steering.spec import SweepSpec, digest

Progress = Callable[[str], None]


@dataclass(frozen=True, eq=False)
class Setting:
    """One cell of the grid: what is applied (``kind`` baseline | add | ablate | neurons)."""

    setting_id: str
    kind: str
    layers: tuple[int, ...] = ()
    vector: StoredVector | None = None
    alpha: float | None = None
    scale: float | None = None  # the factor applied to the stored vector (add)
    beta: float | None = None
    neurons: NeuronSet | None = None
    neuron_means: dict[int, np.ndarray] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> str | None:
        if self.vector is not None:
            return self.vector.value
        return self.neurons.value if self.neurons is not None else None

    @property
    def label(self) -> str:
        if self.kind == "baseline":
            return "baseline"
        if self.kind == "neurons":
            assert self.neurons is not None
            return f"neurons {self.neurons.size} @ {','.join(map(str, self.layers))} beta={self.beta}"
        assert self.vector is not None
        # the vector's name says its language and component (en/benevolence/shared/resid_post.2)
        what = f"#{self.vector.vector_id} {self.vector.name or (self.vector.value or '') + '/' + self.vector.kind}"
        if self.kind == "ablate":
            return f"ablate {what}"
        return f"add {what} @{self.layers[0]} alpha={self.alpha:g}"


@dataclass(frozen=True)
class SweepResult:
    sweep_id: str
    run_id: int | None
    settings: tuple[Setting, ...]
    done: int  # (setting, eval) pairs computed now
    skipped: int  # pairs already recorded
    generations: int  # answers generated now

    def metrics(self, store: Store):
        """The recorded metrics of this sweep as a DataFrame (see :func:`analyses.steering.report.metrics_frame`)."""
        from analyses.steering.report import metrics_frame

        return metrics_frame(store, self.sweep_id)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def plan(store: Store, spec: SweepSpec) -> tuple[str, list[Setting]]:
    """Resolve the spec against the store: (sweep id, settings). Reads only; raises on bad input."""
    spec = resolve_spec(store, spec)
    assert spec.alphas is not None  # resolve_spec fills the default alphas
    vectors = select_vectors(store, spec.vectors) if spec.vectors is not None else []
    nset = select_neurons(store, spec.neurons) if spec.neurons is not None else None
    sweep_id = spec.sweep_id(tuple(v.vector_id for v in vectors), nset.set_id if nset else None)
    n_layers = store.model.n_layers if store.model is not None else None

    def sid(**what: Any) -> str:
        return digest({"sweep": sweep_id, **what}, "st-")

    settings = [Setting(sid(kind="baseline"), "baseline")]
    norms: dict[int, tuple[float, str]] = {}
    for v in vectors:
        for layer in (spec.layers if spec.layers is not None else (v.layer,)):
            if n_layers is not None and not 0 <= layer < n_layers:
                raise InputError(f"layer {layer} out of range; this model has layers 0-{n_layers - 1}")
            for alpha in spec.alphas:
                if alpha == 0:
                    continue  # the baseline
                if spec.alpha_mode == "relative":
                    if layer not in norms:
                        norms[layer] = mean_resid_norm(store, layer)
                    if v.norm == 0:
                        raise InputError(f"vector {v.vector_id} is zero; it cannot be scaled to a relative alpha")
                    scale, meta = alpha * norms[layer][0] / v.norm, {"mean_norm": norms[layer][0],
                                                                     "norm_source": norms[layer][1]}
                else:
                    scale, meta = alpha, {}
                settings.append(Setting(sid(kind="add", vector=v.vector_id, layer=layer, alpha=alpha), "add",
                                        (layer,), v, alpha, scale, meta=meta))
        if spec.ablate:
            layers = spec.ablate_layers if spec.ablate_layers is not None else tuple(range(n_layers or 0))
            settings.append(Setting(sid(kind="ablate", vector=v.vector_id, layers=list(layers)), "ablate", layers, v))
    if nset is not None:
        try:  # recorded with the set whatever the mode, so the catalog says what "mean" would have been
            means: dict[int, np.ndarray] | None = mean_neuron_activations(store, nset)
        except InputError:
            if spec.neuron_mode == "mean":
                raise
            means = None
        betas = spec.betas if spec.neuron_mode == "scale" else (None,)
        for beta in betas:
            settings.append(Setting(sid(kind="neurons", set=nset.set_id, mode=spec.neuron_mode, beta=beta), "neurons",
                                    nset.layers, beta=beta, neurons=nset, neuron_means=means))
    return sweep_id, settings


def interventions_for(setting: Setting, spec: SweepSpec) -> list[Any]:
    """The :mod:`.interventions` values a setting installs."""
    from analyses.steering.interventions import Ablate, AddVector, FixNeurons, ScaleNeurons

    if setting.kind == "baseline":
        return []
    if setting.kind == "add":
        assert setting.vector is not None and setting.scale is not None
        return [AddVector(setting.layers[0], setting.vector.vec, setting.scale, spec.positions)]
    if setting.kind == "ablate":
        assert setting.vector is not None
        return [Ablate(setting.layers, setting.vector.vec, spec.positions)]
    assert setting.neurons is not None
    out: list[Any] = []
    for layer, neurons in setting.neurons.members:
        if spec.neuron_mode == "scale":
            assert setting.beta is not None
            out.append(ScaleNeurons(layer, neurons, setting.beta, spec.positions))
        elif spec.neuron_mode == "zero":
            out.append(FixNeurons(layer, neurons, np.zeros(len(neurons), np.float32), spec.positions))
        else:
            assert setting.neuron_means is not None
            out.append(FixNeurons(layer, neurons, setting.neuron_means[layer], spec.positions))
    return out


def build_evals(store: Store, spec: SweepSpec) -> dict[str, es.EvalSet]:
    spec = resolve_spec(store, spec)
    require_judge(spec)
    out: dict[str, es.EvalSet] = {}
    for name in spec.evals:
        if name in ("expression", "diversity") and "expression" not in out:
            prompts = es.load_prompts(spec.prompts or "builtin", store, spec.limit, spec.language)
            out["expression"] = es.expression_set(prompts, spec.judge or "valueworld", spec.samples)
        elif name == "questionnaire":
            out[name] = es.questionnaire_set(spec.limit, spec.questionnaire)
        elif name == "mcq":
            out[name] = es.mcq_set(spec.mcq, spec.limit)
        elif name == "jailbreak":
            out[name] = es.jailbreak_set(spec.harmful, spec.limit, samples=spec.samples)
        elif name == "instructions":
            out[name] = es.instructions_set(spec.limit)
    if spec.intrinsic_system == "empty":  # items with no system prompt get an explicit empty one
        out = {k: es.with_empty_system(v) for k, v in out.items()}
    return out


def _done_pairs(store: Store, sweep_id: str) -> set[tuple[str, str]]:
    rows = store.sql("SELECT DISTINCT setting_id, eval FROM steering_metrics WHERE sweep_id = ?", [sweep_id]).fetchall()
    return {(r[0], r[1]) for r in rows}


def _existing(store: Store, setting_id: str, ev: str) -> dict[str, str]:
    rows = store.sql("SELECT generation_id, text FROM steering_generations WHERE setting_id = ? AND eval = ?",
                     [setting_id, ev]).fetchall()
    return dict(rows)


def _setting_row(sweep_id: str, s: Setting, spec: SweepSpec) -> dict[str, Any]:
    v = s.vector
    return {"setting_id": s.setting_id, "sweep_id": sweep_id, "kind": s.kind,
            "vector_id": v.vector_id if v else None, "vector_kind": v.kind if v else None, "value": s.value,
            "neuron_set": s.neurons.set_id if s.neurons else None, "layers": ",".join(map(str, s.layers)) or None,
            "alpha": s.alpha, "alpha_mode": spec.alpha_mode if s.kind == "add" else None, "scale": s.scale,
            "beta": s.beta, "neuron_mode": spec.neuron_mode if s.kind == "neurons" else None,
            "positions": spec.positions, "meta": json.dumps(s.meta) if s.meta else None}


def _frame(rows: list[dict[str, Any]]):
    import pandas as pd

    return pd.DataFrame(rows)


def run_sweep(store: Store, spec: SweepSpec, *, model: Any = None, tokenizer: Any = None,
              progress: Progress | None = None, threads: int | None = None) -> SweepResult:
    """Run (or finish) a sweep and record it. ``model``/``tokenizer``: an already loaded pair to use
    instead of loading ``spec.model`` (tests, notebooks)."""
    say = progress or (lambda msg: None)
    spec = resolve_spec(store, spec)
    sweep_id, settings = plan(store, spec)
    evals = build_evals(store, spec)
    names = [n for n in spec.evals]
    todo = [(s, n) for s in settings for n in names]
    done_before = _done_pairs(store, sweep_id)
    pending = [(s, n) for s, n in todo if (s.setting_id, n) not in done_before]
    if not pending:
        say(f"sweep {sweep_id}: all {len(todo)} (setting, eval) pairs already recorded; nothing to do")
        return SweepResult(sweep_id, None, tuple(settings), 0, len(todo), 0)

    from ingest.threads import configure

    configure(threads)  # results do not depend on it, so it is not part of the spec
    if model is None:
        from ingest.models import load_model

        if store.read_only:  # recording needs the writer: a busy store is refused before the model loads
            check_writable(store.root)
        assert spec.model is not None  # resolve_spec fills the store's model
        say(f"loading {spec.model} ...")
        model, tokenizer = load_model(spec.model, dtype=spec.dtype, device=spec.device)
    _check_model(store, model)
    from ingest.tokenize import warn_default_system

    warn_default_system(tokenizer, sum(item.system is None for ev in evals.values() for item in ev.items),
                        "steering prompts")

    with writable(store) as w:
        run_id = w.begin_run("steer", {"sweep_id": sweep_id, **spec.params()})
        w.insert("steering_sweeps", _frame([{"sweep_id": sweep_id, "run_id": run_id, "model": spec.model,
                                             "spec": json.dumps(spec.params(), default=str), "status": "running",
                                             "created_at": _now(), "finished_at": None}]), on_conflict="ignore")
        w.insert("steering_settings", _frame([_setting_row(sweep_id, s, spec) for s in settings]),
                 on_conflict="ignore")
        if any(s.neurons is not None for s in settings):
            nset = next(s.neurons for s in settings if s.neurons is not None)
            means = next((s.neuron_means for s in settings if s.neuron_means), None)
            rows = [{"set_id": nset.set_id, "query": nset.query, "layer": layer, "neuron": n,
                     "mean_act": float(means[layer][k]) if means else None}
                    for layer, ns in nset.members for k, n in enumerate(ns)]
            w.insert("steering_neuron_sets", _frame(rows), on_conflict="replace" if means else "ignore")

    n_gen, n_done = 0, 0
    try:
        for i, (s, name) in enumerate(pending, start=1):
            say(f"[{i}/{len(pending)}] {s.label}: {name}")
            n_gen += _run_pair(store, spec, sweep_id, s, name, evals, model, tokenizer, say)
            n_done += 1
    except BaseException as err:
        with writable(store) as w:
            w.end_run(run_id, "failed", str(err).splitlines()[0] if str(err) else type(err).__name__)
        raise
    with writable(store) as w:
        w.insert("steering_sweeps", _frame([{"sweep_id": sweep_id, "run_id": run_id, "model": spec.model,
                                             "spec": json.dumps(spec.params(), default=str), "status": "done",
                                             "created_at": _now(), "finished_at": _now()}]), on_conflict="replace")
        w.end_run(run_id, "done", json.dumps({"sweep_id": sweep_id, "pairs": n_done, "generations": n_gen}))
    say(f"sweep {sweep_id}: {n_done} (setting, eval) pairs done, {n_gen} answers generated (run {run_id})")
    return SweepResult(sweep_id, run_id, tuple(settings), n_done, len(todo) - len(pending), n_gen)


def _check_model(store: Store, model: Any) -> None:
    info = store.model
    if info is None:
        return
    cfg = getattr(model, "config", None)
    text = getattr(cfg, "text_config", None) or cfg
    d = getattr(text, "hidden_size", None) or getattr(text, "n_embd", None)
    if d is not None and int(d) != info.d_model:
        raise InputError(f"the model has d_model {d} but the store's vectors are {info.d_model}-wide "
                         f"(made with {info.name}); pass --model {info.name}")


def _run_pair(store: Store, spec: SweepSpec, sweep_id: str, s: Setting, name: str, evals: dict[str, es.EvalSet],
              model: Any, tokenizer: Any, say: Progress) -> int:
    """Generate what is missing for (setting, eval), score, and record it. Returns answers generated."""
    from analyses.steering.generate import generate

    src = es.SHARES_GENERATIONS.get(name, name)
    ev = evals[src]
    keys = [(item, k, digest({"setting": s.setting_id, "eval": src, "item": item.item_id, "sample": k}, "g-"))
            for item in ev.items for k in range(ev.samples)]
    have = _existing(store, s.setting_id, src)
    missing = [(item, k, gid) for item, k, gid in keys if gid not in have]
    texts_new: list[str] = []
    if missing:
        texts_new = generate(model, tokenizer, [item.chat() for item, _, _ in missing], spec.gen,
                             interventions_for(s, spec))
        have.update({gid: t for (_, _, gid), t in zip(missing, texts_new)})
    items = [item for item, _, _ in keys]
    texts = [have[gid] for _, _, gid in keys]
    verdicts: list[float | None]
    if name in es.SHARES_GENERATIONS:
        from analyses.run_diversity import store_vocab_size

        # EAD with the store's vocabulary size, as `actstore analyze diversity` uses
        metrics, verdicts = es.diversity_score(texts, store_vocab_size(store)[0]), [None] * len(texts)
    else:
        metrics, verdicts = ev.score(items, texts, s.value)
    verdict_of = {gid: v for (_, _, gid), v in zip(keys, verdicts)}
    gen_rows = [{"generation_id": gid, "setting_id": s.setting_id, "sweep_id": sweep_id, "eval": src,
                 "item_id": item.item_id, "sample_idx": k, "system_text": item.system, "user_text": item.user,
                 "text": have[gid], "verdict": verdict_of[gid], "created_at": _now()}
                for item, k, gid in missing]
    metric_rows = [{"setting_id": s.setting_id, "sweep_id": sweep_id, "eval": name, "metric": m,
                    "value": None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v),
                    "n": len(texts), **rate_interval(m, v, len(texts))} for m, v in sorted(metrics.items())]
    with writable(store) as w:
        _record(w, gen_rows, metric_rows)
    return len(missing)


#: Metrics that are a share of the n answers scored, so that a Wilson interval applies.
RATES = ("expression", "any_value", "asr", "refusal_rate", "compliance", "accuracy", "follow_rate")


def is_rate(metric: str) -> bool:
    return metric in RATES or metric.startswith("expression.")


def rate_interval(metric: str, value: float | None, n: int) -> dict[str, float | None]:
    """``{"lo", "hi"}``: the 95% Wilson interval of a rate (None for other metrics or no value)."""
    from analyses.stats import wilson_interval

    if not is_rate(metric) or value is None or (isinstance(value, float) and np.isnan(value)) or n <= 0:
        return {"lo": None, "hi": None}
    lo, hi = wilson_interval(round(float(value) * n), n)
    return {"lo": lo, "hi": hi}


def _record(w: Store, gen_rows: list[dict[str, Any]], metric_rows: list[dict[str, Any]]) -> None:
    """Generations and metrics of one (setting, eval) in one catalog transaction."""
    from actstore import catalog as cat

    con = w.con
    con.execute("BEGIN TRANSACTION")
    try:
        if gen_rows:
            cat.insert(con, "steering_generations", _frame(gen_rows), "ignore")
        cat.insert(con, "steering_metrics", _frame(metric_rows), "replace")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    w.flush()
