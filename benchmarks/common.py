"""Shared helpers for the benchmarks: timing, activation-like data, and measured subprocess runs."""

from __future__ import annotations

import json
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@contextmanager
def timer(out: dict, key: str):
    t0 = time.perf_counter()
    yield
    out[key] = time.perf_counter() - t0


def best_of(fn, repeat: int = 3) -> float:
    """Fastest of a few runs: the least noisy estimate on a shared machine."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def activation_like(n: int, width: int, seed: int = 0) -> np.ndarray:
    """float32 [n, width] shaped like residual-stream activations: per-dimension scales spread over
    two orders of magnitude, a few 'massive' outlier dimensions, and token-to-token correlation
    (neighbouring tokens share a slowly drifting component)."""
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0, 0.8, size=width)).astype(np.float32)
    scale[rng.choice(width, size=max(1, width // 256), replace=False)] *= 40
    drift = np.cumsum(rng.standard_normal((n // 64 + 1, width), dtype=np.float32), axis=0) * 0.1
    x = rng.standard_normal((n, width), dtype=np.float32) + np.repeat(drift, 64, axis=0)[:n]
    return x * scale


def bf16_bits(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits, round-to-nearest-even (what torch does)."""
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


# -- one measured run per subprocess ---------------------------------------------------------------
# Peak RSS is a per-process high-water mark, so a fair comparison runs each contender (and each size
# of a growth benchmark) in a fresh process. A worker writes its result as JSON to a file (libraries
# print to stdout and stderr freely); the parent collects that child's own rusage with os.wait4.


def proc_memory() -> dict[str, int]:
    """This process's resident set now (``rss``) and its peak so far (``hwm``), in bytes, from
    /proc/self/status (Linux; zeros elsewhere)."""
    out = {"rss": 0, "hwm": 0}
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out["rss" if key == "VmRSS" else "hwm"] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return out


def reset_peak_rss() -> bool:
    """Reset this process's peak-RSS mark to its current RSS (Linux: ``5`` into /proc/self/clear_refs),
    so that the next :func:`proc_memory` ``hwm`` is the peak of what ran in between. False if unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")
        return True
    except OSError:
        return False


class Measure:
    """Wall time, CPU time (all threads) and memory of one call: RSS before it, the process's peak
    before it (imports, model loading) and the peak during it (the mark is reset at the start)::

        m = Measure()
        ...the call...
        result = m.stop()   # seconds, cpu, rss_before, setup_peak, call_peak (bytes)
    """

    def __init__(self) -> None:
        mem = proc_memory()
        self.rss_before, self.setup_peak = mem["rss"], mem["hwm"]
        self.reset = reset_peak_rss()
        self.c0, self.t0 = time.process_time(), time.perf_counter()

    def stop(self) -> dict:
        seconds, cpu = time.perf_counter() - self.t0, time.process_time() - self.c0
        peak = proc_memory()["hwm"] if self.reset else 0
        return {"seconds": seconds, "cpu": cpu, "rss_before": self.rss_before, "setup_peak": self.setup_peak,
                "call_peak": peak}


def write_result(path: str | Path, result: dict) -> None:
    """A worker's last act: its result (plus its peak RSS) as JSON."""
    Path(path).write_text(json.dumps({**result, "peak_rss": proc_memory()["hwm"]}), encoding="utf-8")


@dataclass
class Child:
    """A finished worker: its JSON result, wall seconds, CPU seconds (user + system) and peak RSS
    (bytes, from the kernel's accounting of that one child)."""

    result: dict
    wall_s: float
    cpu_s: float
    max_rss: int


def run_child(argv: list[str], result_path: str | Path, *, env: dict | None = None, log: str | Path | None = None,
              timeout: float | None = None) -> Child:
    """Run ``argv`` (which must write ``result_path`` with :func:`write_result`) and wait for it.
    Its stdout and stderr go to ``log`` (default: discarded); on failure the log's tail is raised."""
    result_path = Path(result_path)
    result_path.unlink(missing_ok=True)
    sink = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"{' '.join(argv[:4])} ... ran past {timeout:.0f} s")
            time.sleep(0.05)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    finally:
        if log:
            sink.close()
    if proc.returncode != 0 or not result_path.exists():
        tail = Path(log).read_text(errors="replace")[-3000:] if log else "(no log kept)"
        raise RuntimeError(f"worker {' '.join(argv[:4])} ... failed (exit {proc.returncode}):\n{tail}")
    return Child(json.loads(result_path.read_text(encoding="utf-8")), wall, usage.ru_utime + usage.ru_stime,
                 usage.ru_maxrss * 1024)


def tree_bytes(path: str | Path) -> int:
    """Bytes of the files under ``path`` (their sizes, as ``du --apparent-size`` counts)."""
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and not f.is_symlink())


def fsync_tree(path: str | Path) -> None:
    """fsync every file and directory under ``path``: what it takes to make a contender's output
    durable when it did not do so itself."""
    p = Path(path)
    for f in [p, *p.rglob("*")]:
        if f.is_symlink():
            continue
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"
