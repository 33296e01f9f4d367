"""A progress line on stderr for the store's own long commands (verify, publish, pull; steer uses it too).

The same look as ingest's (``ingest/progress.py``): done/total, a rate, elapsed and ETA, redrawn in
place at most every 0.2 s. It needs no torch and no dependency. It is silent when stderr is not a
terminal (a log or a pipe gets only the command's result line) and with ``quiet=True``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Self, TextIO


def fmt_time(s: float) -> str:
    if math.isnan(s) or math.isinf(s):  # no estimate yet
        return "?"
    s = int(s)
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


class Progress:
    """``with Progress("verify", total=nbytes, unit="bytes") as p: p.update(k)``.

    ``unit="bytes"`` counts bytes (shown as KiB/MiB, rate in MiB/s); any other unit counts items
    (``p.update(1, nbytes=...)`` adds a bytes rate beside the item count). ``note`` is shown after the
    counts, e.g. the item in hand.
    """

    def __init__(self, label: str, total: int, unit: str = "bytes", quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.unit = label, int(total), unit
        self.stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.quiet = quiet or not tty
        self.done = 0
        self.nbytes = 0
        self.note = ""
        self._t0 = time.monotonic()
        self._last = self._t0 - 1.0  # draw on the first update
        self._drawn = False

    def update(self, n: int = 1, nbytes: int = 0, note: str | None = None) -> None:
        self.done += n
        self.nbytes += nbytes
        if note is not None:
            self.note = note
        now = time.monotonic()
        if not self.quiet and now - self._last >= 0.2:
            self._last = now
            self._draw(final=False)

    def line(self) -> str:
        el = time.monotonic() - self._t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        if self.unit == "bytes":
            counts = f"{fmt_bytes(self.done)}/{fmt_bytes(self.total)} ({pct:.0f}%), {fmt_bytes(rate)}/s"
        else:
            per = f"{rate:,.0f}" if rate >= 10 else f"{rate:.2g}"
            counts = f"{self.done}/{self.total} {self.unit} ({pct:.0f}%), {per} {self.unit}/s"
            if self.nbytes and el > 0:
                counts += f", {fmt_bytes(self.nbytes / el)}/s"
        note = f"  {self.note}" if self.note else ""
        return (f"{self.label}: {counts}, elapsed {fmt_time(el)}, "
                f"ETA {fmt_time(eta) if self.done < self.total else '0:00'}{note}")

    def _draw(self, final: bool) -> None:
        self.stream.write("\r\x1b[K" + self.line() + ("\n" if final else ""))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if not self.quiet and self._drawn:
            self._draw(final=True)
        self.quiet = True  # close twice writes once

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
