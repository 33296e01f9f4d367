"""Sites: where in the model an activation was read.

A :class:`Site` is a small frozen value. It is parsed from text and printed to text only at the
SQL and CLI edges (``"resid_post.12"``); everywhere else code passes the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from actstore.errors import UsageError

#: Sites the ingest knows how to capture.
#: resid_post: residual stream after block l (what HF's hidden_states[l+1] is, before the final norm).
#: mlp_act: input of the MLP down projection (width d_mlp), i.e. the neuron activations.
SITE_KINDS = ("resid_post", "mlp_act")

#: How rows are laid out. "token": one row per stored token (the global row axis).
#: "mean_response": one row per record, the mean over its response tokens.
#: "last_prompt": one row per record, the last token before the response.
POOLS = ("token", "mean_response", "last_prompt")

_SITE_RE = re.compile(r"^(?P<kind>[a-z_]+)\.(?P<layer>\d+)$")


@dataclass(frozen=True, slots=True, order=True)
class Site:
    kind: str
    layer: int

    def __post_init__(self) -> None:
        if self.kind not in SITE_KINDS:
            raise UsageError(f"unknown site kind {self.kind!r}; use one of {', '.join(SITE_KINDS)}")
        if not isinstance(self.layer, int) or self.layer < 0:
            raise UsageError(f"bad layer {self.layer!r} for site {self.kind}; layers are integers >= 0")

    @classmethod
    def parse(cls, text: str) -> "Site":
        """``"resid_post.12"`` -> ``Site("resid_post", 12)``."""
        m = _SITE_RE.match(text.strip())
        if not m:
            raise UsageError(f"bad site {text!r}; write KIND.LAYER, e.g. resid_post.12")
        return cls(m["kind"], int(m["layer"]))

    def __str__(self) -> str:
        return f"{self.kind}.{self.layer}"


def check_pool(pool: str) -> str:
    if pool not in POOLS:
        raise UsageError(f"unknown pool {pool!r}; use one of {', '.join(POOLS)}")
    return pool


def parse_layers(text: str, n_layers: int | None = None) -> list[int]:
    """``"all"``, ``"3"``, ``"0,4,8"``, ``"10-16"`` or a mix -> sorted layer list."""
    text = text.strip()
    if text == "all":
        if n_layers is None:
            raise UsageError("'all' layers needs the model's layer count")
        return list(range(n_layers))
    out: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part:
                a, b = part.split("-", 1)
                out.update(range(int(a), int(b) + 1))
            else:
                out.add(int(part))
        except ValueError:
            raise UsageError(f"bad layer list {text!r}; write e.g. 'all', '3', '0,4,8' or '10-16'") from None
    layers = sorted(out)
    if n_layers is not None:
        bad = [x for x in layers if x < 0 or x >= n_layers]
        if bad:
            raise UsageError(f"layer {bad[0]} out of range; this model has layers 0-{n_layers - 1}")
    return layers
