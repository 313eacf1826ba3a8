"""Typed records that cross modules: the repositories (``engine.apps``) build them from the store's rows,
the API answers with them (its OpenAPI document is built from them), and the client's types
(``engine/api_types.py``, generated from that document) are the same shapes on the other side of the wire.

Identifiers and times travel as strings (what a JSON client receives), converted here from the store's
UUIDs and timestamps.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _text(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return None if value is None else str(value)


Id = Annotated[str, BeforeValidator(_text)]
Time = Annotated[str, BeforeValidator(_text)]


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class App(Model):
    id: Id
    name: str
    user_id: str = Field(description="owner: the platform, 'platform/user', or 'operator'")
    platform: str
    status: str = Field(description="provisioning | deploying | active | failed | suspended | destroyed")
    deployment_url: str | None
    custom_domain: str | None
    database_provider: str | None
    database_id: str | None
    hosting_provider: str | None
    hosting_project_id: str | None
    tier: str = Field(description="the owner's subscription tier (free without one)")
    live_deployment_id: Id | None
    created_at: Time
    updated_at: Time
    last_deployed_at: Time | None


class DeploymentSummary(Model):
    id: Id
    pipeline: str
    status: str
    url: str | None
    error: str | None
    created_at: Time
    finished_at: Time | None


class Deployment(Model):
    id: Id
    app_id: Id
    pipeline: str
    status: str = Field(description="pending | running | succeeded | failed | cancelled")
    url: str | None
    error: str | None
    requested_by: str
    created_at: Time
    started_at: Time | None
    finished_at: Time | None
    cancel_requested: bool


class StepRun(Model):
    position: int
    name: str
    status: str
    attempts: int
    started_at: Time | None
    finished_at: Time | None
    detail: str | None
    progress_done: int | None
    progress_total: int | None
    progress_unit: str | None
    error: str | None
    seconds: float | None


class LogLine(Model):
    logged_at: Time
    step: str | None
    line: str


class DeploymentStatus(Model):
    deployment: Deployment
    app: str | None = None
    steps: list[StepRun]
    eta_seconds: float | None
    log: list[LogLine]


class RecentDeployment(Model):
    id: Id
    app: str
    pipeline: str
    status: str = Field(description="pending | running | succeeded | failed | cancelled")
    created_at: Time
    finished_at: Time | None
    url: str | None


class DeploymentSnapshot(Model):
    """What a web deployment recorded when it went live (``deployments.config_snapshot``, and the app's
    ``config`` while it is live): the request's parameters, its variables' names, and the cloud host's
    id of the deployment (what a rollback asks that host to promote)."""

    params: dict[str, Any] = Field(default_factory=dict)
    env_names: list[str] = Field(default_factory=list)
    provider_deployment_id: str | None = None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=True)

    def served_by(self, host: str) -> bool:
        """Whether this deployment is one ``host`` (a cloud host) can promote again."""
        return bool(self.provider_deployment_id) and self.params.get("host") == host


class LiveDeployment(Model):
    """A web deployment that went live: what a rollback may return to."""

    id: Id
    url: str | None
    config_snapshot: str | None = Field(description="its snapshot as stored (the app's config again)")

    @property
    def snapshot(self) -> DeploymentSnapshot:
        if not self.config_snapshot:
            return DeploymentSnapshot()
        return DeploymentSnapshot.model_validate_json(self.config_snapshot)


class TokenInfo(Model):
    id: Id
    name: str
    role: str
    principal: str
    users: list[str] | None = Field(description="a platform token limited to these users' apps")
    created_at: Time
    expires_at: Time | None
    revoked_at: Time | None
