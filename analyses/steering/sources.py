"""What steering reads from a store: vectors, neuron sets, mean residual norms, mean activations.

No torch here: these are catalog queries and streaming reductions over the stored arrays.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from actstore.errors import InputError, QueryError, UnknownArrayError
from actstore.store import Store
from analyses.recording import load_vectors

#: Vector kinds the report groups by (diff_means vectors are named by their condition).
VECTOR_KINDS = ("intrinsic", "prompted", "shared", "intrinsic_unique", "prompted_unique", "mean_delta")

_IDS = re.compile(r"^\s*\d+(\s*,\s*\d+)*\s*$")


@dataclass(frozen=True, eq=False)
class StoredVector:
    """One row of ``vectors``: what to steer with."""

    vector_id: int
    name: str | None
    value: str | None
    kind: str  # intrinsic | prompted | shared | intrinsic_unique | prompted_unique | mean_delta | ...
    site: str
    layer: int
    vec: np.ndarray  # [d_model] float32

    @property
    def norm(self) -> float:
        return float(np.linalg.norm(self.vec))


def vector_kind(component: str | None, condition: str | None) -> str:
    """``diff_means`` vectors are named by their condition, every other component by itself."""
    if component in (None, "diff_means"):
        return condition or "diff_means"
    return component


def select_vectors(store: Store, selector: str | Sequence[int]) -> list[StoredVector]:
    """Vectors by ids (``[3, 4]`` or ``"3,4"``), by a WHERE clause on ``vectors``
    (``"value = 'tradition' AND component = 'shared'"``) or by a full SELECT whose first column is a
    vector_id. Ordered by vector_id; an empty selection is an error."""
    if store.model is None:
        raise InputError(f"store {store.root} has no model yet, so no vectors; ingest and extract vectors first")
    if not isinstance(selector, str):
        ids = [int(i) for i in selector]
        where = f"vector_id IN ({', '.join(map(str, ids))})" if ids else "FALSE"
    elif _IDS.match(selector):
        where = f"vector_id IN ({selector})"
    elif selector.strip().lower().startswith(("select", "with")):
        where = f"vector_id IN (SELECT * FROM ({selector}))"
    else:
        where = f"({selector})"
    try:
        rows, vecs = load_vectors(store, where)
    except QueryError as err:
        raise InputError(f"bad vector selection {selector!r}: {err}; pass ids (3,4), a WHERE clause on "
                         "vectors, or a SELECT returning vector_id") from None
    if not rows:
        raise InputError(f"no vectors match {selector!r}; list them with: actstore sql STORE "
                         "\"SELECT vector_id, name, component, layer FROM vectors\"")
    out = []
    for r, v in zip(rows, vecs):
        if r["site"] != "resid_post":
            raise InputError(f"vector {r['vector_id']} lives at site {r['site']}; steering adds resid_post vectors only")
        out.append(StoredVector(int(r["vector_id"]), r["name"], r["value"], vector_kind(r["component"], r["condition"]),
                                r["site"], int(r["layer"]), v.astype(np.float32)))
    return out


@dataclass(frozen=True, eq=False)
class NeuronSet:
    """Neurons chosen by a query over ``neuron_scores``: ``members`` is ``((layer, (neuron, ...)), ...)``."""

    set_id: str
    query: str
    members: tuple[tuple[int, tuple[int, ...]], ...]
    value: str | None = None

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(layer for layer, _ in self.members)

    @property
    def size(self) -> int:
        return sum(len(n) for _, n in self.members)


def select_neurons(store: Store, query: str) -> NeuronSet:
    """A neuron set from a WHERE clause on ``neuron_scores`` (e.g. ``"value = 'tradition' AND class =
    'shared' AND layer BETWEEN 10 AND 16"``) or a SELECT whose first two columns are (layer, neuron)."""
    q = query.strip()
    if not q:
        raise InputError("empty neuron query; pass a WHERE clause on neuron_scores or a SELECT of (layer, neuron)")
    sql = q if q.lower().startswith(("select", "with")) else \
        f"SELECT DISTINCT layer, neuron, value FROM neuron_scores WHERE {q}"
    try:
        res = store.sql(f"SELECT * FROM ({sql}) ORDER BY 1, 2").fetchall()
    except QueryError as err:
        raise InputError(f"bad neuron query {query!r}: {err}") from None
    if not res:
        raise InputError(f"no neurons match {query!r}; run 'actstore analyze neurons' first, or widen the query")
    by_layer: dict[int, set[int]] = {}
    for row in res:
        by_layer.setdefault(int(row[0]), set()).add(int(row[1]))
    values = {row[2] for row in res if len(row) > 2}
    members = tuple((layer, tuple(sorted(ns))) for layer, ns in sorted(by_layer.items()))
    set_id = "ns-" + hashlib.sha256(repr((q, members)).encode()).hexdigest()[:16]
    return NeuronSet(set_id, q, members, values.pop() if len(values) == 1 else None)


def mean_neuron_activations(store: Store, nset: NeuronSet) -> dict[int, np.ndarray]:
    """Per layer, the mean activation of the set's neurons over every record (pooled ``mlp_act``
    ``mean_response`` arrays; the per-token array when no pooled one is stored)."""
    out = {}
    for layer, neurons in nset.members:
        for pool in ("mean_response", "token"):
            try:
                store.array_meta("mlp_act", layer, pool)
            except UnknownArrayError:
                continue
            n = store.n_records if pool == "mean_response" else store.n_rows
            gm = store.group_means("mlp_act", layer, np.zeros(n, dtype=np.int64), pool=pool)
            out[layer] = gm.means[0, 0, list(neurons)].astype(np.float32)
            break
        else:
            raise InputError(f"the store has no mlp_act arrays at layer {layer} to take neuron means from; "
                             "use neuron mode zero or scale, or ingest mlp_act")
    return out


def mean_resid_norm(store: Store, layer: int, max_rows: int = 50_000) -> tuple[float, str]:
    """Mean ``||resid_post[layer]||`` over stored response tokens, and where it came from.

    Reads at most ``max_rows`` evenly spaced response rows of the per-token array. Without one, falls
    back to the mean norm of the pooled ``mean_response`` rows, which is smaller (a mean of vectors is
    shorter than its parts): the source string says which was used.
    """
    try:
        store.array_meta("resid_post", layer, "token")
        rows = store.sql("SELECT \"row\" FROM tokens WHERE role = 'response' ORDER BY 1").fetchnumpy()["row"]
        if len(rows):
            if len(rows) > max_rows:
                rows = rows[np.linspace(0, len(rows) - 1, max_rows).astype(np.int64)]
            total, n = 0.0, 0
            for _, block in store.blocks("resid_post", layer, rows):
                total += float(np.linalg.norm(block.astype(np.float64), axis=1).sum())
                n += block.shape[0]
            return total / n, "token"
    except UnknownArrayError:
        pass
    for pool in ("mean_response", "last_prompt"):
        try:
            store.array_meta("resid_post", layer, pool)
        except UnknownArrayError:
            continue
        total, n = 0.0, 0
        for _, block in store.blocks("resid_post", layer, pool=pool):
            ok = np.isfinite(block).all(axis=1)
            total += float(np.linalg.norm(block[ok].astype(np.float64), axis=1).sum())
            n += int(ok.sum())
        if n:
            return total / n, pool
    raise InputError(f"the store has no resid_post arrays at layer {layer} to measure the residual norm; "
                     "use --alpha-mode absolute, or steer at a stored layer")


# --- defaults that fit the store's model ------------------------------------------------------------

#: Relative strengths (x the layer's mean residual norm, measured from the store) when --alphas is not
#: given. The value world's answers move at 0.4-1 and break above (its demo and tests); a real model's
#: residual norm is measured the same way, so the same fractions are a sane first grid for it.
DEFAULT_ALPHAS: tuple[float, ...] = (0.5, 1.0)


def is_valueworld_store(store: Store) -> bool:
    """Does the store hold the project's value-world model (the only one its judge and prompts fit)?"""
    from ingest.defaults import is_valueworld_model

    return store.model is not None and is_valueworld_model(None, store.model)


def resolve_spec(store: Store, spec):  # -> SweepSpec (import cycle: spec imports evalsets)
    """``spec`` with what was left ``None`` chosen for the store's model.

    * model: the one the store recorded.
    * alphas: :data:`DEFAULT_ALPHAS` in relative mode; absolute strengths depend on the vectors' own
      scale, so absolute mode needs them given.
    * prompts: ``valueworld`` (its held-out questions) for the value-world model; otherwise
      ``heldout``: the built-in queries the store was not made from, so that steering is never
      measured on the prompts its vectors were extracted from.
    * judge: ``valueworld`` for the value-world model. For other models, when the sweep judges
      expression, the packaged sentence-embedding judge (``ingest.defaults.REAL_MODEL_JUDGE``, as
      ``ingest label``): the value world's phrases say nothing about their answers.
    """
    from dataclasses import replace

    vw = is_valueworld_store(store)
    changes: dict = {}
    if spec.model is None:
        if store.model is None:
            raise InputError("no --model and the store records none; pass --model NAME_OR_PATH")
        changes["model"] = store.model.name
    if spec.alphas is None:
        if spec.alpha_mode == "absolute":
            raise InputError("absolute alphas depend on the vectors' own scale; pass --alphas (or use "
                             "--alpha-mode relative)")
        changes["alphas"] = DEFAULT_ALPHAS
    if spec.prompts is None:
        changes["prompts"] = "valueworld" if vw else "heldout"
    if spec.judge is None and vw:
        changes["judge"] = "valueworld"
    elif spec.judge is None and "expression" in spec.evals:
        from ingest.defaults import REAL_MODEL_JUDGE

        changes["judge"] = REAL_MODEL_JUDGE
    return replace(spec, **changes) if changes else spec


def require_judge(spec, quiet: bool = False) -> None:
    """A sweep that judges expression must know its judge by now (see :func:`resolve_spec`); the
    default real-model judge needs its encoder installed (one error line otherwise) and is named,
    with its measured agreement, in one line on stderr."""
    from ingest.defaults import REAL_MODEL_JUDGE, real_model_judge

    if "expression" not in spec.evals:
        return
    if spec.judge is None:
        raise InputError(f"no --judge for {spec.model}: the default judge (valueworld) knows only the value world's "
                         "phrases and would score a real model's answers by chance; pass --judge hf:MODEL_PATH, "
                         f"openai:URL#MODEL, lexicon:PHRASES.json or {REAL_MODEL_JUDGE}")
    if spec.judge == REAL_MODEL_JUDGE:
        real_model_judge(quiet=quiet)
