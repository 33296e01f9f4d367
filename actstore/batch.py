"""What an append carries: token metadata, per-token arrays and per-record arrays, as values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from actstore.errors import SchemaMismatchError, UsageError
from actstore.site import Site, check_pool

ROLES = ("system", "user", "template", "response")


@dataclass(frozen=True, slots=True, order=True)
class ArrayKey:
    """One stored activation array: a site and how its rows are pooled."""

    site: Site
    pool: str = "token"

    def __post_init__(self) -> None:
        check_pool(self.pool)

    @property
    def name(self) -> str:
        """Path inside ``arrays/``: ``token/resid_post/7``, ``mean_response/mlp_act/3``."""
        return f"{self.pool}/{self.site.kind}/{self.site.layer}"

    @classmethod
    def of(cls, site: "Site | str", layer: int | None = None, pool: str = "token") -> "ArrayKey":
        if isinstance(site, Site):
            s = site
        elif layer is None:
            s = Site.parse(site)
        else:
            s = Site(site, int(layer))
        return cls(s, pool)


@dataclass(frozen=True, slots=True)
class ArraySpec:
    """How to store an array: width, logical dtype, codec, chunking (None = from the layout rule)."""

    key: ArrayKey
    width: int
    logical_dtype: str
    codec: str = "none"
    chunk_rows: int | None = None
    shard_chunks: int = 1

    def __post_init__(self) -> None:
        if self.width <= 0:
            raise UsageError(f"array {self.key.name}: width must be positive, got {self.width}")
        if self.shard_chunks < 1:
            raise UsageError(f"array {self.key.name}: shard_chunks must be >= 1, got {self.shard_chunks}")


@dataclass(frozen=True)
class Batch:
    """Records appended together; becomes visible atomically.

    Per record ``i`` (``n_records`` of them): ``response_ids[i]``, ``prompt_ids[i]``,
    ``n_tokens[i]`` stored tokens, ``prompt_lens[i]`` of them before the response.
    Per token (``n_rows = n_tokens.sum()``, records back to back): ``token_ids`` int, ``roles``
    (codes into :data:`ROLES` or strings). ``token_arrays[key]`` is ``[n_rows, width]`` and
    ``record_arrays[key]`` ``[n_records, width]``, bf16 as raw uint16 bits.
    ``key`` is an idempotency key: a resumed job skips keys already committed.
    """

    n_tokens: np.ndarray
    prompt_lens: np.ndarray
    token_ids: np.ndarray
    roles: np.ndarray | Sequence[str]
    token_arrays: Mapping[ArrayKey, np.ndarray] = field(default_factory=dict)
    record_arrays: Mapping[ArrayKey, np.ndarray] = field(default_factory=dict)
    response_ids: Sequence[str | None] | None = None
    prompt_ids: Sequence[str | None] | None = None
    key: str | None = None

    @property
    def n_records(self) -> int:
        return len(self.n_tokens)

    @property
    def n_rows(self) -> int:
        return int(np.sum(self.n_tokens))

    def role_codes(self) -> np.ndarray:
        r = np.asarray(self.roles)
        if r.dtype.kind in "iu":
            if r.size and (r.min() < 0 or r.max() >= len(ROLES)):
                raise SchemaMismatchError(f"role codes must be 0-{len(ROLES) - 1} ({', '.join(ROLES)})")
            return r.astype(np.int8)
        lut = {name: i for i, name in enumerate(ROLES)}
        try:
            return np.array([lut[x] for x in r], dtype=np.int8)
        except KeyError as err:
            raise SchemaMismatchError(f"unknown token role {err.args[0]!r}; use one of {', '.join(ROLES)}") from None

    def validate(self) -> None:
        n_rec, n_rows = self.n_records, self.n_rows
        if n_rec == 0:
            raise SchemaMismatchError("empty batch: it has no records")
        nt, pl = np.asarray(self.n_tokens), np.asarray(self.prompt_lens)
        if pl.shape != nt.shape or (nt <= 0).any() or (pl < 0).any() or (pl > nt).any():
            raise SchemaMismatchError("each record needs n_tokens > 0 and 0 <= prompt_len <= n_tokens")
        if len(self.token_ids) != n_rows or len(self.roles) != n_rows:
            raise SchemaMismatchError(
                f"batch has {n_rows} tokens by n_tokens but {len(self.token_ids)} token ids and {len(self.roles)} roles"
            )
        for ids, what in ((self.response_ids, "response_ids"), (self.prompt_ids, "prompt_ids")):
            if ids is not None and len(ids) != n_rec:
                raise SchemaMismatchError(f"{what} has {len(ids)} entries for {n_rec} records")
        for key, arr in self.token_arrays.items():
            if arr.ndim != 2 or arr.shape[0] != n_rows:
                raise SchemaMismatchError(f"array {key.name} has shape {arr.shape}; expected [{n_rows}, width]")
        for key, arr in self.record_arrays.items():
            if arr.ndim != 2 or arr.shape[0] != n_rec:
                raise SchemaMismatchError(f"array {key.name} has shape {arr.shape}; expected [{n_rec}, width]")
