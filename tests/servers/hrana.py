"""A Hrana 3 over HTTP server backed by real SQLite files (the data plane of a Turso/libSQL database).

Follows ``shared/specs/libsql/HRANA_3_SPEC.md``: ``GET /v3``, ``POST /v3/pipeline`` and ``POST /v3/cursor``
(JSON encoding; ``/v3-protobuf`` answers 404 so clients fall back to JSON), streams tied together by
unforgeable batons, ``execute``/``batch`` (with conditions)/``sequence``/``store_sql``/``close_sql``/
``get_autocommit``/``close``, integers as strings, blobs as base64 and SQL errors reported inside
``results`` rather than as HTTP errors. ``GET /v2`` and ``POST /v2/pipeline`` (``HTTP_V2_SPEC.md``) are
served by the same handler, since Hrana 3's pipeline is a superset: ``@libsql/client`` over http, as a
deployed app uses it, speaks version 2.

A ``FaultPlan`` makes it fail like a hosted database does: 429 with ``Retry-After``, 5xx, a connection
dropped before or after the requests ran, or a slow answer.

Which database a request reaches is decided by ``resolve(key)``, where ``key`` is the host name of the
request (``mydb-myorg.turso.io`` → a file); a ``KeyError``/``FileNotFoundError`` from it is a 404.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import pathlib
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

STREAM_IDLE_SECONDS = 30.0


# --------------------------------------------------------------------------------------------- faults
@dataclass(frozen=True)
class Fault:
    """One injected failure, applied to one pipeline/cursor request.

    ``status``: answer this HTTP status (429 carries ``Retry-After: retry_after``) without running anything.
    ``drop``: close the connection without a complete answer; with ``after_execute`` the requests run
    first, so the client cannot know whether its writes happened.
    ``delay``: sleep ``delay`` seconds, then answer normally.
    """

    kind: Literal["status", "drop", "delay"]
    status: int = 503
    retry_after: float | None = None
    after_execute: bool = False
    delay: float = 0.0


class FaultPlan:
    """A thread-safe queue of faults for the next requests, plus an optional periodic fault."""

    def __init__(self, faults: Iterable[Fault] = ()) -> None:
        self._queue: deque[Fault] = deque(faults)
        self._lock = threading.Lock()
        self._every: tuple[int, Fault] | None = None
        self._seen = 0
        self.injected: list[Fault] = []

    def add(self, fault: Fault, times: int = 1) -> FaultPlan:
        with self._lock:
            self._queue.extend([fault] * times)
        return self

    def rate_limit(self, retry_after: float = 1.0, times: int = 1) -> FaultPlan:
        return self.add(Fault("status", status=429, retry_after=retry_after), times)

    def server_error(self, status: int = 503, times: int = 1) -> FaultPlan:
        return self.add(Fault("status", status=status), times)

    def drop(self, times: int = 1, *, after_execute: bool = False) -> FaultPlan:
        return self.add(Fault("drop", after_execute=after_execute), times)

    def slow(self, seconds: float, times: int = 1) -> FaultPlan:
        return self.add(Fault("delay", delay=seconds), times)

    def every(self, n: int, fault: Fault) -> FaultPlan:
        """Inject ``fault`` on every ``n``-th request (after the queued ones)."""
        with self._lock:
            self._every = (n, fault)
        return self

    def take(self) -> Fault | None:
        with self._lock:
            self._seen += 1
            fault: Fault | None = None
            if self._queue:
                fault = self._queue.popleft()
            elif self._every is not None and self._seen % self._every[0] == 0:
                fault = self._every[1]
            if fault is not None:
                self.injected.append(fault)
            return fault


@dataclass
class HranaStats:
    """What the server saw; the benchmark prints HTTP requests per 10,000 rows from it."""

    http_requests: int = 0
    stream_requests: int = 0
    statements: int = 0
    streams_opened: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, *, http: int = 0, stream: int = 0, statements: int = 0, opened: int = 0) -> None:
        with self._lock:
            self.http_requests += http
            self.stream_requests += stream
            self.statements += statements
            self.streams_opened += opened


# ------------------------------------------------------------------------------------------- protocol
class HranaError(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "code": self.code}


def _sqlite_error(exc: sqlite3.Error) -> HranaError:
    code = getattr(exc, "sqlite_errorname", None) or "SQLITE_ERROR"
    return HranaError(f"{code}: {exc}", code)


def decode_value(value: Any) -> Any:
    if not isinstance(value, dict) or "type" not in value:
        raise HranaError(f"malformed value {value!r}", "PROTO_ERROR")
    kind = value["type"]
    if kind == "null":
        return None
    if kind == "integer":
        raw = value.get("value")
        if not isinstance(raw, str):
            raise HranaError("integer values must be strings in JSON", "PROTO_ERROR")
        return int(raw)
    if kind == "float":
        return float(value["value"])
    if kind == "text":
        return str(value["value"])
    if kind == "blob":
        return base64.b64decode(value.get("base64", ""), validate=False)
    raise HranaError(f"unknown value type {kind!r}", "PROTO_ERROR")


def encode_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool | int):
        return {"type": "integer", "value": str(int(value))}
    if isinstance(value, float):
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "text", "value": value}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"type": "blob", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise HranaError(f"cannot encode {type(value).__name__}", "INTERNAL")


class Stream:
    """One Hrana stream: one SQLite connection in autocommit mode plus its stored SQL texts."""

    def __init__(self, path: pathlib.Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        self.sqls: dict[int, str] = {}
        self.lock = threading.Lock()
        self.last_used = time.monotonic()

    def close(self) -> None:
        try:
            if self.conn.in_transaction:
                self.conn.rollback()
        finally:
            self.conn.close()

    # -- statements
    def _sql_of(self, obj: dict[str, Any]) -> str:
        sql, sql_id = obj.get("sql"), obj.get("sql_id")
        if (sql is None) == (sql_id is None):
            raise HranaError("exactly one of 'sql' and 'sql_id' must be given", "PROTO_ERROR")
        if sql is not None:
            return str(sql)
        if sql_id not in self.sqls:
            raise HranaError(f"SQL text {sql_id} is not stored", "SQL_NOT_FOUND")
        return self.sqls[int(sql_id)]

    def execute(self, stmt: dict[str, Any], stats: HranaStats) -> dict[str, Any]:
        sql = self._sql_of(stmt)
        args = [decode_value(v) for v in stmt.get("args") or []]
        named = {str(a["name"]).lstrip(":@$"): decode_value(a["value"]) for a in stmt.get("named_args") or []}
        if args and named:
            raise HranaError("this server does not mix positional and named arguments", "ARGS_INVALID")
        params: Any = named if named else args
        started = time.perf_counter()
        stats.count(statements=1)
        try:
            cursor = self.conn.execute(sql, params)
            rows = cursor.fetchall()
        except sqlite3.ProgrammingError as exc:
            raise HranaError(str(exc), "ARGS_INVALID") from None
        except sqlite3.Warning as exc:  # e.g. more than one statement in the text
            raise HranaError(str(exc), "SQL_MANY_STATEMENTS") from None
        except sqlite3.Error as exc:
            raise _sqlite_error(exc) from None
        cols = [{"name": d[0], "decltype": None} for d in cursor.description or []]
        want_rows = stmt.get("want_rows", True) is not False
        affected = max(cursor.rowcount, 0)
        return {
            "cols": cols,
            "rows": [[encode_value(v) for v in row] for row in rows] if want_rows else [],
            "affected_row_count": affected,
            "last_insert_rowid": str(cursor.lastrowid) if cursor.lastrowid is not None else None,
            "rows_read": len(rows),
            "rows_written": affected,
            "query_duration_ms": (time.perf_counter() - started) * 1000.0,
        }

    def _condition(self, cond: dict[str, Any] | None, results: list[Any], errors: list[Any]) -> bool:
        if cond is None:
            return True
        kind = cond.get("type")
        if kind == "ok":
            return results[int(cond["step"])] is not None
        if kind == "error":
            return errors[int(cond["step"])] is not None
        if kind == "not":
            return not self._condition(cond["cond"], results, errors)
        if kind == "and":
            return all(self._condition(c, results, errors) for c in cond["conds"])
        if kind == "or":
            return any(self._condition(c, results, errors) for c in cond["conds"])
        if kind == "is_autocommit":
            return not self.conn.in_transaction
        raise HranaError(f"unknown condition type {kind!r}", "PROTO_ERROR")

    def batch(self, batch: dict[str, Any], stats: HranaStats) -> dict[str, Any]:
        steps = batch.get("steps") or []
        results: list[Any] = [None] * len(steps)
        errors: list[Any] = [None] * len(steps)
        for index, step in enumerate(steps):
            cond = step.get("condition")
            if cond is not None:
                for ref in _referenced_steps(cond):
                    if ref >= index:
                        raise HranaError(f"step {index} refers to a later step {ref}", "PROTO_ERROR")
            if not self._condition(cond, results, errors):
                continue
            try:
                results[index] = self.execute(step["stmt"], stats)
            except HranaError as exc:
                errors[index] = exc.to_json()
        return {"step_results": results, "step_errors": errors}

    def handle(self, request: dict[str, Any], stats: HranaStats) -> dict[str, Any]:
        kind = request.get("type")
        if kind == "execute":
            return {"type": "execute", "result": self.execute(request["stmt"], stats)}
        if kind == "batch":
            return {"type": "batch", "result": self.batch(request["batch"], stats)}
        if kind == "sequence":
            sql = self._sql_of(request)
            stats.count(statements=1)
            try:
                self.conn.executescript(sql)
            except sqlite3.Error as exc:
                raise _sqlite_error(exc) from None
            return {"type": "sequence"}
        if kind == "store_sql":
            self.sqls[int(request["sql_id"])] = str(request["sql"])
            return {"type": "store_sql"}
        if kind == "close_sql":
            self.sqls.pop(int(request["sql_id"]), None)
            return {"type": "close_sql"}
        if kind == "get_autocommit":
            return {"type": "get_autocommit", "is_autocommit": not self.conn.in_transaction}
        if kind == "describe":
            raise HranaError("describe is not supported by this test server", "NOT_SUPPORTED")
        raise HranaError(f"unknown request type {kind!r}", "PROTO_ERROR")


def _referenced_steps(cond: dict[str, Any]) -> list[int]:
    kind = cond.get("type")
    if kind in ("ok", "error"):
        return [int(cond["step"])]
    if kind == "not":
        return _referenced_steps(cond["cond"])
    if kind in ("and", "or"):
        return [s for c in cond["conds"] for s in _referenced_steps(c)]
    return []


class StreamTable:
    """Open streams by baton. A baton is single-use: every answer carries a fresh, signed one."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._streams: dict[str, tuple[str, Stream]] = {}
        self._current: dict[str, str] = {}  # stream id -> the nonce of its one valid baton
        self._lock = threading.Lock()

    def _mac(self, stream_id: str, nonce: str) -> str:
        return hmac.new(self._key, f"{stream_id}.{nonce}".encode(), hashlib.sha256).hexdigest()[:32]

    def open(self, key: str, path: pathlib.Path) -> tuple[str, Stream]:
        stream = Stream(path)
        stream_id = secrets.token_hex(8)
        with self._lock:
            self._streams[stream_id] = (key, stream)
        return stream_id, stream

    def lookup(self, baton: str, key: str) -> tuple[str, Stream]:
        parts = baton.split(".")
        if len(parts) != 3:
            raise HranaError("malformed baton", "STREAM_INVALID")
        stream_id, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac(stream_id, nonce)):
            raise HranaError("forged baton", "STREAM_INVALID")
        with self._lock:  # check and consume at once, so two requests cannot share one baton
            entry = self._streams.get(stream_id)
            if entry is None or entry[0] != key:
                raise HranaError("the stream is closed or expired", "STREAM_EXPIRED")
            current = self._current.get(stream_id)
            if current is None or not hmac.compare_digest(current, nonce):
                raise HranaError("this baton was already used; send the latest one", "STREAM_INVALID")
            del self._current[stream_id]
        return stream_id, entry[1]

    def next_baton(self, stream_id: str) -> str:
        nonce = secrets.token_hex(8)
        with self._lock:
            self._current[stream_id] = nonce
        return f"{stream_id}.{nonce}.{self._mac(stream_id, nonce)}"

    def close(self, stream_id: str) -> None:
        with self._lock:
            entry = self._streams.pop(stream_id, None)
            self._current.pop(stream_id, None)
        if entry is not None:
            entry[1].close()

    def expire(self, idle_seconds: float) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [sid for sid, (_, s) in self._streams.items() if now - s.last_used > idle_seconds]
        for sid in stale:
            self.close(sid)

    def close_all(self) -> None:
        with self._lock:
            ids = list(self._streams)
        for sid in ids:
            self.close(sid)


# ---------------------------------------------------------------------------------------- transport
class InjectedDrop(Exception):
    """Raised after the response has started: uvicorn then closes the connection mid-answer."""


class _QuietDrops(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedDrop))


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class _DroppedResponse(Response):
    """Promise a body and never send it: the client sees the connection close mid-answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        raise InjectedDrop("injected dropped connection")


def _error_response(status: int, message: str, code: str) -> JSONResponse:
    return JSONResponse({"message": message, "code": code}, status_code=status)


def create_app(
    resolve: Callable[[str], pathlib.Path],
    faults: FaultPlan | None = None,
    *,
    authorize: Callable[[str, str | None], bool] | None = None,
    idle_seconds: float = STREAM_IDLE_SECONDS,
) -> Starlette:
    """The Hrana 3 HTTP app.

    ``resolve(host)`` maps the request's host name to a SQLite file; ``authorize(host, bearer_token)``
    (optional) decides whether the ``Authorization: Bearer`` token may use that database.
    ``app.state.stats`` counts requests; ``app.state.streams.close_all()`` releases every file.
    """
    streams = StreamTable()
    stats = HranaStats()

    def database_of(request: Request) -> tuple[str, pathlib.Path]:
        key = request.url.hostname or ""
        if authorize is not None:
            header = request.headers.get("authorization", "")
            token = header[7:] if header.lower().startswith("bearer ") else None
            if not authorize(key, token):
                raise PermissionError(key)
        return key, resolve(key)

    def run_pipeline(key: str, path: pathlib.Path, body: dict[str, Any]) -> dict[str, Any]:
        streams.expire(idle_seconds)
        baton = body.get("baton")
        if baton is None:
            stream_id, stream = streams.open(key, path)
            stats.count(opened=1)
        else:
            stream_id, stream = streams.lookup(str(baton), key)
        results: list[dict[str, Any]] = []
        closed = False
        with stream.lock:
            stream.last_used = time.monotonic()
            for req in body.get("requests") or []:
                stats.count(stream=1)
                if closed:
                    results.append(
                        {
                            "type": "error",
                            "error": {"message": "the stream is closed", "code": "STREAM_CLOSED"},
                        }
                    )
                    continue
                if req.get("type") == "close":
                    closed = True
                    results.append({"type": "ok", "response": {"type": "close"}})
                    continue
                try:
                    results.append({"type": "ok", "response": stream.handle(req, stats)})
                except HranaError as exc:
                    results.append({"type": "error", "error": exc.to_json()})
                except (KeyError, TypeError, ValueError) as exc:
                    results.append(
                        {
                            "type": "error",
                            "error": {"message": f"malformed request: {exc!r}", "code": "PROTO_ERROR"},
                        }
                    )
        if closed:
            streams.close(stream_id)
            return {"baton": None, "base_url": None, "results": results}
        return {"baton": streams.next_baton(stream_id), "base_url": None, "results": results}

    def run_cursor(key: str, path: pathlib.Path, body: dict[str, Any]) -> str:
        outcome = run_pipeline(
            key,
            path,
            {"baton": body.get("baton"), "requests": [{"type": "batch", "batch": body.get("batch") or {}}]},
        )
        lines = [json.dumps({"baton": outcome["baton"], "base_url": None})]
        result = outcome["results"][0]
        if result["type"] == "error":
            lines.append(json.dumps({"type": "error", "error": result["error"]}))
        else:
            batch = result["response"]["result"]
            for step, (res, err) in enumerate(zip(batch["step_results"], batch["step_errors"], strict=True)):
                if err is not None:
                    lines.append(json.dumps({"type": "step_error", "step": step, "error": err}))
                elif res is not None:
                    lines.append(json.dumps({"type": "step_begin", "step": step, "cols": res["cols"]}))
                    lines.extend(json.dumps({"type": "row", "row": row}) for row in res["rows"])
                    lines.append(
                        json.dumps(
                            {
                                "type": "step_end",
                                "affected_row_count": res["affected_row_count"],
                                "last_insert_rowid": res["last_insert_rowid"],
                            }
                        )
                    )
        return "\n".join(lines) + "\n"

    async def handle(request: Request, mode: Literal["pipeline", "cursor"]) -> Response:
        stats.count(http=1)
        fault = faults.take() if faults is not None else None
        if fault is not None and fault.kind == "status":
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            code = "RATE_LIMITED" if fault.status == 429 else "INJECTED"
            return JSONResponse(
                {"message": f"injected HTTP {fault.status}", "code": code},
                status_code=fault.status,
                headers=headers,
            )
        if fault is not None and fault.kind == "delay":
            await anyio.sleep(fault.delay)
        if fault is not None and fault.kind == "drop" and not fault.after_execute:
            return _DroppedResponse()
        try:
            key, path = database_of(request)
        except PermissionError:
            return _error_response(401, "missing or invalid auth token", "UNAUTHORIZED")
        except (KeyError, FileNotFoundError):
            return _error_response(404, f"no database for host {request.url.hostname!r}", "NOT_FOUND")
        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
        except ValueError as exc:
            return _error_response(400, f"malformed JSON body: {exc}", "PROTO_ERROR")
        try:
            if mode == "pipeline":
                payload = await run_in_threadpool(run_pipeline, key, path, body)
                answer: Response = JSONResponse(payload)
            else:
                text = await run_in_threadpool(run_cursor, key, path, body)
                answer = PlainTextResponse(text, media_type="text/plain")
        except HranaError as exc:  # a bad baton invalidates the request as a whole
            return _error_response(400, exc.message, exc.code)
        if fault is not None and fault.kind == "drop":
            return _DroppedResponse()
        return answer

    async def pipeline(request: Request) -> Response:
        return await handle(request, "pipeline")

    async def cursor(request: Request) -> Response:
        return await handle(request, "cursor")

    async def version3(_: Request) -> Response:
        return PlainTextResponse("Hrana 2 and 3 (JSON) supported\n")

    async def no_protobuf(_: Request) -> Response:
        return _error_response(404, "this server speaks JSON only", "NOT_SUPPORTED")

    async def health(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    app = Starlette(
        routes=[
            Route("/v2", version3, methods=["GET"]),
            Route("/v2/pipeline", pipeline, methods=["POST"]),
            Route("/v3", version3, methods=["GET"]),
            Route("/v3/pipeline", pipeline, methods=["POST"]),
            Route("/v3/cursor", cursor, methods=["POST"]),
            Route("/v3-protobuf", no_protobuf, methods=["GET"]),
            Route("/v3-protobuf/pipeline", no_protobuf, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
    app.state.stats = stats
    app.state.streams = streams
    return app
