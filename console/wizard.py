"""The Deploy wizard's answers and their checks, kept apart from Streamlit so they read (and test) plainly.

Each check returns messages that say what to fix. Tier limits come from the engine (``/api/analytics/
tiers``); the engine enforces them again when the deploy arrives, so these checks are for the person,
not for safety."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import idna

from engine import api_types as T
from engine.errors import InputError
from engine.rules import (
    DEFAULT_DATABASE,
    DEFAULT_HOST,
    DatabaseKind,
    HostKind,
    check_app_name,
    env_name_problem,
    unreachable_database,
)

# Names and one-line descriptions of every kind in engine.rules, in its order.
DATABASES: dict[DatabaseKind, tuple[str, str]] = {
    "turso": ("Turso", "SQLite-compatible, edge replicas; your schema works as it is. Recommended."),
    "neon": ("Neon PostgreSQL", "Full PostgreSQL; the schema is migrated automatically."),
    "byo": ("Bring your own database", "Supabase, PlanetScale, Railway or any PostgreSQL/libSQL URL."),
    "local-libsql": ("Local libSQL file", "A libSQL/SQLite file on this machine (the embedded default)."),
    "local-postgres": ("Local PostgreSQL", "A database and role on this machine's PostgreSQL server."),
}
HOSTS: dict[HostKind, tuple[str, str]] = {
    "cloudflare": ("Cloudflare Workers", "Built with OpenNext, served worldwide. Turso or Neon."),
    "vercel": ("Vercel", "Serverless; Vercel builds the app. Turso or Neon."),
    "local": (
        "Local edge host",
        "Served from this machine at http://<app>.localhost (the embedded default).",
    ),
}
BYO_SCHEMES = ("postgres://", "postgresql://", "libsql://", "file:")


SOURCES = {
    "folder": "A folder on the engine's machine",
    "upload": "Upload the app (.tar.gz or .zip) and its preview database",
}


@dataclass
class Answers:
    source: str = "folder"
    app_dir: str = "data/examples/taskboard"
    archive: bytes | None = None
    archive_name: str = ""
    preview: bytes | None = None
    preview_name: str = ""
    name: str = ""
    owner: str = "operator"
    tier: str = "starter"
    database: DatabaseKind = DEFAULT_DATABASE
    import_data: bool = True
    database_url: str = ""
    host: HostKind = DEFAULT_HOST
    custom_domain: bool = False
    domain: str = ""
    env: list[dict[str, str]] = field(default_factory=list)


def check_domain(domain: str) -> list[str]:
    """A custom domain must be a public DNS name: IDNA-valid labels, a dot, at most 253 characters."""
    domain = domain.strip().rstrip(".").lower()
    if not domain:
        return ["Enter the custom domain (for example app.example.com), or choose the free subdomain."]
    if "://" in domain or "/" in domain:
        return [f"'{domain}' looks like a URL: enter only the host name, such as app.example.com."]
    try:
        ascii_name = idna.encode(domain, uts46=True).decode()
    except idna.IDNAError as exc:
        return [
            f"'{domain}' is not a valid domain name ({exc}): use letters, digits and hyphens, such as app.example.com."
        ]
    labels = ascii_name.split(".")
    if len(labels) < 2:
        return [f"'{domain}' needs a dot: a custom domain is a full name such as {domain}.com."]
    if len(ascii_name) > 253:
        return [f"'{domain}' is longer than 253 characters."]
    if labels[-1].isdigit():
        return [f"'{domain}' ends in a number: an IP address cannot be a custom domain."]
    if labels[-1] in ("localhost", "local", "internal", "test", "invalid"):
        return [f"'{domain}' is not a public name: .{labels[-1]} cannot get a certificate."]
    return []


def check_env(rows: list[dict[str, str]]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for row in rows:
        name, value = row.get("name", "").strip(), row.get("value", "")
        if not name and not value:
            continue
        problem = env_name_problem(name)  # the engine's own rule: the API refuses what this refuses
        if name in seen:
            problems.append(f"{name} is set twice: remove one of the two rows.")
        elif problem:
            problems.append(problem[0].upper() + problem[1:] + ".")
        elif not value:
            problems.append(f"{name} has no value: enter one or remove the row.")
        seen.add(name)
    return problems


def _tier_lifting(tiers: dict[str, T.TierInfo], current: str, ok: Callable[[T.TierInfo], bool]) -> str:
    names = list(tiers)
    later = names[names.index(current) + 1 :] if current in names else names
    lifting = next((name for name in later if ok(tiers[name])), None)
    return f"the {lifting} tier allows it" if lifting else "no tier allows it"


def allows(limit: int, count: int) -> bool:
    return limit < 0 or count <= limit


def check_tier(answers: Answers, tiers: dict[str, T.TierInfo], apps: list[dict[str, Any]]) -> list[str]:
    """The tier limits this deploy would cross: deployed apps, custom domains, the database provider."""
    tier = tiers.get(answers.tier)
    if tier is None:
        return [f"Unknown tier '{answers.tier}': choose one of {', '.join(tiers)}."]
    problems: list[str] = []
    owned = [a for a in apps if a["user_id"] == answers.owner and a["status"] != "destroyed"]
    redeploy = any(a["name"] == answers.name for a in owned)
    app_count = len(owned) + (0 if redeploy else 1)
    if not allows(int(tier["max_deployed_apps"]), app_count):
        problems.append(
            f"Over the {answers.tier} tier's limit: {answers.owner} would have {app_count} deployed apps and "
            f"{answers.tier} allows {tier['max_deployed_apps']}; "
            + _tier_lifting(tiers, answers.tier, lambda t: allows(int(t["max_deployed_apps"]), app_count))
            + "."
        )
    if answers.custom_domain:
        domains = sum(1 for a in owned if a.get("custom_domain") and a["name"] != answers.name) + 1
        if not allows(int(tier["max_custom_domains"]), domains):
            problems.append(
                f"Over the {answers.tier} tier's limit: {domains} custom domain(s), {answers.tier} allows "
                f"{tier['max_custom_domains']}; "
                + _tier_lifting(tiers, answers.tier, lambda t: allows(int(t["max_custom_domains"]), domains))
                + "."
            )
    allowed = tier["allowed_database_providers"]
    if answers.database not in allowed:
        problems.append(
            f"The {answers.tier} tier does not include {DATABASES[answers.database][0]}; "
            + _tier_lifting(
                tiers, answers.tier, lambda t: answers.database in t["allowed_database_providers"]
            )
            + "."
        )
    return problems


def check_database(answers: Answers) -> list[str]:
    problems: list[str] = []
    try:
        check_app_name(answers.name)
    except InputError as exc:
        problems.append(str(exc) if answers.name else "Enter an app name (it becomes the app's host name).")
    if answers.source == "folder" and not answers.app_dir.strip():
        problems.append("Enter the app folder to deploy (on the engine's machine).")
    if answers.source == "upload" and not answers.archive:
        problems.append("Choose the app's archive to upload (a .tar.gz or .zip of its folder).")
    if answers.database == "byo" and not answers.database_url.startswith(BYO_SCHEMES):
        problems.append(
            "Bring-your-own needs a database URL starting with postgresql://, libsql:// or file:."
        )
    return problems


def check_hosting(answers: Answers) -> list[str]:
    problems = check_domain(answers.domain) if answers.custom_domain else []
    if unreachable_database(answers.host, answers.database):
        problems.append(
            f"{HOSTS[answers.host][0]} cannot reach a database on this machine: choose Turso or Neon"
        )
    return problems + check_env(answers.env)


def env_dict(rows: list[dict[str, str]]) -> dict[str, str]:
    return {r["name"].strip(): r["value"] for r in rows if r.get("name", "").strip()}
