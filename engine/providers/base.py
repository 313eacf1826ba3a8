"""The roles a provider plays in a deployment pipeline, kept small on purpose.

Every method is idempotent by name: ``provision("app-42")`` twice gives the same database, and a
pipeline resumed after a crash adopts what the crashed run created instead of creating a second one.
Cloud modules (turso, neon, cloudflare, vercel) and local ones implement the same protocols.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class DatabaseHandle:
    """How an app reaches its database. ``url`` and ``token`` are secrets: put them in the vault."""

    provider: str
    name: str
    id: str
    url: str
    token: str | None = None
    details: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print the URL (it may hold a password) or the token
        return f"DatabaseHandle(provider={self.provider!r}, name={self.name!r}, id={self.id!r})"


@dataclass(frozen=True)
class Deployment:
    provider: str
    project: str
    id: str
    url: str
    status: str = "success"


@dataclass(frozen=True)
class DomainStatus:
    name: str
    status: str  # provider's own word: "pending", "active", "verified", ...
    verification: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class DatabaseProvider(Protocol):
    name: str

    def provision(self, name: str) -> DatabaseHandle:
        """Create the database, or adopt the existing one of that name, and return fresh credentials."""
        ...

    def find(self, name: str) -> DatabaseHandle | None:
        """The database of that name, or None. Credentials in the handle may be empty."""
        ...

    def suspend(self, name: str) -> None: ...

    def resume(self, name: str) -> None: ...

    def destroy(self, name: str) -> None:
        """Delete it; a database that is already gone is not an error."""
        ...


@runtime_checkable
class CloudHost(Protocol):
    """What the deploy pipeline needs of a cloud host: a deployment that is built and reachable at its
    own URL before production points at it, so a failed check leaves the live one serving."""

    name: str

    def stage(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        """Upload (and, where the provider builds, build) a deployment; production is not changed."""
        ...

    def promote(self, project: str, deployment_id: str) -> Deployment:
        """Point production at a staged or earlier deployment (also how a rollback is done)."""
        ...

    def production_url(self, project: str) -> str: ...

    def exists(self, project: str) -> bool:
        """Whether the project (Vercel) or script (Workers) is there already."""
        ...

    def delete_deployment(self, project: str, deployment_id: str) -> None: ...

    def destroy(self, project: str) -> None: ...

    def add_domain(self, project: str, domain: str) -> DomainStatus:
        """Attach a custom domain (or adopt the attachment there already); status 'active' or 'verified'
        once it serves, 'pending' while its owner's DNS records are awaited, 'failed' when it never will."""
        ...

    def domain_status(self, project: str, domain: str) -> DomainStatus: ...

    def remove_domain(self, project: str, domain: str) -> None: ...

    def preview_headers(self, project: str, deployment_id: str) -> dict[str, str]:
        """Headers a request to a staged deployment needs besides its URL (none on most hosts)."""
        ...

    def close(self) -> None: ...
