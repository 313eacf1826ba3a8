"""Input rules shared by the API, the CLI, the console (which imports this and the client only) and the
pipelines: app names, app variable names, and the database and hosting kinds a deployment may name, with
what each hosting kind can do. Nothing here imports more than ``engine.errors``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from engine.errors import InputError

# -- database and hosting kinds ---------------------------------------------------------------------
# In the order the console offers them (recommended first); ``--db`` and ``--host`` default to the local ones.
DatabaseKind = Literal["turso", "neon", "byo", "local-libsql", "local-postgres"]
DATABASE_KINDS: tuple[DatabaseKind, ...] = get_args(DatabaseKind)
DEFAULT_DATABASE: DatabaseKind = "local-libsql"
# Databases on this machine: only a host on this machine reaches them.
LOCAL_DATABASE_KINDS: tuple[DatabaseKind, ...] = ("local-libsql", "local-postgres")
# The SQL family of each kind; a bring-your-own database's family is its URL's.
DatabaseFamily = Literal["libsql", "postgresql"]
DATABASE_FAMILIES: dict[DatabaseKind, DatabaseFamily] = {
    "turso": "libsql",
    "local-libsql": "libsql",
    "neon": "postgresql",
    "local-postgres": "postgresql",
}

HostKind = Literal["cloudflare", "vercel", "local"]
HOST_KINDS: tuple[HostKind, ...] = get_args(HostKind)
DEFAULT_HOST: HostKind = "local"


@dataclass(frozen=True)
class HostCapabilities:
    """What a hosting kind can do, so pipelines, the API and the console ask this, never the kind's name.

    ``builds``: where the app is built: on a build worker (the result staged here), on the engine (the
    bundle uploaded), or by the provider from the uploaded source. ``runtime``: what runs the server
    (Node.js, or workerd for Workers). ``own_origin``: served by this engine's edge host at a URL the
    engine names (so ``NEXTAUTH_URL`` is set, and its servers and traffic are measured here).
    ``reaches_local_databases``: can reach a database on this machine. ``deployments_named_by_engine``:
    the host keeps a deployment under the engine's deployment id (no provider id to record)."""

    builds: Literal["worker", "engine", "provider"]
    runtime: Literal["node", "workerd"]
    own_origin: bool
    reaches_local_databases: bool
    deployments_named_by_engine: bool


HOST_CAPABILITIES: dict[HostKind, HostCapabilities] = {
    "cloudflare": HostCapabilities(
        builds="engine",
        runtime="workerd",
        own_origin=False,
        reaches_local_databases=False,
        deployments_named_by_engine=False,
    ),
    "vercel": HostCapabilities(
        builds="provider",
        runtime="node",
        own_origin=False,
        reaches_local_databases=False,
        deployments_named_by_engine=False,
    ),
    "local": HostCapabilities(
        builds="worker",
        runtime="node",
        own_origin=True,
        reaches_local_databases=True,
        deployments_named_by_engine=True,
    ),
}


def host_kind(kind: str) -> HostKind:
    """``kind`` as a hosting kind, or InputError naming the ones there are."""
    for known in HOST_KINDS:
        if kind == known:
            return known
    raise InputError(f"unknown host {kind!r}: use one of {', '.join(HOST_KINDS)}")


def database_kind(kind: str) -> DatabaseKind:
    """``kind`` as a database kind, or InputError naming the ones there are."""
    for known in DATABASE_KINDS:
        if kind == known:
            return known
    raise InputError(f"unknown database choice {kind!r}: use one of {', '.join(DATABASE_KINDS)}")


def capabilities_of(kind: str) -> HostCapabilities:
    return HOST_CAPABILITIES[host_kind(kind)]


def unreachable_database(host: str, database: str) -> bool:
    """Whether a deployment on ``host`` could not reach a ``database`` of that kind (one on this machine
    from a cloud host)."""
    return database in LOCAL_DATABASE_KINDS and not capabilities_of(host).reaches_local_databases


# -- app names ------------------------------------------------------------------------------------
# An app name is one DNS label, so `<app>.localhost` and `<app>.<edge host name>` are valid host names.
APP_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_app_name(app: str) -> str:
    if not APP_NAME.match(app):
        raise InputError(
            f"app name {app!r} is not usable as a host name: use 1-63 lower-case letters, digits and "
            "hyphens, not starting or ending with a hyphen"
        )
    return app


# -- environment-variable names ------------------------------------------------------------------
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
RESERVED_ENV = frozenset(
    {
        "DATABASE_URL",
        "TURSO_DATABASE_URL",
        "TURSO_AUTH_TOKEN",
        "NEXTAUTH_SECRET",
        "NEXTAUTH_URL",
        "AUTH_TRUST_HOST",
    }
)
PROCESS_ENV = frozenset(
    {"PATH", "HOME", "USER", "SHELL", "PWD", "TMPDIR", "NODE_OPTIONS", "NODE_PATH", "NODE_EXTRA_CA_CERTS",
     "NPM_CONFIG_USERCONFIG", "BASH_ENV", "ENV", "IFS", "PYTHONPATH", "PYTHONHOME"}
)  # fmt: skip
PROCESS_ENV_PREFIXES = ("LD_", "DYLD_", "LAUNCHDECK_", "npm_config_".upper())


def env_name_problem(name: str) -> str | None:
    """What is wrong with an app variable's name, or None when it may be set."""
    if not ENV_NAME.match(name):
        return (
            f"{name[:60]!r} is not a valid variable name: use upper-case letters, digits and _, "
            "not starting with a digit (e.g. STRIPE_SECRET_KEY)"
        )
    if name in RESERVED_ENV:
        return f"{name} is set by Launchdeck for the chosen database and sign-in URL: remove it"
    if name in PROCESS_ENV or name.startswith(PROCESS_ENV_PREFIXES):
        return f"{name} would change how the app's processes start, so an app may not set it: remove it"
    return None
