"""What every emulator shares: scripted faults and a record of every exchange.

``Faults`` lets a test say "the next 3 POSTs to /deployments answer 429 with Retry-After: 1" or "answer
slowly"; ``Recorder`` keeps each request and response so the contract tests can validate them against
the provider's spec. Both are plain ASGI middleware so they see exactly the bytes on the wire.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.servers.asgi import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass
class Fault:
    status: int | None = None  # None: no error answer (only ``delay``)
    body: Any = None
    retry_after: float | None = None
    delay: float = 0.0
    method: str | None = None
    path: str | None = None  # a regular expression searched in the path
    times: int = 1
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method:
            return False
        return not self.path or re.search(self.path, path) is not None


class Faults:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.injected = 0

    def add(self, status: int | None = None, *, times: int = 1, **kwargs: Any) -> Fault:
        fault = Fault(status=status, times=times, **kwargs)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.matches(method, path):
                    fault.times -= 1
                    self.injected += 1
                    return fault
        return None


@dataclass
class Exchange:
    method: str
    path: str
    query: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int = 0
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    at: float = 0.0

    @property
    def request_json(self) -> Any:
        return json.loads(self.request_body) if self.request_body else None

    @property
    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None


class Recorder:
    def __init__(self, limit: int = 20000) -> None:
        self.exchanges: list[Exchange] = []
        self.limit = limit
        self._lock = threading.Lock()

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            if len(self.exchanges) < self.limit:
                self.exchanges.append(exchange)

    def clear(self) -> None:
        with self._lock:
            self.exchanges.clear()

    def matching(self, method: str, pattern: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and re.search(pattern, e.path)]


FaultAnswer = Callable[[Fault], tuple[int, bytes, dict[str, str]]]


def default_fault_answer(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
    body = fault.body if fault.body is not None else {"error": f"injected fault {fault.status}"}
    return fault.status or 500, json.dumps(body).encode(), {"content-type": "application/json"}


class Instrumented:
    """ASGI middleware: applies faults, then records the exchange (request and response bytes)."""

    def __init__(
        self,
        app: ASGIApp,
        faults: Faults,
        recorder: Recorder,
        *,
        fault_answer: FaultAnswer = default_fault_answer,
        record_prefix: str = "",
    ) -> None:
        self.app, self.faults, self.recorder = app, faults, recorder
        self.fault_answer = fault_answer
        self.record_prefix = record_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        exchange = Exchange(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode(),
            request_headers={k.decode(): v.decode() for k, v in scope["headers"]},
            request_body=body,
            at=time.monotonic(),
        )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        out: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.response_headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            elif message["type"] == "http.response.body":
                out.append(message.get("body", b""))
                if not message.get("more_body"):
                    # Record before the last byte leaves, so a test that got its answer sees it here.
                    exchange.response_body = b"".join(out)
                    if scope["path"].startswith(self.record_prefix):
                        self.recorder.add(exchange)
            await send(message)

        fault = self.faults.take(scope["method"], scope["path"])
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.status is not None:
            status, payload, headers = self.fault_answer(fault)
            headers = {**headers, **fault.headers}
            if fault.retry_after is not None:
                headers["retry-after"] = str(fault.retry_after)
            await capture(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
                }
            )
            await capture({"type": "http.response.body", "body": payload})
        else:
            await self.app(scope, replay, capture)


class SlidingWindow:
    """The server side of a rate limit: the emulator answers 429 when a client goes over it."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit, self.period = limit, period
        self._times: list[float] = []
        self._lock = threading.Lock()
        self.rejected = 0
        self.peak = 0

    def admit(self) -> float | None:
        """None if admitted, else the seconds until a slot frees up."""
        with self._lock:
            now = time.monotonic()
            cutoff = now - self.period
            self._times = [t for t in self._times if t > cutoff]
            if len(self._times) >= self.limit:
                self.rejected += 1
                return self._times[0] + self.period - now
            self._times.append(now)
            self.peak = max(self.peak, len(self._times))
            return None


class AppServer:
    """A built app's server process on a free loopback port, as a hosting emulator runs a deployment."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        base = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env={
                    **base,
                    **env,
                    "PORT": str(self.port),
                    "HOSTNAME": "127.0.0.1",
                    "NODE_ENV": "production",
                },
            )

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.log_path}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"server did not listen within {timeout:.0f} s; log: {self.log_path}")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
    }
)


async def forward(scope: Scope, receive: Receive, send: Send, port: int) -> None:
    """Pass one HTTP request to ``127.0.0.1:port`` and its answer back (Host header kept)."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope.get("raw_path") or scope["path"].encode()
    if scope.get("query_string"):
        path += b"?" + scope["query_string"]
    headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in HOP_BY_HOP]
    async with httpx.AsyncClient(trust_env=False, timeout=120.0) as client:
        upstream = await client.request(
            scope["method"], f"http://127.0.0.1:{port}{path.decode('latin-1')}", headers=headers, content=body
        )
        raw = upstream.content  # decoded: drop content-encoding with it
    skip = HOP_BY_HOP | {"content-encoding", "content-length"}
    out = [(k, v) for k, v in upstream.headers.raw if k.decode("latin-1").lower() not in skip]
    out.append((b"content-length", str(len(raw)).encode()))
    await send({"type": "http.response.start", "status": upstream.status_code, "headers": out})
    await send({"type": "http.response.body", "body": raw})
