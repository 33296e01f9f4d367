"""Units of work: how an ingest splits into pieces that N workers share and one process walks in turn.

The responses of an ingest (the planned ones for generation and import, the stored ones for labelling
and capture), sorted by response id, are cut into *units* of ``shard_unit`` consecutive responses.
Every stage works unit by unit and never mixes two units in one batch: generation batches, judge
calls and capture's forward and store batches all stay inside a unit; inside it each stage orders as
it always did (generation by prompt length, capture by record length). Worker ``I/N`` takes the
contiguous block of units :meth:`actstore.shard.Shard.items` gives it.

Why this makes a sharded ingest equal to a single-process one:

* a unit's work depends only on its own responses (a response's seed is its own, see
  ``ingest.generate``), so it is the same whichever process does it, down to the batch shapes;
* a part holds exactly its shard's units, and its first response starts a unit, so the part's own
  cut of its responses is the global cut;
* hence merging the parts in shard order concatenates the units in order: the prompts, responses and
  labels, and the records, tokens, batches and every array row, that one process writes.

A generated response's id is its prompt's id (a hash) plus ``#sK`` (``ingest.generate.response_id``),
so the samples of one prompt sit side by side and a unit is a random draw of prompts: its lengths
vary as the whole set's do, and sorting by length inside a unit packs about as tightly as one global
sort once a unit spans a few dozen forward batches (the default 512 responses does). A store of at
most one unit is ordered exactly as without units.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from actstore.shard import Shard

#: Responses per unit unless ``shard_unit`` says otherwise.
DEFAULT_UNIT = 512


def cut(ids: Iterable[str], size: int) -> list[list[str]]:
    """All ``ids`` (deduplicated), sorted, in units of ``size`` consecutive ids."""
    ordered = sorted(set(ids))
    return [ordered[i:i + size] for i in range(0, len(ordered), size)]


def share(ids: Iterable[str], size: int, shard: Shard | None) -> list[list[str]]:
    """The units of ``ids`` that ``shard`` takes (every unit when ``shard`` is None)."""
    units = cut(ids, size)
    if shard is None:
        return units
    mine = shard.items(len(units))
    return units[mine.start:mine.stop]


def unit_of(ids: Iterable[str], size: int) -> dict[str, int]:
    """Unit index of each id in the cut of ``ids`` (see :func:`cut`)."""
    return {rid: i // size for i, rid in enumerate(sorted(set(ids)))}


def runs_of(keys: Sequence[int]) -> list[range]:
    """Maximal runs of equal consecutive ``keys``, as index ranges: [0,0,1,1,1,3] -> 0:2, 2:5, 5:6."""
    out: list[range] = []
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            out.append(range(start, i))
            start = i
    return out
