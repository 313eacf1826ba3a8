"""Cloudflare Pages: projects, production env vars, direct upload, deployments, rollback, domains.

Paths follow ``shared/specs/cloudflare/openapi.pages.json``; the asset endpoints and the upload token,
which that 2024 spec lacks, follow the current SDK endpoint list and wrangler (``UPLOAD_NOTES.md``).
Every request of an account, from every thread, goes through one limiter: Cloudflare allows 1,200
requests per 5 minutes per user.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import jwt

from engine.errors import (
    InputError,
    ProviderConflict,
    ProviderError,
    ProviderNotFound,
    ProviderUnavailable,
)
from engine.providers import cloudflare_assets as assets
from engine.providers.base import Deployment, DomainStatus
from engine.providers.http import ProviderClient, RateLimiter, RequestRetry, looks_secret, shared_limiter
from engine.retry import poll_until

RATE_LIMIT = 1200
RATE_PERIOD = 300.0
# The limiter times each request from its answer, so the server never sees more than the limit in its
# window; 1% more covers a server clock running slightly slower than ours.
RATE_SLACK = 1.01
EXPIRED_UPLOAD_TOKEN = 8000013  # errors.ts: ApiErrorCodes.UNAUTHORIZED
FORM_FILES = ("_headers", "_redirects", "_routes.json")
T = TypeVar("T")
log = logging.getLogger("launchdeck.providers.cloudflare")


def error_message(response: httpx.Response) -> str:
    """``errors: [{code, message}]`` from the v4 envelope, code first so callers can match on it."""
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError):
        return response.text.strip()[:500] or response.reason_phrase
    return "; ".join(f"code {e.get('code')}: {e.get('message')}" for e in errors) or response.reason_phrase


class CloudflarePages:
    """Cloudflare Pages (direct upload). One instance per account; thread-safe."""

    name = "cloudflare"

    def __init__(
        self,
        account_id: str,
        api_token: str,
        *,
        base_url: str = "https://api.cloudflare.com/client/v4",
        production_branch: str = "main",
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        limiter: RateLimiter | None = None,
        poll_interval: float = 1.0,
        deploy_timeout: float = 600.0,
    ) -> None:
        self.account_id, self.production_branch = account_id, production_branch
        self.poll_interval, self.deploy_timeout = poll_interval, deploy_timeout
        self.http = ProviderClient(
            "cloudflare",
            base_url,
            headers={"Authorization": f"Bearer {api_token}"},
            secrets=[api_token],
            transport=transport,
            retry=retry,
            limiter=limiter or shared_limiter("cloudflare", account_id, RATE_LIMIT, RATE_PERIOD * RATE_SLACK),
            error_message=error_message,
        )
        self._jwt: dict[str, str] = {}
        # Per project, from the last upload: files in the manifest, files and raw bytes uploaded.
        self.upload_stats: dict[str, dict[str, int]] = {}

    def close(self) -> None:
        self.http.close()

    def _projects(self, project: str = "") -> str:
        base = f"/accounts/{self.account_id}/pages/projects"
        return f"{base}/{project}" if project else base

    def _result(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.http.json(method, url, **kwargs)["result"]

    # -- hosting ---------------------------------------------------------------------------------
    def deploy(self, project: str, files_dir: Path, env: Mapping[str, str]) -> Deployment:
        self.ensure_project(project)
        if env:
            self.set_env(project, env)
        created = self.upload_and_create(project, files_dir)
        return self.wait(project, created["id"])

    def rollback(self, project: str, deployment_id: str) -> Deployment:
        result = self._result(
            "POST", f"{self._projects(project)}/deployments/{deployment_id}/rollback", json={}
        )
        return _deployment(project, result)

    def destroy(self, project: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", self._projects(project), json={})

    def set_env(self, project: str, env: Mapping[str, str], *, remove: tuple[str, ...] = ()) -> None:
        """Production env vars, all stored as ``secret_text``: Cloudflare never shows them back."""
        for name, value in env.items():
            if looks_secret(name):
                self.http.add_secret(value)
        env_vars: dict[str, Any] = {k: {"type": "secret_text", "value": v} for k, v in env.items()}
        env_vars.update({k: None for k in remove})
        self._result(
            "PATCH",
            self._projects(project),
            json={"deployment_configs": {"production": {"env_vars": env_vars}}},
            idempotent=True,
        )

    def add_domain(self, project: str, domain: str) -> DomainStatus:
        try:
            result = self._result("POST", f"{self._projects(project)}/domains", json={"name": domain})
        except ProviderConflict:
            return self.domain(project, domain)
        return _domain(result)

    # -- projects ----------------------------------------------------------------------------------
    def get_project(self, project: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self._result("GET", self._projects(project))
        except ProviderNotFound:
            return None
        return result

    def ensure_project(self, project: str) -> dict[str, Any]:
        existing = self.get_project(project)
        if existing is not None:
            return existing
        try:
            created: dict[str, Any] = self._result(
                "POST",
                self._projects(),
                json={"name": project, "production_branch": self.production_branch},
            )
        except ProviderConflict:
            adopted = self.get_project(project)
            if adopted is None:
                raise
            return adopted
        return created

    def domain(self, project: str, domain: str) -> DomainStatus:
        return _domain(self._result("GET", f"{self._projects(project)}/domains/{domain}"))

    def deployments(self, project: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self.http.json(
                "GET", f"{self._projects(project)}/deployments", params={"page": page, "per_page": 25}
            )
            found.extend(body["result"])
            info = body.get("result_info") or {}
            if not body["result"] or page >= int(info.get("total_pages", page)):
                return found
            page += 1

    # -- direct upload -----------------------------------------------------------------------------
    def upload_and_create(self, project: str, files_dir: Path) -> dict[str, Any]:
        """Upload what Cloudflare lacks, then create the deployment with the full manifest."""
        token = self._upload_token(project)
        claims = jwt.decode(token, options={"verify_signature": False})
        max_files = int(claims.get("max_file_count_allowed", assets.DEFAULT_MAX_FILE_COUNT))
        if (files_dir / "_worker.js").exists():
            raise InputError(
                f"{files_dir}/_worker.js is a Pages Function bundle; deploy apps with a server part "
                "as a Worker, not as static Pages output"
            )
        files = assets.collect(files_dir, max_files=max_files)
        hashes = sorted({a.hash for a in files})
        missing = set(self._asset_call(project, lambda t: self._check_missing(t, hashes)))
        to_upload = list({a.hash: a for a in files if a.hash in missing}.values())
        self.upload_stats[project] = {
            "files": len(files),
            "uploaded": len(to_upload),
            "bytes": sum(a.size for a in to_upload),
        }
        batches = assets.buckets(to_upload)
        with ThreadPoolExecutor(assets.BULK_UPLOAD_CONCURRENCY, thread_name_prefix="cf-upload") as pool:
            for future in [pool.submit(self._upload_bucket, project, b) for b in batches]:
                future.result()
        try:
            self._asset_call(project, lambda t: self._post_assets("upsert-hashes", t, {"hashes": hashes}))
        except ProviderError as exc:
            # wrangler only warns here: the deployment still works, the files just age out sooner.
            log.warning(self.http.clean(f"upsert-hashes failed, deploying anyway: {exc}"))
        manifest = {a.key: a.hash for a in files}
        # Always multipart/form-data, as the spec says: plain fields are parts without a file name.
        parts: list[tuple[str, tuple[str | None, bytes | str, str | None]]] = [
            ("manifest", (None, json.dumps(manifest), None)),
            ("branch", (None, self.production_branch, None)),
        ]
        parts += [
            (name, (name, (files_dir / name).read_bytes(), "application/octet-stream"))
            for name in FORM_FILES
            if (files_dir / name).is_file()
        ]
        result: dict[str, Any] = self._result("POST", f"{self._projects(project)}/deployments", files=parts)
        return result

    def _upload_bucket(self, project: str, bucket: list[assets.Asset]) -> None:
        payload = assets.upload_payload(bucket)
        self._asset_call(project, lambda t: self._post_assets("upload", t, payload))

    def _check_missing(self, token: str, hashes: list[str]) -> list[str]:
        result: list[str] = self._post_assets("check-missing", token, {"hashes": hashes})["result"]
        return result

    def _post_assets(self, what: str, token: str, body: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.http.json(
            "POST",
            f"/pages/assets/{what}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            idempotent=True,
        )
        return result

    def _upload_token(self, project: str, *, fresh: bool = False) -> str:
        token = self._jwt.get(project)
        if fresh or token is None or _expired(token):
            token = str(self._result("GET", f"{self._projects(project)}/upload-token")["jwt"])
            self.http.add_secret(token)
            self._jwt[project] = token
        return token

    def _asset_call(self, project: str, call: Any) -> Any:
        """Run an asset call with the upload JWT; fetch a new one when it expired (error 8000013)."""
        for attempt in range(3):
            token = self._upload_token(project, fresh=attempt > 0)
            try:
                return call(token)
            except ProviderError as exc:
                if f"code {EXPIRED_UPLOAD_TOKEN}" not in str(exc) or attempt == 2:
                    raise
                log.info("upload token expired; fetching a new one")
        raise AssertionError("unreachable")

    # -- deployments -------------------------------------------------------------------------------
    def get_deployment(self, project: str, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._result("GET", f"{self._projects(project)}/deployments/{deployment_id}")
        return result

    def wait(self, project: str, deployment_id: str) -> Deployment:
        """Poll until the deploy stage succeeds or fails."""

        def live(result: dict[str, Any]) -> bool:
            stage = result.get("latest_stage") or {}
            if stage.get("status") in ("failure", "canceled"):
                raise ProviderError(
                    "cloudflare",
                    f"deployment {deployment_id} of {project} ended with {stage.get('status')} "
                    f"in stage {stage.get('name')}",
                )
            return bool(stage.get("name") == "deploy" and stage.get("status") == "success")

        def not_live(result: dict[str, Any]) -> Exception:
            stage = result.get("latest_stage") or {}
            return ProviderUnavailable(
                "cloudflare",
                f"deployment {deployment_id} of {project} not live after "
                f"{self.deploy_timeout:.0f}s (stage {stage.get('name')} {stage.get('status')})",
            )

        result = poll_until(
            lambda: self.get_deployment(project, deployment_id),
            live,
            interval=self.poll_interval,
            timeout=self.deploy_timeout,
            timed_out=not_live,
        )
        return _deployment(project, result)


def _expired(token: str, leeway: float = 10.0) -> bool:
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return True
    exp = claims.get("exp")
    return exp is not None and float(exp) - leeway <= time.time()


def _deployment(project: str, result: dict[str, Any]) -> Deployment:
    stage = result.get("latest_stage") or {}
    return Deployment(
        provider="cloudflare",
        project=project,
        id=result["id"],
        url=result["url"],
        status=str(stage.get("status", "")),
    )


def _domain(result: dict[str, Any]) -> DomainStatus:
    verification = result.get("verification_data") or {}
    validation = result.get("validation_data") or {}
    details = {f"verification_{k}": str(v) for k, v in verification.items()}
    details.update({f"validation_{k}": str(v) for k, v in validation.items()})
    return DomainStatus(name=result["name"], status=str(result.get("status", "")), verification=details)
