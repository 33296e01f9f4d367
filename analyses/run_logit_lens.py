"""``actstore analyze logit-lens``: the tokens a stored vector promotes and suppresses.

Uses the store's ``weight("unembed")`` ``[vocab, d]``, its ``weight("final_norm")`` if stored
(applied as RMSNorm, see :mod:`analyses.logit_lens`), and the ``vocab`` table for token text.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from actstore.errors import InputError, UnknownArrayError
from actstore.store import Store
from analyses import logit_lens as ll
from analyses.recording import Recorder, load_vectors, record


@dataclass(frozen=True)
class LogitLensSpec:
    vector_id: int
    k: int = 15
    use_norm: bool = True
    record: bool = True

    def __post_init__(self) -> None:
        if not 1 <= int(self.k) <= 1000:
            raise InputError(f"--k must be between 1 and 1000, got {self.k}")


@dataclass(frozen=True)
class LogitLensResult:
    vector_id: int
    name: str
    readout: ll.Readout
    promoted: list[str]
    suppressed: list[str]
    normed: bool
    run_id: int | None = None

    @property
    def entropy(self) -> float:
        return float(self.readout.entropy)

    def table(self):
        import pandas as pd

        r = self.readout
        return pd.DataFrame({"rank": np.arange(1, len(self.promoted) + 1), "promoted": self.promoted,
                             "logit_up": r.promoted_logits, "suppressed": self.suppressed,
                             "logit_down": r.suppressed_logits})


def run(store: Store, spec: LogitLensSpec) -> LogitLensResult:
    rows, vecs = load_vectors(store, "vector_id = ?", [spec.vector_id])
    if not rows:
        raise InputError(f"no vector {spec.vector_id}; list them with: actstore sql STORE \"SELECT vector_id, name FROM vectors\"")
    unembed = store.weight("unembed")  # [vocab, d]
    norm = None
    if spec.use_norm:
        try:
            norm = np.asarray(store.weight("final_norm")).reshape(-1)
        except UnknownArrayError:
            norm = None  # not stored: read the raw direction (see logit_lens on what that changes)
    r = ll.readout(vecs[0], unembed, spec.k, norm)
    ids = np.concatenate([r.promoted_ids, r.suppressed_ids]).tolist()
    text = dict(store.sql("SELECT token_id, text FROM vocab WHERE token_id IN (SELECT unnest(?))", [ids]).fetchall())

    def name(i: int) -> str:
        return str(text.get(int(i), f"#{int(i)}"))  # a token without vocab text shows its id

    res = LogitLensResult(spec.vector_id, rows[0]["name"], r, [name(i) for i in r.promoted_ids],
                          [name(i) for i in r.suppressed_ids], norm is not None)
    if not spec.record:
        return res
    summary = {"entropy": res.entropy, "promoted": res.promoted, "suppressed": res.suppressed}
    run_id, _ = record(store, "logit_lens", {"vector_id": spec.vector_id, "k": spec.k, "final_norm": res.normed},
                       Recorder(), summary)
    return replace(res, run_id=run_id)
