"""OpenAIJudge against a fake chat-completions server on 127.0.0.1 (stdlib, in a thread)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import pytest

from actstore.errors import ActstoreError
from ingest.judges import JudgeItem, JudgeRequestError, OpenAIJudge


class FakeServer:
    """Answers "Yes" when the reply mentions the value's name, else "No". Of the distinct requests, every
    ``fail_every``-th first gets a 500 and every 5th a 503 with Retry-After (twice), so that retries are
    exercised deterministically: no request fails more than twice."""

    def __init__(self, fail_every: int = 3, status: int | None = None, delay: float = 0.0) -> None:
        self.fail_every, self.status, self.delay = fail_every, status, delay
        self.requests: list[dict[str, Any]] = []
        self.attempts: dict[str, int] = {}
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.active = self.max_active = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    key = json.dumps(body, sort_keys=True)
                    k = list(server.attempts).index(key) if key in server.attempts else len(server.attempts)
                    c = server.attempts[key] = server.attempts.get(key, 0) + 1
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    if server.delay:
                        time.sleep(server.delay)
                    if server.status is not None:
                        return self._send(server.status, {"error": "nope"})
                    if k % 5 == 1 and c <= 2:
                        return self._send(503, {"error": "busy"}, {"Retry-After": "0"})
                    if k % server.fail_every == 0 and c == 1:
                        return self._send(500, {"error": "flaky"})
                    user = body["messages"][-1]["content"]
                    value = user.split("express the value ")[1].split(" (")[0]
                    reply = user.split("Assistant reply:\n<<<\n")[1].split("\n>>>")[0]
                    answer = "**Yes**" if value.lower() in reply.lower() else "No."
                    if "unclear" in reply:
                        answer = "I cannot tell from this."
                    self._send(200, {"choices": [{"message": {"role": "assistant", "content": answer}}]})
                finally:
                    with server.lock:
                        server.active -= 1

            def _send(self, code: int, payload: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        class Quiet(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # the client hanging up on a slow reply (timeout test) is expected

        self.httpd = Quiet(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as s:
        yield s


def _items(n: int, values: tuple[str, ...] = ("power", "tradition")) -> list[JudgeItem]:
    return [
        JudgeItem(f"r{i}", "What matters?", f"Power above all, {i}." if i % 2 else f"Be kind to friends, {i}.", values)
        for i in range(n)
    ]


def test_labels_come_back_in_order_despite_failures(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_KEY", "sk-test")
    judge = OpenAIJudge("judge-model", base_url=server.url, api_key_env="FAKE_KEY", max_workers=4,
                        backoff=0.001, timeout=5)
    items = _items(10)
    labels = judge.judge(items)
    assert [(lab.response_id, lab.value) for lab in labels] == [(it.response_id, v) for it in items for v in it.values]
    assert [lab.expressed for lab in labels] == [bool(i % 2) and v == "power" for i in range(10) for v in ("power", "tradition")]
    assert all(lab.raw in ("**Yes**", "No.") for lab in labels)
    assert len(server.requests) > 20  # some were retried
    assert server.max_active <= 4
    assert all(h.get("Authorization") == "Bearer sk-test" for h in server.headers)
    assert server.requests[0]["model"] == "judge-model" and server.requests[0]["temperature"] == 0
    assert "sk-test" not in judge.judge_id


def test_no_key_sends_no_authorization(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    judge = OpenAIJudge("m", base_url=server.url, api_key_env="NO_SUCH_KEY", backoff=0.001)
    judge.judge(_items(1))
    assert all("Authorization" not in h for h in server.headers)


def test_gives_up_after_max_retries() -> None:
    with FakeServer(status=500) as s:
        judge = OpenAIJudge("m", base_url=s.url, max_retries=2, backoff=0.001, max_workers=1)
        with pytest.raises(JudgeRequestError, match="failed 3 times.*HTTP 500") as err:
            judge.judge(_items(3, ("power",)))
        assert isinstance(err.value, ActstoreError)
        assert len(s.requests) == 3  # the first pair's attempts; the others were never sent


def test_client_error_is_not_retried() -> None:
    with FakeServer(status=404) as s:
        judge = OpenAIJudge("m", base_url=s.url, max_retries=5, backoff=0.001)
        with pytest.raises(JudgeRequestError, match="HTTP 404"):
            judge.judge(_items(1, ("power",)))
        assert len(s.requests) == 1


def test_unreachable_endpoint_times_out_cleanly() -> None:
    # A port nobody listens on: connection refused, retried, then one clear error.
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    judge = OpenAIJudge("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff=0.001, timeout=1)
    with pytest.raises(JudgeRequestError, match="failed 2 times"):
        judge.judge(_items(1))


def test_slow_server_hits_the_timeout() -> None:
    with FakeServer(delay=1.0) as s:
        judge = OpenAIJudge("m", base_url=s.url, max_retries=0, timeout=0.2)
        with pytest.raises(JudgeRequestError, match="failed 1 times.*(?i:timed out|timeout)"):
            judge.judge(_items(1, ("power",)))


def test_unreadable_answers_are_abstentions_and_eval_counts_them(server: FakeServer) -> None:
    from ingest.judge_eval import GoldSet, evaluate_labels

    items = [JudgeItem(f"r{i}", "What matters?", ("Power first." if i % 2 else "Be kind.") + (" unclear" if i % 3 == 0 else ""),
                       ("power",)) for i in range(12)]
    judge = OpenAIJudge("m", base_url=server.url, backoff=0.001, max_workers=3)
    labels = judge.judge(items)
    assert [lab.expressed for lab in labels] == [None if i % 3 == 0 else bool(i % 2) for i in range(12)]
    assert all(lab.score is None and lab.raw == "I cannot tell from this." for lab in labels[::3])
    assert server.max_active <= 3
    gold = GoldSet("planted", tuple(items), {(f"r{i}", "power"): bool(i % 2) for i in range(12)},
                   {f"r{i}": f"q{i // 2}" for i in range(12)})
    ev = evaluate_labels(labels, gold, "judge", n_boot=50)
    m = ev.metrics["all"]
    assert m.abstained == 4 and m.kappa.value == 1.0 and ev.judge_id == "openai:m:yesno"
