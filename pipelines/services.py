"""What a pipeline step may use of the engine: typed, and no more than this.

The engine (``engine.service.Engine``) is the one implementation; steps reach it through
``StepContext.services``, so pipelines depend on this protocol, never on the application layer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from engine.config import Settings
from engine.edge.host import EdgeHost
from engine.runner import StepContext
from engine.store import Store
from engine.vault import Vault


class StepServices(Protocol):
    settings: Settings
    store: Store
    vault: Vault
    edge: EdgeHost

    def database_of(self, app: str) -> str | None:
        """The kind of database the engine provisioned for ``app`` (from its record, never a URL)."""
        ...


def services_of(ctx: StepContext) -> StepServices:
    services: StepServices = ctx.services
    return services


def app_owner(ctx: StepContext) -> str:
    # Always the app's owner: whose store accounts and tokens a build uses is never a request's choice.
    return str(ctx.app.user_id)


def build_dir_of(ctx: StepContext, kind: str) -> Path:
    """Where this deployment's generated project (mobile, desktop) lives: stable across re-runs."""
    return services_of(ctx).settings.workspace / "builds" / ctx.resource_name(kind)
