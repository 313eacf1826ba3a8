"""Typed httpx client of the engine's HTTP API: the only way the console and the CLI reach the engine.

Error bodies (``{"error": {"type", "message"}}``) are mapped back to the ``engine.errors`` class of the
same name, so callers handle the same exceptions on both sides of the wire.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from engine import errors

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
            raise cls(message)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- engine -----------------------------------------------------------------------------------

    def healthz(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/healthz")
        return result

    def issue_token(self, name: str, role: str, principal: str | None = None) -> str:
        body = {"name": name, "role": role, "principal": principal}
        return str(self.request("POST", "/api/tokens", json=body)["token"])

    def rotate_vault(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("POST", "/api/vault/rotate")
        return result

    # -- apps and deployments ---------------------------------------------------------------------

    def apps(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/apps")
        return result

    def app(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/apps/{name}")
        return result

    def put_secret(self, app: str, name: str, value: str) -> None:
        self.request("PUT", f"/api/apps/{app}/secrets/{name}", json={"value": value})

    def start_pipeline(
        self, app: str, pipeline: str, params: dict[str, Any], *, lock_timeout: float | None = None
    ) -> str:
        body = {"app": app, "pipeline": pipeline, "params": params, "lock_timeout": lock_timeout}
        return str(self.request("POST", "/api/deployments", json=body)["deployment_id"])

    def status(self, deployment_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", f"/api/deploy/status/{deployment_id}")
        return result

    def cancel(self, deployment_id: str) -> bool:
        return bool(self.request("POST", f"/api/deployments/{deployment_id}/cancel")["cancel_requested"])

    def wait(self, deployment_id: str, timeout: float = 1800.0, poll: float = 0.25) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            status = self.status(deployment_id)
            if status["deployment"]["status"] in FINISHED or time.monotonic() > deadline:
                return status
            time.sleep(poll)

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.request("GET", "/api/audit", params={"limit": limit})
        return result
