"""A tiny progress line on stderr: done/total, tokens/s, ETA.

Ours rather than tqdm: one line of code per update at the call site, no dependency, and nothing at
all when quiet. On a terminal the line redraws in place (at most every 0.2 s); in a log (not a tty)
a full line is written at most every 10 s, and always at the end.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Self, TextIO


def _fmt_time(s: float) -> str:
    if math.isnan(s) or math.isinf(s):  # no estimate yet
        return "?"
    s = int(s)
    h, m, sec = s // 3600, s // 60 % 60, s % 60
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class Progress:
    """``with Progress("capture", total=n, unit="records") as p: p.update(k, tokens=t)``."""

    def __init__(self, label: str, total: int, unit: str = "records", quiet: bool = False,
                 stream: TextIO | None = None) -> None:
        self.label, self.total, self.unit, self.quiet = label, int(total), unit, quiet
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self.tokens = 0
        self._t0 = time.monotonic()
        self._last = self._t0  # first line after one interval; close() always writes the last
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._every = 0.2 if self._tty else 10.0

    def update(self, n: int = 1, tokens: int = 0) -> None:
        self.done += n
        self.tokens += tokens
        now = time.monotonic()
        if not self.quiet and now - self._last >= self._every:
            self._last = now
            self._draw(final=False)

    def line(self) -> str:
        el = time.monotonic() - self._t0
        rate = self.done / el if el > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        tok = f", {self.tokens / el:,.0f} tokens/s" if self.tokens and el > 0 else ""
        return (f"{self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%){tok}, "
                f"elapsed {_fmt_time(el)}, ETA {_fmt_time(eta) if self.done < self.total else '0:00'}")

    def _draw(self, final: bool) -> None:
        text = self.line()
        if self._tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if final else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.quiet:
            self._draw(final=True)
            self.quiet = True  # close twice writes once

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
