"""Which provider serves a deployment's database and hosting choice, built from the engine's own settings, and
the provider plan limits preflight checks before anything is created."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import domains
from engine.errors import ConfigError, InputError
from engine.providers.base import (
    DatabaseProvider,
    Deployment,
    DomainStatus,
    HostingProvider,
    serve_suspended_page,
)
from engine.records import App
from engine.rules import HOST_CAPABILITIES, database_kind, host_kind

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.providers.cloudflare_workers import CloudflareWorkers
    from engine.store import Store
    from pipelines.services import StepServices


def database_provider(engine: StepServices, kind: str, app_name: str) -> DatabaseProvider:
    settings = engine.settings
    if kind == "local-libsql":
        from engine.providers.local_libsql import LocalLibsql

        # One folder per app: the app's sandboxed server gets its own folder and no other app's.
        return LocalLibsql(settings.workspace / "databases" / app_name)
    if kind == "local-postgres":
        from engine.providers.local_postgres import LocalPostgres

        return LocalPostgres(settings.postgres_admin_url)
    if kind == "turso":
        from engine.providers.turso import Turso

        if not (settings.turso_org_id and settings.turso_api_token):
            raise ConfigError("--db turso needs TURSO_ORG_ID and TURSO_API_TOKEN")
        return Turso(
            settings.turso_org_id,
            settings.turso_api_token.get_secret_value(),
            base_url=settings.turso_api_url,
        )
    if kind == "neon":
        from engine.providers.neon import Neon

        if settings.neon_api_key is None:
            raise ConfigError("--db neon needs NEON_API_KEY")
        return Neon(settings.neon_api_key.get_secret_value(), base_url=settings.neon_api_url)
    database_kind(kind)  # an unknown kind is refused with the ones there are
    raise InputError(f"--db {kind} has no provider: its database is the URL the user gave")


@contextmanager
def using_database(engine: StepServices, kind: str, app_name: str) -> Iterator[DatabaseProvider]:
    """The provider for one step; cloud clients hold connection pools, so they are closed after."""
    provider = database_provider(engine, kind, app_name)
    try:
        yield provider
    finally:
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def hosting_provider(engine: StepServices, kind: str) -> HostingProvider:
    settings = engine.settings
    if kind == "local":
        from engine.domains import parse_resolvers
        from engine.edge.hosting import LocalEdge

        return LocalEdge(engine.edge, engine.store, resolvers=parse_resolvers(settings.dns_resolvers))
    if kind == "vercel":
        from engine.providers.vercel import Vercel

        if settings.vercel_token is None:
            raise ConfigError("--host vercel needs VERCEL_TOKEN")
        return Vercel(settings.vercel_token.get_secret_value(), base_url=settings.vercel_api_url)
    if kind == "cloudflare":
        if not (settings.cloudflare_account_id and settings.cloudflare_api_token):
            raise ConfigError("--host cloudflare needs CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN")
        return CloudflareHosting(engine.store, settings)
    host_kind(kind)  # an unknown kind is refused with the ones there are
    raise InputError(f"host {kind!r} has no provider")


@contextmanager
def using_host(engine: StepServices, kind: str) -> Iterator[HostingProvider]:
    provider = hosting_provider(engine, kind)
    try:
        yield provider
    finally:
        provider.close()


class CloudflareHosting:
    """``--host cloudflare``: each app as its own Worker or as a user Worker in the Workers for Platforms
    dispatch namespace, as ``cloudflare_hosting`` records (a new app as ``engine.costs.limits.cloudflare_mode``
    decides). Deploy, rollback, suspend, resume and destroy are the same calls on either."""

    name = "cloudflare"
    capabilities = HOST_CAPABILITIES["cloudflare"]

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store, self.settings = store, settings
        self._clients: dict[str, CloudflareWorkers] = {}

    def mode(self, project: str) -> str:
        from engine.costs.limits import cloudflare_mode

        return cloudflare_mode(
            self.store,
            project,
            setting=self.settings.cloudflare_mode,
            platforms_after=self.settings.cloudflare_platforms_after,
        )

    def client(self, mode: str) -> CloudflareWorkers:
        if mode not in self._clients:
            settings = self.settings
            assert settings.cloudflare_account_id and settings.cloudflare_api_token
            token = settings.cloudflare_api_token.get_secret_value()
            if mode == "platforms":
                from engine.providers.cloudflare_platforms import CloudflarePlatforms

                if not settings.cloudflare_apps_zone:
                    raise ConfigError(
                        "LAUNCHDECK_CLOUDFLARE_APPS_ZONE: Workers for Platforms serves apps at <app>.<zone>; name a "
                        "zone on this Cloudflare account (or set LAUNCHDECK_CLOUDFLARE_MODE=workers)"
                    )
                self._clients[mode] = CloudflarePlatforms(
                    settings.cloudflare_account_id,
                    token,
                    namespace=settings.cloudflare_dispatch_namespace,
                    apps_zone=settings.cloudflare_apps_zone,
                    limits={
                        "cpuMs": settings.cloudflare_user_cpu_ms,
                        "subRequests": settings.cloudflare_user_subrequests,
                    },
                    base_url=settings.cloudflare_api_url,
                )
            else:
                from engine.providers.cloudflare_workers import CloudflareWorkers

                self._clients[mode] = CloudflareWorkers(
                    settings.cloudflare_account_id, token, base_url=settings.cloudflare_api_url
                )
        return self._clients[mode]

    def _for(self, project: str) -> CloudflareWorkers:
        return self.client(self.mode(project))

    def stage(
        self, project: str, files_dir: Path, env: Mapping[str, str], *, framework: str | None = None
    ) -> Deployment:
        from engine.costs.limits import record_cloudflare_mode

        mode = self.mode(project)
        staged = self.client(mode).stage(project, files_dir, env, framework=framework)
        record_cloudflare_mode(self.store, project, mode)  # the app's scripts now live there
        return staged

    def promote(self, project: str, deployment_id: str) -> Deployment:
        return self._for(project).promote(project, deployment_id)

    def suspend(self, project: str) -> str:
        return serve_suspended_page(self, project)

    def resume(self, project: str, deployment_id: str) -> str:
        self.promote(project, deployment_id)
        return f"{self.name} production serves deployment {deployment_id} again"

    def production_url(self, project: str) -> str:
        return self._for(project).production_url(project)

    def preview_headers(self, project: str, deployment_id: str) -> dict[str, str]:
        return self._for(project).preview_headers(project, deployment_id)

    def exists(self, project: str) -> bool:
        return self._for(project).exists(project)

    def delete_deployment(self, project: str, deployment_id: str) -> None:
        self._for(project).delete_deployment(project, deployment_id)

    def destroy(self, project: str) -> None:
        # The app keeps its recorded mode: its last month is still costed on the plan it ran on.
        client = self._for(project)
        client.destroy(project)
        for domain in domains.cloud_domains_of(self.store, project):
            client.remove_domain(project, domain)  # a custom hostname is the zone's, not the script's
        domains.forget_cloud_domains(self.store, project)

    def add_domain(self, project: str, domain: str) -> DomainStatus:
        return self._for(project).add_domain(project, domain)

    def domain_status(self, project: str, domain: str) -> DomainStatus:
        client: Any = self._for(project)
        status: DomainStatus = client.domain_status(project, domain)
        return status

    def remove_domain(self, project: str, domain: str) -> None:
        client: Any = self._for(project)
        client.remove_domain(project, domain)

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def check_plan_limits(engine: StepServices, params: Mapping[str, Any], app: App) -> None:
    """Refuse a deploy that would go over a provider plan's limit, before anything is created: a new Turso
    database or Neon project, a new Worker (or user Worker) on Cloudflare."""
    from engine.costs.limits import check_room, recorded_cloudflare_mode

    store, app_name = engine.store, str(app.name)
    database = params.get("db")
    if database in ("turso", "neon") and not (app.database_provider == database and app.database_id):
        check_room(store, str(database))
    if params.get("host") == "cloudflare" and recorded_cloudflare_mode(store, app_name) is None:
        hosting = CloudflareHosting(store, engine.settings)
        mode = hosting.mode(app_name)
        check_room(store, "cloudflare" if mode == "workers" else "cloudflare-platforms")
        if mode == "platforms":
            hosting.client(mode).close()  # a missing apps zone fails here, with the setting to set


# -- a custom domain, verified before production points at a deployment ---------------------------------

DOMAIN_WAIT_SECONDS = 120.0  # how long a deploy waits for a domain's validation before it gives up
DOMAIN_POLL_SECONDS = 3.0


def verify_domain_before_promote(
    engine: StepServices, host: Any, app: str, domain: str, log: Any, *, kind: str
) -> str:
    """Attach ``domain`` to the app on its cloud host (created, or the existing attachment adopted) and poll
    its validation and certificate until it is active. Production is not touched here: a domain that fails
    is removed and the deploy fails; one still pending when the wait ends fails the deploy with the records
    its owner must publish (the attachment stays, so the next deploy finds it validated)."""
    import time

    from engine.errors import ProviderError, TerminalError

    name = domains.normalize_domain(domain, edge_hostname=engine.settings.edge_hostname)
    owner = domains.app_of_domain(engine.store, name)
    if owner is not None and owner != app:
        raise TerminalError(f"{name} already belongs to {owner}; remove it there first. Nothing was changed.")
    try:
        status = host.add_domain(app, name)
    except (ProviderError, InputError) as exc:
        raise TerminalError(
            f"{name} could not be attached on {kind}: {exc}. Production was not changed."
        ) from None
    for record, value in status.verification.items():
        if record.split(" ")[0] in ("CNAME", "TXT"):
            log(f"DNS record for {name}: {record} -> {value}")
    deadline = time.monotonic() + DOMAIN_WAIT_SECONDS
    while status.status not in ("active", "verified", "failed") and time.monotonic() < deadline:
        time.sleep(DOMAIN_POLL_SECONDS)
        status = host.domain_status(app, name)
    domains.record_cloud_domain(engine.store, app, status, kind)
    if status.status == "failed":
        host.remove_domain(app, name)
        why = status.verification.get("errors") or (
            f"hostname {status.verification.get('hostname status')}, "
            f"certificate {status.verification.get('certificate status')}"
        )
        raise TerminalError(
            f"{name} failed validation on {kind} ({why}); it was removed. Production was not changed."
        )
    if status.status not in ("active", "verified"):
        records = "; ".join(
            f"{k} -> {v}" for k, v in status.verification.items() if k.split(" ")[0] in ("CNAME", "TXT")
        )
        raise TerminalError(
            f"{name} is not validated yet after {DOMAIN_WAIT_SECONDS:.0f} s: publish {records}, then deploy again. "
            "Production was not changed."
        )
    domains.set_custom_domain(engine.store, app, name)
    return f"{name} is active on {kind}"
