"""Build a cloud provider by name from the settings (credentials and ``LAUNCHDECK_*_API_URL``).

The pipeline asks for ``database_provider("turso")`` or ``hosting_provider("cloudflare")``; the same
code then talks to the real service or, in tests, to an emulator whose URL is in the settings.
"""

from __future__ import annotations

from typing import Any

from engine.errors import InputError
from engine.providers.base import DatabaseProvider, HostingProvider
from engine.providers.cloudflare import CloudflarePages
from engine.providers.neon import Neon
from engine.providers.turso import Turso
from engine.providers.vercel import Vercel

CLOUD_DATABASES = ("turso", "neon")
CLOUD_HOSTS = ("cloudflare", "vercel")


def database_provider(name: str, **options: Any) -> DatabaseProvider:
    if name == "turso":
        return Turso.from_settings(**options)
    if name == "neon":
        return Neon.from_settings(**options)
    raise InputError(f"unknown cloud database {name!r}: choose one of {', '.join(CLOUD_DATABASES)}")


def hosting_provider(name: str, **options: Any) -> HostingProvider:
    if name == "cloudflare":
        return CloudflarePages.from_settings(**options)
    if name == "vercel":
        return Vercel.from_settings(**options)
    raise InputError(f"unknown cloud host {name!r}: choose one of {', '.join(CLOUD_HOSTS)}")
