"""Splitting an ingest across workers: which records each takes, and where its part goes.

Each of N workers takes a *contiguous* block of the items (records, or whatever the ingest
enumerates), so that merging the parts in shard order (``actstore merge``) gives the very rows,
in the very order, that one process would have written. Blocks differ in size by at most one.
The shard comes from ``--shard I/N`` or from the launcher's environment: torchrun
(``RANK``/``WORLD_SIZE``) or a SLURM array (``SLURM_ARRAY_TASK_ID`` counted from
``SLURM_ARRAY_TASK_MIN``, ``SLURM_ARRAY_TASK_COUNT``). Shards count from 0.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from actstore.errors import UsageError

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")
_PART = re.compile(r"^part-(\d+)-of-(\d+)$")


@dataclass(frozen=True, slots=True, order=True)
class Shard:
    """Worker ``index`` of ``count`` (0 <= index < count)."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise UsageError(f"bad shard {self.index}/{self.count}; shards count from 0: "
                             f"0/{max(self.count, 1)} .. {max(self.count, 1) - 1}/{max(self.count, 1)}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        m = _SHARD.match(text)
        if not m:
            raise UsageError(f"bad shard {text!r}; write I/N, e.g. 3/8 (shards count from 0)")
        return cls(int(m[1]), int(m[2]))

    def items(self, n_items: int) -> range:
        """This shard's contiguous block of ``range(n_items)``."""
        return range(self.index * n_items // self.count, (self.index + 1) * n_items // self.count)

    @property
    def part_name(self) -> str:
        return f"part-{self.index:04d}-of-{self.count:04d}"

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def detect(env: Mapping[str, str] | None = None) -> Shard | None:
    """The shard a launcher gave this process, or None when not launched as one of several."""
    env = os.environ if env is None else env
    try:
        if "SLURM_ARRAY_TASK_ID" in env and "SLURM_ARRAY_TASK_COUNT" in env:
            task = int(env["SLURM_ARRAY_TASK_ID"]) - int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            shard = Shard(task, int(env["SLURM_ARRAY_TASK_COUNT"]))
        elif "RANK" in env and "WORLD_SIZE" in env:
            shard = Shard(int(env["RANK"]), int(env["WORLD_SIZE"]))
        else:
            return None
    except ValueError:
        raise UsageError("cannot read the shard from RANK/WORLD_SIZE or SLURM_ARRAY_TASK_ID/COUNT; "
                         "pass --shard I/N explicitly") from None
    return shard if shard.count > 1 else None


def resolve(shard: str | Shard | None, env: Mapping[str, str] | None = None) -> Shard | None:
    """``--shard`` if given, else the launcher's, else None (one process does everything)."""
    if isinstance(shard, Shard):
        return shard
    if shard:
        return Shard.parse(shard)
    return detect(env)


def shard_of(n_items: int, shard: str | Shard | None = None, env: Mapping[str, str] | None = None) -> range:
    """The items this worker takes: all of them unless sharded (see :func:`resolve`)."""
    s = resolve(shard, env)
    return range(n_items) if s is None else s.items(n_items)


def part_path(store: str | Path, shard: Shard) -> Path:
    """Where a worker writes its part: ``STORE.parts/part-0003-of-0008``."""
    root = Path(store).expanduser()
    return root.parent / f"{root.name}.parts" / shard.part_name


def order_parts(paths: list[Path], complete: bool = False) -> list[Path]:
    """Parts in merge order. Named ``part-I-of-N``: by I, consecutive, and with ``complete`` all N
    of them; anything else: in the order given (that order is then the row order of the merge)."""
    named = [(_PART.match(p.name), p) for p in paths]
    if not paths or not all(m for m, _ in named):
        return list(paths)
    counts = {int(m[2]) for m, _ in named if m}
    if len(counts) != 1:
        raise UsageError(f"parts from different shard counts ({', '.join(map(str, sorted(counts)))}); "
                         "merge the parts of one sharded ingest")
    n = counts.pop()
    by_index = {int(m[1]): p for m, p in named if m}
    if len(by_index) != len(paths):
        raise UsageError("a part is given twice; pass each part once")
    lo, hi = (0, n) if complete else (min(by_index), max(by_index) + 1)
    missing = [i for i in range(lo, hi) if i not in by_index]
    if missing:
        raise UsageError(f"part-{missing[0]:04d}-of-{n:04d} is missing; merge consecutive parts "
                         "(all of them for a STORE.parts directory), rerunning a missing shard first")
    return [by_index[i] for i in sorted(by_index)]


def expand(paths: list[str | Path]) -> list[Path]:
    """A ``STORE.parts`` directory stands for the parts inside it."""
    out: list[Path] = []
    for p in (Path(x).expanduser() for x in paths):
        if p.is_dir() and not (p / "catalog.duckdb").exists():
            kids = sorted(k for k in p.iterdir() if _PART.match(k.name))
            if not kids:
                raise UsageError(f"{p} holds no store and no part-I-of-N stores; pass the parts to merge")
            out.extend(kids)
        else:
            out.append(p)
    return out
