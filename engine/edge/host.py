"""The local hosting provider ("edge host"): serves every app at ``http://<app>.localhost:<port>/``
(and its verified custom domains) from immutable, content-addressed deployments, with atomic promote,
instant rollback, suspend/resume, supervised app servers, scale to zero and traffic counters.

Workspace layout (``<workspace>/edge``)::

    blobs/ab/ab12...        static files by SHA-256, shared by every deployment
    apps/<app>/deployments/<id>/manifest.json, server/   one staged deployment
    apps/<app>/logs/<id>.log                              its server's output
    run/<app>--<id>.json    pid of each running server, to stop orphans after a crash of the engine
    routes.json             live deployment per app, suspended flags, custom domains
    usage.json              request and byte counters, server start times

Runs in the engine process: uvicorn on a background thread, plus a housekeeping thread that
supervises servers and flushes counters.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import httpx
import uvicorn

from engine.cgroups import sweep
from engine.edge.blobs import BlobStore
from engine.edge.deployments import Manifest, ServerSpec, StaticSource, write_staged
from engine.edge.names import check_deployment_id, host_name, parse_edge_host
from engine.edge.origin import OriginCallers, OriginForwarder, edge_address
from engine.edge.pgproxy import PgForwarder
from engine.edge.proxy import EdgeApp
from engine.edge.routes import AppRoute, RouteTable
from engine.edge.sandbox import (
    Limits,
    ServerSandbox,
    UidBook,
    give_to,
    remove_run_folder,
    resolve_mode,
    run_root,
)
from engine.edge.supervisor import ServerProcess, State, reap_orphans
from engine.edge.usage import AppTraffic, HourUse, ServerStart, UsageBook
from engine.errors import ConfigError, Conflict, InputError, NotFound, TransientError
from engine.jail import privileged
from engine.rules import check_app_name

log = logging.getLogger("launchdeck.edge")

EnvSource = Callable[[str, str], Mapping[str, str]]
# The database an app's server may reach, from the engine's records of the app (never from its URL):
# ("local-libsql", None) or ("local-postgres", None), or None for none (or one on the network).
DatabaseSource = Callable[[str], str | None]
RETIRED_IDLE_SECONDS = 2.0  # a server of a deployment that is no longer live stops once drained
TICK_SECONDS = 0.1
FLUSH_SECONDS = 2.0
# The only variables of the engine's own environment an unsandboxed (single-tenant) server sees.
INHERITED_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


class HealthResult(NamedTuple):
    status_code: int
    body: str
    seconds: float


@dataclass(frozen=True)
class DeploymentInfo:
    deployment_id: str
    created_at: str
    files: int
    bytes: int
    has_server: bool
    live: bool


@dataclass(frozen=True)
class AppStatus:
    app: str
    live_deployment_id: str | None
    suspended: bool
    url: str
    server_state: str | None  # stopped | starting | running | crashed; None for a static-only app
    server_pid: int | None
    server_restarts: int
    last_cold_start_seconds: float | None
    traffic: AppTraffic
    domains: list[str]


class EdgeHost:
    def __init__(
        self,
        workspace_dir: Path | str,
        port: int = 0,
        *,
        hostname: str = "localhost",
        bind: str = "127.0.0.1",
        idle_seconds: float | None = 300.0,
        startup_timeout: float = 60.0,
        env_source: EnvSource | None = None,
        sandbox: str = "auto",
        single_tenant: bool = False,
        database_source: DatabaseSource | None = None,
        limits: Limits | None = None,
        postgres_target: tuple[str, int] = ("127.0.0.1", 5432),
    ) -> None:
        self.root = Path(workspace_dir) / "edge"
        self.root.mkdir(parents=True, exist_ok=True)
        self.requested_port = port
        self.hostname = hostname.lower().strip(".")
        self.bind = bind
        self.idle_seconds = idle_seconds
        self.startup_timeout = startup_timeout
        self.env_source = env_source
        self.sandbox = resolve_mode(sandbox, single_tenant)  # "bwrap" or "none"
        self.workspace = Path(workspace_dir)
        self.database_source = database_source
        self.limits = limits or Limits()
        self.postgres_target = postgres_target
        self.uids = UidBook(self.root / "uids.json")
        self._run_root: Path | None = None
        self._pg_forwarders: dict[str, PgForwarder] = {}
        self._origin_forwarders: dict[str, OriginForwarder] = {}
        self.origin_callers = OriginCallers()
        self.blobs = BlobStore(self.root / "blobs")
        self.routes = RouteTable(self.root / "routes.json")
        self.usage = UsageBook(self.root / "usage.json")
        self._manifests: dict[tuple[str, str], Manifest] = {}
        self._servers: dict[tuple[str, str], ServerProcess] = {}
        self._env: dict[tuple[str, str], dict[str, str]] = {}
        self._lock = threading.RLock()  # manifests, servers, env (short holds: the request path takes it)
        self._blob_lock = threading.RLock()  # blob writes by stages vs blob collection (may hold long)
        self._staging: dict[str, int] = {}  # blobs written by stages that have no manifest yet
        self._server: uvicorn.Server | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self.port = port

    # -- process lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        if self._server is not None:
            return
        orphans = reap_orphans(self.root / "run")
        if orphans:
            log.warning("stopped %d app server(s) left running by an engine that did not shut down", orphans)
        if self.sandbox == "bwrap":
            sweep("launchdeck-server")
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the listening
        # socket says TCP; without it every small response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.bind, self.requested_port))
        except OSError as exc:
            sock.close()
            raise ConfigError(
                f"LAUNCHDECK_EDGE_PORT: cannot listen on {self.bind}:{self.requested_port} ({exc.strerror}); "
                "choose a free port"
            ) from None
        self.port = sock.getsockname()[1]
        self._sock = sock
        config = uvicorn.Config(
            # proxy_headers off: the edge host is the first hop, so a client's X-Forwarded-For is not trusted
            EdgeApp(self),
            log_level="warning",
            lifespan="on",
            access_log=False,
            proxy_headers=False,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._stopping.clear()
        serve = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="edge-http", daemon=True
        )
        house = threading.Thread(target=self._housekeeping, name="edge-housekeeping", daemon=True)
        self._threads = [serve, house]
        serve.start()
        house.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not serve.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"the edge host did not start on port {self.port}")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop serving, stop every app server (and its children), flush the counters."""
        self._stopping.set()
        if self._server is not None:
            self._server.should_exit = True
        for thread in self._threads:
            thread.join(timeout=15)
        self._threads = []
        if self._server is not None:
            self._sock.close()
            self._server = None
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            server.stop("edge host stopped")
        with self._lock:
            forwarders = [*self._pg_forwarders.values(), *self._origin_forwarders.values()]
            self._pg_forwarders.clear()
            self._origin_forwarders.clear()
        for forwarder in forwarders:
            forwarder.stop()
        self.usage.flush(force=True)

    def __enter__(self) -> EdgeHost:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _housekeeping(self) -> None:
        last_flush = time.monotonic()
        while not self._stopping.wait(TICK_SECONDS):
            try:
                apps = self.routes.refresh().apps
                with self._lock:
                    servers = list(self._servers.items())
                for (app, deployment_id), server in servers:
                    route = apps.get(app)
                    live = route is not None and route.live == deployment_id
                    idle = (
                        self.idle_seconds
                        if live
                        else min(self.idle_seconds or RETIRED_IDLE_SECONDS, RETIRED_IDLE_SECONDS)
                    )
                    server.tick(idle, restart=live)
                running: dict[str, list[int]] = {}
                for (app, _), server in servers:
                    if server.pid is not None:
                        running.setdefault(app, []).append(server.pid)
                self.usage.sample_resources(running)  # CPU and memory per hour, for metering
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    self.usage.flush()
                    last_flush = time.monotonic()
            except Exception:  # housekeeping must outlive any one bad app
                log.exception("edge housekeeping failed")

    # -- addresses --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, app: str) -> str:
        return f"http://{app}.{self.hostname}:{self.port}/"

    def preview_url(self, app: str, deployment_id: str) -> str:
        """A staged deployment, live or not, by its own host name (for checks before promote)."""
        return f"http://{deployment_id}.{app}.{self.hostname}:{self.port}/"

    # -- deployments ------------------------------------------------------------------------------

    def _app_dir(self, app: str) -> Path:
        return self.root / "apps" / app

    def _deployment_dir(self, app: str, deployment_id: str) -> Path:
        return self._app_dir(app) / "deployments" / deployment_id

    def stage(
        self,
        app: str,
        deployment_id: str,
        static: StaticSource | str | None,
        server: ServerSpec | None = None,
    ) -> Manifest:
        """Copy a deployment's static files (into the blob store) and server bundle; does not serve it
        publicly until ``promote``. Staging an id again replaces that staged copy unless it is live.

        ``static`` is a folder served at ``/``, or URL prefixes to folders, e.g. for a Next build
        ``{"/_next/static": workdir/".next/static", "/": workdir/"public"}``."""
        check_app_name(app)
        check_deployment_id(deployment_id)
        if static is None and server is None:
            raise InputError("a deployment needs static files, a server, or both")
        directory = self._deployment_dir(app, deployment_id)
        if self.live(app) == deployment_id:
            raise Conflict(f"deployment {deployment_id} of {app} is live; stage a new deployment id instead")
        if directory.exists():
            self._drop_deployment(app, deployment_id)
        directory.parent.mkdir(parents=True, exist_ok=True)
        marked: list[str] = []

        def put_blob(path: Path) -> tuple[str, int]:
            # a blob and its staging mark appear together, so blob collection never sees one alone
            with self._blob_lock:
                digest, size = self.blobs.put_file(path)
                self._staging[digest] = self._staging.get(digest, 0) + 1
                marked.append(digest)
                return digest, size

        manifest: Manifest | None = None
        try:
            manifest = write_staged(
                directory,
                put_blob,
                app,
                deployment_id,
                Path(static) if isinstance(static, str) else static,
                server,
            )
        finally:
            if manifest is not None:
                with self._lock:
                    self._manifests[(app, deployment_id)] = manifest
                    if server is not None:
                        self._env[(app, deployment_id)] = dict(server.env)
            with self._blob_lock:
                for digest in marked:
                    self._unmark_staging(digest)
                if manifest is None:
                    self._collect_blobs()
        return manifest

    def _unmark_staging(self, digest: str) -> None:
        count = self._staging.get(digest, 0) - 1
        if count <= 0:
            self._staging.pop(digest, None)
        else:
            self._staging[digest] = count

    def manifest(self, app: str, deployment_id: str) -> Manifest:
        key = (app, deployment_id)
        with self._lock:
            manifest = self._manifests.get(key)
            if manifest is None:
                check_app_name(app)
                check_deployment_id(deployment_id)
                try:
                    manifest = Manifest.load(self._deployment_dir(app, deployment_id))
                except NotFound:
                    raise NotFound(f"{app} has no staged deployment {deployment_id}") from None
                self._manifests[key] = manifest
            return manifest

    def deployments(self, app: str) -> list[DeploymentInfo]:
        folder = self._app_dir(app) / "deployments"
        live = self.live(app)
        found = []
        for directory in sorted(folder.iterdir()) if folder.is_dir() else []:
            if directory.name.endswith(".partial"):
                continue
            manifest = self.manifest(app, directory.name)
            found.append(
                DeploymentInfo(
                    manifest.deployment_id,
                    manifest.created_at,
                    len(manifest.files),
                    sum(f.size for f in manifest.files.values()),
                    manifest.has_server,
                    manifest.deployment_id == live,
                )
            )
        return sorted(found, key=lambda d: d.created_at)

    def apps(self) -> dict[str, AppRoute]:
        """Every app the edge host knows: its live deployment id and whether it is suspended."""
        return dict(self.routes.refresh().apps)

    def live(self, app: str) -> str | None:
        route = self.routes.refresh().apps.get(app)
        return None if route is None else route.live

    def promote(self, app: str, deployment_id: str) -> None:
        """Make a staged deployment live in one step. An app server is started and answering before
        the switch; if it cannot start, nothing changes and the error says why."""
        manifest = self.manifest(app, deployment_id)
        if manifest.has_server:
            server = self.server(app, manifest)
            if server.state == State.CRASHED:  # an earlier attempt gave up; this promote tries afresh
                server.stop("promote retries")
            server.acquire(self.startup_timeout, kind="promote")
            server.release()
        self.routes.update_app(app, live=deployment_id)

    def rollback(self, app: str, deployment_id: str) -> None:
        """Re-point the app to an older staged deployment (a promote; the files are still here)."""
        self.promote(app, deployment_id)

    def discard(self, app: str, deployment_id: str) -> None:
        """Delete a staged deployment that is not live (the undo of ``stage`` in a failed deploy)."""
        if self.live(app) == deployment_id:
            raise Conflict(f"deployment {deployment_id} of {app} is live; promote another one first")
        self._drop_deployment(app, deployment_id)
        with self._blob_lock:
            self._collect_blobs()

    def prune(self, app: str, keep: int = 5) -> list[str]:
        """Delete the oldest staged deployments beyond the ``keep`` newest (the live one is always kept).
        Returns the ids deleted. Rollback can reach only what is kept."""
        live = self.live(app)
        kept_old = [d.deployment_id for d in self.deployments(app) if d.deployment_id != live]
        doomed = kept_old[: max(0, len(kept_old) - max(keep - (1 if live else 0), 0))]
        for deployment_id in doomed:
            self._drop_deployment(app, deployment_id)
        if doomed:
            with self._blob_lock:
                self._collect_blobs()
        return doomed

    def _drop_deployment(self, app: str, deployment_id: str) -> None:
        key = (app, deployment_id)
        with self._lock:
            server = self._servers.pop(key, None)
            self._manifests.pop(key, None)
            self._env.pop(key, None)
        if server is not None:
            server.stop("deployment discarded")
        shutil.rmtree(self._deployment_dir(app, deployment_id), ignore_errors=True)
        if self._run_root is not None:
            remove_run_folder(self._run_root / self._server_key(app, deployment_id))
        for log_file in (self._app_dir(app) / "logs").glob(f"{deployment_id}.log*"):
            log_file.unlink(missing_ok=True)

    def _collect_blobs(self) -> int:
        """Delete blobs that no manifest on disk (and no stage in progress) refers to. Caller holds _blob_lock."""
        referenced = set(self._staging)
        for manifest_file in (self.root / "apps").glob("*/deployments/*/manifest.json"):
            referenced.update(f.digest for f in Manifest.load(manifest_file.parent).files.values())
        return self.blobs.delete_unreferenced(referenced)

    # -- lifecycle of an app ----------------------------------------------------------------------

    def suspend(self, app: str) -> None:
        self._require_app(app)
        self.routes.update_app(app, suspended=True)
        self._stop_servers(app, "app suspended")

    def resume(self, app: str) -> None:
        self._require_app(app)
        self.routes.update_app(app, suspended=False)

    def remove_app(self, app: str) -> AppTraffic:
        """Stop the app's servers and delete its deployments, logs, routes, domains routes, counters and
        the blobs no other app uses. Returns its final traffic counters (for a last metering)."""
        check_app_name(app)
        self.routes.drop_app(app)
        self._stop_servers(app, "app removed")
        with self._lock:
            for key in [k for k in self._manifests if k[0] == app]:
                self._manifests.pop(key)
                self._env.pop(key, None)
        with self._blob_lock:
            shutil.rmtree(self._app_dir(app), ignore_errors=True)
            self._collect_blobs()
        traffic = self.usage.forget(app)
        self.usage.flush(force=True)
        return traffic

    def _stop_servers(self, app: str, reason: str) -> None:
        with self._lock:
            keys = [k for k in self._servers if k[0] == app]
            servers = [self._servers.pop(k) for k in keys]
            forwarders = [self._pg_forwarders.pop(app, None), self._origin_forwarders.pop(app, None)]
        for server in servers:
            server.stop(reason)
        for forwarder in forwarders:
            if forwarder is not None:
                forwarder.stop()

    def _require_app(self, app: str) -> None:
        if app not in self.routes.refresh().apps:
            raise NotFound(f"the edge host has no app named {app!r}; promote a deployment first")

    # -- custom domains (called by engine.domains once DNS is verified) ---------------------------

    def route_domain(self, domain: str, app: str) -> None:
        self.routes.route_domain(domain, app)

    def unroute_domain(self, domain: str) -> None:
        self.routes.unroute_domain(domain)

    # -- request path (used by EdgeApp) -----------------------------------------------------------

    def confined_to(self, client: tuple[str, int] | None) -> str | None:
        """The app whose own server made this connection (through its origin forwarder): such a
        connection is served that app's host names only. None for every other client."""
        return self.origin_callers.app_of(client)

    def resolve(self, host_header: str) -> tuple[str, Manifest | None, bool] | None:
        """(app, deployment to serve or None, suspended) for a Host header, or None if no app is there."""
        host = host_name(host_header)
        table = self.routes.refresh()
        target = parse_edge_host(host, self.hostname)
        if target is None:
            app = table.domains.get(host)
            if app is None:
                return None
            deployment_id = None
        else:
            app, deployment_id = target.app, target.deployment_id
        route = table.apps.get(app)
        suspended = route is not None and route.suspended
        if deployment_id is not None:  # a preview: served once staged, before its first promote too
            try:
                return app, self.manifest(app, deployment_id), suspended
            except NotFound:
                return None
        if route is None:
            return None
        try:
            return app, None if route.live is None else self.manifest(app, route.live), suspended
        except NotFound:  # its files were deleted behind our back: say so rather than fail
            return app, None, suspended

    def server(self, app: str, manifest: Manifest) -> ServerProcess:
        key = (app, manifest.deployment_id)
        with self._lock:
            server = self._servers.get(key)
            if server is None:
                assert manifest.command is not None
                command = manifest.command
                env = self._server_env(app, manifest)
                sandbox = self._sandbox_for(app, manifest) if self.sandbox == "bwrap" else None
                server = ServerProcess(
                    app,
                    manifest.deployment_id,
                    command,
                    manifest.server_dir,
                    env,
                    self._app_dir(app) / "logs" / f"{manifest.deployment_id}.log",
                    on_start=self.usage.record_start,
                    startup_timeout=self.startup_timeout,
                    pid_file=self.root / "run" / f"{app}--{manifest.deployment_id}.json",
                    sandbox=sandbox,
                )
                self._servers[key] = server
            return server

    def _sandbox_for(self, app: str, manifest: Manifest) -> ServerSandbox:
        """The sandbox of one deployment's server: the app's uid, and only the app's own database."""
        if self._run_root is None:
            self._run_root = run_root(self.workspace)
        uid = self.uids.uid(app) if privileged() else None
        key = self._server_key(app, manifest.deployment_id)
        database = self.database_source(app) if self.database_source else None
        writable: list[Path] = []
        pg_dir: Path | None = None
        if database == "local-libsql":
            from engine.providers.local_libsql import app_folder

            folder = app_folder(self.workspace, app)
            if folder.is_dir():
                if uid is not None:
                    give_to(folder, uid)
                writable.append(folder.resolve())
        elif database == "local-postgres":
            pg_dir = self._pg_forwarder(app, uid)
        domains = sorted(d for d, owner in self.routes.refresh().domains.items() if owner == app)
        return ServerSandbox(
            key_dir=self._run_root / key,
            server_dir=manifest.server_dir,
            uid=uid,
            writable=writable,
            pg_socket_dir=pg_dir,
            pg_port=self.postgres_target[1],
            origin_socket_dir=self._origin_forwarder(app, uid) if self.port else None,
            origin_port=self.port or None,
            origin_hosts=[
                f"{app}.{self.hostname}",
                f"{manifest.deployment_id}.{app}.{self.hostname}",
                *domains,
            ],
            limits=self.limits,
        )

    @staticmethod
    def _server_key(app: str, deployment_id: str) -> str:
        return hashlib.sha256(f"{app}/{deployment_id}".encode()).hexdigest()[:16]

    def _pg_forwarder(self, app: str, uid: int | None) -> Path:
        """The folder holding the socket of the app's PostgreSQL forwarder (started once per app)."""
        from engine.providers.local_postgres import identifier_for

        assert self._run_root is not None
        folder = self._run_root / ("pg-" + hashlib.sha256(app.encode()).hexdigest()[:16])
        forwarder = self._pg_forwarders.get(app)
        if forwarder is None:
            folder.mkdir(exist_ok=True)
            if uid is not None:
                os.chown(folder, uid, uid)
            folder.chmod(0o700)
            role = identifier_for(app)
            forwarder = PgForwarder(folder / "pg.sock", role, role, self.postgres_target)
            forwarder.start(uid)
            self._pg_forwarders[app] = forwarder
        return folder

    def _origin_forwarder(self, app: str, uid: int | None) -> Path:
        """The folder holding the socket of the app's forwarder to its own origin (one per app)."""
        assert self._run_root is not None
        folder = self._run_root / ("origin-" + hashlib.sha256(app.encode()).hexdigest()[:16])
        if app not in self._origin_forwarders:
            folder.mkdir(exist_ok=True)
            if uid is not None:
                os.chown(folder, uid, uid)
            folder.chmod(0o700)
            forwarder = OriginForwarder(
                folder / "origin.sock", app, edge_address(self.bind, self.port), self.origin_callers
            )
            forwarder.start(uid)
            self._origin_forwarders[app] = forwarder
        return folder

    def _server_env(self, app: str, manifest: Manifest) -> dict[str, str]:
        if self.sandbox == "bwrap":  # the sandbox sets PATH and HOME inside; nothing of the engine's
            env = {"NODE_ENV": "production"}
        else:
            env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
            env.update(NODE_ENV="production", HOME=str(manifest.server_dir))
        app_env = self._env.get((app, manifest.deployment_id))
        if app_env is None and manifest.env_names:
            if self.env_source is None:
                log.warning(
                    "%s/%s: no env_source to restore %d variables after a restart",
                    app,
                    manifest.deployment_id,
                    len(manifest.env_names),
                )
            else:
                app_env = dict(self.env_source(app, manifest.deployment_id))
        env.update(app_env or {})
        return env

    # -- observation ------------------------------------------------------------------------------

    def health(
        self,
        app: str,
        path: str = "/api/health",
        *,
        deployment_id: str | None = None,
        timeout: float = 30.0,
        page: bool = False,
    ) -> HealthResult:
        """GET ``path`` through the public URL (or a deployment's preview URL), like a user would; as a
        browser asks for a page when ``page``. Python does not resolve ``*.localhost``, so this connects
        to loopback and sends the Host header."""
        url = self.preview_url(app, deployment_id) if deployment_id else self.url(app)
        host = httpx.URL(url).netloc.decode()
        started = time.perf_counter()
        try:
            with httpx.Client(trust_env=False, timeout=timeout) as client:
                headers = {"host": host, **({"accept": "text/html,*/*;q=0.8"} if page else {})}
                response = client.get(f"{self.base_url}{path}", headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"health check of {app} at {url.rstrip('/')}{path} failed: {exc}") from None
        return HealthResult(response.status_code, response.text, time.perf_counter() - started)

    def usage_counters(self) -> dict[str, AppTraffic]:
        return self.usage.traffic()

    def resource_hour(self, hour_start: str) -> dict[str, HourUse]:
        """Each app's CPU time and memory in one UTC hour (ISO start), for metering."""
        return self.usage.resource_hour(hour_start)

    def server_starts(self, app: str) -> list[ServerStart]:
        return self.usage.starts(app)

    def last_cold_start(self, app: str) -> float | None:
        """Seconds the last request that found the server stopped waited for its first response
        (falls back to spawn -> listening when the request did not get that far)."""
        cold = [s for s in self.usage.starts(app) if s.kind == "request"]
        if not cold:
            return None
        return cold[-1].first_response_seconds or cold[-1].seconds

    def server_log(self, app: str, deployment_id: str | None = None, lines: int = 50) -> str:
        deployment_id = deployment_id or self.live(app)
        path = self._app_dir(app) / "logs" / f"{deployment_id}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def status(self, app: str) -> AppStatus:
        table = self.routes.refresh()
        route = table.apps.get(app)
        if route is None:
            raise NotFound(f"the edge host has no app named {app!r}")
        server = None
        if route.live is not None:
            with self._lock:
                server = self._servers.get((app, route.live))
            manifest = self.manifest(app, route.live)
        return AppStatus(
            app=app,
            live_deployment_id=route.live,
            suspended=route.suspended,
            url=self.url(app),
            server_state=(server.state.value if server else State.STOPPED.value)
            if route.live and manifest.has_server
            else None,
            server_pid=server.pid if server else None,
            server_restarts=server.restarts if server else 0,
            last_cold_start_seconds=self.last_cold_start(app),
            traffic=self.usage.traffic().get(app, AppTraffic()),
            domains=sorted(d for d, a in table.domains.items() if a == app),
        )
