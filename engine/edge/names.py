"""App names and Host headers: which app (and which deployment) a request is for."""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.errors import InputError
from engine.rules import APP_NAME

# Deployment ids become a DNS label of preview host names: `<deployment>.<app>.localhost`.
DEPLOYMENT_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


def check_deployment_id(deployment_id: str) -> str:
    if not DEPLOYMENT_ID.match(deployment_id):
        raise InputError(
            f"deployment id {deployment_id!r} must be 1-63 lower-case letters, digits and hyphens "
            "(a UUID in its usual text form works)"
        )
    return deployment_id


@dataclass(frozen=True)
class Target:
    """What a Host header names: an app's live deployment, or one deployment by id (a preview)."""

    app: str
    deployment_id: str | None = None


def host_name(host_header: str) -> str:
    """`Shop.Example.com:8472` -> `shop.example.com` (also strips a trailing dot and IPv6 brackets)."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def parse_edge_host(host: str, edge_hostname: str) -> Target | None:
    """`app.localhost` -> the app's live deployment; `dep.app.localhost` -> that deployment."""
    suffix = "." + edge_hostname
    if not host.endswith(suffix):
        return None
    labels = host[: -len(suffix)].split(".")
    if len(labels) == 1 and APP_NAME.match(labels[0]):
        return Target(labels[0])
    if len(labels) == 2 and APP_NAME.match(labels[1]) and DEPLOYMENT_ID.match(labels[0]):
        return Target(labels[1], labels[0])
    return None
