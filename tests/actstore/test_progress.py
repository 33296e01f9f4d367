"""actstore.progress: a line with rate and ETA on a terminal, nothing in a log or with quiet."""

import io

from actstore.progress import Progress


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_counts_rate_and_eta() -> None:
    out = _Tty()
    with Progress("verify", total=4 << 20, unit="bytes", stream=out) as bar:
        bar.update(1 << 20, note="token/resid_post/0")
        bar.update(3 << 20)
    last = out.getvalue().split("\r\x1b[K")[-1]
    assert last.startswith("verify: 4.0 MiB/4.0 MiB (100%), ") and "iB/s" in last and "ETA 0:00" in last
    assert out.getvalue().endswith("\n")
    items = _Tty()
    with Progress("pull: download", total=10, unit="files", stream=items) as bar:
        bar.update(5, nbytes=1000)
        assert "5/10 files (50%)" in bar.line() and "files/s" in bar.line() and "ETA" in bar.line()


def test_a_log_or_quiet_gets_nothing() -> None:
    for out, quiet in ((io.StringIO(), False), (_Tty(), True)):
        with Progress("verify", total=10, unit="files", stream=out, quiet=quiet) as bar:
            bar.update(10)
        assert out.getvalue() == ""
