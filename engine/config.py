"""Settings from the environment (pydantic-settings), with the names the plan uses.

A bad or missing setting becomes one ``ConfigError`` that names the setting.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LAUNCHDECK_", extra="ignore", populate_by_name=True)

    workspace: Path = Field(default=PROJECT_ROOT / "data" / "workspace")
    engine_host: str = "127.0.0.1"
    engine_port: int = Field(default=8470, ge=0, le=65535)
    console_port: int = Field(default=8471, ge=0, le=65535)
    edge_port: int = Field(default=8472, ge=0, le=65535)
    # Edge host: apps are served at <app>.<edge_hostname>; custom domains CNAME to that name.
    edge_hostname: str = "localhost"
    # An app server idle this long is stopped (scale to zero); 0 keeps servers running.
    edge_idle_seconds: float = Field(default=300.0, ge=0)
    # DNS resolvers for custom-domain checks, comma-separated ip or ip:port; empty: the system's.
    dns_resolvers: str = ""
    # App servers behind the edge host: "auto" and "bwrap" (bubblewrap, required) or "none" (only with
    # single_tenant). Without a working sandbox the engine refuses to start.
    edge_sandbox: str = "auto"
    # Every app this engine runs belongs to the operator: allows running app servers without a sandbox.
    single_tenant: bool = False
    # Limits per app server (a cgroup where the engine may make one, else rlimits).
    server_memory_mb: int = Field(default=1024, ge=64)
    server_max_processes: int = Field(default=256, ge=16)
    server_cpus: float = Field(default=1.0, gt=0)

    # The API's limits. Uploads: the body, what an archive may unpack to, and its entries; other
    # requests: the body. Per token: requests per period ("limits" notation, e.g. "600/minute"), and
    # concurrent status streams, each closed after sse_max_seconds.
    upload_max_bytes: int = Field(default=200_000_000, ge=1)
    upload_max_unpacked_bytes: int = Field(default=1_000_000_000, ge=1)
    upload_max_files: int = Field(default=50_000, ge=1)
    # Uploads are forgotten (and their content deleted) this long after they arrive; a platform uploads
    # again to redeploy later. A running deployment's upload is kept until it ends.
    upload_retention_hours: float = Field(default=7 * 24, gt=0)
    request_max_bytes: int = Field(default=1_000_000, ge=1024)
    rate_limit: str = Field(
        default="1200/minute", pattern=r"^\d+\s*(/|per)\s*\d*\s*(second|minute|hour|day)s?$"
    )
    sse_max_per_token: int = Field(default=8, ge=1)
    sse_max_seconds: float = Field(default=3600.0, gt=0)
    # Hosts a desktop build's git_remote may point at (https only).
    git_allowed_hosts: str = "github.com,gitlab.com"
    # Where the first operator token is written at a new workspace's first start (mode 0600); unset, it
    # is only printed once. Only its hash is kept in the store.
    operator_token_file: Path | None = None

    # Pipeline runner
    workers: int = Field(default=4, ge=1, le=64)
    lock_timeout_seconds: float = Field(default=30.0, ge=0)
    deployment_timeout_seconds: float = Field(default=1800.0, gt=0)
    # A Temporal cluster's frontend (host:port); unset, the engine starts the dev server on SQLite in
    # the workspace. The namespace must exist; task queues are prefixed per engine (default: from the
    # workspace path), so engines can share one cluster.
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_queue_prefix: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,60}$")
    # Steps a `launchdeck worker` runs at once, per queue it serves.
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    # The engine serves the worker queues (build, import) itself too, as a worker with its own folder
    # (default: beside the workspace, ``<workspace>-worker``), so one command runs everything. Off when
    # `launchdeck worker` processes do the building.
    local_worker: bool = True
    local_worker_dir: Path | None = None
    # Build output a worker sends back: the largest blob the engine takes.
    worker_blob_max_bytes: int = Field(default=500_000_000, ge=1)
    # Extra modules that register pipelines (plugins); comma-separated import paths.
    extra_pipelines: str = ""

    # Deploy events and quota notices go here, signed with HMAC-SHA256 (header Launchdeck-Signature).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    # Builds: wall-clock limit and memory cap of `npm ci` + the app's build.
    build_timeout_seconds: float = Field(default=900.0, gt=0)
    build_memory_mb: int = Field(default=4096, ge=256)
    duckdb_memory_limit: str = Field(default="1GB", pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")

    # Local PostgreSQL server that hosts `local-postgres` app databases (a superuser's URL), and which
    # server to use (engine/pgcluster.py): "auto" uses it only if it requires passwords, else runs
    # Launchdeck's own cluster in the workspace; "operator" uses it and refuses to start if it trusts
    # logins; "launchdeck" always runs the own cluster.
    postgres_admin_url: str = "postgresql://postgres@127.0.0.1:5432/postgres"
    postgres_server: str = Field(default="auto", pattern="^(auto|operator|launchdeck)$")

    # Platform credentials, named as in the plan (no prefix).
    turso_org_id: str | None = Field(default=None, validation_alias=AliasChoices("TURSO_ORG_ID"))
    turso_api_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("TURSO_API_TOKEN"))
    neon_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("NEON_API_KEY"))
    cloudflare_account_id: str | None = Field(
        default=None, validation_alias=AliasChoices("CLOUDFLARE_ACCOUNT_ID")
    )
    cloudflare_api_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CLOUDFLARE_API_TOKEN")
    )
    vercel_token: SecretStr | None = Field(default=None, validation_alias=AliasChoices("VERCEL_TOKEN"))
    stripe_api_key: SecretStr | None = Field(default=None, validation_alias=AliasChoices("STRIPE_API_KEY"))
    stripe_webhook_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("STRIPE_WEBHOOK_SECRET")
    )
    credentials_encryption_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("CREDENTIALS_ENCRYPTION_KEY")
    )

    # Cloudflare hosting: one Worker per app ("workers", capped at the plan's Workers per account), user Workers in
    # a Workers for Platforms dispatch namespace ("platforms"), or "auto": Workers until the account's Workers
    # reach cloudflare_platforms_after (default: 90% of the plan's cap), Workers for Platforms after that.
    cloudflare_mode: str = Field(default="auto", pattern="^(auto|workers|platforms)$")
    cloudflare_platforms_after: int | None = Field(default=None, ge=0)
    cloudflare_dispatch_namespace: str = Field(default="launchdeck", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    # The zone the dispatch Worker serves apps on (<app>.<zone>) and users' own domains CNAME to (Cloudflare for SaaS).
    cloudflare_apps_zone: str | None = None
    # Per user Worker limits the dispatch Worker applies (Workers for Platforms custom limits).
    cloudflare_user_cpu_ms: int = Field(default=50, ge=1, le=300_000)
    cloudflare_user_subrequests: int = Field(default=50, ge=1, le=10_000)

    # One base-URL override per cloud API, so the same code talks to the service or an emulator.
    turso_api_url: str = "https://api.turso.tech"
    neon_api_url: str = "https://console.neon.tech/api/v2"
    cloudflare_api_url: str = "https://api.cloudflare.com/client/v4"
    vercel_api_url: str = "https://api.vercel.com"
    stripe_api_url: str = "https://api.stripe.com"
    # Mobile and desktop build/store services (engine/providers/eas.py, app_store_connect.py, ...).
    expo_api_url: str = "https://api.expo.dev/graphql"
    app_store_connect_api_url: str = "https://api.appstoreconnect.apple.com"
    google_play_api_url: str = "https://androidpublisher.googleapis.com"
    google_oauth_token_url: str = "https://oauth2.googleapis.com/token"
    github_api_url: str = "https://api.github.com"
    # Seconds between polls of a build, a submission or a CI run, and the longest wait for one.
    build_poll_seconds: float = Field(default=15.0, gt=0)
    build_wait_seconds: float = Field(default=3600.0, gt=0)

    @property
    def store_path(self) -> Path:
        return self.workspace / "launchdeck.duckdb"

    @property
    def vault_key_path(self) -> Path:
        return self.workspace / "vault.key"

    @property
    def legacy_operator_token_path(self) -> Path:
        """Where earlier versions kept the first operator token in plaintext (now only warned about)."""
        return self.workspace / "operator.token"

    @property
    def engine_info_path(self) -> Path:
        """Written by a running engine: its URL and pid, so commands can find it."""
        return self.workspace / "engine.json"


def env_name(field: str) -> str:
    """The environment variable a field is read from: the plan's name where it has one."""
    alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0])
    return f"LAUNCHDECK_{field.upper()}"


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{env_name(str(error['loc'][0]))}: {error['msg']} (got {error.get('input')!r})"
            for error in exc.errors()
        ]
        raise ConfigError("bad setting " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return load_settings()
