"""Neon API v2 emulator, built from ``shared/specs/neon/openAPIDefinition.json``.

Backed by the local PostgreSQL server: creating a project creates a real role (with a password) and a
real database owned by it, so the returned connection URI works; deleting the project drops both.
Names on the server carry the project id (``neon_<project>_<db>``) because every emulated project
shares one server; the API answers with the names the client asked for (see SOURCES.md).
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Fault, Faults, Instrumented, Recorder

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
_WORDS = itertools.cycle(["proud", "quiet", "bold", "shiny", "misty", "young", "dawn", "wild"])
_NOUNS = itertools.cycle(["tree", "snow", "cloud", "river", "field", "stone", "wind"])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class EmulatedProject:
    id: str
    name: str
    region_id: str
    pg_version: int
    database_name: str
    role_name: str
    password: str
    branch_id: str
    endpoint_id: str
    created_at: str = field(default_factory=_now)
    endpoint_state: str = "active"

    @property
    def pg_database(self) -> str:
        return f"neon_{self.id.replace('-', '_')}_{self.database_name}"

    @property
    def pg_role(self) -> str:
        return f"neon_{self.id.replace('-', '_')}_{self.role_name}"


class NeonEmulator:
    def __init__(self, *, api_key: str = "neon-api-key-0123456789", admin_dsn: str = ADMIN_DSN) -> None:
        self.api_key, self.admin_dsn = api_key, admin_dsn
        self.projects: dict[str, EmulatedProject] = {}
        self.creates = 0
        self.faults = Faults()
        self.recorder = Recorder()
        self._lock = threading.Lock()
        self._serial = itertools.count(100000 + secrets.randbelow(800000))
        self.app = Instrumented(self._starlette(), self.faults, self.recorder, fault_answer=_fault_answer)

    # -- PostgreSQL --------------------------------------------------------------------------------
    def _admin(self, *statements: sql.Composed) -> None:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def uri(self, project: EmulatedProject) -> str:
        return (
            f"postgresql://{project.pg_role}:{project.password}@127.0.0.1:5432/"
            f"{project.pg_database}?sslmode=disable"
        )

    def drop_all(self) -> None:
        """Drop every database and role this emulator made; tests call it when they finish."""
        for project in list(self.projects.values()):
            self._drop(project)
        self.projects.clear()

    def _drop(self, project: EmulatedProject) -> None:
        self._admin(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(project.pg_database)),
            sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(project.pg_role)),
        )

    # -- JSON shapes (required fields of the spec's schemas) ------------------------------------------
    def _project_json(self, p: EmulatedProject, *, listing: bool = False) -> dict[str, Any]:
        common = {
            "id": p.id,
            "platform_id": "aws",
            "region_id": p.region_id,
            "name": p.name,
            "pg_version": p.pg_version,
            "proxy_host": "127.0.0.1",
            "branch_logical_size_limit": 512,
            "branch_logical_size_limit_bytes": 536870912,
            "store_passwords": True,
            "cpu_used_sec": 0,
            "provisioner": "k8s-neonvm",
            "creation_source": "console",
            "created_at": p.created_at,
            "updated_at": p.created_at,
            "owner_id": "emulated-owner",
        }
        if listing:
            return {**common, "active_time": 0}
        return {
            **common,
            "consumption_period_start": p.created_at,
            "consumption_period_end": p.created_at,
            "active_time_seconds": 0,
            "compute_time_seconds": 0,
            "written_data_bytes": 0,
            "data_transfer_bytes": 0,
            "data_storage_bytes_hour": 0,
            "history_retention_seconds": 86400,
        }

    def _endpoint_json(self, p: EmulatedProject) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "id": p.endpoint_id,
            "project_id": p.id,
            "branch_id": p.branch_id,
            "region_id": p.region_id,
            "autoscaling_limit_min_cu": 0.25,
            "autoscaling_limit_max_cu": 1,
            "type": "read_write",
            "current_state": p.endpoint_state,
            "pooler_enabled": False,
            "pooler_mode": "transaction",
            "disabled": False,
            "passwordless_access": True,
            "creation_source": "console",
            "created_at": p.created_at,
            "updated_at": _now(),
            "settings": {},
            "proxy_host": "127.0.0.1",
            "suspend_timeout_seconds": 0,
            "provisioner": "k8s-neonvm",
        }

    def _operation(self, p: EmulatedProject, action: str) -> dict[str, Any]:
        return {
            "id": f"{secrets.token_hex(4)}-{secrets.token_hex(2)}-4{secrets.token_hex(2)[1:]}-"
            f"8{secrets.token_hex(2)[1:]}-{secrets.token_hex(6)}",
            "project_id": p.id,
            "branch_id": p.branch_id,
            "endpoint_id": p.endpoint_id,
            "action": action,
            "status": "finished",
            "failures_count": 0,
            "created_at": _now(),
            "updated_at": _now(),
            "total_duration_ms": 1,
        }

    # -- routes --------------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, message: str, code: str = "") -> JSONResponse:
        return JSONResponse({"code": code, "message": message}, status_code=status)

    def _guard(self, request: Request) -> JSONResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return self._error(401, "authentication required", "UNAUTHORIZED")
        return None

    def _project(self, request: Request) -> EmulatedProject | JSONResponse:
        project = self.projects.get(request.path_params["project_id"])
        if project is None:
            return self._error(404, "project not found", "NOT_FOUND")
        return project

    async def list_projects(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        search = request.query_params.get("search", "")
        limit = int(request.query_params.get("limit", "10"))
        found = [p for p in self.projects.values() if search in p.name or search in p.id][:limit]
        return JSONResponse(
            {
                "projects": [self._project_json(p, listing=True) for p in found],
                "applications": {},
                "integrations": {},
            }
        )

    async def create_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        spec = (await request.json()).get("project", {})
        branch = spec.get("branch") or {}
        database_name = branch.get("database_name", "neondb")
        role_name = branch.get("role_name", f"{database_name}_owner")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,40}", database_name + role_name):
            return self._error(400, "database_name and role_name must be simple identifiers", "BAD_REQUEST")
        serial = next(self._serial)
        project = EmulatedProject(
            id=f"{next(_WORDS)}-{next(_NOUNS)}-{serial}",
            name=spec.get("name") or f"project-{serial}",
            region_id=spec.get("region_id", "aws-us-east-2"),
            pg_version=int(spec.get("pg_version", 17)),
            database_name=database_name,
            role_name=role_name,
            password=secrets.token_urlsafe(18),
            branch_id=f"br-{next(_WORDS)}-{serial}",
            endpoint_id=f"ep-{next(_NOUNS)}-{serial}",
        )
        await anyio.to_thread.run_sync(self._create_on_server, project)
        with self._lock:
            self.projects[project.id] = project
            self.creates += 1
        uri = self.uri(project)
        body = {
            "project": self._project_json(project),
            "connection_uris": [
                {
                    "connection_uri": uri,
                    "connection_parameters": {
                        "database": project.pg_database,
                        "password": project.password,
                        "role": project.pg_role,
                        "host": "127.0.0.1",
                        "pooler_host": "127.0.0.1",
                    },
                }
            ],
            "roles": [
                {
                    "branch_id": project.branch_id,
                    "name": role_name,
                    "password": project.password,
                    "protected": False,
                    "created_at": project.created_at,
                    "updated_at": project.created_at,
                }
            ],
            "databases": [
                {
                    "id": serial,
                    "branch_id": project.branch_id,
                    "name": database_name,
                    "owner_name": role_name,
                    "created_at": project.created_at,
                    "updated_at": project.created_at,
                }
            ],
            "operations": [
                self._operation(project, "create_timeline"),
                self._operation(project, "start_compute"),
            ],
            "branch": {
                "id": project.branch_id,
                "project_id": project.id,
                "name": branch.get("name", "main"),
                "current_state": "ready",
                "state_changed_at": project.created_at,
                "creation_source": "console",
                "created_at": project.created_at,
                "updated_at": project.created_at,
                "default": True,
                "protected": False,
                "cpu_used_sec": 0,
                "active_time_seconds": 0,
                "compute_time_seconds": 0,
                "written_data_bytes": 0,
                "data_transfer_bytes": 0,
            },
            "endpoints": [self._endpoint_json(project)],
        }
        return JSONResponse(body, status_code=201)

    def _create_on_server(self, project: EmulatedProject) -> None:
        role, database = sql.Identifier(project.pg_role), sql.Identifier(project.pg_database)
        self._admin(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(project.password)),
            sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role),
        )

    async def get_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, JSONResponse):
            return project
        return JSONResponse({"project": self._project_json(project)})

    async def delete_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, JSONResponse):
            return project
        await anyio.to_thread.run_sync(self._drop, project)
        self.projects.pop(project.id, None)
        return JSONResponse({"project": self._project_json(project)})

    async def connection_uri(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, JSONResponse):
            return project
        q = request.query_params
        if q.get("database_name") != project.database_name or q.get("role_name") != project.role_name:
            return self._error(404, "database or role not found", "NOT_FOUND")
        return JSONResponse({"uri": self.uri(project)})

    async def list_endpoints(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, JSONResponse):
            return project
        return JSONResponse({"endpoints": [self._endpoint_json(project)]})

    async def endpoint_action(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, JSONResponse):
            return project
        if request.path_params["endpoint_id"] != project.endpoint_id:
            return self._error(404, "endpoint not found", "NOT_FOUND")
        action = request.path_params["action"]
        if action == "suspend":
            project.endpoint_state = "idle"
            # A suspended compute drops its connections.
            await anyio.to_thread.run_sync(self._terminate, project)
        else:
            project.endpoint_state = "active"
        op = self._operation(project, "suspend_compute" if action == "suspend" else "start_compute")
        return JSONResponse({"endpoint": self._endpoint_json(project), "operations": [op]})

    def _terminate(self, project: EmulatedProject) -> None:
        self._admin(
            sql.SQL("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {}").format(
                sql.Literal(project.pg_database)
            )
        )

    async def consumption(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        ids = ",".join(request.query_params.getlist("project_ids")).split(",")
        start, end = request.query_params["from"], request.query_params["to"]
        wanted = [self.projects[pid] for pid in ids if pid in self.projects]
        sizes = await anyio.to_thread.run_sync(self._sizes, wanted)
        projects = [
            {
                "project_id": p.id,
                "periods": [
                    {
                        "period_id": str(uuid.uuid5(uuid.NAMESPACE_URL, p.id)),
                        "period_plan": "scale",
                        "period_start": start,
                        "consumption": [
                            {
                                "timeframe_start": start,
                                "timeframe_end": end,
                                "active_time_seconds": 0,
                                "compute_time_seconds": 0,
                                "written_data_bytes": 0,
                                "synthetic_storage_size_bytes": sizes[p.id],
                            }
                        ],
                    }
                ],
            }
            for p in wanted
        ]
        return JSONResponse({"projects": projects})

    def _sizes(self, projects: list[EmulatedProject]) -> dict[str, int]:
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            sizes: dict[str, int] = {}
            for p in projects:
                row = conn.execute("SELECT pg_database_size(%s)", [p.pg_database]).fetchone()
                sizes[p.id] = int(row[0]) if row else 0
            return sizes

    def _starlette(self) -> Starlette:
        p = "/api/v2/projects/{project_id}"
        return Starlette(
            routes=[
                Route("/api/v2/projects", self.list_projects, methods=["GET"]),
                Route("/api/v2/projects", self.create_project, methods=["POST"]),
                Route(p, self.get_project, methods=["GET"]),
                Route(p, self.delete_project, methods=["DELETE"]),
                Route(f"{p}/connection_uri", self.connection_uri, methods=["GET"]),
                Route(f"{p}/endpoints", self.list_endpoints, methods=["GET"]),
                Route(
                    f"{p}/endpoints/{{endpoint_id}}/{{action:str}}", self.endpoint_action, methods=["POST"]
                ),
                Route("/api/v2/consumption_history/projects", self.consumption, methods=["GET"]),
            ]
        )


def _fault_answer(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
    """Neon's error body is ``GeneralError`` {code, message}; 423 is "operations in progress"."""
    default = (
        "project already has running operations, scheduling of new ones is prohibited"
        if fault.status == 423
        else f"injected fault {fault.status}"
    )
    body = fault.body if fault.body is not None else {"code": "", "message": default}
    return fault.status or 500, json.dumps(body).encode(), {"content-type": "application/json"}
