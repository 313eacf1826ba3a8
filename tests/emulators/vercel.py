"""Vercel API emulator, built from ``shared/specs/vercel/vercel-spec.subset.json``.

Files are stored by SHA-1 (``/v2/files`` checks the digest); a deployment that names a file it does not
have answers 400 ``missing_files`` with the digests, as Vercel's client code expects (not in the
OpenAPI; see SOURCES.md). Each deployment is served at ``http://<project>-<id>.vercel.localhost:<port>/``
and production at ``http://<project>.vercel.localhost:<port>/`` (connect to 127.0.0.1, send the Host).

A deployment with ``projectSettings.framework == "nextjs"`` is built the way Vercel builds one: the
uploaded source is installed and built (``npm ci``, ``npm run build``, with the project's environment
variables for the deployment's target and the system variables ``VERCEL=1``, ``VERCEL_URL``), then its
server runs and the deployment's URL is proxied to it, so a health check reaches the app for real.
Without a framework the files are served as they are.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.emulators.common import AppServer, Faults, Instrumented, Recorder, Scope, forward

SITE_HOST = re.compile(r"^(?P<label>[a-z0-9-]+)\.vercel\.localhost(?::\d+)?$")
OWNER = "team_emulated0000000000000000"


def _ms() -> int:
    return int(time.time() * 1000)


@dataclass
class EmulatedDeployment:
    id: str
    project_id: str
    project: str
    host: str
    files: dict[str, str]  # path -> sha
    target: str | None  # None: a preview deployment (the spec's target is "staging" | "production" | null)
    framework: str | None = None
    created_at: int = field(default_factory=_ms)
    state: str = "BUILDING"
    error: str | None = None
    server: AppServer | None = None


@dataclass
class EmulatedProject:
    name: str
    id: str = field(default_factory=lambda: "prj_" + secrets.token_hex(12))
    env: dict[str, dict[str, Any]] = field(default_factory=dict)
    production: str | None = None
    domains: dict[str, dict[str, Any]] = field(default_factory=dict)
    created_at: int = field(default_factory=_ms)


class VercelEmulator:
    def __init__(self, *, token: str = "vercel-token-0123456789abcdef", polls_to_ready: int = 1) -> None:
        self.token, self.polls_to_ready = token, polls_to_ready
        self.root = Path(tempfile.mkdtemp(prefix="vercel-emulator-"))  # builds and their logs
        self.projects: dict[str, EmulatedProject] = {}
        self.deployments: dict[str, EmulatedDeployment] = {}
        self.blobs: dict[str, bytes] = {}
        self.uploads = 0
        self.fail_next_deployment = False
        self.faults = Faults()
        self.recorder = Recorder()
        self._lock = threading.Lock()
        # (project, UTC day) -> requests and bytes served: what /v1/billing/charges reports
        self.served: dict[tuple[str, str], dict[str, int]] = {}
        self._api = self._starlette()
        self.app = Instrumented(self._dispatch, self.faults, self.recorder, record_prefix="/v")

    def close(self) -> None:
        for deployment in self.deployments.values():
            if deployment.server is not None:
                deployment.server.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    async def _dispatch(self, scope: Scope, receive: Any, send: Any) -> None:
        host = dict(scope.get("headers", [])).get(b"host", b"").decode()
        site = SITE_HOST.match(host)
        if site and scope["type"] == "http":
            deployment = self._site(site["label"])
            sent = [0]

            async def counting(message: Any) -> None:
                if message["type"] == "http.response.body":
                    sent[0] += len(message.get("body", b""))
                await send(message)

            if deployment is not None and deployment.server is not None:
                await forward(scope, receive, counting, deployment.server.port)
            else:
                await self._serve(deployment, scope["path"])(scope, receive, counting)
            if deployment is not None:
                day = datetime.now(UTC).date().isoformat()
                with self._lock:
                    usage = self.served.setdefault((deployment.project, day), {"requests": 0, "bytes": 0})
                    usage["requests"] += 1
                    usage["bytes"] += sent[0]
        else:
            await self._api(scope, receive, send)

    def _site(self, label: str) -> EmulatedDeployment | None:
        deployment = next((d for d in self.deployments.values() if d.host.split(".")[0] == label), None)
        if deployment is None and label in self.projects:
            deployment = self.deployments.get(self.projects[label].production or "")
        return deployment if deployment is not None and deployment.state == "READY" else None

    def _serve(self, deployment: EmulatedDeployment | None, path: str) -> Response:
        if deployment is None:
            return Response("deployment not found", status_code=404)
        for candidate in (
            [path.lstrip("/"), f"{path.strip('/')}/index.html".lstrip("/"), f"{path.lstrip('/')}.html"]
            if path != "/"
            else ["index.html"]
        ):
            sha = deployment.files.get(candidate)
            if sha is not None:
                media = mimetypes.guess_type(candidate)[0] or "application/octet-stream"
                return Response(self.blobs[sha], media_type=media)
        return Response("not found", status_code=404)

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
        return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)

    def _guard(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            return self._error(403, "forbidden", "Not authorized")
        return None

    def _project(self, key: str) -> EmulatedProject | Response:
        project = self.projects.get(key) or next((p for p in self.projects.values() if p.id == key), None)
        if project is None:
            return self._error(404, "not_found", "Project not found")
        return project

    def _project_json(self, p: EmulatedProject) -> dict[str, Any]:
        production = self.deployments.get(p.production or "")
        targets = {}
        if production is not None:  # the project's production alias, on this emulator's port
            alias = f"{p.name}.vercel.localhost:{production.host.rsplit(':', 1)[1]}"
            targets["production"] = {
                "id": production.id,
                "alias": [alias],
                "createdAt": production.created_at,
                "createdIn": "iad1",
                "creator": {"uid": "emulated-user", "email": "ops@example.com", "username": "emulated-user"},
                "deploymentHostname": production.host,
                "name": p.name,
                "plan": "hobby",
                "previewCommentsEnabled": False,
                "private": True,
                "readyState": "READY",
                "type": "LAMBDAS",
                "url": production.host,
                "userId": "emulated-user",
            }
        return {
            "accountId": OWNER,
            "targets": targets,
            "directoryListing": False,
            "id": p.id,
            "name": p.name,
            "nodeVersion": "22.x",
            "resourceConfig": {"functionDefaultRegions": ["iad1"]},
            "defaultResourceConfig": {"functionDefaultRegions": ["iad1"]},
            "createdAt": p.created_at,
            "updatedAt": p.created_at,
        }

    def _deployment_json(self, d: EmulatedDeployment) -> dict[str, Any]:
        return {
            "build": {"env": []},
            "env": [],
            "inspectorUrl": None,
            "isInConcurrentBuildsQueue": False,
            "isInSystemBuildsQueue": False,
            "projectSettings": {},
            "aliasAssigned": d.state == "READY",
            "bootedAt": d.created_at,
            "buildingAt": d.created_at,
            "buildSkipped": False,
            "creator": {"uid": "emulated-user"},
            "public": False,
            "status": d.state,
            "readyState": d.state,
            "id": d.id,
            "createdAt": d.created_at,
            "name": d.project,
            "type": "LAMBDAS",
            "meta": {},
            "regions": ["iad1"],
            "url": d.host,
            "version": 2,
            "projectId": d.project_id,
            "plan": "hobby",
            "createdIn": "iad1",
            "ownerId": OWNER,
            "routes": None,
        } | ({"target": d.target} if d.target else {})

    # -- routes --------------------------------------------------------------------------------------
    async def get_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        return project if isinstance(project, Response) else JSONResponse(self._project_json(project))

    async def create_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        name = (await request.json()).get("name", "")
        if not re.fullmatch(r"[a-z0-9._-]{1,100}", name) or "---" in name:
            return self._error(
                400,
                "invalid_name",
                "Project names can be up to 100 characters long and must "
                "be lowercase. They can include letters, digits, and '.', '_', '-'.",
            )
        with self._lock:
            if name in self.projects:
                return self._error(409, "conflict", f'Project "{name}" already exists')
            self.projects[name] = EmulatedProject(name)
        return JSONResponse(self._project_json(self.projects[name]))

    async def delete_project(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        if isinstance(project, Response):
            return project
        self.projects.pop(project.name, None)
        for key in [k for k, d in self.deployments.items() if d.project_id == project.id]:
            removed = self.deployments.pop(key)
            if removed.server is not None:
                removed.server.stop()
        return Response(status_code=204)

    async def upsert_env(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        if isinstance(project, Response):
            return project
        body = await request.json()
        items = body if isinstance(body, list) else [body]
        upsert = request.query_params.get("upsert") == "true"
        created, failed = [], []
        for item in items:
            if item["key"] in project.env and not upsert:
                failed.append(
                    {
                        "error": {
                            "code": "ENV_ALREADY_EXISTS",
                            "message": f"A variable with the name `{item['key']}` already exists",
                            "key": item["key"],
                        }
                    }
                )
                continue
            record = {
                "id": secrets.token_hex(8),
                "key": item["key"],
                "type": item["type"],
                "target": item.get("target", []),
                "createdAt": _ms(),
                "updatedAt": _ms(),
            }
            project.env[item["key"]] = {**record, "value": item["value"]}
            created.append({**record, "value": ""})
        return JSONResponse({"created": created, "failed": failed}, status_code=201)

    async def upload_file(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        data = await request.body()
        digest = request.headers.get("x-vercel-digest", "")
        if hashlib.sha1(data).hexdigest() != digest:
            return self._error(400, "invalid_digest", "Digest is not valid")
        if request.headers.get("content-length") != str(len(data)):
            return self._error(400, "invalid_size", "File size is not valid")
        self.blobs[digest] = data
        self.uploads += 1
        # The spec's oneOf [{urls}, {}] only admits an object without "urls".
        return JSONResponse({})

    async def create_deployment(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        body = await request.json()
        project = self._project(body.get("project") or body["name"])
        if isinstance(project, Response):
            return project
        files = {f["file"]: f["sha"] for f in body.get("files", [])}
        missing = sorted({sha for sha in files.values() if sha not in self.blobs})
        if missing:
            return self._error(400, "missing_files", "Missing files", missing=missing)
        deployment_id = "dpl_" + secrets.token_hex(12)
        host = request.headers.get("host", "127.0.0.1")
        port = host.rsplit(":", 1)[1] if ":" in host else "80"
        deployment = EmulatedDeployment(
            id=deployment_id,
            project_id=project.id,
            project=project.name,
            host=f"{project.name}-{deployment_id[4:13]}.vercel.localhost:{port}",
            files=files,
            target=body.get("target"),
            framework=(body.get("projectSettings") or {}).get("framework"),
        )
        self.deployments[deployment_id] = deployment
        if deployment.framework == "nextjs":
            target = deployment.target or "preview"
            env = {k: v["value"] for k, v in project.env.items() if target in v["target"]}
            threading.Thread(target=self._build, args=(deployment, env), daemon=True).start()
        return JSONResponse(self._deployment_json(deployment))

    def _build(self, deployment: EmulatedDeployment, env: dict[str, str]) -> None:
        """What Vercel's build does for a Next.js project: install, build, then serve the output."""
        from engine.errors import LaunchdeckError
        from engine.webbuild import build

        workdir = self.root / deployment.id / "src"
        for name, sha in deployment.files.items():
            path = workdir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(self.blobs[sha])
        env = {
            **env,
            "VERCEL": "1",
            "VERCEL_ENV": deployment.target or "preview",
            "VERCEL_URL": deployment.host,
        }
        log = self.root / deployment.id / "build.log"
        try:
            cache = self.root / "cache" / deployment.project  # Vercel keeps a build cache per project
            result = build(
                workdir,
                env,
                timeout=900,
                memory_mb=3072,
                log_path=log,
                npm_cache=cache / "npm",
                build_cache=cache / "next",
            )
            server = AppServer(
                result.server_command, result.server_dir, env, self.root / deployment.id / "server.log"
            )
            deployment.server = server
            server.wait_ready()
        except (LaunchdeckError, RuntimeError) as exc:
            deployment.error = f'Command "npm run build" exited with 1: {str(exc)[-400:]}'
            deployment.state = "ERROR"
            return
        deployment.state = "READY"
        if deployment.target == "production":
            self.projects[deployment.project].production = deployment.id

    async def delete_deployment(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        deployment = self.deployments.pop(request.path_params["key"], None)
        if deployment is None:
            return self._error(404, "not_found", "Deployment not found")
        if deployment.server is not None:
            deployment.server.stop()
        return JSONResponse({"uid": deployment.id, "state": "DELETED"})

    async def get_deployment(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        deployment = self.deployments.get(request.path_params["key"])
        if deployment is None:
            return self._error(404, "not_found", "Deployment not found")
        if deployment.state == "BUILDING" and deployment.framework != "nextjs":
            if self.fail_next_deployment:
                self.fail_next_deployment = False
                deployment.state = "ERROR"
            else:
                deployment.state = "READY"
                if deployment.target == "production":
                    self.projects[deployment.project].production = deployment.id
        body = self._deployment_json(deployment)
        if deployment.state == "ERROR":
            body.update(
                errorCode="BUILD_FAILED", errorMessage=deployment.error or "The deployment failed (emulated)"
            )
        return JSONResponse(body)

    async def promote(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["project"])
        if isinstance(project, Response):
            return project
        deployment = self.deployments.get(request.path_params["deployment"])
        if deployment is None or deployment.project_id != project.id or deployment.state != "READY":
            return self._error(
                400, "invalid_deployment", "Only ready deployments of this project can be promoted"
            )
        project.production = deployment.id
        return Response(status_code=201)

    async def add_domain(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        if isinstance(project, Response):
            return project
        name = (await request.json()).get("name", "")
        if not re.fullmatch(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}", name):
            return self._error(400, "invalid_domain", f'Invalid domain name "{name}"')
        if name in project.domains:
            return self._error(409, "domain_already_in_use", "Cannot add domain since it is already in use")
        apex = ".".join(name.split(".")[-2:])
        project.domains[name] = {
            "name": name,
            "apexName": apex,
            "projectId": project.id,
            "verified": False,
            "polls": 0,
            "verification": [
                {
                    "type": "TXT",
                    "domain": f"_vercel.{apex}",
                    "value": f"vc-domain-verify={name},{secrets.token_hex(10)}",
                    "reason": "pending_domain_verification",
                }
            ],
            "createdAt": _ms(),
            "updatedAt": _ms(),
        }
        return JSONResponse(_domain_json(project.domains[name]))

    async def get_domain(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        if isinstance(project, Response):
            return project
        domain = project.domains.get(request.path_params["domain"])
        if domain is None:
            return self._error(404, "not_found", "Domain not found")
        domain["polls"] += 1
        if domain["polls"] >= self.polls_to_ready:
            domain["verified"] = True
            domain.pop("verification", None)
        return JSONResponse(_domain_json(domain))

    async def verify_domain(self, request: Request) -> Response:
        """Vercel checks the domain's TXT record now: verified once the emulator's polls say so."""
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        if isinstance(project, Response):
            return project
        domain = project.domains.get(request.path_params["domain"])
        if domain is None:
            return self._error(404, "not_found", "The domain was not found")
        domain["polls"] += 1
        if domain["polls"] >= self.polls_to_ready:
            domain["verified"] = True
            domain.pop("verification", None)
            return JSONResponse(_domain_json(domain))
        # Chosen here: what Vercel answers while the TXT record is missing is not in the spec.
        return self._error(
            400, "missing_txt_record", "Domain is not verified yet: the TXT record was not found"
        )

    async def delete_domain(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        project = self._project(request.path_params["key"])
        if isinstance(project, Response):
            return project
        if project.domains.pop(request.path_params["domain"], None) is None:
            return self._error(404, "not_found", "The domain was not found")
        return JSONResponse({})

    async def billing_charges(self, request: Request) -> Response:
        """FOCUS v1.3 charges, one JSON object per line, for each project and day in [from, to): edge requests
        and fast data transfer as the emulator served them (docs: rest-api/billing/list-focus-billing-charges)."""
        if (denied := self._guard(request)) is not None:
            return denied
        try:
            start = datetime.fromisoformat(request.query_params["from"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(request.query_params["to"].replace("Z", "+00:00"))
        except (KeyError, ValueError):
            return self._error(400, "bad_request", "from and to must be ISO 8601 date-times")
        lines = []
        for (project_name, day), usage in sorted(self.served.items()):
            at = datetime.fromisoformat(day).replace(tzinfo=UTC)
            project = self.projects.get(project_name)
            if project is None or not start <= at < end:
                continue
            period = {
                "ChargePeriodStart": at.isoformat().replace("+00:00", "Z"),
                "ChargePeriodEnd": (at + timedelta(days=1)).isoformat().replace("+00:00", "Z"),
                "ResourceId": project.id,
                "ResourceName": project.name,
                "ServiceCategory": "Networking",
                "ChargeCategory": "Usage",
                "BillingCurrency": "USD",
            }
            edge = usage["requests"] * 2.0 / 1_000_000
            transfer = usage["bytes"] / 1e9
            lines.append({**period, "ServiceName": "Edge Requests", "SkuId": "edge_requests",
                          "ConsumedQuantity": usage["requests"], "ConsumedUnit": "Requests",
                          "BilledCost": round(edge, 6), "EffectiveCost": round(edge, 6)})  # fmt: skip
            lines.append({**period, "ServiceName": "Fast Data Transfer", "SkuId": "fast_data_transfer",
                          "ConsumedQuantity": transfer, "ConsumedUnit": "GB",
                          "BilledCost": round(transfer * 0.15, 6), "EffectiveCost": round(transfer * 0.15, 6)})  # fmt: skip
        body = "".join(json.dumps(line) + "\n" for line in lines)
        return Response(body, media_type="application/jsonl")

    def _starlette(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v9/projects/{key}", self.get_project, methods=["GET"]),
                Route("/v9/projects/{key}", self.delete_project, methods=["DELETE"]),
                Route("/v11/projects", self.create_project, methods=["POST"]),
                Route("/v10/projects/{key}/env", self.upsert_env, methods=["POST"]),
                Route("/v2/files", self.upload_file, methods=["POST"]),
                Route("/v13/deployments", self.create_deployment, methods=["POST"]),
                Route("/v13/deployments/{key}", self.get_deployment, methods=["GET"]),
                Route("/v13/deployments/{key}", self.delete_deployment, methods=["DELETE"]),
                Route("/v10/projects/{project}/promote/{deployment}", self.promote, methods=["POST"]),
                Route("/v10/projects/{key}/domains", self.add_domain, methods=["POST"]),
                Route("/v9/projects/{key}/domains/{domain}", self.get_domain, methods=["GET"]),
                Route("/v9/projects/{key}/domains/{domain}", self.delete_domain, methods=["DELETE"]),
                Route("/v1/billing/charges", self.billing_charges, methods=["GET"]),
                Route("/v9/projects/{key}/domains/{domain}/verify", self.verify_domain, methods=["POST"]),
            ]
        )


def _domain_json(domain: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in domain.items() if k != "polls"}
