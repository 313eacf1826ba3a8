"""Cloudflare Pages emulator: the v4 API under ``/client/v4`` plus every deployment served at its own URL.

Projects, deployments, rollback and domains follow ``shared/specs/cloudflare/openapi.pages.json``; the
upload token and ``/pages/assets/*`` follow the SDK endpoint list and wrangler (UPLOAD_NOTES.md). Files
are stored by hash; creating a deployment checks that each manifest hash was uploaded and matches
the file's path (BLAKE3 of base64 content plus extension), so a client that hashes wrongly fails here
as it would at Cloudflare. A deployment is served at ``http://<short_id>.<project>.pages.localhost:<port>/``
and production at ``http://<project>.pages.localhost:<port>/`` (``*.pages.dev`` does not resolve here;
connect to 127.0.0.1 and send the Host header). The 1,200 requests / 5 minutes limit is enforced.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jwt
from blake3 import blake3
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import Fault, Faults, Instrumented, Recorder, Scope, SlidingWindow

API = "/client/v4"
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
        self._api = self._starlette()
        self.app = Instrumented(self._dispatch, self.faults, self.recorder, fault_answer=_fault_answer,
                                record_prefix=API)

    # -- test controls ----------------------------------------------------------------------------
    def expire_upload_tokens(self) -> None:
        """Every upload JWT issued so far now fails with error 8000013, as an expired one does."""
        self._revoked_before = time.time() + 0.001

    # -- ASGI entry: a deployment's own host, or the API ----------------------------------------------
    async def _dispatch(self, scope: Scope, receive: Any, send: Any) -> None:
        host = dict(scope.get("headers", [])).get(b"host", b"").decode()
        site = SITE_HOST.match(host)
        if site and scope["type"] == "http":
            response = self._serve_site(site["project"], site["short"], scope["path"])
        elif scope["type"] == "http" and scope["path"].startswith(API):
            wait = self.window.admit()
            if wait is None:
                await self._api(scope, receive, send)
                return
            response = _envelope_error(429, 971, "Please wait and consider throttling your request speed",
                                       headers={"Retry-After": str(max(1, math.ceil(wait)))})
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
        candidates = [path, f"{path.rstrip('/')}/index.html", f"{path}.html"] if path != "/" else ["/index.html"]
        for candidate in candidates:
            digest = deployment.manifest.get(candidate)
            if digest is not None:
                content, content_type = self.blobs[digest]
                return Response(content, media_type=content_type)
        missing = deployment.manifest.get("/404.html")
        return Response(self.blobs[missing][0] if missing else b"not found", status_code=404,
                        media_type="text/html")

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
            return _envelope_error(404, 8000007, "Project not found. The specified project name does not "
                                   "match any of your existing projects.")
        return project

    def _deployment_json(self, d: EmulatedDeployment) -> dict[str, Any]:
        stage = {"name": "deploy", "status": d.status, "started_on": d.created_on,
                 "ended_on": _now() if d.status != "active" else None}
        return {
            "id": d.id, "short_id": d.short_id, "project_id": self.projects[d.project].id,
            "project_name": d.project, "environment": d.environment, "url": d.url,
            "created_on": d.created_on, "modified_on": _now(), "aliases": None,
            "latest_stage": stage, "stages": [
                {"name": "queued", "status": "success", "started_on": d.created_on, "ended_on": d.created_on},
                stage],
            "deployment_trigger": {"type": "ad_hoc", "metadata": {"branch": d.branch, "commit_hash": "",
                                                                   "commit_message": ""}},
            "env_vars": {k: {"type": "secret_text"} for k in d.env_var_names},
            "is_skipped": False, "production_branch": self.projects[d.project].production_branch,
        }

    def _project_json(self, p: EmulatedProject) -> dict[str, Any]:
        canonical = p.deployments.get(p.canonical or "")
        latest = max(p.deployments.values(), key=lambda d: d.created_on, default=None)
        return {
            "id": p.id, "name": p.name, "subdomain": f"{p.name}.pages.dev", "domains": list(p.domains),
            "production_branch": p.production_branch, "created_on": p.created_on,
            "deployment_configs": {"production": {"env_vars": {k: {"type": v["type"]} for k, v in
                                                               p.env_vars.items()}},
                                   "preview": {"env_vars": {}}},
            "canonical_deployment": self._deployment_json(canonical) if canonical else None,
            "latest_deployment": self._deployment_json(latest) if latest else None,
            "build_config": {}, "source": None,
        }

    # -- projects -----------------------------------------------------------------------------------
    async def create_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        name = body.get("name", "")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,57}", name):
            return _envelope_error(400, 8000016, "Project name must be lowercase letters, numbers and "
                                   "dashes, at most 58 characters")
        with self._lock:
            if name in self.projects:
                return _envelope_error(409, 8000002, "A project with this name already exists. Choose a "
                                       "different project name.")
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
        production = ((body.get("deployment_configs") or {}).get("production") or {})
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
        token = jwt.encode({"sub": project.id, "account": self.account_id, "project": project.name,
                            "iat": now, "exp": now + self.token_ttl,
                            "max_file_count_allowed": self.max_file_count}, self._signing_key, "HS256")
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
            self.blobs[item["key"]] = (content, item.get("metadata", {}).get("contentType",
                                                                             "application/octet-stream"))
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
            id=deployment_id, short_id=short, project=project.name, manifest=manifest,
            url=f"http://{short}.{project.name}.pages.localhost:{port}",
            environment="production" if branch == project.production_branch else "preview",
            env_var_names=sorted(project.env_vars), branch=branch, special_files=special,
        )
        project.deployments[deployment.id] = deployment
        return _ok(self._deployment_json(deployment))

    async def list_deployments(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request)
        if isinstance(project, Response):
            return project
        page, per_page = int(request.query_params.get("page", 1)), int(request.query_params.get("per_page", 25))
        items = sorted(project.deployments.values(), key=lambda d: d.created_on, reverse=True)
        chunk = items[(page - 1) * per_page: page * per_page]
        body = {"success": True, "errors": [], "messages": [],
                "result": [self._deployment_json(d) for d in chunk],
                "result_info": {"page": page, "per_page": per_page, "count": len(chunk),
                                "total_count": len(items), "total_pages": max(1, math.ceil(len(items) / per_page))}}
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
            return _envelope_error(400, 8000022, "Only successful production deployments can be rolled back to.")
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
            "id": str(uuid.uuid4()), "name": name, "status": "pending", "created_on": _now(),
            "certificate_authority": "google", "zone_tag": secrets.token_hex(16), "polls": 0,
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
            domain.update(status="active", verification_data={"status": "active"},
                          validation_data={"status": "active", "method": "http"})
        return _ok(_domain_json(domain))

    def _starlette(self) -> Starlette:
        p = API + "/accounts/{account_id}/pages/projects"
        one = p + "/{project_name}"
        return Starlette(routes=[
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
        ])


def _domain_json(domain: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in domain.items() if k != "polls"}


def _ok(result: Any) -> JSONResponse:
    return JSONResponse({"success": True, "errors": [], "messages": [], "result": result})


def _envelope_error(status: int, code: int, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"success": False, "errors": [{"code": code, "message": message}], "messages": [],
                         "result": None}, status_code=status, headers=headers)


def _fault_answer(fault: Fault) -> tuple[int, bytes, dict[str, str]]:
    status = fault.status or 500
    body = fault.body or {"success": False, "errors": [{"code": 8000000 if status >= 500 else 971,
                                                        "message": f"injected fault {status}"}],
                          "messages": [], "result": None}
    return status, json.dumps(body).encode(), {"content-type": "application/json"}
