"""A judge behind an OpenAI-compatible chat-completions endpoint (OpenAI, vLLM, TGI, llama.cpp).

The recommended judge for real studies: serve a strong instruction-tuned model (e.g. with vLLM:
``vllm serve MODEL``, then ``--judge openai:http://HOST:8000/v1#MODEL``), measure it once with
``actstore judge eval`` against gold labels, and label. An answer that cannot be read as a verdict
is an abstention (``expressed`` None, the answer kept in ``raw``), never a silent "no".

Stdlib HTTP only, so that the judge needs no extra package. Requests run on a thread pool of
``max_workers`` (the endpoint's concurrency limit); transient failures (connection errors, timeouts,
429, 5xx) are retried with exponential backoff and jitter, honouring ``Retry-After``; other 4xx are the
caller's mistake and fail at once.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from actstore.errors import InputError, ModelError

from .base import JudgeItem, Label, expand
from .rubric import MODES, Mode, judge_messages, read_verdict


class JudgeRequestError(ModelError):
    """The endpoint kept failing (or refused the request)."""


class OpenAIJudge:
    def __init__(
        self,
        model: str,
        base_url: str = "https://api.openai.com/v1",
        api_key_env: str = "OPENAI_API_KEY",
        mode: Mode = "yesno",
        max_workers: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_tokens: int = 8,
        threshold: float = 4.0,
        judge_id: str | None = None,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"unknown judge mode {mode!r}; use one of {', '.join(MODES)}")
        if max_workers < 1 or max_retries < 0 or timeout <= 0:
            raise InputError("max_workers >= 1, max_retries >= 0 and timeout > 0 are required")
        self.model, self.mode = model, mode
        self.url = base_url.rstrip("/") + "/chat/completions"
        # Read the key once, never store it in judge_id or labels. Local servers often need none.
        self._api_key = os.environ.get(api_key_env) or None
        self.max_workers, self.timeout, self.max_retries, self.backoff = max_workers, timeout, max_retries, backoff
        self.max_tokens, self.threshold = max_tokens, threshold
        self.judge_id = judge_id or f"openai:{model}:{mode}"

    def _post(self, messages: list[dict[str, str]]) -> str:
        body = json.dumps(
            {"model": self.model, "messages": messages, "temperature": 0, "max_tokens": self.max_tokens}
        ).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        last = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
            try:
                req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    data: Any = json.loads(resp.read().decode("utf-8"))
                return str(data["choices"][0]["message"]["content"] or "")
            except urllib.error.HTTPError as e:
                last = f"HTTP {e.code}"
                if e.code != 429 and e.code < 500:
                    detail = e.read().decode("utf-8", "replace")[:200]
                    raise JudgeRequestError(f"{self.url} refused the request: HTTP {e.code} {detail}; check model name and key") from None
                retry_after = e.headers.get("Retry-After") if e.headers else None
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, float(retry_after))
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except (KeyError, IndexError, ValueError) as e:
                last = f"malformed reply ({type(e).__name__})"
            if attempt < self.max_retries:
                time.sleep(wait)
        raise JudgeRequestError(f"{self.url} failed {self.max_retries + 1} times (last: {last}); check the server or raise max_retries")

    def judge(self, items: Sequence[JudgeItem]) -> list[Label]:
        pairs = expand(items)
        msgs = [judge_messages(it.query, it.response, v, self.mode) for it, v in pairs]
        # After the first request that fails for good, the others stop instead of each retrying in turn.
        stop = threading.Event()

        def call(m: list[dict[str, str]]) -> str:
            if stop.is_set():
                return ""
            try:
                return self._post(m)
            except BaseException:
                stop.set()
                raise

        pool = ThreadPoolExecutor(max_workers=self.max_workers)
        try:
            futures = [pool.submit(call, m) for m in msgs]
            raws = [f.result() for f in futures]  # input order, whatever order they finish in
        finally:
            # On the first failure, drop the requests not yet started instead of sending them all.
            pool.shutdown(wait=True, cancel_futures=True)
        out = []
        for (it, v), raw in zip(pairs, raws):
            expressed, score = read_verdict(raw, self.mode, self.threshold)
            out.append(Label(it.response_id, v, expressed, score, self.judge_id, raw))
        return out
