"""Cloudflare Pages emulator: the v4 API under ``/client/v4`` plus every deployment served at its own URL.

Projects, deployments, rollback and domains follow ``shared/specs/cloudflare/openapi.pages.json``; the
upload token and ``/pages/assets/*`` follow the SDK endpoint list and wrangler (UPLOAD_NOTES.md). Files
are stored by hash; creating a deployment checks that each manifest hash was uploaded and matches
the file's path (BLAKE3 of base64 content plus extension), so a client that hashes wrongly fails here
as it would at Cloudflare. A deployment is served at ``http://<short_id>.<project>.pages.localhost:<port>/``
and production at ``http://<project>.pages.localhost:<port>/`` (``*.pages.dev`` does not resolve here;
connect to 127.0.0.1 and send the Host header). The 1,200 requests / 5 minutes limit is enforced.

Workers (``WorkersApi`` below): scripts, versions, deployments, asset upload sessions, workers.dev and
custom domains, as SOURCES.md lists. Every version runs for real on workerd (``wrangler dev --local`` from
``tests/emulators/node``), started on its first request: production at
``http://<script>.<subdomain>.workers.localhost:<port>/``, a version at
``http://<first 8 of its id>-<script>.<subdomain>.workers.localhost:<port>/``. Call ``close()``.
``POST /client/v4/graphql`` answers ``workersInvocationsAdaptive`` from the invocations the emulator proxied.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import re
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import psutil
from blake3 import blake3
from graphql import FieldNode, GraphQLError, GraphQLResolveInfo, build_schema, graphql_sync
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import (
    AppServer,
    Fault,
    Faults,
    Instrumented,
    Recorder,
    Scope,
    SlidingWindow,
    forward,
)

API = "/client/v4"
INTERNAL = "/__emulator/"  # what the shims of a dispatch Worker call back (never part of Cloudflare's API)
Info = GraphQLResolveInfo[Any]
WORKER_HOST = re.compile(r"^(?P<label>[a-z0-9-]+)\.(?P<subdomain>[a-z0-9-]+)\.workers\.localhost(?::\d+)?$")
SITE_HOST = re.compile(r"^(?:(?P<short>[0-9a-f]{8})\.)?(?P<project>[a-z0-9-]+)\.pages\.localhost(?::\d+)?$")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class EmulatedDeployment:
    id: str
    short_id: str
    project: str
    manifest: dict[str, str]
    url: str
    environment: str
    env_var_names: list[str]
    branch: str
    created_on: str = field(default_factory=_now)
    status: str = "active"
    polls: int = 0
    special_files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class EmulatedProject:
    name: str
    production_branch: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_on: str = field(default_factory=_now)
    env_vars: dict[str, dict[str, str]] = field(default_factory=dict)
    deployments: dict[str, EmulatedDeployment] = field(default_factory=dict)
    canonical: str | None = None
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)


class CloudflareEmulator:
    def __init__(
        self,
        *,
        account_id: str = "0123456789abcdef0123456789abcdef",
        api_token: str = "cf-api-token-0123456789abcdef",
        rate_limit: int = 1200,
        rate_period: float = 300.0,
        token_ttl: float = 300.0,
        max_file_count: int = 20000,
        polls_to_finish: int = 1,
        workers_subdomain: str = "launchdeck",
        zones: tuple[str, ...] = ("example.com",),
        work_dir: Path | None = None,
        max_scripts: int = 500,
    ) -> None:
        self.account_id, self.api_token = account_id, api_token
        self.token_ttl, self.max_file_count, self.polls_to_finish = token_ttl, max_file_count, polls_to_finish
        self.projects: dict[str, EmulatedProject] = {}
        self.blobs: dict[str, tuple[bytes, str]] = {}  # hash -> (content, content type)
        self.uploads = 0  # files received by /pages/assets/upload
        self.upserted: set[str] = set()
        self.fail_next_deployment = False
        self.window = SlidingWindow(rate_limit, rate_period)
        self.faults = Faults()
        self.recorder = Recorder(limit=100000)
        self._signing_key = secrets.token_bytes(32)
        self._revoked_before = 0.0
        self._lock = threading.Lock()
        self.workers = WorkersApi(self, workers_subdomain, zones, work_dir, max_scripts)
        self._api = self._starlette()
        self.app = Instrumented(
            self._dispatch, self.faults, self.recorder, fault_answer=_fault_answer, record_prefix=API
        )

    # -- test controls ----------------------------------------------------------------------------
    def expire_upload_tokens(self) -> None:
        """Every upload JWT issued so far (Pages and Workers) is now refused, as an expired one is."""
        self._revoked_before = time.time() + 0.001

    def close(self) -> None:
        """Stop every Worker version running on workerd (their whole process groups)."""
        self.workers.close()

    # -- ASGI entry: a deployment's own host, or the API ----------------------------------------------
    async def _dispatch(self, scope: Scope, receive: Any, send: Any) -> None:
        host = dict(scope.get("headers", [])).get(b"host", b"").decode()
        site = SITE_HOST.match(host)
        worker = WORKER_HOST.match(host)
        if worker and scope["type"] == "http":
            await self.workers.serve(worker["label"], worker["subdomain"], scope, receive, send)
            return
        if scope["type"] == "http" and scope["path"].startswith(INTERNAL):
            await self.workers.platforms.internal(scope, receive, send)
            return
        routed = self.workers.platforms.routed_script(host) if scope["type"] == "http" else None
        if routed is not None:
            await self.workers.serve_script(routed, scope, receive, send)
            return
        if site and scope["type"] == "http":
            response = self._serve_site(site["project"], site["short"], scope["path"])
        elif scope["type"] == "http" and scope["path"].startswith(API):
            wait = self.window.admit()
            if wait is None:
                await self._api(scope, receive, send)
                return
            response = _envelope_error(
                429,
                971,
                "Please wait and consider throttling your request speed",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        else:
            response = Response("not found", status_code=404)
        await response(scope, receive, send)

    def _serve_site(self, project_name: str, short: str | None, path: str) -> Response:
        project = self.projects.get(project_name)
        if project is None:
            return Response("project not found", status_code=404)
        if short:
            deployment = next((d for d in project.deployments.values() if d.short_id == short), None)
        else:
            deployment = project.deployments.get(project.canonical or "")
        if deployment is None or deployment.status != "success":
            return Response("deployment not found", status_code=404)
        candidates = (
            [path, f"{path.rstrip('/')}/index.html", f"{path}.html"] if path != "/" else ["/index.html"]
        )
        for candidate in candidates:
            digest = deployment.manifest.get(candidate)
            if digest is not None:
                content, content_type = self.blobs[digest]
                return Response(content, media_type=content_type)
        missing = deployment.manifest.get("/404.html")
        return Response(
            self.blobs[missing][0] if missing else b"not found", status_code=404, media_type="text/html"
        )

    # -- helpers ------------------------------------------------------------------------------------
    def _guard(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.api_token}":
            return _envelope_error(403, 10000, "Authentication error")
        if request.path_params.get("account_id") != self.account_id:
            return _envelope_error(403, 9109, "Unauthorized to access requested resource")
        return None

    def _project(self, request: Request) -> EmulatedProject | Response:
        project = self.projects.get(request.path_params["project_name"])
        if project is None:
            return _envelope_error(
                404,
                8000007,
                "Project not found. The specified project name does not match any of your existing projects.",
            )
        return project

    def _deployment_json(self, d: EmulatedDeployment) -> dict[str, Any]:
        stage = {
            "name": "deploy",
            "status": d.status,
            "started_on": d.created_on,
            "ended_on": _now() if d.status != "active" else None,
        }
        return {
            "id": d.id,
            "short_id": d.short_id,
            "project_id": self.projects[d.project].id,
            "project_name": d.project,
            "environment": d.environment,
            "url": d.url,
            "created_on": d.created_on,
            "modified_on": _now(),
            "aliases": None,
            "latest_stage": stage,
            "stages": [
                {"name": "queued", "status": "success", "started_on": d.created_on, "ended_on": d.created_on},
                stage,
            ],
            "deployment_trigger": {
                "type": "ad_hoc",
                "metadata": {"branch": d.branch, "commit_hash": "", "commit_message": ""},
            },
            "env_vars": {k: {"type": "secret_text"} for k in d.env_var_names},
            "is_skipped": False,
            "production_branch": self.projects[d.project].production_branch,
        }

    def _project_json(self, p: EmulatedProject) -> dict[str, Any]:
        canonical = p.deployments.get(p.canonical or "")
        latest = max(p.deployments.values(), key=lambda d: d.created_on, default=None)
        return {
            "id": p.id,
            "name": p.name,
            "subdomain": f"{p.name}.pages.dev",
            "domains": list(p.domains),
            "production_branch": p.production_branch,
            "created_on": p.created_on,
            "deployment_configs": {
                "production": {"env_vars": {k: {"type": v["type"]} for k, v in p.env_vars.items()}},
                "preview": {"env_vars": {}},
            },
            "canonical_deployment": self._deployment_json(canonical) if canonical else None,
            "latest_deployment": self._deployment_json(latest) if latest else None,
            "build_config": {},
            "source": None,
        }

    # -- projects -----------------------------------------------------------------------------------
    async def create_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        name = body.get("name", "")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,57}", name):
            return _envelope_error(
                400,
                8000016,
                "Project name must be lowercase letters, numbers and dashes, at most 58 characters",
            )
        with self._lock:
            if name in self.projects:
                return _envelope_error(
                    409, 8000002, "A project with this name already exists. Choose a different project name."
                )
            self.projects[name] = EmulatedProject(name, body.get("production_branch", "main"))
        return _ok(self._project_json(self.projects[name]))

    async def get_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        return project if isinstance(project, Response) else _ok(self._project_json(project))

    async def patch_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        body = await request.json()
        production = (body.get("deployment_configs") or {}).get("production") or {}
        for key, value in (production.get("env_vars") or {}).items():
            if value is None:
                project.env_vars.pop(key, None)
            elif value.get("type", "plain_text") not in ("plain_text", "secret_text"):
                return _envelope_error(400, 8000000, f"env var {key}: type must be plain_text or secret_text")
            else:
                project.env_vars[key] = {"type": value.get("type", "plain_text"), "value": value["value"]}
        return _ok(self._project_json(project))

    async def delete_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        self.projects.pop(project.name, None)
        return _ok(None)

    async def upload_token(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        now = time.time()
        token = jwt.encode(
            {
                "sub": project.id,
                "account": self.account_id,
                "project": project.name,
                "iat": now,
                "exp": now + self.token_ttl,
                "max_file_count_allowed": self.max_file_count,
            },
            self._signing_key,
            "HS256",
        )
        return _ok({"jwt": token})

    # -- assets ---------------------------------------------------------------------------------------
    def _asset_auth(self, request: Request) -> Response | None:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            claims = jwt.decode(token, self._signing_key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return _envelope_error(401, 8000013, "Authorization failed")
        if claims["iat"] < self._revoked_before:
            return _envelope_error(401, 8000013, "Authorization failed")
        return None

    async def check_missing(self, request: Request) -> Response:
        if (denied := self._asset_auth(request)) is not None:
            return denied
        hashes = (await request.json())["hashes"]
        return _ok([h for h in hashes if h not in self.blobs])

    async def upload(self, request: Request) -> Response:
        if (denied := self._asset_auth(request)) is not None:
            return denied
        items = await request.json()
        if not isinstance(items, list):
            return _envelope_error(400, 8000096, "upload body must be a JSON array")
        for item in items:
            if not re.fullmatch(r"[0-9a-f]{32}", item.get("key", "")) or item.get("base64") is not True:
                return _envelope_error(400, 8000096, "each upload needs a 32-hex key and base64: true")
            content = base64.b64decode(item["value"], validate=True)
            self.blobs[item["key"]] = (
                content,
                item.get("metadata", {}).get("contentType", "application/octet-stream"),
            )
        self.uploads += len(items)
        return _ok(None)

    async def upsert_hashes(self, request: Request) -> Response:
        if (denied := self._asset_auth(request)) is not None:
            return denied
        self.upserted.update((await request.json())["hashes"])
        return _ok(None)

    # -- deployments --------------------------------------------------------------------------------
    async def create_deployment(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        async with request.form(max_part_size=64 * 1024 * 1024) as form:
            manifest = json.loads(str(form.get("manifest", "{}")))
            branch = str(form.get("branch") or project.production_branch)
            special: dict[str, bytes] = {}
            for name in ("_headers", "_redirects", "_routes.json"):
                part = form.get(name)
                if part is not None and not isinstance(part, str):
                    special[name] = await part.read()
        for path, digest in manifest.items():
            if digest not in self.blobs:
                return _envelope_error(400, 8000096, f"asset {path} ({digest}) was not uploaded")
            content = self.blobs[digest][0]
            extension = path.rsplit("/", 1)[-1].rpartition(".")[2] if "." in path.rsplit("/", 1)[-1] else ""
            expected = blake3(base64.b64encode(content) + extension.encode()).hexdigest()[:32]
            if expected != digest:
                return _envelope_error(400, 8000096, f"hash of {path} does not match its content")
        # The spec's identifier is at most 32 characters; the short id is its first 8 (as at Cloudflare).
        deployment_id = uuid.uuid4().hex
        short = deployment_id[:8]
        host = request.headers.get("host", "127.0.0.1")
        port = host.rsplit(":", 1)[1] if ":" in host else "80"
        deployment = EmulatedDeployment(
            id=deployment_id,
            short_id=short,
            project=project.name,
            manifest=manifest,
            url=f"http://{short}.{project.name}.pages.localhost:{port}",
            environment="production" if branch == project.production_branch else "preview",
            env_var_names=sorted(project.env_vars),
            branch=branch,
            special_files=special,
        )
        project.deployments[deployment.id] = deployment
        return _ok(self._deployment_json(deployment))

    async def list_deployments(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        page, per_page = (
            int(request.query_params.get("page", 1)),
            int(request.query_params.get("per_page", 25)),
        )
        items = sorted(project.deployments.values(), key=lambda d: d.created_on, reverse=True)
        chunk = items[(page - 1) * per_page : page * per_page]
        body = {
            "success": True,
            "errors": [],
            "messages": [],
            "result": [self._deployment_json(d) for d in chunk],
            "result_info": {
                "page": page,
                "per_page": per_page,
                "count": len(chunk),
                "total_count": len(items),
                "total_pages": max(1, math.ceil(len(items) / per_page)),
            },
        }
        return JSONResponse(body)

    async def get_deployment(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        deployment = project.deployments.get(request.path_params["deployment_id"])
        if deployment is None:
            return _envelope_error(404, 8000009, "The deployment ID you have specified does not exist.")
        if deployment.status == "active":
            deployment.polls += 1
            if deployment.polls >= self.polls_to_finish:
                if self.fail_next_deployment:
                    self.fail_next_deployment = False
                    deployment.status = "failure"
                else:
                    deployment.status = "success"
                    if deployment.environment == "production":
                        project.canonical = deployment.id
        return _ok(self._deployment_json(deployment))

    async def rollback(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        deployment = project.deployments.get(request.path_params["deployment_id"])
        if deployment is None:
            return _envelope_error(404, 8000009, "The deployment ID you have specified does not exist.")
        if deployment.status != "success" or deployment.environment != "production":
            return _envelope_error(
                400, 8000022, "Only successful production deployments can be rolled back to."
            )
        project.canonical = deployment.id
        return _ok(self._deployment_json(deployment))

    # -- domains ------------------------------------------------------------------------------------
    async def add_domain(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        name = (await request.json()).get("name", "")
        if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}", name):
            return _envelope_error(400, 8000018, f"{name!r} is not a valid domain name")
        if name in project.domains:
            return _envelope_error(409, 8000018, "You have already added this custom domain.")
        project.domains[name] = {
            "id": str(uuid.uuid4()),
            "name": name,
            "status": "pending",
            "created_on": _now(),
            "certificate_authority": "google",
            "zone_tag": secrets.token_hex(16),
            "polls": 0,
            "verification_data": {"status": "pending"},
            "validation_data": {"status": "pending", "method": "http"},
        }
        return _ok(_domain_json(project.domains[name]))

    async def get_domain(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        domain = project.domains.get(request.path_params["domain_name"])
        if domain is None:
            return _envelope_error(404, 8000015, "Domain not found")
        domain["polls"] += 1
        if domain["polls"] >= self.polls_to_finish:
            domain.update(
                status="active",
                verification_data={"status": "active"},
                validation_data={"status": "active", "method": "http"},
            )
        return _ok(_domain_json(domain))

    def _starlette(self) -> Starlette:
        p = API + "/accounts/{account_id}/pages/projects"
        one = p + "/{project_name}"
        return Starlette(
            routes=[
                Route(p, self.create_project, methods=["POST"]),
                Route(one, self.get_project, methods=["GET"]),
                Route(one, self.patch_project, methods=["PATCH"]),
                Route(one, self.delete_project, methods=["DELETE"]),
                Route(one + "/upload-token", self.upload_token, methods=["GET"]),
                Route(one + "/deployments", self.create_deployment, methods=["POST"]),
                Route(one + "/deployments", self.list_deployments, methods=["GET"]),
                Route(one + "/deployments/{deployment_id}", self.get_deployment, methods=["GET"]),
                Route(one + "/deployments/{deployment_id}/rollback", self.rollback, methods=["POST"]),
                Route(one + "/domains", self.add_domain, methods=["POST"]),
                Route(one + "/domains/{domain_name}", self.get_domain, methods=["GET"]),
                Route(API + "/pages/assets/check-missing", self.check_missing, methods=["POST"]),
                Route(API + "/pages/assets/upload", self.upload, methods=["POST"]),
                Route(API + "/pages/assets/upsert-hashes", self.upsert_hashes, methods=["POST"]),
                *self.workers.routes(),
            ]
        )


def _domain_json(domain: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in domain.items() if k != "polls"}


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"success": True, "errors": [], "messages": [], "result": result})


def _envelope_error(
    status: int, code: int, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None},
        status_code=status,
        headers=headers,
    )


def _fault_answer(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
    status = fault.status or 500
    body = fault.body or {
        "success": False,
        "errors": [{"code": 8000000 if status >= 500 else 971, "message": f"injected fault {status}"}],
        "messages": [],
        "result": None,
    }
    return status, json.dumps(body).encode(), {"content-type": "application/json"}


# -- Workers --------------------------------------------------------------------------------------------
WRANGLER = Path(__file__).parent / "node" / "node_modules" / ".bin" / "wrangler"
WORKERD_DATE = "2026-04-26"  # the runtime wrangler 4.86 ships (workerd 1.20260426.1): no newer date runs
SCRIPT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
BUCKET_FILES = 50  # files per upload bucket (Cloudflare chooses; the docs give no number)
BINDING_TYPES = ("secret_text", "plain_text", "assets", "dispatch_namespace", "kv_namespace")
TOO_MANY_WORKERS = 10037  # chosen here: the code Cloudflare answers at the Workers cap is not documented


@dataclass
class EmulatedVersion:
    id: str
    number: int
    metadata: dict[str, Any]  # as uploaded (secret texts stay here, never in an answer)
    modules: dict[str, tuple[bytes, str]]  # name -> (content, content type)
    manifest: dict[str, str]  # asset path -> hash
    created_on: str = field(default_factory=_now)
    server: AppServer | None = None
    cpu_seen: float | None = None  # workerd's CPU seconds when its last request was answered
    answered: int = 0  # requests answered since its workerd started

    def secrets(self) -> dict[str, str]:
        return {b["name"]: b["text"] for b in self.metadata.get("bindings", []) if b["type"] == "secret_text"}


@dataclass
class EmulatedScript:
    name: str
    created_on: str = field(default_factory=_now)
    versions: dict[str, EmulatedVersion] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)  # newest first
    workers_dev: bool = False
    previews: bool = False

    def live(self) -> EmulatedVersion | None:
        if not self.deployments:
            return None
        top = max(self.deployments[0]["versions"], key=lambda v: v["percentage"])
        return self.versions[top["version_id"]]


@dataclass
class UploadSession:
    id: str
    manifest: dict[str, dict[str, Any]]  # path -> {hash, size}
    missing: set[str]
    refused: bool = False  # its upload JWT is refused, as an expired one is


class WorkersApi:
    """Workers scripts, versions, deployments, asset upload sessions, workers.dev and custom domains.

    Each version runs on workerd (``wrangler dev --local``) when first requested: production at
    ``http://<script>.<subdomain>.workers.localhost:<port>/``, a version at
    ``http://<first 8 of its id>-<script>.<subdomain>.workers.localhost:<port>/``.
    """

    def __init__(
        self,
        cf: CloudflareEmulator,
        subdomain: str,
        zones: tuple[str, ...],
        work_dir: Path | None,
        max_scripts: int = 500,
    ):
        from tests.emulators.cloudflare_platforms import PlatformsApi

        self.cf, self.subdomain = cf, subdomain
        self.zones = {name: uuid.uuid4().hex for name in zones}
        self.scripts: dict[str, EmulatedScript] = {}
        self.max_scripts = max_scripts  # Workers per account: 500 on Workers Paid, 100 on Free (limits page)
        self.assets: dict[str, tuple[bytes, str | None]] = {}  # hash -> (content, content type)
        self.uploads = 0  # files received by /workers/assets/upload
        self.sessions: dict[str, UploadSession] = {}
        self.domains: dict[str, dict[str, Any]] = {}
        self.started = 0  # workerd processes started
        self.invocations: list[Invocation] = []  # every request a Worker answered, for /graphql
        self._usage_lock = threading.Lock()
        self.refuse_next_session = False  # test control: the next upload JWT is refused (as if expired)
        self._own_dir = work_dir is None
        self.work_dir = work_dir or Path(tempfile.mkdtemp(prefix="cf-workers-"))
        self._start_lock = threading.Lock()
        self.platforms = PlatformsApi(self)

    def close(self) -> None:
        for script in [*self.scripts.values(), *self.platforms.all_scripts()]:
            _stop(script)
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def routes(self) -> list[Route]:
        account = API + "/accounts/{account_id}/workers"
        # The same script routes serve plain Workers and user Workers in a dispatch namespace.
        scripts = [
            account + "/scripts/{script_name}",
            account + "/dispatch/namespaces/{namespace}/scripts/{script_name}",
        ]
        per_script = [
            route
            for script in scripts
            for route in (
                Route(script + "/assets-upload-session", self.upload_session, methods=["POST"]),
                Route(script, self.put_script, methods=["PUT"]),
                Route(script, self.delete_script, methods=["DELETE"]),
                Route(script + "/versions", self.post_version, methods=["POST"]),
                Route(script + "/deployments", self.post_deployment, methods=["POST"]),
                Route(script + "/deployments", self.get_deployments, methods=["GET"]),
            )
        ]
        return [
            *per_script,
            Route(account + "/assets/upload", self.upload, methods=["POST"]),
            Route(scripts[0] + "/subdomain", self.script_subdomain, methods=["POST"]),
            Route(account + "/subdomain", self.account_subdomain, methods=["GET"]),
            Route(account + "/domains", self.put_domain, methods=["PUT"]),
            Route(account + "/domains", self.list_domains, methods=["GET"]),
            Route(account + "/domains/{domain_id}", self.delete_domain, methods=["DELETE"]),
            Route(API + "/zones", self.list_zones, methods=["GET"]),
            Route(API + "/graphql", self.graphql, methods=["POST"]),
            *self.platforms.routes(),
        ]

    # -- helpers ------------------------------------------------------------------------------------
    def _scripts(self, request: Request) -> dict[str, EmulatedScript] | Response:
        """The account's Workers, or a dispatch namespace's user Workers when the path names one."""
        namespace = request.path_params.get("namespace")
        if namespace is None:
            return self.scripts
        found = self.platforms.namespaces.get(namespace)
        if found is None:
            return _envelope_error(404, 100119, f"dispatch namespace {namespace!r} was not found")
        return found.scripts

    def _script(self, request: Request) -> EmulatedScript | Response:
        scripts = self._scripts(request)
        if isinstance(scripts, Response):
            return scripts
        script = scripts.get(request.path_params["script_name"])
        if script is None:
            return _envelope_error(404, 10007, "This Worker does not exist on your account.")
        return script

    def _token(self, token: str, kind: str) -> dict[str, Any] | None:
        try:
            claims: dict[str, Any] = jwt.decode(token, self.cf._signing_key, algorithms=["HS256"])
        except jwt.PyJWTError:
            return None
        if claims.get("kind") != kind or claims["iat"] < self.cf._revoked_before:
            return None
        return claims

    def _issue(self, session: UploadSession, kind: str) -> str:
        now = time.time()  # the docs: upload and completion tokens are valid for one hour
        return jwt.encode(
            {"kind": kind, "session": session.id, "iat": now, "exp": now + 3600},
            self.cf._signing_key,
            "HS256",
        )

    async def _parse_upload(
        self, request: Request
    ) -> tuple[dict[str, Any], dict[str, tuple[bytes, str]]] | Response:
        """The multipart script or version upload: a ``metadata`` JSON part plus one part per module."""
        modules: dict[str, tuple[bytes, str]] = {}
        async with request.form(max_part_size=64 * 1024 * 1024) as form:
            raw = form.get("metadata")
            for name, part in form.multi_items():
                if name != "metadata" and not isinstance(part, str):
                    modules[name] = (await part.read(), part.content_type or "")
            if raw is not None and not isinstance(raw, str):
                raw = (await raw.read()).decode()
        try:
            metadata = json.loads(raw or "")
        except ValueError:
            return _envelope_error(400, 10021, "metadata part missing or not JSON")
        main = metadata.get("main_module")
        if main not in modules or not modules[main][1].endswith("javascript+module"):
            return _envelope_error(400, 10021, f"main_module {main!r} is not an uploaded ES module part")
        for binding in metadata.get("bindings", []):
            if not binding.get("name") or binding.get("type") not in BINDING_TYPES:
                return _envelope_error(400, 10021, f"binding {binding!r} is not supported here")
            if (
                binding["type"] == "dispatch_namespace"
                and binding.get("namespace") not in self.platforms.namespaces
            ):
                return _envelope_error(
                    400,
                    10021,
                    f"binding {binding['name']}: no dispatch namespace {binding.get('namespace')!r}",
                )
            if binding["type"] == "kv_namespace" and binding.get("namespace_id") not in self.platforms.kv:
                return _envelope_error(
                    400, 10021, f"binding {binding['name']}: no KV namespace {binding.get('namespace_id')!r}"
                )
            if binding["type"] in ("secret_text", "plain_text") and not isinstance(binding.get("text"), str):
                return _envelope_error(400, 10021, f"binding {binding['name']} needs text")
        asset_jwt = (metadata.get("assets") or {}).get("jwt")
        if asset_jwt is not None:
            claims = self._token(asset_jwt, "completion")
            if claims is None or claims["session"] not in self.sessions:
                return _envelope_error(400, 10021, "assets.jwt is not a valid completion token")
        return metadata, modules

    def _version(
        self, script: EmulatedScript, metadata: dict[str, Any], modules: dict[str, tuple[bytes, str]]
    ) -> EmulatedVersion:
        asset_jwt = (metadata.get("assets") or {}).get("jwt")
        manifest = {}
        if asset_jwt is not None:
            session = self.sessions[self._token(asset_jwt, "completion")["session"]]  # type: ignore[index]
            manifest = {path: entry["hash"] for path, entry in session.manifest.items()}
        version = EmulatedVersion(str(uuid.uuid4()), len(script.versions) + 1, metadata, modules, manifest)
        script.versions[version.id] = version
        return version

    def _deploy(self, script: EmulatedScript, versions: list[dict[str, Any]]) -> dict[str, Any]:
        deployment = {
            "id": str(uuid.uuid4()),
            "created_on": _now(),
            "source": "api",
            "strategy": "percentage",
            "author_email": "launchdeck@example.com",
            "annotations": {},
            "versions": versions,
        }
        script.deployments.insert(0, deployment)
        return deployment

    def _version_json(self, version: EmulatedVersion) -> dict[str, Any]:
        metadata = version.metadata
        return {
            "id": version.id,
            "number": version.number,
            "startup_time_ms": 0,
            "metadata": {
                "author_email": "launchdeck@example.com",
                "author_id": "0" * 32,
                "created_on": version.created_on,
                "modified_on": version.created_on,
                "source": "api",
                "has_preview": True,
            },
            "resources": {
                "bindings": [{"name": b["name"], "type": b["type"]} for b in metadata.get("bindings", [])],
                "script": {"etag": _etag(version), "handlers": ["fetch"]},
                "script_runtime": {
                    "compatibility_date": metadata.get("compatibility_date", ""),
                    "compatibility_flags": metadata.get("compatibility_flags", []),
                    "usage_model": "standard",
                },
            },
        }

    # -- asset upload -------------------------------------------------------------------------------
    async def upload_session(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        if not SCRIPT_NAME.match(request.path_params["script_name"]):
            return _envelope_error(400, 10016, "Invalid Worker name")
        manifest = (await request.json()).get("manifest")
        if not isinstance(manifest, dict) or not manifest:
            return _envelope_error(400, 10021, "manifest must map paths to {hash, size}")
        for path, entry in manifest.items():
            if (
                not path.startswith("/")
                or not re.fullmatch(r"[0-9a-f]{32}", str(entry.get("hash")))
                or not isinstance(entry.get("size"), int)
            ):
                return _envelope_error(400, 10021, f"manifest entry {path!r} needs a 32-hex hash and a size")
        missing = sorted({e["hash"] for e in manifest.values()} - set(self.assets))
        session = UploadSession(uuid.uuid4().hex, manifest, set(missing), refused=self.refuse_next_session)
        self.refuse_next_session = False
        self.sessions[session.id] = session
        buckets = [missing[i : i + BUCKET_FILES] for i in range(0, len(missing), BUCKET_FILES)]
        return _ok({"jwt": self._issue(session, "upload" if missing else "completion"), "buckets": buckets})

    async def upload(self, request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        claims = self._token(token, "upload")
        session = self.sessions.get(claims["session"]) if claims else None
        if session is None or session.refused or request.path_params["account_id"] != self.cf.account_id:
            # What Cloudflare answers for an expired upload JWT is not documented: 401, as for a bad token.
            return _envelope_error(401, 10000, "Authentication error")
        if request.query_params.get("base64") != "true":
            return _envelope_error(400, 10021, "uploads must be base64 with ?base64=true")
        extensions = {
            e["hash"]: path.rsplit("/", 1)[-1].rpartition(".")[2] if "." in path.rsplit("/", 1)[-1] else ""
            for path, e in session.manifest.items()
        }
        received = 0
        async with request.form(max_files=10000, max_fields=10000, max_part_size=64 * 1024 * 1024) as form:
            for name, part in form.multi_items():
                if isinstance(part, str) or name not in extensions:
                    return _envelope_error(
                        400, 10021, f"part {name!r} is not a file of this session's manifest"
                    )
                encoded = await part.read()
                if blake3(encoded + extensions[name].encode()).hexdigest()[:32] != name:
                    return _envelope_error(400, 10021, f"content of {name} does not match its hash")
                kind = part.content_type
                self.assets[name] = (
                    base64.b64decode(encoded, validate=True),
                    None if kind == "application/null" else kind,
                )
                session.missing.discard(name)
                received += 1
        self.uploads += received
        if session.missing:
            return _ok({})
        return JSONResponse(
            {
                "success": True,
                "errors": [],
                "messages": [],
                "result": {"jwt": self._issue(session, "completion")},
            },
            status_code=201,
        )

    # -- scripts, versions, deployments ---------------------------------------------------------------
    async def put_script(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        name = request.path_params["script_name"]
        if not SCRIPT_NAME.match(name):
            return _envelope_error(400, 10016, "Invalid Worker name")
        scripts = self._scripts(request)
        if isinstance(scripts, Response):
            return scripts
        parsed = await self._parse_upload(request)
        if isinstance(parsed, Response):
            return parsed
        if scripts is self.scripts and name not in scripts and len(scripts) >= self.max_scripts:
            return _envelope_error(
                400,
                TOO_MANY_WORKERS,
                f"You have reached the limit of {self.max_scripts} Workers on this account. Delete a Worker, or "
                "run your customers' code as user Workers in a Workers for Platforms dispatch namespace.",
            )
        script = scripts.setdefault(name, EmulatedScript(name))
        version = self._version(script, *parsed)
        self._deploy(script, [{"version_id": version.id, "percentage": 100}])
        runtime = self._version_json(version)["resources"]["script_runtime"]
        return _ok(
            {
                "id": name,
                "etag": _etag(version),
                "created_on": script.created_on,
                "modified_on": version.created_on,
                "has_assets": bool(version.manifest),
                "has_modules": True,
                "handlers": ["fetch"],
                "startup_time_ms": 0,
                **runtime,
            }
        )

    async def delete_script(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        script = self._script(request)
        if isinstance(script, Response):
            return script
        scripts = self._scripts(request)
        assert not isinstance(scripts, Response)
        del scripts[script.name]
        self.domains = {k: v for k, v in self.domains.items() if v["service"] != script.name}
        await asyncio.to_thread(_stop, script)
        return _ok(None)

    async def post_version(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        script = self._script(request)
        if isinstance(script, Response):
            return script
        parsed = await self._parse_upload(request)
        if isinstance(parsed, Response):
            return parsed
        return _ok(self._version_json(self._version(script, *parsed)))

    async def post_deployment(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        script = self._script(request)
        if isinstance(script, Response):
            return script
        body = await request.json()
        versions = body.get("versions") or []
        if body.get("strategy") != "percentage" or sum(v.get("percentage", 0) for v in versions) != 100:
            return _envelope_error(
                400, 10021, "strategy must be percentage and the percentages add up to 100"
            )
        unknown = [v["version_id"] for v in versions if v.get("version_id") not in script.versions]
        if unknown:
            return _envelope_error(400, 10021, f"no such version: {', '.join(map(str, unknown))}")
        live = script.live()
        target = script.versions[max(versions, key=lambda v: v["percentage"])["version_id"]]
        # Only a rollback (to a version older than the live one) is blocked when secrets changed since.
        if live is not None and target.number < live.number and request.query_params.get("force") != "true":
            changed = sorted(k for k, v in live.secrets().items() if target.secrets().get(k, v) != v)
            if changed:
                return _envelope_error(
                    400, 10220, "The following secrets have changed: " + ", ".join(changed)
                )
        return _ok(
            self._deploy(
                script, [{"version_id": v["version_id"], "percentage": v["percentage"]} for v in versions]
            )
        )

    async def get_deployments(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        script = self._script(request)
        return script if isinstance(script, Response) else _ok({"deployments": script.deployments})

    async def script_subdomain(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        script = self._script(request)
        if isinstance(script, Response):
            return script
        body = await request.json()
        if not isinstance(body.get("enabled"), bool):
            return _envelope_error(400, 10021, "enabled must be true or false")
        script.workers_dev = body["enabled"]
        script.previews = bool(body.get("previews_enabled", script.previews))
        return _ok({"enabled": script.workers_dev, "previews_enabled": script.previews})

    async def account_subdomain(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        return _ok({"subdomain": self.subdomain})

    # -- zones and custom domains ----------------------------------------------------------------------
    async def list_zones(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.cf.api_token}":
            return _envelope_error(403, 10000, "Authentication error")
        name = request.query_params.get("name")
        account = request.query_params.get("account.id", self.cf.account_id)
        zones = [
            {
                "id": zone_id,
                "name": zone,
                "status": "active",
                "paused": False,
                "type": "full",
                "account": {"id": self.cf.account_id, "name": "Launchdeck"},
                "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
                "created_on": _now(),
                "modified_on": _now(),
            }
            for zone, zone_id in self.zones.items()
            if name in (None, zone) and account == self.cf.account_id
        ]
        return JSONResponse(
            {
                "success": True,
                "errors": [],
                "messages": [],
                "result": zones,
                "result_info": {
                    "page": 1,
                    "per_page": 20,
                    "count": len(zones),
                    "total_count": len(zones),
                    "total_pages": 1,
                },
            }
        )

    async def put_domain(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        body = await request.json()
        hostname, service, zone_id = body.get("hostname", ""), body.get("service"), body.get("zone_id")
        zone = next((name for name, zid in self.zones.items() if zid == zone_id), None)
        if zone is None:
            return _envelope_error(404, 1001, "Invalid zone identifier")
        if hostname != zone and not hostname.endswith("." + zone):
            return _envelope_error(400, 100117, f"{hostname} is not in zone {zone}")
        if service not in self.scripts:
            return _envelope_error(404, 10007, "This Worker does not exist on your account.")
        domain = self.domains.get(hostname) or {"id": uuid.uuid4().hex}
        domain.update(
            hostname=hostname,
            service=service,
            zone_id=zone_id,
            zone_name=zone,
            environment=body.get("environment", "production"),
        )
        self.domains[hostname] = domain
        return _ok(domain)

    async def list_domains(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        hostname = request.query_params.get("hostname")
        return _ok([d for d in self.domains.values() if hostname in (None, d["hostname"])])

    async def delete_domain(self, request: Request) -> Response:
        if (denied := self.cf._guard(request)) is not None:
            return denied
        found = next(
            (k for k, d in self.domains.items() if d["id"] == request.path_params["domain_id"]), None
        )
        if found is None:
            return _envelope_error(404, 100114, "Domain not found")
        del self.domains[found]
        return _ok(None)

    # -- serving ----------------------------------------------------------------------------------------
    async def serve(self, label: str, subdomain: str, scope: Scope, receive: Any, send: Any) -> None:
        found = self._resolve(label) if subdomain == self.subdomain else None
        if found is None:
            await Response("There is nothing here yet", status_code=404)(scope, receive, send)
            return
        await self.serve_version(*found, scope, receive, send)

    async def serve_script(self, name: str, scope: Scope, receive: Any, send: Any) -> None:
        """A request a zone route sends to a Worker: its live version answers."""
        script = self.scripts.get(name)
        live = script.live() if script is not None else None
        if script is None or live is None:
            await Response("route to a Worker that does not exist", status_code=522)(scope, receive, send)
            return
        await self.serve_version(script, live, scope, receive, send)

    async def serve_version(
        self, script: EmulatedScript, version: EmulatedVersion, scope: Scope, receive: Any, send: Any
    ) -> None:
        port = await asyncio.to_thread(self._running, script, version, scope.get("server"))
        answered: list[int] = []

        async def watch(message: Any) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        status = "internalError"  # workerd never answered
        try:
            await forward(scope, receive, watch, port)
            # Chosen here: the emulator cannot see an uncaught exception, so a 5xx answer stands for one.
            status = "success" if answered and answered[0] < 500 else "scriptThrewException"
        finally:
            cpu = await asyncio.to_thread(self._cpu_since_last, version)
            with self._usage_lock:
                self.invocations.append(Invocation(script.name, datetime.now(UTC), status, cpu))

    def _resolve(self, label: str) -> tuple[EmulatedScript, EmulatedVersion] | None:
        script = self.scripts.get(label)
        if script is not None:
            live = script.live()
            return (script, live) if live is not None and script.workers_dev else None
        preview = re.fullmatch(r"([0-9a-f]{8})-(.+)", label)
        script = self.scripts.get(preview[2]) if preview else None
        if preview is None or script is None or not script.previews:
            return None
        version = next((v for v in script.versions.values() if v.id.startswith(preview[1])), None)
        return (script, version) if version is not None else None

    def _running(
        self, script: EmulatedScript, version: EmulatedVersion, server: tuple[str, int] | None = None
    ) -> int:
        """Start the version on workerd the first time it is asked for; its port. ``server``: the emulator's
        own address, which the shims of a dispatch Worker call back."""
        with self._start_lock:
            if version.server is None or version.server.process.poll() is not None:
                folder = self._write(script, version, server)
                command = [
                    "sh",
                    "-c",
                    f'exec "{WRANGLER}" dev --local --no-bundle --ip 127.0.0.1 '
                    '--port "$PORT" --config wrangler.json',
                ]
                env = {"WRANGLER_SEND_METRICS": "false", "XDG_CONFIG_HOME": str(self.work_dir / ".config")}
                version.server = AppServer(command, folder, env, folder / "wrangler.log")
                self.started += 1
                try:
                    version.server.wait_ready()
                except RuntimeError:
                    version.server.stop()
                    raise
                version.cpu_seen = _workerd_cpu(version.server)  # start-up is not an invocation's
                version.answered = 0
            return version.server.port

    def _cpu_since_last(self, version: EmulatedVersion) -> int | None:
        """workerd's CPU time (microseconds) since the version's previous answer: each answer takes what the
        process used since the one before, so concurrent requests never count the same CPU twice."""
        with self._usage_lock:
            now = _workerd_cpu(version.server) if version.server is not None else None
            last, version.cpu_seen = version.cpu_seen, now
        if now is None or last is None:
            return None
        return max(0, round((now - last) * 1_000_000))

    # -- GraphQL Analytics (workersInvocationsAdaptive only) --------------------------------------------
    async def graphql(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self.cf.api_token}":
            return _envelope_error(403, 10000, "Authentication error")
        try:
            body = await request.json()
        except ValueError:
            return _envelope_error(400, 10021, "body must be JSON with query and variables")
        result = graphql_sync(
            ANALYTICS_SCHEMA,
            str(body.get("query") or ""),
            root_value={"viewer": {"accounts": self._accounts}},
            variable_values=body.get("variables") or {},
            operation_name=body.get("operationName"),
        )
        errors = [
            {"message": e.message, "path": e.path, "extensions": {"timestamp": _now()}}
            for e in result.errors or []
        ]
        return JSONResponse({"data": result.data, "errors": errors or None})

    def _accounts(self, info: Info, filter: dict[str, Any]) -> list[dict[str, Any]]:
        if filter.get("accountTag") != self.cf.account_id:
            raise GraphQLError("does not have access to the path")
        return [{"workersInvocationsAdaptive": self._invocation_groups}]

    def _invocation_groups(
        self, info: Info, limit: int, filter: dict[str, Any] | None = None, **_: Any
    ) -> list[dict[str, Any]]:
        """The proxied invocations that pass the filter, grouped by the dimensions the query selects."""
        conditions = dict(filter or {})
        bounds = {
            op: _time(conditions.pop(f"datetime_{op}")) for op in TIME_OPS if f"datetime_{op}" in conditions
        }
        among = conditions.pop("scriptName_in", None)
        with self._usage_lock:
            chosen = [
                i
                for i in self.invocations
                if all(TIME_OPS[op](i.at, bound) for op, bound in bounds.items())
                and all(i.dimensions().get(k) == v for k, v in conditions.items())
                and (among is None or i.script in among)
            ]
        wanted = _selected(info, "dimensions")
        groups: dict[tuple[Any, ...], list[Invocation]] = {}
        for invocation in chosen:
            dims = invocation.dimensions()
            groups.setdefault(tuple(dims[k] for k in wanted), []).append(invocation)
        rows = []
        for key, members in sorted(groups.items(), key=lambda kv: [str(k) for k in kv[0]]):
            cpu = [m.cpu_us for m in members]
            known = sorted(c for c in cpu if c is not None)
            rows.append(
                {
                    "dimensions": dict(zip(wanted, key, strict=True)),
                    "sum": {
                        "requests": len(members),
                        "errors": sum(m.status in ERROR_STATUSES for m in members),
                        "subrequests": None,  # a Worker's own fetches are not observed here
                        "cpuTimeUs": None if None in cpu else sum(known),
                    },
                    "quantiles": {
                        "cpuTimeP50": _quantile(known, 0.5),
                        "cpuTimeP99": _quantile(known, 0.99),
                    },
                }
            )
        return rows[: int(limit)]

    def _write(
        self, script: EmulatedScript, version: EmulatedVersion, server: tuple[str, int] | None = None
    ) -> Path:
        """The version as a wrangler project: modules/, assets/, wrangler.json and .dev.vars. A dispatch
        namespace or KV binding (which ``wrangler dev --local`` cannot serve from this emulator's state) is
        given to the Worker by a shim entry module that calls the emulator back."""
        folder = self.work_dir / script.name / version.id
        shutil.rmtree(folder, ignore_errors=True)
        for name, (content, _) in version.modules.items():
            _write_file(folder / "modules" / name, content)
        for path, digest in version.manifest.items():
            _write_file(folder / "assets" / path.lstrip("/"), self.assets[digest][0])
        metadata = version.metadata
        config: dict[str, Any] = {
            "name": script.name,
            "main": "modules/" + metadata["main_module"],
            "no_bundle": True,
            "compatibility_date": min(metadata.get("compatibility_date") or WORKERD_DATE, WORKERD_DATE),
            "compatibility_flags": metadata.get("compatibility_flags", []),
        }
        asset_config = (metadata.get("assets") or {}).get("config") or {}
        for name in ("_redirects", "_headers"):
            if asset_config.get(name):
                _write_file(folder / "assets" / name, asset_config[name].encode())
        binding = next((b["name"] for b in metadata.get("bindings", []) if b["type"] == "assets"), None)
        if version.manifest:
            config["assets"] = {
                "directory": "assets",
                **({"binding": binding} if binding else {}),
                **{k: v for k, v in asset_config.items() if k in ("html_handling", "not_found_handling")},
            }
        shim = self.platforms.shim(version.metadata, server)
        if shim is not None:
            _write_file(folder / "modules" / "__emulator_entry.mjs", shim.encode())
            config["main"] = "modules/__emulator_entry.mjs"
            config["find_additional_modules"] = True  # the Worker's own modules, imported by the shim
            config["rules"] = [{"type": "ESModule", "globs": ["**/*.js", "**/*.mjs"]}]
        (folder / "wrangler.json").write_text(json.dumps(config, indent=2))
        texts = {b["name"]: b["text"] for b in metadata.get("bindings", []) if "text" in b}
        (folder / ".dev.vars").write_text("".join(f"{k}={_dotenv_quote(v)}\n" for k, v in texts.items()))
        return folder


@dataclass(frozen=True)
class Invocation:
    script: str
    at: datetime
    status: str  # success, scriptThrewException or internalError (cloudflare-docs invocation statuses)
    cpu_us: int | None  # workerd's CPU time for it; None when its process could not be read

    def dimensions(self) -> dict[str, Any]:
        at = self.at.replace(microsecond=0)
        return {
            "scriptName": self.script,
            "status": self.status,
            "datetime": _iso_z(at),
            "datetimeHour": _iso_z(at.replace(minute=0, second=0)),
        }


# The part of Cloudflare's GraphQL Analytics schema that workersInvocationsAdaptive queries use: names from
# the "Querying Workers Metrics with GraphQL" tutorial and the Filtering page (SOURCES.md).
ANALYTICS_SCHEMA = build_schema("""
scalar string
scalar Time
scalar uint64
scalar float32

type Query { viewer: Viewer }
type Viewer { accounts(filter: AccountFilter!): [Account!]! }
input AccountFilter { accountTag: string }
type Account {
  workersInvocationsAdaptive(limit: uint64!, filter: WorkersInvocationsFilter): [WorkersInvocationsAdaptive!]!
}
input WorkersInvocationsFilter {
  scriptName: string
  scriptName_in: [string!]
  status: string
  datetime_geq: Time
  datetime_gt: Time
  datetime_lt: Time
  datetime_leq: Time
}
type WorkersInvocationsAdaptive {
  sum: WorkersInvocationsSum
  quantiles: WorkersInvocationsQuantiles
  dimensions: WorkersInvocationsDimensions
}
type WorkersInvocationsSum { requests: uint64 errors: uint64 subrequests: uint64 cpuTimeUs: uint64 }
type WorkersInvocationsQuantiles { cpuTimeP50: float32 cpuTimeP99: float32 }
type WorkersInvocationsDimensions { scriptName: string status: string datetime: Time datetimeHour: Time }
""")
TIME_OPS = {
    "geq": lambda at, bound: at >= bound,
    "gt": lambda at, bound: at > bound,
    "lt": lambda at, bound: at < bound,
    "leq": lambda at, bound: at <= bound,
}
ERROR_STATUSES = frozenset({"scriptThrewException", "exceededResources", "internalError"})


def _time(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError as exc:
        raise GraphQLError(f"error parsing args: {value!r} is not a time") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _selected(info: Info, name: str) -> list[str]:
    """The field names the query selects under ``name`` (e.g. which dimensions to group by)."""
    for node in info.field_nodes:
        for selection in node.selection_set.selections if node.selection_set else ():
            if isinstance(selection, FieldNode) and selection.name.value == name and selection.selection_set:
                return [s.name.value for s in selection.selection_set.selections if isinstance(s, FieldNode)]
    return []


def _quantile(ordered: list[int], q: float) -> float | None:
    return float(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]) if ordered else None


def _workerd_cpu(server: AppServer) -> float | None:
    """CPU seconds (user + system) of the workerd processes under a ``wrangler dev`` process, or None."""
    try:
        root = psutil.Process(server.process.pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return None
    total, found = 0.0, False
    for process in processes:
        try:
            if "workerd" in process.name():
                times = process.cpu_times()
                total, found = total + times.user + times.system, True
        except psutil.NoSuchProcess:
            continue
    return total if found else None


def _stop(script: EmulatedScript) -> None:
    for version in script.versions.values():
        if version.server is not None:
            version.server.stop()


def _write_file(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def _etag(version: EmulatedVersion) -> str:
    return hashlib.sha256(b"".join(content for content, _ in version.modules.values())).hexdigest()


def _dotenv_quote(value: str) -> str:
    """A .dev.vars value as the dotenv parser wrangler uses reads it back unchanged."""
    for quote in ("'", '"', "`"):
        if quote not in value and (quote == '"' or "\n" not in value):
            return quote + value.replace("\n", "\\n") + quote
    raise ValueError("a value with newlines and all three quote characters cannot go into .dev.vars")
