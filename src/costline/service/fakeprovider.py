"""A fake OpenAI-compatible provider for load and fault runs: the wire format of
``POST /v1/chat/completions``, with one misbehaviour per mode.

    python -m costline.service.fakeprovider --port 8181 --mode slow

* ``ok`` — answers every call: the prompt's recommendation line as the completion, usage
  counted from the text (about four characters a token);
* ``slow`` — answers as ``ok`` after ``delay_s`` (by default longer than the cost guardian's
  deadline for a whole call);
* ``429`` / ``500`` — answers that ``share`` of calls ``429 Too Many Requests`` (with
  ``Retry-After``) / ``500 Internal Server Error``, the others as ``ok``;
* ``huge`` — a ``200`` whose completion body is ``huge_bytes`` long (tens of MiB: what a
  client that reads without a cap would hold in memory);
* ``lying-usage`` — answers as ``ok`` with usage claiming ``lying_input_tokens`` input tokens;
* ``reject-marked`` — answers ``400`` (the request's content refused) to every call whose
  messages contain ``marker``, the others as ``ok``: one tenant's questions rejected, the other
  tenants' served.

``GET /stats`` gives the calls received so far and the answers per outcome; ``PUT /mode``
(a JSON object of :class:`FakeProviderConfig` fields) switches the mode of a running fake.
:func:`spawned_fake_provider` runs it as a process of its own on a free 127.0.0.1 port (so a
load generator in the caller's process shares nothing with it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from costline.agents.guardian import GuardianConfig
from costline.assistant.specialists import RECOMMENDATION_PREFIX
from costline.core.errors import CostlineError
from costline.service.ports import free_port

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 5.0
MIB = 1 << 20
# Characters per token of the usage the fake reports (the usual rule of thumb for English).
CHARS_PER_TOKEN = 4


class FakeMode(StrEnum):
    """How the fake provider misbehaves."""

    OK = "ok"
    SLOW = "slow"
    RATE_LIMITED = "429"
    SERVER_ERROR = "500"
    HUGE = "huge"
    LYING_USAGE = "lying-usage"
    REJECT_MARKED = "reject-marked"


@dataclass(frozen=True)
class FakeProviderConfig:
    """One mode and its parameters (each used only by its mode)."""

    mode: FakeMode = FakeMode.OK
    # slow: a second longer than the guardian's deadline for a whole call, all attempts.
    delay_s: float = GuardianConfig().call_timeout_s + 1.0
    # 429 / 500: the share of calls that fail.
    share: float = 1.0
    retry_after_s: int = 1
    # huge: the length of the completion body.
    huge_bytes: int = 32 * MIB
    # lying-usage: the input tokens the usage claims.
    lying_input_tokens: int = 10**12
    # reject-marked: calls whose messages contain it are refused (400).
    marker: str = ""
    seed: int = 7


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return JSONResponse(body, status_code=status, headers=headers)


def _answer_text(model: str, messages: list[dict[str, Any]]) -> str:
    # The prompt's recommendation line, as a model that changes no number would write it.
    prompt = str(messages[-1].get("content") or "") if messages else ""
    for line in prompt.splitlines():
        if line.startswith(RECOMMENDATION_PREFIX):
            return f"[{model}] {line.removeprefix(RECOMMENDATION_PREFIX)}"
    return f"[{model}] {prompt[:200]}"


def _completion(model: str, content: str, prompt_tokens: int) -> dict[str, Any]:
    completion_tokens = max(1, len(content) // CHARS_PER_TOKEN)
    return {
        "id": f"chatcmpl-fake-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def fake_provider_app(config: FakeProviderConfig) -> Starlette:
    """The fake provider as an ASGI app."""
    current = [config]
    rng = random.Random(config.seed)
    stats: Counter[str] = Counter()
    # Built once: a huge answer is sent as the same chunk over and over.
    chunk = b"x" * MIB

    async def huge_body(model: str) -> AsyncIterator[bytes]:
        head = _completion(model, "", 1)
        prefix, _, suffix = json.dumps(head).partition('"content": ""')
        yield (prefix + '"content": "').encode()
        for _ in range(current[0].huge_bytes // MIB):
            yield chunk
        yield ('"' + suffix).encode()

    async def completions(request: Request) -> Response:
        body = await request.json()
        model = str(body.get("model", "fake"))
        messages = list(body.get("messages") or [])
        text = "\n".join(str(m.get("content") or "") for m in messages)
        prompt_tokens = max(1, len(text) // CHARS_PER_TOKEN)
        config = current[0]
        mode = config.mode
        stats["received"] += 1
        if mode is FakeMode.REJECT_MARKED and config.marker and config.marker in text:
            stats["400"] += 1
            return _error(400, "This request was rejected.", "invalid_request_error")
        if mode in (FakeMode.RATE_LIMITED, FakeMode.SERVER_ERROR) and rng.random() < config.share:
            if mode is FakeMode.RATE_LIMITED:
                stats["429"] += 1
                return _error(
                    429,
                    "Rate limit reached for requests.",
                    "requests",
                    {"Retry-After": str(config.retry_after_s)},
                )
            stats["500"] += 1
            return _error(500, "The server had an error processing your request.", "server_error")
        if mode is FakeMode.HUGE:
            stats["huge"] += 1
            return StreamingResponse(huge_body(model), media_type="application/json")
        if mode is FakeMode.SLOW:
            await asyncio.sleep(config.delay_s)
        if mode is FakeMode.LYING_USAGE:
            prompt_tokens = config.lying_input_tokens
        stats["200"] += 1
        return JSONResponse(_completion(model, _answer_text(model, messages), prompt_tokens))

    async def show_stats(request: Request) -> Response:
        shown = {**asdict(current[0]), "mode": str(current[0].mode)}
        return JSONResponse({"config": shown, **stats})

    async def set_mode(request: Request) -> Response:
        fields = dict(await request.json())
        try:
            if "mode" in fields:
                fields["mode"] = FakeMode(fields["mode"])
            current[0] = replace(current[0], **fields)
        except (TypeError, ValueError) as exc:
            return _error(400, str(exc), "invalid_request_error")
        stats.clear()
        return await show_stats(request)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/stats", show_stats, methods=["GET"]),
            Route("/mode", set_mode, methods=["PUT"]),
        ]
    )


@dataclass
class FakeProvider:
    """A fake provider process: its ``/v1`` base URL (what ``--llm-base-url`` takes)."""

    base_url: str
    proc: subprocess.Popen[bytes]

    def stats(self) -> dict[str, int]:
        """Calls received since the start or the last mode switch (``received``) and the
        answers per outcome (``200``, ``400``, ``429``, ``500``, ``huge``)."""
        data: dict[str, Any] = httpx.get(f"{self._root}/stats", timeout=5.0).json()
        data.pop("config", None)
        return {k: int(v) for k, v in data.items()}

    def switch(self, config: FakeProviderConfig) -> None:
        """Switch the running fake to ``config`` (its counts start again)."""
        fields = {**asdict(config), "mode": config.mode.value}
        httpx.put(f"{self._root}/mode", json=fields, timeout=5.0).raise_for_status()

    @property
    def _root(self) -> str:
        return self.base_url.removesuffix("/v1")


@contextlib.contextmanager
def spawned_fake_provider(config: FakeProviderConfig) -> Iterator[FakeProvider]:
    """Run the fake provider as a process on a free 127.0.0.1 port until the block ends."""
    port = free_port()
    args = [
        sys.executable, "-m", "costline.service.fakeprovider", "--port", str(port),
        "--mode", config.mode.value, "--delay", str(config.delay_s), "--share", str(config.share),
        "--retry-after", str(config.retry_after_s), "--huge-bytes", str(config.huge_bytes),
        "--lying-input-tokens", str(config.lying_input_tokens), "--marker", config.marker,
        "--seed", str(config.seed),
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise CostlineError(f"the fake provider exited with {proc.returncode}:\n{err}")
            try:
                if httpx.get(f"{root}/stats", timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise CostlineError(f"the fake provider did not start on port {port}")
            time.sleep(0.05)
        yield FakeProvider(f"{root}/v1", proc)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


def main(argv: list[str] | None = None) -> None:
    """Serve the fake provider (``python -m costline.service.fakeprovider --help``)."""
    import uvicorn

    defaults = FakeProviderConfig()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", choices=[m.value for m in FakeMode], default=FakeMode.OK.value)
    p.add_argument("--delay", type=float, default=defaults.delay_s)
    p.add_argument("--share", type=float, default=defaults.share)
    p.add_argument("--retry-after", type=int, default=defaults.retry_after_s)
    p.add_argument("--huge-bytes", type=int, default=defaults.huge_bytes)
    p.add_argument("--lying-input-tokens", type=int, default=defaults.lying_input_tokens)
    p.add_argument("--marker", default=defaults.marker)
    p.add_argument("--seed", type=int, default=defaults.seed)
    a = p.parse_args(argv)
    config = FakeProviderConfig(
        mode=FakeMode(a.mode), delay_s=a.delay, share=a.share, retry_after_s=a.retry_after,
        huge_bytes=a.huge_bytes, lying_input_tokens=a.lying_input_tokens, marker=a.marker,
        seed=a.seed,
    )  # fmt: skip
    uvicorn.run(
        fake_provider_app(config),
        host="127.0.0.1",
        port=a.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
