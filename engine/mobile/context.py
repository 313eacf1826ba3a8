"""What the mobile and desktop steps need from a pipeline context, wherever it comes from.

The runner's ``StepContext`` reaches the engine's vault and settings through ``ctx.services``;
a context may also carry them itself as ``ctx.vault`` and ``ctx.settings``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine.config import Settings
from engine.errors import Cancelled


def vault_of(ctx: Any) -> Any:
    return getattr(ctx, "vault", None) or ctx.services.vault


def settings_of(ctx: Any) -> Settings:
    settings = getattr(ctx, "settings", None) or ctx.services.settings
    assert isinstance(settings, Settings)
    return settings


def owner_of(ctx: Any) -> str:
    # Always the app's owner: whose store accounts and tokens a build uses is never a request's choice.
    return str(ctx.app["user_id"])


def build_dir(ctx: Any, kind: str) -> Path:
    """Where this deployment's generated project lives: stable across re-runs of the deployment."""
    return Path(settings_of(ctx).workspace) / "builds" / str(ctx.resource_name(kind))


def stop_if_cancelled(ctx: Any) -> None:
    cancelled = getattr(ctx, "cancelled", None)
    if cancelled is not None and cancelled.is_set():
        raise Cancelled("the deployment was cancelled")
