"""How many CPU threads torch may use: one rule for every command that runs a model.

torch sizes its thread pools from the machine's cores, which inside a container or a CPU-limited
job are often not the cores this process may use (a container allowed 2 CPUs on a 64-core host
gets 64 OpenMP threads fighting over 2 cores), and it ignores other work on the machine: OpenMP
threads that wait for a core at every barrier are far slower than one thread. Measured here
(``benchmarks/bench_threads.py``, value-world model, 2 usable cores, load average ~8 from other
jobs): 1 thread 395 tokens/s, 2 threads 33 tokens/s (12x slower), torch's own default (2) 28.

:func:`default_threads` therefore counts what is usable (the CPU affinity mask, and a cgroup CPU
quota if one is set), takes away the cores other processes keep busy (the 1-minute load average,
read once at start), and caps the rest at :data:`MAX_DEFAULT`, never going below 1.
``ACTSTORE_THREADS`` or ``OMP_NUM_THREADS``, when set, are taken as the user's choice.
:func:`configure` applies a number (``--threads N``, TOML key ``threads``) to torch, once per process
for the inter-op pool (torch refuses to resize it after parallel work has started).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from actstore.errors import UsageError

#: The default never exceeds this many threads: beyond it, a CPU forward of the models this project
#: targets gains little, and a shared machine loses much.
MAX_DEFAULT = 8


def usable_cores() -> int:
    """CPUs this process may run on: the affinity mask, further bounded by a cgroup v2/v1 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS, Windows
        n = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _cgroup_quota() -> float | None:
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        q = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        p = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return q / p if q > 0 and p > 0 else None
    except (OSError, ValueError):
        return None


def idle_cores() -> int:
    """Usable cores not kept busy by other processes (usable minus the 1-minute load average), >= 1."""
    usable = usable_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows
        return usable
    return max(1, min(usable, int(usable - load + 0.5)))


def default_threads() -> int:
    """``ACTSTORE_THREADS`` or ``OMP_NUM_THREADS`` if set to a positive integer, else the idle usable
    cores (:func:`idle_cores`), at most :data:`MAX_DEFAULT`."""
    for var in ("ACTSTORE_THREADS", "OMP_NUM_THREADS"):
        text = os.environ.get(var, "").strip()
        if text.isdigit() and int(text) > 0:
            return int(text)
    return min(idle_cores(), MAX_DEFAULT)


def check(n: int | None) -> int | None:
    """Validate a ``--threads`` value (None = the default)."""
    if n is None:
        return None
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise UsageError(f"threads must be an integer >= 1, got {n!r}; or leave it out for the default "
                         f"({default_threads()} here)")
    return n


_chosen: int | None = None


def configure(n: int | None = None) -> int:
    """Set torch's intra-op threads to ``n`` and its inter-op pool to at most 2 threads (if torch
    still allows it). ``None``: the number an earlier call in this process was given, else
    :func:`default_threads` (so a library call inside a command keeps the command's ``--threads``).
    Returns the number of intra-op threads in force."""
    import torch

    global _chosen
    n = check(n)
    if n is not None:
        _chosen = n
    n = n or _chosen or default_threads()
    _chosen = n  # the default is read once per process (the load average moves with our own work)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    try:
        # Ingest runs one model call at a time; a big inter-op pool only adds idle spinning threads.
        if torch.get_num_interop_threads() > 2:
            torch.set_num_interop_threads(min(2, n))
    except RuntimeError:  # already started: torch allows this call only before any parallel work
        pass
    return n
