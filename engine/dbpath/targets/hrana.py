"""Turso / libSQL over Hrana 3 HTTP (``shared/specs/libsql/HRANA_3_SPEC.md``), pipelined and batched.

The whole import runs in one interactive transaction on one Hrana stream (``BEGIN`` ... ``COMMIT``), so a
failure leaves the database as it was: the server rolls back a stream that is closed or abandoned.
Rows travel as multi-row ``INSERT`` statements, many statements per HTTP request.

Errors at the boundary: 429 is retried on the same stream after ``Retry-After``; a 5xx or a dropped
connection loses the stream (the spec says it is no longer valid), which is a ``TransientError``: the
importer starts over on a new stream. 401/403/404 are the user's to fix (``InputError``).
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from engine.dbpath.schema import Table
from engine.dbpath.sql import quote
from engine.dbpath.targets import sqlite_common
from engine.dbpath.targets.base import Dialect, Row
from engine.errors import InputError, LaunchdeckError, ProviderError, ProviderUnavailable
from engine.redact import redact_url
from engine.retry import Backoff, parse_retry_after

PROVIDER = "turso"
ROWS_PER_REQUEST = 4_000  # rows per HTTP request (several INSERT statements)
MAX_ROWS_PER_STATEMENT = 500
READ_PAGE = 4_000
MAX_RATE_LIMIT_WAITS = 8
MAX_RETRY_AFTER = 30.0
# A 429 is waited out on the same stream (its baton would be lost on another): Retry-After, else backoff.
RATE_LIMIT_BACKOFF = Backoff(base_delay=0.25, max_delay=MAX_RETRY_AFTER, max_retry_after=MAX_RETRY_AFTER)
BUSY_CODES = frozenset({"SQLITE_BUSY", "SQLITE_LOCKED"})


def split_url(url: str) -> tuple[str, str | None]:
    """(HTTP base URL, auth token) from ``libsql://host?authToken=...`` or ``https://...``."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    token = next((v for k, v in query if k.lower() == "authtoken"), None)
    rest = urlencode([(k, v) for k, v in query if k.lower() != "authtoken"])
    scheme = "https" if parts.scheme == "libsql" else parts.scheme
    if not parts.netloc:
        raise InputError(f"the target URL {parts.scheme}://... names no host")
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/"), rest, "")), token


def encode(value: Any) -> dict[str, Any]:
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
    raise TypeError(f"cannot send {type(value).__name__} over Hrana")


def decode(value: dict[str, Any]) -> Any:
    kind = value["type"]
    if kind == "null":
        return None
    if kind == "integer":
        return int(value["value"])
    if kind == "float":
        return float(value["value"])
    if kind == "text":
        return str(value["value"])
    if kind == "blob":
        return base64.b64decode(value.get("base64") or "")
    raise ProviderError(PROVIDER, f"unknown value type {kind!r} in a Hrana answer")


def stmt(sql: str, args: Sequence[Any] = (), *, want_rows: bool = False) -> dict[str, Any]:
    return {
        "type": "execute",
        "stmt": {"sql": sql, "args": [encode(a) for a in args], "want_rows": want_rows},
    }


class HranaSession:
    """One Hrana stream over HTTP: requests are serialized and carry the latest baton."""

    def __init__(
        self, base_url: str, token: str | None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=60.0, transport=transport)
        self.baton: str | None = None
        self.open = False
        self.http_requests = 0

    def pipeline(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Run requests on the stream; a failed statement raises ``ProviderError`` with the server's message."""
        body = {"baton": self.baton, "requests": requests}
        for wait_number in range(1, MAX_RATE_LIMIT_WAITS + 1):
            self.http_requests += 1
            try:
                response = self.client.post("/v3/pipeline", json=body)
            except httpx.TransportError as exc:
                self.open = False
                raise ProviderUnavailable(
                    PROVIDER, f"connection lost ({type(exc).__name__}); the stream is gone"
                ) from None
            if response.status_code == 429:
                hint = parse_retry_after(response.headers.get("retry-after"))
                wait = RATE_LIMIT_BACKOFF.delay(wait_number, hint)
                time.sleep(wait)
                continue
            break
        else:
            raise ProviderUnavailable(PROVIDER, "still rate limited after several waits", status=429)
        self._raise_for_status(response)
        answer = response.json()
        self.baton = answer.get("baton")
        self.open = self.baton is not None
        if answer.get("base_url"):
            self.client.base_url = httpx.URL(answer["base_url"])
        results: list[dict[str, Any]] = answer["results"]
        for request, result in zip(requests, results, strict=True):
            if result["type"] == "error":
                sql = request.get("stmt", {}).get("sql", request["type"])
                message = f"{result['error'].get('message')} (in: {sql[:160]})"
                if result["error"].get("code") in BUSY_CODES:  # another stream holds the write lock
                    raise ProviderUnavailable(PROVIDER, message)
                raise ProviderError(PROVIDER, message)
        return results

    def _raise_for_status(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        self.open = False
        detail = response.text[:300]
        if response.status_code in (401, 403):
            raise InputError(
                f"Turso refused the auth token (HTTP {response.status_code}): pass a valid ?authToken="
            )
        if response.status_code == 404:
            raise InputError(f"no such Turso database at {self.client.base_url} (HTTP 404)")
        if response.status_code >= 500:
            raise ProviderUnavailable(
                PROVIDER, f"HTTP {response.status_code}: {detail}", status=response.status_code
            )
        raise ProviderError(PROVIDER, f"HTTP {response.status_code}: {detail}", status=response.status_code)

    def query(self, sql: str, args: Sequence[Any] = ()) -> list[list[Any]]:
        result = self.pipeline([stmt(sql, args, want_rows=True)])[0]
        return [[decode(v) for v in row] for row in result["response"]["result"]["rows"]]

    def close(self) -> None:
        if self.open:
            # The server closes abandoned streams by itself, so a failed close is not an error.
            with contextlib.suppress(ProviderError, ProviderUnavailable, InputError):
                self.pipeline([{"type": "close"}])
        self.open = False
        self.client.close()


class HranaTarget:
    dialect: Dialect = "sqlite"

    def __init__(self, url: str, *, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url, self.token = split_url(url)
        self.description = redact_url(url)
        self.transport = transport
        self.session: HranaSession | None = None
        self.http_requests = 0  # across sessions, for the benchmark

    def _new_session(self) -> HranaSession:
        return HranaSession(self.base_url, self.token, transport=self.transport)

    @property
    def _session(self) -> HranaSession:
        if self.session is None:
            raise RuntimeError("begin() first")
        return self.session

    def is_empty(self) -> bool:
        session = self._new_session()
        try:
            rows = session.query(sqlite_common.USER_OBJECTS)
        finally:
            session.close()
            self.http_requests += session.http_requests
        return not any(kind == "table" for kind, _ in rows)

    def begin(self, *, replace: bool) -> None:
        self.session = self._new_session()
        requests = [stmt("PRAGMA foreign_keys = OFF"), stmt("BEGIN IMMEDIATE")]
        self._session.pipeline(requests)
        if replace:
            objects = self._session.query(sqlite_common.USER_OBJECTS)
            drops = [stmt(sqlite_common.drop_sql(kind, name)) for kind, name in objects]
            if drops:
                self._session.pipeline(drops)

    def execute(self, statements: Sequence[str]) -> None:
        if statements:
            self._session.pipeline([stmt(s) for s in statements])

    def load(self, table: Table, rows: Sequence[Row]) -> None:
        per_statement = max(
            1, min(MAX_ROWS_PER_STATEMENT, sqlite_common.MAX_PARAMETERS // max(1, len(table.columns)))
        )
        for start in range(0, len(rows), ROWS_PER_REQUEST):
            chunk = rows[start : start + ROWS_PER_REQUEST]
            requests = []
            for offset in range(0, len(chunk), per_statement):
                part = chunk[offset : offset + per_statement]
                args = [value for row in part for value in row]
                requests.append(stmt(sqlite_common.insert_sql(table, len(part)), args))
            self._session.pipeline(requests)

    def read(self, table: Table) -> Iterator[Sequence[Row]]:
        last = None
        select = sqlite_common.select_sql(table).replace("SELECT ", "SELECT rowid, ", 1)
        while True:
            where = "" if last is None else " WHERE rowid > ?"
            rows = self._session.query(
                f"{select}{where} ORDER BY rowid LIMIT {READ_PAGE}", [] if last is None else [last]
            )
            if not rows:
                return
            last = rows[-1][0]
            yield [tuple(row[1:]) for row in rows]

    def after_load(self, table: Table) -> None:
        return None

    def foreign_key_violations(self) -> list[tuple[str, int, str]]:
        return [(r[0], r[1], r[2]) for r in self._session.query("PRAGMA foreign_key_check")]

    def record_baseline(self, migration_name: str, checksum: str, run_id: str) -> None:
        now = int(datetime.now(UTC).timestamp() * 1000)
        self._session.pipeline(
            [
                stmt(sqlite_common.PRISMA_MIGRATIONS_DDL),
                stmt(sqlite_common.PRISMA_MIGRATIONS_INSERT, [run_id, checksum, now, migration_name, now]),
            ]
        )

    def committed(self, run_id: str) -> bool:
        """After a commit whose answer was lost: did it happen? The baseline row says."""
        session = self._new_session()
        try:
            rows = session.query("SELECT count(*) FROM sqlite_schema WHERE name = '_prisma_migrations'")
            if not rows or rows[0][0] == 0:
                return False
            return bool(
                session.query(f"SELECT count(*) FROM {quote('_prisma_migrations')} WHERE id = ?", [run_id])[
                    0
                ][0]
            )
        finally:
            session.close()
            self.http_requests += session.http_requests

    def translate_error(self, exc: Exception) -> LaunchdeckError | None:
        return None  # HranaSession maps HTTP and statement errors where they happen

    def commit(self) -> None:
        self._session.pipeline([stmt("COMMIT"), stmt("PRAGMA foreign_keys = ON")])

    def rollback(self) -> None:
        if self.session is not None and self.session.open:
            with contextlib.suppress(ProviderError, ProviderUnavailable, InputError):
                self.session.pipeline([stmt("ROLLBACK")])

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.http_requests += self.session.http_requests
            self.session = None
