"""A static HTTP server for remote-store tests: Range requests, validators, a byte counter, faults.

    with StaticServer(directory) as srv:
        actstore.open(srv.url + "/store")
        srv.body_bytes          # bytes of response bodies sent so far
        srv.cut_after = 1000    # the next GET sends 1000 bytes of its body, then drops the connection
        srv.cut_times = 10**6   # ... and so does every GET after it (a server that stays broken)

Binds 127.0.0.1 on a free port. HEAD and GET only (a static server, like nginx or a bucket).
"""

from __future__ import annotations

import email.utils
import os
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class StaticServer:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory).resolve()
        self.body_bytes = 0
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self.cut_after: int | None = None
        self.cut_times = 1  # how many GETs in a row are cut (a flaky link: 1; a dead server: many)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_HEAD(self) -> None:
                self._serve(body=False)

            def do_GET(self) -> None:
                self._serve(body=True)

            def _serve(self, body: bool) -> None:
                rng = self.headers.get("Range")
                with outer._lock:
                    outer.requests.append((self.command, self.path, rng))
                rel = self.path.split("?", 1)[0].lstrip("/")
                path = (outer.directory / rel).resolve()
                if outer.directory not in path.parents and path != outer.directory or not path.is_file():
                    self.send_error(404)
                    return
                st = path.stat()
                size = st.st_size
                start, end = 0, size  # [start, end)
                status = 200
                if rng:
                    m = _RANGE.match(rng.strip())
                    if not m or (not m[1] and not m[2]):
                        self.send_error(416)
                        return
                    if m[1]:
                        start = int(m[1])
                        end = min(size, int(m[2]) + 1) if m[2] else size
                    else:  # suffix range: the last N bytes
                        start = max(0, size - int(m[2]))
                    if start >= size or start >= end:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.end_headers()
                        return
                    status = 206
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(end - start))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("ETag", f'"{st.st_mtime_ns:x}-{size:x}"')
                self.send_header("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True))
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
                self.end_headers()
                if not body:
                    return
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read(end - start)
                with outer._lock:
                    cut = outer.cut_after
                    if cut is not None:
                        outer.cut_times -= 1
                        if outer.cut_times <= 0:
                            outer.cut_after, outer.cut_times = None, 1
                if cut is not None and cut < len(data):
                    data = data[:cut]  # a server dying mid-response: fewer bytes than promised
                    self.close_connection = True
                with outer._lock:  # counted before sending: once the client has it, it is counted
                    outer.body_bytes += len(data)
                self.wfile.write(data)
                self.wfile.flush()
                if cut is not None:
                    self.connection.shutdown(2)

        class Server(ThreadingHTTPServer):
            # the default listen backlog (5) drops the SYNs of a burst of parallel range requests,
            # which then wait a 1 s retransmit: real servers queue far more
            request_queue_size = 256

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def reset_counts(self) -> None:
        with self._lock:
            self.body_bytes = 0
            self.requests.clear()

    def stop(self) -> None:
        """The server goes away: later connections are refused."""
        if self._thread is None:
            return
        self._thread = None
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StaticServer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        except OSError:
            pass


def touch_later(path: Path) -> None:
    """Bump a file's mtime so its validators change even within the same second."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
