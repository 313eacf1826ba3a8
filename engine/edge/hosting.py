"""``--host local``: this machine's edge host as a ``HostingProvider``, like the clouds' hosts.

Its deployments are kept under the engine's deployment ids, suspend stops the app where it runs, and a
custom domain is routed once the engine's own DNS check passes; ``HOST_CAPABILITIES["local"]`` says so
to the pipelines. A deployment with an app server is staged from its build with ``EdgeHost.stage``.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from engine import domains
from engine.errors import Conflict, NotFound, TerminalError
from engine.providers.base import Deployment, DomainStatus
from engine.rules import HOST_CAPABILITIES

if TYPE_CHECKING:
    from engine.edge.host import EdgeHost
    from engine.store import Store

# The engine's DNS check in the words a cloud host uses for a domain's state.
DOMAIN_STATES = {"valid": "active", "invalid": "failed"}


class LocalEdge:
    name = "local"
    capabilities = HOST_CAPABILITIES["local"]

    def __init__(self, edge: EdgeHost, store: Store, *, resolvers: Sequence[tuple[str, int]] = ()) -> None:
        self.edge, self.store, self.resolvers = edge, store, resolvers

    def stage(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        """A static deployment of ``files_dir`` (it has no server, so ``env`` has nothing to reach)."""
        deployment_id = f"static-{secrets.token_hex(8)}"
        self.edge.stage(project, deployment_id, str(files_dir))
        return Deployment(self.name, project, deployment_id, self.edge.preview_url(project, deployment_id))

    def promote(self, project: str, deployment_id: str) -> Deployment:
        """Production serves a staged deployment (its server started first); also how a rollback is done,
        to a deployment the edge host still keeps (it prunes old ones)."""
        if deployment_id not in {info.deployment_id for info in self.edge.deployments(project)}:
            raise TerminalError(f"deployment {deployment_id} is no longer kept on the edge host")
        self.edge.promote(project, deployment_id)
        return Deployment(self.name, project, deployment_id, self.production_url(project))

    def production_url(self, project: str) -> str:
        return self.edge.url(project)

    def exists(self, project: str) -> bool:
        return project in self.edge.apps()

    def delete_deployment(self, project: str, deployment_id: str) -> None:
        with contextlib.suppress(NotFound, Conflict):  # gone already, or live (never deleted)
            self.edge.discard(project, deployment_id)

    def destroy(self, project: str) -> None:
        with contextlib.suppress(NotFound):
            self.edge.remove_app(project)

    def add_domain(self, project: str, domain: str) -> DomainStatus:
        added = domains.add(self.store, project, domain, edge_hostname=self.edge.hostname)
        return self._status(added)

    def domain_status(self, project: str, domain: str) -> DomainStatus:
        checked = domains.check(
            self.store,
            project,
            domain,
            resolvers=self.resolvers,
            router=self.edge,
            edge_hostname=self.edge.hostname,
        )
        return self._status(checked)

    def remove_domain(self, project: str, domain: str) -> None:
        domains.remove(self.store, project, domain, router=self.edge, edge_hostname=self.edge.hostname)

    def preview_headers(self, project: str, deployment_id: str) -> dict[str, str]:
        return {}

    def suspend(self, project: str) -> str:
        self.edge.suspend(project)
        return "answers 503 with a suspended page"

    def resume(self, project: str, deployment_id: str) -> str:
        self.edge.resume(project)  # the live deployment never changed
        return "serving again"

    def close(self) -> None:
        pass  # the edge host is the engine's, started and stopped with it

    @staticmethod
    def _status(domain: domains.Domain) -> DomainStatus:
        records = {f"{r['type']} {r['name']}": r["value"] for r in domain.records()}
        return DomainStatus(domain.domain, DOMAIN_STATES.get(domain.dns_status, "pending"), records)
