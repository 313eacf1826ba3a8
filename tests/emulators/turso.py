"""Turso Platform API emulator, built from ``shared/specs/turso/openapi.json`` and ``upload.mdx``.

Databases are real SQLite files (WAL, 4096-byte pages, as Turso's upload requirements say) under
``root``. Each database is reachable at ``http://127.0.0.1:<port>/_db/<name>-<org>``: its ``Hostname``
is that host and path, because ``*.turso.io`` style host names do not resolve here (see SOURCES.md).
``POST <hostname>/v1/upload`` replaces the file; Hrana requests under the same prefix are passed to
the shared Hrana test server (``tests/servers/hrana.py``) when it is present.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Faults, Instrumented, Recorder

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass
class EmulatedDatabase:
    name: str
    group: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    config: dict[str, Any] = field(
        default_factory=lambda: {
            "size_limit": "0",
            "block_reads": False,
            "block_writes": False,
            "delete_protection": False,
            "allowed_ips": [],
            "allowed_aws_vpc_ids": [],
        }
    )
    tokens: set[str] = field(default_factory=set)


class TursoEmulator:
    def __init__(
        self, root: Path, *, org: str = "acme", api_token: str = "turso-api-token-0123456789"
    ) -> None:
        self.root, self.org, self.api_token = root, org, api_token
        root.mkdir(parents=True, exist_ok=True)
        self.groups: dict[str, str] = {}  # name -> location
        self.databases: dict[str, EmulatedDatabase] = {}
        self.creates = 0
        self.faults = Faults()
        self.recorder = Recorder()
        self._lock = threading.Lock()
        self.app = Instrumented(self._starlette(), self.faults, self.recorder)

    def close(self) -> None:
        """Release the SQLite files the Hrana server holds open."""
        app = getattr(self, "_hrana_app", None)
        if app is not None:
            app.state.streams.close_all()

    # -- helpers ---------------------------------------------------------------------------------
    def path_of(self, name: str) -> Path:
        return self.root / f"{name}.db"

    def resolve(self, db_host_name: str) -> Path:
        """``<name>-<org>`` to its SQLite file; for the Hrana server."""
        name = db_host_name.removesuffix(f"-{self.org}")
        if name not in self.databases:
            raise KeyError(db_host_name)
        return self.path_of(name)

    def _hostname(self, request: Request, name: str) -> str:
        return f"{request.url.netloc}/_db/{name}-{self.org}"

    def _db_json(self, request: Request, db: EmulatedDatabase) -> dict[str, Any]:
        return {
            "Name": db.name,
            "DbId": db.id,
            "Hostname": self._hostname(request, db.name),
            "block_reads": db.config["block_reads"],
            "block_writes": db.config["block_writes"],
            "regions": [self.groups.get(db.group, "aws-us-east-1")],
            "primaryRegion": self.groups.get(db.group, "aws-us-east-1"),
            "group": db.group,
            "delete_protection": db.config["delete_protection"],
            "parent": None,
        }

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.api_token}"

    @staticmethod
    def _error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def _guard(self, request: Request) -> JSONResponse | None:
        if not self._authorized(request):
            return self._error(401, "Unauthorized: invalid or expired auth token")
        if request.path_params.get("org", self.org) != self.org:
            return self._error(403, "Forbidden: you do not have access to this organization")
        return None

    def _find(self, request: Request) -> EmulatedDatabase | JSONResponse:
        name = request.path_params["name"]
        db = self.databases.get(name)
        if db is None:
            return self._error(404, f"could not find database with name {name}: record not found")
        return db

    # -- routes ----------------------------------------------------------------------------------
    async def list_databases(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return JSONResponse({"databases": [self._db_json(request, d) for d in self.databases.values()]})

    async def create_database(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        name, group = body.get("name", ""), body.get("group", "")
        if not name or not all(c.islower() or c.isdigit() or c == "-" for c in name) or len(name) > 64:
            return self._error(400, "invalid database name: use lowercase letters, numbers and dashes")
        if group not in self.groups:
            return self._error(400, "group not found")
        with self._lock:
            if name in self.databases:
                return self._error(409, f"database with name {name} already exists")
            db = EmulatedDatabase(name=name, group=group)
            _new_sqlite(self.path_of(name))
            self.databases[name] = db
            self.creates += 1
        return JSONResponse(
            {"database": {"DbId": db.id, "Hostname": self._hostname(request, name), "Name": name}}
        )

    async def get_database(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        db = self._find(request)
        if isinstance(db, JSONResponse):
            return db
        return JSONResponse({"database": self._db_json(request, db)})

    async def delete_database(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        db = self._find(request)
        if isinstance(db, JSONResponse):
            return db
        if db.config["delete_protection"]:
            return self._error(400, "database is delete protected")
        with self._lock:
            self.databases.pop(db.name, None)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.path_of(db.name)}{suffix}").unlink(missing_ok=True)
        return JSONResponse({"database": db.name})

    async def configuration(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        db = self._find(request)
        if isinstance(db, JSONResponse):
            return db
        if request.method == "PATCH":
            changes = await request.json()
            unknown = set(changes) - set(db.config) - {"allow_attach"}
            if unknown:
                return self._error(400, f"unknown configuration fields: {sorted(unknown)}")
            db.config.update({k: v for k, v in changes.items() if k in db.config})
        return JSONResponse(db.config)

    async def create_token(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        db = self._find(request)
        if isinstance(db, JSONResponse):
            return db
        if request.query_params.get("authorization", "full-access") not in ("full-access", "read-only"):
            return self._error(400, "invalid authorization: full-access or read-only")
        token = "eyJ" + secrets.token_urlsafe(24)
        db.tokens.add(token)
        return JSONResponse({"jwt": token})

    async def usage(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        db = self._find(request)
        if isinstance(db, JSONResponse):
            return db
        size = self.path_of(db.name).stat().st_size
        usage = {"rows_read": 0, "rows_written": 0, "storage_bytes": size, "bytes_synced": 0}
        return JSONResponse({"database": {"uuid": db.id, "instances": [], "usage": usage}})

    async def get_group(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        name = request.path_params["group"]
        if name not in self.groups:
            return self._error(404, "group not found")
        return JSONResponse({"group": self._group_json(name)})

    async def create_group(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        if body.get("name") in self.groups:
            return self._error(409, "group already exists")
        self.groups[body["name"]] = body["location"]
        return JSONResponse({"group": self._group_json(body["name"])})

    def _group_json(self, name: str) -> dict[str, Any]:
        location = self.groups[name]
        return {
            "name": name,
            "version": "v0.24.0",
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_DNS, name)),
            "locations": [location],
            "primary": location,
            "delete_protection": False,
        }

    async def database_host(self, request: Request) -> Response:
        """Requests to a database's own host: ``/v1/upload`` here, the rest to the Hrana server."""
        host_name, rest = request.path_params["db"], request.path_params["rest"]
        try:
            path = self.resolve(host_name)
        except KeyError:
            return self._error(404, "database not found")
        db = self.databases[host_name.removesuffix(f"-{self.org}")]
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in db.tokens:
            return self._error(401, "Invalid or missing authorization token")
        if rest == "v1/upload" and request.method == "POST":
            data = await request.body()
            problem = _check_upload(data, request.headers.get("content-length"))
            if problem:
                return self._error(400, problem)
            tmp = path.with_suffix(".upload")
            tmp.write_bytes(data)
            for suffix in ("-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            tmp.replace(path)
            return Response(status_code=200)
        if db.config["block_reads"]:
            return self._error(403, "reads are blocked for this database")
        return await self._hrana(request, host_name, rest)

    async def _hrana(self, request: Request, host_name: str, rest: str) -> Response:
        try:
            from tests.servers import hrana
        except ImportError:
            return self._error(501, "the Hrana test server (tests/servers/hrana.py) is not available")
        if not hasattr(self, "_hrana_app"):
            self._hrana_app = hrana.create_app(self.resolve)  # tokens are checked in database_host
        scope = dict(request.scope)
        scope["path"] = "/" + rest
        scope["raw_path"] = scope["path"].encode()
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"] + [
            (b"host", host_name.encode())
        ]
        sent: list[Any] = []

        async def send(message: Any) -> None:
            sent.append(message)

        await self._hrana_app(scope, request.receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
        headers.pop("content-length", None)
        return Response(body, status_code=start["status"], headers=headers)

    def _starlette(self) -> Starlette:
        org = "/v1/organizations/{org}"
        return Starlette(
            routes=[
                Route(f"{org}/databases", self.list_databases, methods=["GET"]),
                Route(f"{org}/databases", self.create_database, methods=["POST"]),
                Route(f"{org}/databases/{{name}}", self.get_database, methods=["GET"]),
                Route(f"{org}/databases/{{name}}", self.delete_database, methods=["DELETE"]),
                Route(
                    f"{org}/databases/{{name}}/configuration", self.configuration, methods=["GET", "PATCH"]
                ),
                Route(f"{org}/databases/{{name}}/auth/tokens", self.create_token, methods=["POST"]),
                Route(f"{org}/databases/{{name}}/usage", self.usage, methods=["GET"]),
                Route(f"{org}/groups/{{group}}", self.get_group, methods=["GET"]),
                Route(f"{org}/groups", self.create_group, methods=["POST"]),
                Route("/_db/{db}/{rest:path}", self.database_host, methods=["GET", "POST"]),
            ]
        )


def _new_sqlite(path: Path) -> None:
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS _turso_emulator (created INTEGER)")
        conn.execute("DROP TABLE _turso_emulator")
    conn.close()


def _check_upload(data: bytes, content_length: str | None) -> str | None:
    """The requirements listed in ``upload.mdx``; the message says what is wrong."""
    if content_length is None:
        return "Content-Length header is required"
    if not data.startswith(SQLITE_HEADER) or len(data) < 100:
        return "invalid database file: not a SQLite database"
    page_size = int.from_bytes(data[16:18], "big")
    if page_size != 4096:
        return f"invalid database file: page size must be 4096, got {page_size}"
    if data[18] != 2 or data[19] != 2:
        return "invalid database file: journal mode must be WAL"
    if int.from_bytes(data[52:56], "big") != 0:
        return "invalid database file: auto_vacuum must be disabled"
    if int.from_bytes(data[56:60], "big") not in (0, 1):
        return "invalid database file: encoding must be UTF-8"
    return None
