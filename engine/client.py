"""Typed httpx client of the engine's HTTP API: the only way the console and the CLI reach the engine.

Error bodies (``{"error": {"type", "message"}}``) are mapped back to the ``engine.errors`` class of the
same name, so callers handle the same exceptions on both sides of the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from engine import api_types as T
from engine import errors
from engine.retry import parse_retry_after
from engine.rules import DEFAULT_DATABASE, DEFAULT_HOST

FINISHED = ("succeeded", "failed", "cancelled")


def _error_class(name: str) -> type[errors.LaunchdeckError]:
    candidate = getattr(errors, name, None)
    if isinstance(candidate, type) and issubclass(candidate, errors.LaunchdeckError):
        return candidate
    return errors.LaunchdeckError


class EngineClient:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.TransientError(
                f"the engine at {self.base_url} did not answer ({type(exc).__name__}); is it running?"
            ) from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                kind, message = str(error["type"]), str(error["message"])
            except (ValueError, KeyError, TypeError):
                kind, message = (
                    "LaunchdeckError",
                    f"engine answered {response.status_code}: {response.text[:300]}",
                )
            cls = _error_class(kind)
            if cls is errors.LockTimeout:
                raise errors.LockTimeout(message, holder="")
            if cls is errors.RateLimited:
                hint = parse_retry_after(response.headers.get("Retry-After"))
                raise errors.RateLimited(message, retry_after=1.0 if hint is None else hint)
            raise cls(message)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- engine -----------------------------------------------------------------------------------

    def healthz(self) -> T.Health:
        result: T.Health = self.request("GET", "/healthz")
        return result

    def issue_token(
        self,
        name: str,
        role: str,
        principal: str | None = None,
        *,
        users: list[str] | None = None,
        expires_in_days: float | None = None,
    ) -> str:
        return str(
            self.issue_token_record(name, role, principal, users=users, expires_in_days=expires_in_days)[
                "token"
            ]
        )

    def issue_token_record(
        self,
        name: str,
        role: str,
        principal: str | None = None,
        *,
        users: list[str] | None = None,
        expires_in_days: float | None = None,
    ) -> T.IssuedToken:
        body = {
            "name": name,
            "role": role,
            "principal": principal,
            "users": users,
            "expires_in_days": expires_in_days,
        }
        result: T.IssuedToken = self.request(
            "POST", "/api/tokens", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    def tokens(self) -> list[T.TokenInfo]:
        result: list[T.TokenInfo] = self.request("GET", "/api/tokens")
        return result

    def revoke_token(self, token_id: str) -> T.TokenInfo:
        result: T.TokenInfo = self.request("DELETE", f"/api/tokens/{token_id}")
        return result

    # -- uploads and tiers ------------------------------------------------------------------------

    def upload(
        self, path: Path, kind: str = "app", progress: Callable[[int, int], None] | None = None
    ) -> T.UploadInfo:
        """Send a file as an upload (streamed), calling ``progress(sent, total)`` as it goes."""
        total = path.stat().st_size

        def chunks() -> Iterator[bytes]:
            sent = 0
            with path.open("rb") as handle:
                while block := handle.read(256 * 1024):
                    sent += len(block)
                    yield block
                    if progress:
                        progress(sent, total)

        result: T.UploadInfo = self.request(
            "POST",
            "/api/uploads",
            params={"kind": kind},
            content=chunks(),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(total)},
        )
        return result

    def subscription(self, user_id: str) -> T.Subscription:
        result: T.Subscription = self.request("GET", f"/api/subscriptions/{user_id}")
        return result

    def override_tier(self, user_id: str, tier: str, reason: str) -> T.TierOverride:
        result: T.TierOverride = self.request(
            "PUT", f"/api/subscriptions/{user_id}/tier", json={"tier": tier, "reason": reason}
        )
        return result

    def databases(self) -> list[T.DatabaseInfo]:
        result: list[T.DatabaseInfo] = self.request("GET", "/api/databases")
        return result

    def rotate_vault(self) -> T.VaultRotation:
        result: T.VaultRotation = self.request("POST", "/api/vault/rotate")
        return result

    # -- apps and deployments ---------------------------------------------------------------------

    def apps(self, status: str | None = None) -> list[T.App]:
        result: list[T.App] = self.request("GET", "/api/apps", params={"status": status} if status else None)
        return result

    def app(self, name: str) -> T.AppDetail:
        result: T.AppDetail = self.request("GET", f"/api/apps/{name}")
        return result

    def put_secret(self, app: str, name: str, value: str) -> None:
        self.request("PUT", f"/api/apps/{app}/secrets/{name}", json={"value": value})

    def start_pipeline(
        self, app: str, pipeline: str, params: dict[str, Any], *, lock_timeout: float | None = None
    ) -> str:
        body = {"app": app, "pipeline": pipeline, "params": params, "lock_timeout": lock_timeout}
        return str(self.request("POST", "/api/deployments", json=body)["deployment_id"])

    def status(self, deployment_id: str) -> T.DeploymentStatus:
        result: T.DeploymentStatus = self.request("GET", f"/api/deploy/status/{deployment_id}")
        return result

    def cancel(self, deployment_id: str) -> bool:
        return bool(self.request("POST", f"/api/deployments/{deployment_id}/cancel")["cancel_requested"])

    def wait(self, deployment_id: str, timeout: float = 1800.0, poll: float = 0.25) -> T.DeploymentStatus:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(deployment_id)
            if status["deployment"]["status"] in FINISHED or time.monotonic() > deadline:
                return status
            time.sleep(poll)

    def audit(self, limit: int = 100) -> list[T.AuditEntry]:
        result: list[T.AuditEntry] = self.request("GET", "/api/audit", params={"limit": limit})
        return result

    # -- session ----------------------------------------------------------------------------------

    def whoami(self) -> T.Whoami:
        """The caller's role and principal; raises ``AuthError`` for a wrong, revoked or expired token."""
        result: T.Whoami = self.request("GET", "/api/whoami")
        return result

    # -- web deployment and lifecycle -------------------------------------------------------------

    def deploy_web(
        self,
        source_path: str | None = None,
        *,
        app: str,
        upload_id: str | None = None,
        preview_upload_id: str | None = None,
        user: str | None = None,
        db: str = DEFAULT_DATABASE,
        host: str = DEFAULT_HOST,
        domain: str | None = None,
        env: dict[str, str] | None = None,
        tier: str | None = None,
        owner: str | None = None,
        import_data: bool = True,
        seed: bool = False,
        root: str | None = None,
        database_url: str | None = None,
        preview: str | None = None,
    ) -> T.Started:
        """Start a web deployment (``POST /api/deploy/web``); returns ``{"deployment_id", "app", "status_url"}``."""
        body = {
            "app": app,
            "source_path": source_path,
            "upload_id": upload_id,
            "preview_upload_id": preview_upload_id,
            "user": user,
            "db": db,
            "host": host,
            "domain": domain,
            "env": env or {},
            "tier": tier,
            "owner": owner,
            "import_data": import_data,
            "seed": seed,
            "root": root,
            "database_url": database_url,
            "preview": preview,
        }
        result: T.Started = self.request(
            "POST", "/api/deploy/web", json={k: v for k, v in body.items() if v is not None}
        )
        return result

    def suspend(self, app: str) -> T.Started:
        result: T.Started = self.request("POST", f"/api/apps/{app}/suspend")
        return result

    def resume(self, app: str) -> T.Started:
        result: T.Started = self.request("POST", f"/api/apps/{app}/resume")
        return result

    def rollback(self, app: str, to: str | None = None) -> T.Started:
        result: T.Started = self.request("POST", f"/api/apps/{app}/rollback", json={"to": to})
        return result

    def destroy(self, app: str) -> T.Started:
        result: T.Started = self.request("POST", f"/api/apps/{app}/destroy")
        return result

    def recent_deployments(self, limit: int = 50) -> list[T.RecentDeployment]:
        result: list[T.RecentDeployment] = self.request(
            "GET", "/api/console/deployments", params={"limit": limit}
        )
        return result

    # -- analytics (read-only: operator and finance) ----------------------------------------------

    def workspace_summary(self) -> T.WorkspaceSummary:
        result: T.WorkspaceSummary = self.request("GET", "/api/analytics/workspace")
        return result

    def tiers(self) -> dict[str, T.TierInfo]:
        """In order from free to enterprise."""
        result: dict[str, T.TierInfo] = self.request("GET", "/api/analytics/tiers")
        return result

    def deploy_estimate(self, tier: str, *, storage_bytes: int | None = None) -> T.DeployEstimate:
        params: dict[str, Any] = {"tier": tier}
        if storage_bytes is not None:
            params["storage_bytes"] = storage_bytes
        result: T.DeployEstimate = self.request("GET", "/api/analytics/estimate", params=params)
        return result

    def costs(self, month: str | None = None, by: str = "app") -> dict[str, Any]:
        params = {"by": by, **({"month": month} if month else {})}
        result: dict[str, Any] = self.request("GET", "/api/analytics/costs", params=params)
        return result

    def margins(self, month: str | None = None, least: int = 20) -> dict[str, Any]:
        params: dict[str, Any] = {"least": least, **({"month": month} if month else {})}
        result: dict[str, Any] = self.request("GET", "/api/analytics/margins", params=params)
        return result

    def margin_history(self, months: int = 3) -> dict[str, Any]:
        result: dict[str, Any] = self.request(
            "GET", "/api/analytics/margins/history", params={"months": months}
        )
        return result

    def usage_series(
        self, *, app: str | None = None, provider: str | None = None, days: int = 90
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"days": days}
        if app:
            params["app"] = app
        if provider:
            params["provider"] = provider
        result: dict[str, Any] = self.request("GET", "/api/analytics/usage", params=params)
        return result

    def price_sheets(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/analytics/price-sheets")
        return result

    def simulate(self, **assumptions: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/analytics/simulate", json=assumptions)
        return result

    def simulate_architectures(self) -> list[str]:
        result: list[str] = self.request("GET", "/api/analytics/simulate/architectures")
        return result

    def fleet(
        self, *, owner: str | None = None, contains: str | None = None, limit: int | None = None
    ) -> T.FleetPage:
        """Apps with this month's cost, as ``{"columns", "rows", "total"}`` (compact for large fleets)."""
        params: dict[str, Any] = {}
        if owner:
            params["owner"] = owner
        if contains:
            params["contains"] = contains
        if limit:
            params["limit"] = limit
        result: T.FleetPage = self.request("GET", "/api/console/fleet", params=params)
        return result
