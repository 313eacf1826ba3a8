"""The roles a provider plays in a deployment pipeline, kept small on purpose.

Every method is idempotent by name: ``provision("app-42")`` twice gives the same database, and a
pipeline resumed after a crash adopts what the crashed run created instead of creating a second one.
Cloud modules (turso, neon, cloudflare, vercel) and local ones (libSQL files, PostgreSQL, the edge host)
implement the same protocols; what a host can do is declared in its ``capabilities``
(``engine.rules.HostCapabilities``), which callers ask instead of its name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from engine.rules import HostCapabilities


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
class HostingProvider(Protocol):
    """What the pipelines need of a host (a cloud's or this machine's edge host): a deployment that is
    staged and reachable at its own URL before production points at it, so a failed check leaves the
    live one serving."""

    name: str
    capabilities: HostCapabilities

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

    def suspend(self, project: str) -> str:
        """Production stops serving the app (nothing is deleted); returns what it serves instead."""
        ...

    def resume(self, project: str, deployment_id: str) -> str:
        """Production serves ``deployment_id`` (the live deployment, by the host's id) again; says so."""
        ...

    def close(self) -> None: ...


SUSPENDED_PAGE = (
    "<!doctype html><title>Suspended</title><h1>This app is suspended</h1>"
    "<p>Its owner can resume it from the Launchdeck console.</p>\n"
)


def serve_suspended_page(host: HostingProvider, project: str) -> str:
    """Suspend on a cloud host: its published API has no "pause", so production is pointed at a one-page
    static deployment, and resume points it back at the live one (nothing is rebuilt either way)."""
    with tempfile.TemporaryDirectory(prefix="launchdeck-suspended-") as folder:
        (Path(folder) / "index.html").write_text(SUSPENDED_PAGE)
        page = host.stage(project, Path(folder), {})
        host.promote(project, page.id)
    return f"{host.name} production serves the suspended page (deployment {page.id})"
