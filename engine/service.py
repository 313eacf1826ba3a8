"""The engine process: HTTP API (FastAPI on uvicorn), the APScheduler scheduler, the pipeline worker
pool and (when present) the local edge host. It is the only process that opens the DuckDB store."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import uvicorn
from apscheduler.schedulers.background import BackgroundScheduler
from fastapi import APIRouter

from engine import jobs, redact
from engine.apps import app_id, database_kind
from engine.auth import ensure_first_operator_token
from engine.config import Settings
from engine.costs.tiers import ensure_unlimited
from engine.edge.host import EdgeHost
from engine.edge.sandbox import Limits
from engine.errors import ConfigError
from engine.files import write_private
from engine.jobs import PeriodicJob
from engine.pgcluster import PostgresServer
from engine.store import Store
from engine.temporal.runner import TemporalRunner
from engine.vault import Vault
from engine.webhooks import WebhookSender

log = logging.getLogger("launchdeck.engine")


# Modules that add periodic jobs, API routers and services register here (see ``extensions``).
@dataclass
class Extensions:
    jobs: list[PeriodicJob] = field(default_factory=list)
    routers: list[APIRouter] = field(default_factory=list)


class Engine:
    def __init__(self, settings: Settings) -> None:
        from pipelines import registry

        self.settings = settings
        settings.workspace.mkdir(parents=True, exist_ok=True)
        self.store = Store(settings.store_path, memory_limit=settings.duckdb_memory_limit)
        env_key = settings.credentials_encryption_key
        self.vault = Vault(
            self.store,
            key_file=settings.vault_key_path,
            env_key=env_key.get_secret_value() if env_key else None,
        )
        # Decided now, so that an unsafe server stops the engine here with the reason; started in
        # ``_start_background``.
        self.postgres = PostgresServer(
            settings.postgres_admin_url, settings.postgres_server, settings.workspace, self.vault
        )
        pipelines = registry(settings.extra_pipelines)
        self.runner = TemporalRunner(self.store, pipelines, settings=settings, services=self)
        self.scheduler = BackgroundScheduler(timezone=UTC)
        self.edge = EdgeHost(
            settings.workspace,
            settings.edge_port,
            hostname=settings.edge_hostname,
            idle_seconds=settings.edge_idle_seconds or None,
            env_source=self.deployment_env,
            sandbox=settings.edge_sandbox,
            single_tenant=settings.single_tenant,
            database_source=self.database_of,
            limits=Limits(settings.server_memory_mb, settings.server_max_processes, settings.server_cpus),
            postgres_target=postgres_target(settings.postgres_admin_url),
        )
        self.extensions = Extensions()
        self.url: str | None = None
        self._on_close: list[Callable[[], None]] = []
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        # The operators' own apps (owner "operator") are in-house: the enterprise tier, no limits.
        ensure_unlimited(self.store, "operator")
        self.webhooks: WebhookSender | None = None
        if settings.webhook_url:
            secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
            if not secret:
                raise ConfigError("LAUNCHDECK_WEBHOOK_SECRET: required when LAUNCHDECK_WEBHOOK_URL is set")
            self.webhooks = WebhookSender(settings.webhook_url, secret)
        jobs.install(self)
        from engine.apps import track_app_states

        self.runner.on_event(track_app_states(self.store, self.vault.delete))
        # A new workspace's first operator token: shown once by the command that started the engine, and
        # written only where the operator asked (LAUNCHDECK_OPERATOR_TOKEN_FILE); the store keeps its hash.
        self.first_token = ensure_first_operator_token(self.store)
        if self.first_token and settings.operator_token_file:
            write_private(settings.operator_token_file, self.first_token + "\n")
        if settings.legacy_operator_token_path.exists():
            log.warning(
                "%s holds an operator token in plaintext (written by an earlier version): revoke it with "
                "`launchdeck tokens revoke` and delete the file",
                settings.legacy_operator_token_path,
            )

    # -- lifecycle --------------------------------------------------------------------------------

    def _start_background(self) -> None:
        trash = self.settings.workspace / "trash"
        for leftover in trash.iterdir() if trash.is_dir() else []:  # deletions an earlier engine left
            threading.Thread(target=shutil.rmtree, args=(leftover, True), name="trash", daemon=True).start()
        for job in self.extensions.jobs:
            self.scheduler.add_job(
                job.function,
                "interval",
                seconds=job.seconds,
                args=[self],
                id=job.name,
                max_instances=1,
                coalesce=True,
                **({"next_run_time": datetime.now(UTC)} if job.run_at_start else {}),
            )
        # Everything that reaches local-postgres (providers, builds, forwarders, metering) reads the
        # server from here on: the configured one, or the engine's own cluster.
        self.settings.postgres_admin_url = self.postgres.start()
        self.on_close(self.postgres.stop)  # before the edge's: stopped after its forwarders
        self.edge.postgres_target = postgres_target(self.settings.postgres_admin_url)
        self.scheduler.start()
        self.edge.start()
        self.on_close(self.edge.stop)
        if self.settings.local_worker:
            self._start_local_worker()
        resumed = self.runner.resume_unfinished()
        if resumed:
            log.info("resumed %d unfinished deployment(s): %s", len(resumed), ", ".join(resumed))

    def _start_local_worker(self) -> None:
        """A worker like any other (its own folder, the API, a worker token), in this process."""
        from engine.auth import end_session, issue_token, token_info
        from engine.temporal.worker import serve

        workspace = self.settings.workspace.resolve()
        folder = self.settings.local_worker_dir or workspace.parent / f"{workspace.name}-worker"
        token = issue_token(self.store, role="worker", principal="local-worker", name="local worker")
        token_id = token_info(self.store, token).id
        self.on_close(lambda: end_session(self.store, token_id))
        url, concurrency = str(self.url), self.settings.worker_concurrency
        self.runner.attach(
            lambda client: serve(
                url, token, workdir=folder, concurrency=concurrency, name="local", client=client, quiet=True
            )
        )

    def _server_for(self, port: int) -> uvicorn.Server:
        from engine.api import create_app

        config = uvicorn.Config(
            create_app(self),
            host=self.settings.engine_host,
            port=port,
            log_level="warning",
            lifespan="off",
        )
        return uvicorn.Server(config)

    def serve_forever(self) -> None:
        """Run in the foreground until SIGTERM or Ctrl-C (uvicorn handles both), then shut down."""
        port = self.settings.engine_port
        self._server = self._server_for(port)
        self.url = f"http://{self.settings.engine_host}:{port}"
        # uvicorn re-raises the SIGTERM it caught once it has stopped serving; with the default handler
        # that ends the process before ``close`` runs (the store unflushed, Temporal's server left
        # running). A handler that raises SystemExit lets ``close`` run first.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        self._start_background()
        self._write_info()
        try:
            self._server.run()
        finally:
            self.close()

    def start_in_thread(self, port: int = 0) -> str:
        """Start on a free port inside this process (the embedded engine of a CLI command)."""
        if port == 0:
            with socket.socket() as sock:
                sock.bind((self.settings.engine_host, 0))
                port = sock.getsockname()[1]
        self._server = self._server_for(port)
        self.url = f"http://{self.settings.engine_host}:{port}"
        self._start_background()
        self._thread = threading.Thread(target=self._server.run, name="engine-http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the embedded engine could not listen on port {port}")
            time.sleep(0.02)
        return self.url

    def stop_thread(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.close()

    def close(self, grace_seconds: float = 10.0) -> None:
        """Stop taking work, give running steps a moment, and leave the journal for the next start."""
        log.info("engine stopping")
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self.runner.shutdown()
        deadline = time.monotonic() + grace_seconds
        while self.runner.active_count() and time.monotonic() < deadline:
            time.sleep(0.1)
        for stop in reversed(self._on_close):
            try:
                stop()
            except Exception:
                log.exception("error while stopping")
        info = self.settings.engine_info_path
        if info.exists() and json.loads(info.read_text()).get("pid") == os.getpid():
            info.unlink()
        self.store.checkpoint()
        self.store.close()

    def database_of(self, app: str) -> str | None:
        """The kind of database the engine provisioned for ``app`` (its record, never its URL)."""
        return database_kind(self.store, app)

    def deployment_env(self, app: str, deployment_id: str) -> dict[str, str]:
        """The environment a deployment was made with (kept in the vault; rollback brings it back)."""
        found = app_id(self.store, app)
        if found is None:
            return {}
        value = self.vault.get_optional(found, f"env@{deployment_id}")
        return dict(json.loads(value)) if value else {}

    def on_close(self, stop: Callable[[], None]) -> None:
        """Run ``stop`` when the engine shuts down (edge host, app servers, ...), newest first."""
        self._on_close.append(stop)

    def _write_info(self) -> None:
        write_private(self.settings.engine_info_path, json.dumps({"url": self.url, "pid": os.getpid()}))


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def postgres_target(admin_url: str) -> tuple[str, int]:
    """Host and port of the PostgreSQL server where app servers' and builds' forwarders connect."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(admin_url)
    return str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)


def find_running_engine(settings: Settings) -> str | None:
    """The URL of an engine serving this workspace, if one answers."""
    info = settings.engine_info_path
    if not info.exists():
        return None
    try:
        url = str(json.loads(info.read_text())["url"])
        response = httpx.get(f"{url}/healthz", timeout=2.0)
    except (OSError, ValueError, KeyError, httpx.HTTPError):
        return None
    return url if response.status_code == 200 else None


def configure_logging(workspace: Path, level: int = logging.INFO) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    redact.install()
