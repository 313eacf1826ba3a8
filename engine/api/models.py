"""Response models of the engine's API. They are the contract: the OpenAPI document is built from them,
and ``engine/api_types.py`` (the client's types) is generated from that document. The records the
repositories return as well (apps, deployments, their steps) are in ``engine.records``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from engine.records import App, DeploymentSummary, Id, Model, Time


class ErrorDetail(Model):
    type: str = Field(description="the engine.errors class, e.g. InputError, NotFound, TierLimitExceeded")
    message: str = Field(description="what went wrong and what to do, naming the field or rule")


class ErrorBody(Model):
    error: ErrorDetail


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in {
        401: "missing, unknown, revoked or expired token",
        403: "the token's role may not do this, or a tier limit",
        404: "not found, or not the caller's",
        413: "body over the size limit",
        422: "bad input; the message names the field",
        429: "rate limit or stream limit reached; see Retry-After",
    }.items()
}


class Health(Model):
    status: Literal["ok"]


class AppDetail(App):
    deployments: list[DeploymentSummary]
    secrets: list[str] = Field(description="names only: values are never returned")
    hosting: dict[str, Any] | None = Field(description="local edge host: server state, cold start, traffic")


class Started(Model):
    deployment_id: Id
    app: str
    status_url: str

    @classmethod
    def run(cls, deployment_id: str, app: str) -> Started:
        """The answer to a request that started ``deployment_id`` of ``app``: where to follow it."""
        return cls(deployment_id=deployment_id, app=app, status_url=f"/api/deploy/status/{deployment_id}")


class CancelResult(Model):
    deployment_id: Id
    cancel_requested: bool


class IssuedToken(Model):
    token: str = Field(description="shown this once: only its hash is kept")
    id: Id
    name: str
    role: str
    principal: str
    users: list[str] | None
    expires_at: Time | None


class VaultRotation(Model):
    secrets: int
    old_key_id: str
    new_key_id: str
    new_key_path: str | None


class AuditEntry(Model):
    id: int
    logged_at: Time
    actor: str
    action: str
    target: str | None
    detail: Any


class UploadInfo(Model):
    upload_id: Id
    kind: str = Field(description="app | preview")
    format: str = Field(description="tar.gz | zip | sqlite | sql")
    digest: str = Field(description="sha256:<hex> of the body; identical bodies are stored once")
    size_bytes: int
    files: int
    created_at: Time


class DatabaseInfo(Model):
    id: str
    app: str
    provider: str | None
    status: str


class TierOverride(Model):
    user_id: str
    tier: str
    previous_tier: str


class Subscription(Model):
    user_id: str
    tier: str
    status: str
    max_deployed_apps: int
    max_custom_domains: int
    apps: int = Field(description="apps of this user that hold a tier slot")


class DnsRecord(Model):
    type: str
    name: str
    value: str


class DomainInfo(Model):
    domain: str
    app: str
    unicode_name: str
    cname_target: str
    txt_name: str
    txt_value: str
    dns_status: str
    certificate_status: str
    detail: str | None
    checked_at: Time | None
    verified_at: Time | None
    records: list[DnsRecord]


class Whoami(Model):
    role: str = Field(description="operator, platform, finance or worker")
    principal: str = Field(description="the token's owner: 'operator', the platform's name, ...")


class SubscriptionStarted(Model):
    user: str
    tier_requested: str
    subscription_id: str
    tier_now: str | None = Field(description="the tier until Stripe's webhook confirms the new one")
    note: str


class Quota(Model):
    used: int
    limit: int
    percent: float


class AppUsage(Model):
    app: str
    tier: str
    cost_cents: int = Field(description="the app's share of the month's provider costs, in cents")
    usage: dict[str, int] = Field(
        description="requests, bandwidth_bytes, db_rows_read, ... summed over the month"
    )
    quotas: dict[str, Quota] = Field(description="the tier's monthly quotas, with what the app used")
    railway_reserved_cents: int = Field(
        description="Railway baseline at the reserved size (0.5 vCPU, 0.5 GB)"
    )
    railway_measured_cents: int | None = Field(
        description="Railway baseline at measured use; null if never run locally"
    )


class UsageReport(Model):
    month: str
    closed: bool = Field(description="true once the month's costs are final")
    owner: str | None
    apps: list[AppUsage]


class ProviderHeadroom(Model):
    provider: str
    plan: str
    limit_name: str
    limit: int | None = Field(description="null: unlimited on this plan")
    used: int
    left: int | None
    lifted_by: str | None = Field(description="what raises the limit (a plan, a setting)")


class WorkspaceSummary(Model):
    apps: int
    demo_apps: int = Field(description="apps of the labelled demo fleet (names starting demo-)")
    active: int
    usage_from: Time | None = Field(description="the first hour in the usage ledger; null: none yet")
    usage_to: Time | None


class TierInfo(Model):
    name: str
    price_cents: int
    custom_price: bool
    max_deployed_apps: int = Field(description="-1: unlimited")
    max_custom_domains: int = Field(description="-1: unlimited")
    allowed_database_providers: list[str]
    over_quota: str = Field(description="notify | suspend")
    quotas: dict[str, int] = Field(description="monthly quotas: requests, bandwidth_bytes, ...")
    note: str | None


class ChoiceEstimate(Model):
    costed_as: str | None = Field(description="the price sheet the choice is costed on; null: not costed")
    plan: str | None
    plan_base_cents: int
    app_cents: int = Field(description="the new app's estimated monthly share, in cents")
    sheet_effective_from: str | None = None
    apps_sharing: int | None = Field(default=None, description="apps on the plan, the new one included")
    typical_usage: dict[str, int] | None = None
    source: str | None = None


class DeployEstimate(Model):
    month: str
    tier: str
    choices: dict[str, ChoiceEstimate] = Field(description="by database and hosting kind (engine.rules)")


class FleetPage(Model):
    columns: list[str] = Field(description="the fields of each row, cost_cents last")
    rows: list[list[Any]]
    total: int = Field(description="apps that match, beyond the limit too")
