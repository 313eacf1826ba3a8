"""Input rules shared by the API, the CLI and the console (which imports this and the client only): app
names, app variable names, and the database and hosting kinds a deployment may name."""

from __future__ import annotations

import re

from engine.errors import InputError

DATABASE_KINDS = ("turso", "neon", "byo", "local-libsql", "local-postgres")
HOSTING_KINDS = ("cloudflare", "vercel", "local")

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
