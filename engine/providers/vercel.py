"""Vercel: projects, env vars, file-by-digest deployments, promote/rollback, domains.

Paths follow ``shared/specs/vercel/vercel-spec.subset.json``. Deployment creation follows the flow of
Vercel's own client (``vercel/vercel packages/client/src/upload.ts``, see tests/emulators/SOURCES.md):
create with every file's SHA-1; when Vercel answers 400 ``missing_files`` it lists the digests it lacks;
upload exactly those to ``/v2/files`` and create again. That error is not in the OpenAPI document.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from engine.errors import (
    InputError,
    ProviderConflict,
    ProviderError,
    ProviderNotFound,
    ProviderUnavailable,
)
from engine.providers.base import Deployment, DomainStatus, serve_suspended_page
from engine.providers.http import ProviderClient, RequestRetry, looks_secret
from engine.retry import poll_until
from engine.rules import HOST_CAPABILITIES

UPLOAD_CONCURRENCY = 8
MAX_CREATE_ROUNDS = 3  # a file can go missing again between upload and create (it expired): retry
IGNORED_PARTS = frozenset({"node_modules", ".git", ".vercel", ".next", ".DS_Store"})


@dataclass(frozen=True)
class LocalFile:
    path: Path
    name: str  # relative, "/" separators
    sha: str
    size: int


def collect(root: Path) -> list[LocalFile]:
    if not root.is_dir():
        raise InputError(f"{root} is not a directory: give the build output folder to deploy")
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if path.is_symlink() or not path.is_file() or IGNORED_PARTS.intersection(relative.parts):
            continue
        data = path.read_bytes()
        files.append(LocalFile(path, relative.as_posix(), hashlib.sha1(data).hexdigest(), len(data)))
    if not files:
        raise InputError(f"{root} has no files to deploy")
    return files


class Vercel:
    """``HostingProvider`` for Vercel. One instance per token (and team); thread-safe."""

    name = "vercel"
    capabilities = HOST_CAPABILITIES["vercel"]

    def __init__(
        self,
        token: str,
        *,
        base_url: str = "https://api.vercel.com",
        team_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        poll_interval: float = 1.0,
        deploy_timeout: float = 600.0,
    ) -> None:
        self.team_id = team_id
        self.poll_interval, self.deploy_timeout = poll_interval, deploy_timeout
        self.http = ProviderClient(
            "vercel",
            base_url,
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            transport=transport,
            retry=retry,
            error_message=error_message,
        )
        # Per project, from the last deploy: files in the deployment, files and bytes uploaded.
        self.upload_stats: dict[str, dict[str, int]] = {}

    def close(self) -> None:
        self.http.close()

    def _params(self, **extra: Any) -> dict[str, Any]:
        return {**({"teamId": self.team_id} if self.team_id else {}), **extra}

    # -- hosting ---------------------------------------------------------------------------------
    def deploy(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        """Upload, build and make it production at once (``stage`` then ``promote`` checks in between)."""
        self.ensure_project(project)
        if env:
            self.set_env(project, env)
        created = self.create_deployment(project, files_dir, target="production", framework=framework)
        return self.wait(project, created["id"])

    def stage(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        """A preview deployment, built and ready at its own URL; production keeps serving the old one.

        ``framework="nextjs"`` uploads source and lets Vercel install and build it, as ``vercel deploy``
        does for a Next.js project."""
        self.ensure_project(project)
        if env:
            self.set_env(project, env)
        created = self.create_deployment(project, files_dir, framework=framework)
        return self.wait(project, created["id"])

    def promote(self, project: str, deployment_id: str) -> Deployment:
        """Point production at a ready deployment (the promote endpoint does not rebuild)."""
        self.http.request(
            "POST", f"/v10/projects/{project}/promote/{deployment_id}", params=self._params(), idempotent=True
        )
        return _deployment(project, self.get_deployment(deployment_id), self._scheme)

    rollback = promote

    def suspend(self, project: str) -> str:
        return serve_suspended_page(self, project)

    def resume(self, project: str, deployment_id: str) -> str:
        self.promote(project, deployment_id)
        return f"{self.name} production serves deployment {deployment_id} again"

    def production_url(self, project: str) -> str:
        """The production alias Vercel gave the project (``<project>.vercel.app``)."""
        found = self.get_project(project) or {}
        aliases = ((found.get("targets") or {}).get("production") or {}).get("alias") or []
        if not aliases:
            raise ProviderError("vercel", f"project {project} has no production alias yet")
        host = str(aliases[0])
        return host if "://" in host else f"{self._scheme}://{host}"

    def delete_deployment(self, project: str, deployment_id: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", f"/v13/deployments/{deployment_id}", params=self._params())

    def destroy(self, project: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", f"/v9/projects/{project}", params=self._params())

    def set_env(self, project: str, env: Mapping[str, str]) -> None:
        """Upsert as ``encrypted`` for production and preview; values are never read back."""
        for name, value in env.items():
            if looks_secret(name):
                self.http.add_secret(value)
        body = [
            {"key": k, "value": v, "type": "encrypted", "target": ["production", "preview"]}
            for k, v in env.items()
        ]
        result = self.http.json(
            "POST",
            f"/v10/projects/{project}/env",
            params=self._params(upsert="true"),
            json=body,
            idempotent=True,
        )
        failed = result.get("failed") or []
        if failed:
            reasons = "; ".join(str((f.get("error") or {}).get("message", f)) for f in failed)
            raise ProviderError("vercel", f"environment variables not saved: {reasons}")

    def add_domain(self, project: str, domain: str) -> DomainStatus:
        try:
            result = self.http.json(
                "POST", f"/v10/projects/{project}/domains", params=self._params(), json={"name": domain}
            )
        except ProviderConflict:
            return self.domain(project, domain)
        return _domain(result)

    def domain_status(self, project: str, domain: str) -> DomainStatus:
        """Ask Vercel to verify a pending domain (its TXT record published?), then read it."""
        current = self.domain(project, domain)
        if current.status == "verified":
            return current
        with contextlib.suppress(ProviderError):  # 400: the records are not there yet; the read says so
            self.http.request(
                "POST",
                f"/v9/projects/{project}/domains/{domain}/verify",
                params=self._params(),
                idempotent=True,
            )
        return self.domain(project, domain)

    def remove_domain(self, project: str, domain: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", f"/v9/projects/{project}/domains/{domain}", params=self._params())

    def preview_headers(self, project: str, deployment_id: str) -> dict[str, str]:
        return {}  # a preview deployment answers at its own URL

    # -- usage -------------------------------------------------------------------------------------
    def charges(self, start: str, end: str) -> list[dict[str, Any]]:
        """FOCUS billing charges in ``[start, end)`` (ISO-8601 UTC; one day granularity), one dict per charge:
        ``GET /v1/billing/charges`` answers JSON Lines (docs: rest-api/billing/list-focus-billing-charges)."""
        response = self.http.request(
            "GET", "/v1/billing/charges", params=self._params(**{"from": start, "to": end}), idempotent=True
        )
        charges: list[dict[str, Any]] = []
        for line in response.text.splitlines():
            if line.strip():
                try:
                    charges.append(json.loads(line))
                except ValueError as exc:
                    raise ProviderError("vercel", f"billing charges: a line is not JSON ({exc})") from None
        return charges

    # -- projects and domains ----------------------------------------------------------------------
    def exists(self, project: str) -> bool:
        return self.get_project(project) is not None

    def get_project(self, project: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.http.json("GET", f"/v9/projects/{project}", params=self._params())
        except ProviderNotFound:
            return None
        return result

    def ensure_project(self, project: str) -> dict[str, Any]:
        existing = self.get_project(project)
        if existing is not None:
            return existing
        try:
            created: dict[str, Any] = self.http.json(
                "POST", "/v11/projects", params=self._params(), json={"name": project, "framework": None}
            )
        except ProviderConflict:
            adopted = self.get_project(project)
            if adopted is None:
                raise
            return adopted
        return created

    def domain(self, project: str, domain: str) -> DomainStatus:
        return _domain(
            self.http.json("GET", f"/v9/projects/{project}/domains/{domain}", params=self._params())
        )

    # -- deployments -------------------------------------------------------------------------------
    def create_deployment(
        self, project: str, files_dir: Path, *, target: str | None = None, framework: str | None = None
    ) -> dict[str, Any]:
        files = collect(files_dir)
        by_sha = {f.sha: f for f in files}
        body: dict[str, Any] = {
            "name": project,
            "project": project,
            "files": [{"file": f.name, "sha": f.sha, "size": f.size} for f in files],
            "projectSettings": {"framework": framework},
        }
        if target:
            body["target"] = target
        uploaded: set[str] = set()
        for _ in range(MAX_CREATE_ROUNDS):
            response = self.http.request(
                "POST",
                "/v13/deployments",
                params=self._params(skipAutoDetectionConfirmation="1"),
                json=body,
                ok=[400],
            )
            if response.status_code != 400:
                self.upload_stats[project] = {
                    "files": len(files),
                    "uploaded": len(uploaded),
                    "bytes": sum(by_sha[s].size for s in uploaded),
                }
                result: dict[str, Any] = response.json()
                return result
            error = (response.json() or {}).get("error") or {}
            if error.get("code") != "missing_files":
                raise ProviderError(
                    "vercel",
                    self.http.clean(
                        f"POST /v13/deployments -> 400: {error.get('message') or response.text[:300]}"
                    ),
                    status=400,
                )
            missing = [by_sha[sha] for sha in error.get("missing", []) if sha in by_sha]
            with ThreadPoolExecutor(UPLOAD_CONCURRENCY, thread_name_prefix="vercel-upload") as pool:
                list(pool.map(self._upload, missing))
            uploaded.update(f.sha for f in missing)
        raise ProviderError(
            "vercel", f"deployment of {project} still misses files after {MAX_CREATE_ROUNDS} uploads"
        )

    def _upload(self, file: LocalFile) -> None:
        data = file.path.read_bytes()
        self.http.request(
            "POST",
            "/v2/files",
            params=self._params(),
            content=data,
            idempotent=True,  # content-addressed
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(len(data)),
                "x-vercel-digest": file.sha,
            },
        )

    def get_deployment(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.http.json(
            "GET", f"/v13/deployments/{deployment_id}", params=self._params()
        )
        return result

    def wait(self, project: str, deployment_id: str) -> Deployment:
        def ready(result: dict[str, Any]) -> bool:
            state = result.get("readyState")
            if state in ("ERROR", "CANCELED"):
                reason = (result.get("errorMessage") or result.get("errorCode") or "").strip()
                raise ProviderError(
                    "vercel",
                    f"deployment {deployment_id} of {project} ended {state}"
                    + (f": {reason}" if reason else ""),
                )
            return state == "READY"

        def not_ready(result: dict[str, Any]) -> Exception:
            return ProviderUnavailable(
                "vercel",
                f"deployment {deployment_id} of {project} not ready after "
                f"{self.deploy_timeout:.0f}s (state {result.get('readyState')})",
            )

        result = poll_until(
            lambda: self.get_deployment(deployment_id),
            ready,
            interval=self.poll_interval,
            timeout=self.deploy_timeout,
            timed_out=not_ready,
        )
        return _deployment(project, result, self._scheme)

    @property
    def _scheme(self) -> str:
        # Vercel answers host names without a scheme; deployments are served over TLS, an emulator
        # on plain http serves them over plain http.
        return self.http.base_url.scheme or "https"


def error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return response.text.strip()[:500] or response.reason_phrase
    if isinstance(error, dict):
        return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
    return str(error)


def _deployment(project: str, result: dict[str, Any], scheme: str) -> Deployment:
    url = str(result["url"])
    return Deployment(
        provider="vercel",
        project=project,
        id=result["id"],
        url=url if "://" in url else f"{scheme}://{url}",
        status=str(result.get("readyState", "")),
    )


def _domain(result: dict[str, Any]) -> DomainStatus:
    records = result.get("verification") or []
    details = {f"{r.get('type')} {r.get('domain')}": str(r.get("value")) for r in records}
    return DomainStatus(
        name=result["name"], status="verified" if result.get("verified") else "pending", verification=details
    )
