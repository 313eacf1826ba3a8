"""Neon serverless Postgres through API v2 (``shared/specs/neon/openAPIDefinition.json``).

One Neon project per app database: the project's default branch holds one database owned by one role,
and its read-write compute endpoint is what suspend and resume act on. Neon answers 423 while another
operation on the project runs ("wait until the operations are finished", ``CreatedProject``); that and
503 are retried for every method, everything else on POST/PATCH/DELETE is not retried blind.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import httpx

from engine.errors import ProviderError, ProviderNotFound, ProviderUnavailable
from engine.providers.base import DatabaseHandle
from engine.providers.http import ProviderClient, RequestRetry

# The spec's GeneralError: POST, PATCH, DELETE and PUT are not safe to repeat; 503 and 423 always are.
NEON_RETRY = RequestRetry(
    attempts=8,
    base_delay=0.5,
    max_delay=20.0,
    retry_any_method=frozenset({423, 429, 503}),
    idempotent_methods=frozenset({"GET", "HEAD", "OPTIONS"}),
)


@dataclass(frozen=True)
class NeonProject:
    id: str
    name: str
    region_id: str
    pg_version: int


class Neon:
    """``DatabaseProvider`` for Neon. One instance per API key; thread-safe."""

    name = "neon"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = "https://console.neon.tech/api/v2",
        region_id: str = "aws-us-east-2",
        pg_version: int = 16,
        database_name: str = "app",
        role_name: str = "app_owner",
        org_id: str | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
        adopt_wait: float = 10.0,
    ) -> None:
        self.adopt_wait = adopt_wait
        self.region_id, self.pg_version = region_id, pg_version
        self.database_name, self.role_name, self.org_id = database_name, role_name, org_id
        self.http = ProviderClient(
            "neon",
            base_url,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            secrets=[api_key],
            transport=transport,
            retry=retry or NEON_RETRY,
        )

    def close(self) -> None:
        self.http.close()

    # -- DatabaseProvider ------------------------------------------------------------------------
    def provision(self, name: str) -> DatabaseHandle:
        project = self.get(name)
        if project is not None:
            return self._handle(project, self.connection_uri(project.id))
        try:
            project, uri = self.create(name)
        except ProviderUnavailable:
            # A create that timed out may still happen: adopt it rather than make a second one.
            project = self._await_project(name)
            if project is None:
                raise
            uri = self.connection_uri(project.id)
        return self._handle(project, uri)

    def _await_project(self, name: str) -> NeonProject | None:
        deadline = time.monotonic() + self.adopt_wait
        while True:
            project = self.get(name)
            if project is not None or time.monotonic() >= deadline:
                return project
            time.sleep(0.25)

    def find(self, name: str) -> DatabaseHandle | None:
        project = self.get(name)
        return None if project is None else self._handle(project, "")

    def suspend(self, name: str) -> None:
        self._endpoint_action(name, "suspend")

    def resume(self, name: str) -> None:
        self._endpoint_action(name, "start")

    def destroy(self, name: str) -> None:
        project = self.get(name)
        if project is None:
            return
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", f"/projects/{project.id}")

    # -- API operations --------------------------------------------------------------------------
    def get(self, name: str) -> NeonProject | None:
        """The project with exactly this name (``search`` also matches parts of names and ids)."""
        params: dict[str, Any] = {"search": name, "limit": 400}
        if self.org_id:
            params["org_id"] = self.org_id
        while True:
            body = self.http.json("GET", "/projects", params=params)
            for item in body.get("projects", []):
                if item["name"] == name:
                    return _project(item)
            cursor = (body.get("pagination") or {}).get("cursor")
            if not cursor or not body.get("projects"):
                return None
            params["cursor"] = cursor

    def create(self, name: str) -> tuple[NeonProject, str]:
        project: dict[str, Any] = {
            "name": name,
            "region_id": self.region_id,
            "pg_version": self.pg_version,
            "branch": {"database_name": self.database_name, "role_name": self.role_name},
        }
        if self.org_id:
            project["org_id"] = self.org_id
        body = self.http.json("POST", "/projects", json={"project": project}, idempotent=False)
        uris = body.get("connection_uris") or []
        if not uris:
            raise ProviderError("neon", f"project {name!r} was created without a connection URI")
        uri: str = uris[0]["connection_uri"]
        self.http.add_secret(uri)
        self.http.add_secret(uris[0].get("connection_parameters", {}).get("password"))
        return _project(body["project"]), uri

    def connection_uri(self, project_id: str, *, pooled: bool = False) -> str:
        body = self.http.json(
            "GET",
            f"/projects/{project_id}/connection_uri",
            params={
                "database_name": self.database_name,
                "role_name": self.role_name,
                "pooled": str(pooled).lower(),
            },
        )
        uri: str = body["uri"]
        self.http.add_secret(uri)
        return uri

    def endpoints(self, project_id: str) -> list[dict[str, Any]]:
        body = self.http.json("GET", f"/projects/{project_id}/endpoints")
        return list(body.get("endpoints", []))

    def consumption(
        self, project_ids: list[str], *, start: str, end: str, granularity: str = "daily"
    ) -> list[dict[str, Any]]:
        """Per-project consumption history (Scale plans and above), all pages."""
        params: dict[str, Any] = {
            "project_ids": ",".join(project_ids),
            "from": start,
            "to": end,
            "granularity": granularity,
            "limit": 100,
        }
        projects: list[dict[str, Any]] = []
        while True:
            body = self.http.json("GET", "/consumption_history/projects", params=params)
            projects.extend(body.get("projects", []))
            cursor = (body.get("pagination") or {}).get("cursor")
            if not cursor or not body.get("projects"):
                return projects
            params["cursor"] = cursor

    # -- helpers ---------------------------------------------------------------------------------
    def _endpoint_action(self, name: str, action: str) -> None:
        project = self.get(name)
        if project is None:
            raise ProviderNotFound("neon", f"no project named {name!r}", status=404)
        for endpoint in self.endpoints(project.id):
            # Suspending an idle endpoint or starting an active one is a no-op at Neon: repeatable.
            self.http.request(
                "POST", f"/projects/{project.id}/endpoints/{endpoint['id']}/{action}", idempotent=True
            )

    def _handle(self, project: NeonProject, uri: str) -> DatabaseHandle:
        return DatabaseHandle(
            provider=self.name,
            name=project.name,
            id=project.id,
            url=uri,
            details={"region_id": project.region_id, "pg_version": str(project.pg_version)},
        )


def _project(item: dict[str, Any]) -> NeonProject:
    return NeonProject(
        id=item["id"], name=item["name"], region_id=item["region_id"], pg_version=int(item["pg_version"])
    )
