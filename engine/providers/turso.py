"""Turso (libSQL) databases through the Platform API (``shared/specs/turso/openapi.json``).

A database lives in a group; ``provision`` makes sure the group exists, finds or creates the database
by name, and mints a database auth token. Suspend blocks reads and writes through the database
configuration, which is what Turso offers in place of stopping a server.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from engine.errors import ProviderConflict, ProviderNotFound
from engine.providers.base import DatabaseHandle
from engine.providers.http import ProviderClient, RequestRetry


@dataclass(frozen=True)
class TursoDatabase:
    name: str
    id: str
    hostname: str
    group: str
    block_reads: bool = False
    block_writes: bool = False


class Turso:
    """``DatabaseProvider`` for Turso. One instance per organization; thread-safe."""

    name = "turso"

    def __init__(
        self,
        org: str,
        token: str,
        *,
        base_url: str = "https://api.turso.tech",
        group: str = "default",
        location: str = "aws-us-east-1",
        token_expiration: str = "never",
        transport: httpx.BaseTransport | None = None,
        retry: RequestRetry | None = None,
    ) -> None:
        self.org, self.group, self.location = org, group, location
        self.token_expiration = token_expiration
        self.http = ProviderClient(
            "turso",
            base_url,
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            transport=transport,
            retry=retry,
        )
        self._group_ready = False

    def close(self) -> None:
        self.http.close()

    @property
    def _org_path(self) -> str:
        return f"/v1/organizations/{self.org}"

    # -- DatabaseProvider ------------------------------------------------------------------------
    def provision(self, name: str, *, seed_file: Path | None = None) -> DatabaseHandle:
        database = self.get(name)
        if database is None:
            database = self.create(name, seed_upload=seed_file is not None)
        token = self.create_token(name)
        if seed_file is not None:
            self.upload(database, token, seed_file)
        return self._handle(database, token)

    def find(self, name: str) -> DatabaseHandle | None:
        database = self.get(name)
        return None if database is None else self._handle(database, None)

    def suspend(self, name: str) -> None:
        self.configure(name, block_reads=True, block_writes=True)

    def resume(self, name: str) -> None:
        self.configure(name, block_reads=False, block_writes=False)

    def destroy(self, name: str) -> None:
        with contextlib.suppress(ProviderNotFound):
            self.http.request("DELETE", f"{self._org_path}/databases/{name}")

    # -- API operations --------------------------------------------------------------------------
    def get(self, name: str) -> TursoDatabase | None:
        try:
            body = self.http.json("GET", f"{self._org_path}/databases/{name}")
        except ProviderNotFound:
            return None
        return _database(body["database"])

    def list(self) -> list[TursoDatabase]:
        body = self.http.json("GET", f"{self._org_path}/databases")
        return [_database(item) for item in body.get("databases", [])]

    def ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            self.http.request("GET", f"{self._org_path}/groups/{self.group}")
        except ProviderNotFound:
            self.http.request(
                "POST",
                f"{self._org_path}/groups",
                json={"name": self.group, "location": self.location},
                idempotent=True,  # a retried create answers 409: the group is there, which is the goal
                ok=[409],
            )
        self._group_ready = True

    def create(self, name: str, *, seed_upload: bool = False) -> TursoDatabase:
        """Create; a 409 (already exists, e.g. our own earlier try that timed out) adopts it."""
        self.ensure_group()
        payload: dict[str, Any] = {"name": name, "group": self.group}
        if seed_upload:
            payload["seed"] = {"type": "database_upload"}
        response = self.http.request(
            "POST", f"{self._org_path}/databases", json=payload, idempotent=True, ok=[409]
        )
        if response.status_code == 409:
            existing = self.get(name)
            if existing is None:
                raise ProviderConflict("turso", f"database {name!r} exists but cannot be read", status=409)
            return existing
        created = response.json()["database"]
        return TursoDatabase(
            name=created["Name"], id=created["DbId"], hostname=created["Hostname"], group=self.group
        )

    def create_token(
        self, name: str, *, authorization: Literal["full-access", "read-only"] = "full-access"
    ) -> str:
        body = self.http.json(
            "POST",
            f"{self._org_path}/databases/{name}/auth/tokens",
            params={"expiration": self.token_expiration, "authorization": authorization},
            idempotent=True,  # minting a second token is harmless
        )
        token: str = body["jwt"]
        self.http.add_secret(token)
        return token

    def configure(self, name: str, **config: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.http.json(
            "PATCH", f"{self._org_path}/databases/{name}/configuration", json=config, idempotent=True
        )
        return result

    def usage(self, name: str, *, start: str | None = None, end: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in (("from", start), ("to", end)) if v}
        body: dict[str, Any] = self.http.json(
            "GET", f"{self._org_path}/databases/{name}/usage", params=params
        )
        return dict(body.get("database", {}))

    def upload(self, database: TursoDatabase, token: str, sqlite_file: Path) -> None:
        """``POST https://{hostname}/v1/upload`` with the database token (``upload.mdx``)."""
        data = sqlite_file.read_bytes()
        self.http.request(
            "POST",
            f"{self._db_base(database.hostname)}/v1/upload",
            content=data,
            headers={"Authorization": f"Bearer {token}", "Content-Length": str(len(data))},
            idempotent=True,  # replaces the whole file: repeating it is harmless
        )

    # -- helpers ---------------------------------------------------------------------------------
    def _db_base(self, hostname: str) -> str:
        # Real Turso serves databases over TLS; an emulator on plain http serves them over plain http.
        scheme = self.http.base_url.scheme or "https"
        return f"{scheme}://{hostname}"

    def _handle(self, database: TursoDatabase, token: str | None) -> DatabaseHandle:
        base = self._db_base(database.hostname)
        url = f"libsql://{database.hostname}" if base.startswith("https://") else base
        if "/" in database.hostname:  # an emulator's host with a path: libSQL clients resolve
            url += "/"  # "v3/pipeline" relative to the URL, so without the slash its last part is lost
        return DatabaseHandle(
            provider=self.name,
            name=database.name,
            id=database.id,
            url=url,
            token=token,
            details={"hostname": database.hostname, "group": database.group},
        )


def _database(item: dict[str, Any]) -> TursoDatabase:
    return TursoDatabase(
        name=item["Name"],
        id=item["DbId"],
        hostname=item["Hostname"],
        group=item.get("group", ""),
        block_reads=bool(item.get("block_reads")),
        block_writes=bool(item.get("block_writes")),
    )
