"""The engine API's types, generated from its OpenAPI document by ``python -m engine.contract``: do not edit."""

from __future__ import annotations

from typing import Any, Literal, NotRequired
from typing_extensions import TypedDict


class App(TypedDict):
    created_at: str
    custom_domain: str | None
    database_id: str | None
    database_provider: str | None
    deployment_url: str | None
    hosting_project_id: str | None
    hosting_provider: str | None
    id: str
    last_deployed_at: str | None
    live_deployment_id: str | None
    name: str
    platform: str
    status: str
    tier: str
    updated_at: str
    user_id: str


class AuditEntry(TypedDict):
    action: str
    actor: str
    detail: Any
    id: int
    logged_at: str
    target: str | None


class CancelResult(TypedDict):
    cancel_requested: bool
    deployment_id: str


class CheckBody(TypedDict, closed=True):
    app: str
    domain: str
    resolvers: NotRequired[list[str] | None]


class ChoiceEstimate(TypedDict):
    app_cents: int
    apps_sharing: NotRequired[int | None]
    costed_as: str | None
    plan: str | None
    plan_base_cents: int
    sheet_effective_from: NotRequired[str | None]
    source: NotRequired[str | None]
    typical_usage: NotRequired[dict[str, int] | None]


class ConfigureBody(TypedDict, closed=True):
    app: str
    domain: str


class DatabaseInfo(TypedDict):
    app: str
    id: str
    provider: str | None
    status: str


class DeployDatabase(TypedDict, closed=True):
    app: str
    database_url: NotRequired[str | None]
    db: NotRequired[Literal["turso", "neon", "byo", "local-libsql", "local-postgres"]]
    owner: NotRequired[str | None]
    preview: NotRequired[str | None]
    preview_upload_id: NotRequired[str | None]
    schema_path: NotRequired[str | None]
    upload_id: NotRequired[str | None]
    user: NotRequired[str | None]


class DeployEstimate(TypedDict):
    choices: dict[str, ChoiceEstimate]
    month: str
    tier: str


class DeployNative(TypedDict, closed=True):
    app: str
    params: NotRequired[dict[str, Any]]


class DeployWeb(TypedDict, closed=True):
    app: str
    database_url: NotRequired[str | None]
    db: NotRequired[Literal["turso", "neon", "byo", "local-libsql", "local-postgres"]]
    domain: NotRequired[str | None]
    env: NotRequired[dict[str, str]]
    host: NotRequired[Literal["cloudflare", "vercel", "local"]]
    import_data: NotRequired[bool]
    owner: NotRequired[str | None]
    preview: NotRequired[str | None]
    preview_upload_id: NotRequired[str | None]
    root: NotRequired[str | None]
    seed: NotRequired[bool]
    source_path: NotRequired[str | None]
    tier: NotRequired[str | None]
    upload_id: NotRequired[str | None]
    user: NotRequired[str | None]


class Deployment(TypedDict):
    app_id: str
    cancel_requested: bool
    created_at: str
    error: str | None
    finished_at: str | None
    id: str
    pipeline: str
    requested_by: str
    started_at: str | None
    status: str
    url: str | None


class DeploymentSummary(TypedDict):
    created_at: str
    error: str | None
    finished_at: str | None
    id: str
    pipeline: str
    status: str
    url: str | None


class Digests(TypedDict):
    digests: list[str]


class DnsRecord(TypedDict):
    name: str
    type: str
    value: str


class DomainInfo(TypedDict):
    app: str
    certificate_status: str
    checked_at: str | None
    cname_target: str
    detail: str | None
    dns_status: str
    domain: str
    records: list[DnsRecord]
    txt_name: str
    txt_value: str
    unicode_name: str
    verified_at: str | None


class ErrorDetail(TypedDict):
    message: str
    type: str


class FleetPage(TypedDict):
    columns: list[str]
    rows: list[list[Any]]
    total: int


class Health(TypedDict):
    status: Literal["ok"]


class IssuedToken(TypedDict):
    expires_at: str | None
    id: str
    name: str
    principal: str
    role: str
    token: str
    users: list[str] | None


class LogLineInput(TypedDict):
    line: str


class LogLineOutput(TypedDict):
    line: str
    logged_at: str
    step: str | None


class MigrateData(TypedDict, closed=True):
    app: str
    preview: NotRequired[str | None]
    preview_upload_id: NotRequired[str | None]
    replace: NotRequired[bool]
    schema_path: NotRequired[str | None]
    upload_id: NotRequired[str | None]


class Missing(TypedDict):
    missing: list[str]


class PipelineRun(TypedDict):
    app: str
    lock_timeout: NotRequired[float | None]
    owner: NotRequired[str | None]
    params: NotRequired[dict[str, Any]]
    pipeline: str


class Progress(TypedDict):
    detail: NotRequired[str | None]
    done: int
    total: NotRequired[int | None]
    unit: str


class ProviderHeadroom(TypedDict):
    left: int | None
    lifted_by: str | None
    limit: int | None
    limit_name: str
    plan: str
    provider: str
    used: int


class Quota(TypedDict):
    limit: int
    percent: float
    used: int


class RecentDeployment(TypedDict):
    app: str
    created_at: str
    finished_at: str | None
    id: str
    pipeline: str
    status: str
    url: str | None


class RollbackRequest(TypedDict, closed=True):
    to: NotRequired[str | None]


class SecretValue(TypedDict):
    value: str


class SimulateRequest(TypedDict, closed=True):
    active_hours_per_active_app: NotRequired[int]
    active_share: NotRequired[float]
    apps: NotRequired[int]
    architecture: NotRequired[str]
    bytes_per_request: NotRequired[int]
    cpu_ms_per_request: NotRequired[float | str | None]
    idle_requests_per_app: NotRequired[int]
    plans: NotRequired[dict[str, str]]
    reads_per_active_app: NotRequired[int]
    requests_per_active_app: NotRequired[int]
    storage_bytes_per_app: NotRequired[int]
    tier_mix: NotRequired[dict[str, float] | None]
    writes_per_active_app: NotRequired[int]


class Start(TypedDict):
    worker: str


class Started(TypedDict):
    app: str
    deployment_id: str
    status_url: str


class StepRun(TypedDict):
    attempts: int
    detail: str | None
    error: str | None
    finished_at: str | None
    name: str
    position: int
    progress_done: int | None
    progress_total: int | None
    progress_unit: str | None
    seconds: float | None
    started_at: str | None
    status: str


class StoredBlob(TypedDict):
    bytes: NotRequired[int | None]
    digest: str
    stored: bool


class StoredPack(TypedDict):
    stored: int


class SubscribeBody(TypedDict, closed=True):
    email: NotRequired[str | None]
    tier: str
    user: str


class Subscription(TypedDict):
    apps: int
    max_custom_domains: int
    max_deployed_apps: int
    status: str
    tier: str
    user_id: str


class SubscriptionStarted(TypedDict):
    note: str
    subscription_id: str
    tier_now: str | None
    tier_requested: str
    user: str


class TierChange(TypedDict):
    reason: str
    tier: str


class TierInfo(TypedDict):
    allowed_database_providers: list[str]
    custom_price: bool
    max_custom_domains: int
    max_deployed_apps: int
    name: str
    note: str | None
    over_quota: str
    price_cents: int
    quotas: dict[str, int]


class TierOverride(TypedDict):
    previous_tier: str
    tier: str
    user_id: str


class TokenInfo(TypedDict):
    created_at: str
    expires_at: str | None
    id: str
    name: str
    principal: str
    revoked_at: str | None
    role: str
    users: list[str] | None


class TokenRequest(TypedDict):
    expires_at: NotRequired[str | None]
    expires_in_days: NotRequired[float | None]
    name: str
    principal: NotRequired[str | None]
    role: Literal["operator", "finance", "platform", "worker"]
    users: NotRequired[list[str] | None]


class UploadInfo(TypedDict):
    created_at: str
    digest: str
    files: int
    format: str
    kind: str
    size_bytes: int
    upload_id: str


class VaultRotation(TypedDict):
    new_key_id: str
    new_key_path: str | None
    old_key_id: str
    secrets: int


class Whoami(TypedDict):
    principal: str
    role: str


class WorkerApp(TypedDict):
    id: str
    name: str
    user_id: str


class WorkerConfig(TypedDict):
    address: str | None
    blob_max_bytes: int
    extra_pipelines: str
    namespace: str
    queue_prefix: str


class WorkerDeployment(TypedDict):
    app: WorkerApp
    cancel_requested: bool
    deployment_id: str
    inputs: NotRequired[dict[str, Any]]
    params: dict[str, Any]
    pipeline: str
    state: dict[str, Any]


class WorkspaceSummary(TypedDict):
    active: int
    apps: int
    demo_apps: int
    usage_from: str | None
    usage_to: str | None


class AppDetail(TypedDict):
    created_at: str
    custom_domain: str | None
    database_id: str | None
    database_provider: str | None
    deployment_url: str | None
    deployments: list[DeploymentSummary]
    hosting: dict[str, Any] | None
    hosting_project_id: str | None
    hosting_provider: str | None
    id: str
    last_deployed_at: str | None
    live_deployment_id: str | None
    name: str
    platform: str
    secrets: list[str]
    status: str
    tier: str
    updated_at: str
    user_id: str


class AppUsage(TypedDict):
    app: str
    cost_cents: int
    quotas: dict[str, Quota]
    railway_measured_cents: int | None
    railway_reserved_cents: int
    tier: str
    usage: dict[str, int]


class DeploymentStatus(TypedDict):
    app: NotRequired[str | None]
    deployment: Deployment
    eta_seconds: float | None
    log: list[LogLineOutput]
    steps: list[StepRun]


class ErrorBody(TypedDict):
    error: ErrorDetail


class UsageReport(TypedDict):
    apps: list[AppUsage]
    closed: bool
    month: str
    owner: str | None
