"""Which provider serves a deployment's database choice, built from the engine's own settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine.errors import ConfigError, InputError
from engine.providers.base import CloudHost, DatabaseProvider

if TYPE_CHECKING:
    from engine.service import Engine

DATABASE_KINDS = ("local-libsql", "local-postgres", "turso", "neon", "byo")


def database_provider(engine: Engine, kind: str, app_name: str) -> DatabaseProvider:
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
    raise InputError(f"unknown database choice {kind!r}: use one of {', '.join(DATABASE_KINDS)}")


@contextmanager
def using_database(engine: Engine, kind: str, app_name: str) -> Iterator[DatabaseProvider]:
    """The provider for one step; cloud clients hold connection pools, so they are closed after."""
    provider = database_provider(engine, kind, app_name)
    try:
        yield provider
    finally:
        close = getattr(provider, "close", None)
        if close is not None:
            close()


HOST_KINDS = ("local", "cloudflare", "vercel")


def hosting_provider(engine: Engine, kind: str) -> CloudHost:
    settings = engine.settings
    if kind == "vercel":
        from engine.providers.vercel import Vercel

        if settings.vercel_token is None:
            raise ConfigError("--host vercel needs VERCEL_TOKEN")
        return Vercel(settings.vercel_token.get_secret_value(), base_url=settings.vercel_api_url)
    if kind == "cloudflare":
        from engine.providers.cloudflare_workers import CloudflareWorkers

        if not (settings.cloudflare_account_id and settings.cloudflare_api_token):
            raise ConfigError("--host cloudflare needs CLOUDFLARE_ACCOUNT_ID and CLOUDFLARE_API_TOKEN")
        return CloudflareWorkers(
            settings.cloudflare_account_id,
            settings.cloudflare_api_token.get_secret_value(),
            base_url=settings.cloudflare_api_url,
        )
    raise InputError(f"unknown cloud host {kind!r}: use one of {', '.join(HOST_KINDS)}")


@contextmanager
def using_host(engine: Engine, kind: str) -> Iterator[CloudHost]:
    provider = hosting_provider(engine, kind)
    try:
        yield provider
    finally:
        provider.close()
