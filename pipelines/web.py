"""The one-click web deployment: the plan's five stages after a preflight.

preflight -> transform -> database -> environment -> build -> host -> verify (and promote)
                      +-> install -------------------+   (beside database and environment, for a build on
                                                          the engine; a worker's build installs itself)

Only the last step changes what the public URL serves, so a failure anywhere leaves the previous
deployment live; what the failed run created is undone. The app's database belongs to the app, not to a
deployment: the first deployment provisions it and imports the preview data, later ones keep it.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import InputError, TerminalError, TransientError
from engine.files import discard_in_background
from engine.records import DeploymentSnapshot
from engine.retry import RetryPolicy
from engine.rules import DEFAULT_HOST, HostCapabilities, capabilities_of, unreachable_database
from engine.runner import NO_RETRY, Step, StepContext
from pipelines.providers import using_database
from pipelines.services import StepServices, services_of

DB_URL, DB_TOKEN = "db:url", "db:token"
DB_IMPORTING = (
    "db:importing"  # set while a database is provisioned and imported; gone once the import committed
)
VERIFY_RETRY = RetryPolicy(max_attempts=10, base_delay=0.5, max_delay=3.0)


def build_dir(ctx: StepContext) -> Path:
    return services_of(ctx).settings.workspace / "builds" / ctx.deployment_id


def schema_path(source: Path, params: dict[str, Any] | None = None) -> Path:
    path = (
        Path(params["schema_path"])
        if params and params.get("schema_path")
        else source / "prisma" / "schema.prisma"
    )
    if not path.is_file():
        raise InputError(f"{source} has no prisma/schema.prisma: Launchdeck deploys Prisma apps")
    return path


def preview_source(source: Path, params: dict[str, Any]) -> Path | None:
    """--preview, else preview.sqlite in the app folder, else the file the datasource URL names."""
    if params.get("preview"):
        return Path(params["preview"])
    if (source / "preview.sqlite").is_file():
        return source / "preview.sqlite"
    schema = schema_path(source, params)
    match = re.search(r'url\s*=\s*"file:([^"]+)"', schema.read_text())
    if match:  # Prisma resolves a relative file: URL against the schema's folder
        candidate = (schema.parent / match.group(1)).resolve()
        # Only a file inside the app's own folder: a tenant's schema never names what the engine reads.
        if candidate.is_file() and candidate.is_relative_to(source.resolve()):
            return candidate
    return None


def set_app(ctx: StepContext, **columns: Any) -> None:
    assignments = ", ".join(f"{name} = ?" for name in columns)
    services_of(ctx).store.execute(
        f"UPDATE deployed_apps SET {assignments}, updated_at = now() WHERE id = ?",
        [*columns.values(), ctx.app_id],
    )


# -- 0. preflight -----------------------------------------------------------------------------------


def preflight(ctx: StepContext) -> str:
    from engine.costs.tiers import check_deploy_allowed
    from engine.webbuild import blocking
    from engine.webbuild import preflight as check_app
    from pipelines.providers import check_plan_limits

    engine, params = services_of(ctx), ctx.params
    source = Path(params["source_path"])
    schema_path(source)
    check_deploy_allowed(  # the owner's subscription tier: a request never chooses it
        engine.store,
        str(ctx.app.user_id),
        None,
        params["db"],
        bool(params.get("domain")),
        app_name=ctx.app_name,
    )
    check_plan_limits(
        engine, params, ctx.app
    )  # provider plans (databases, projects, Workers), before creating
    if params["db"] == "byo":
        check_byo_database(engine.vault.get(ctx.app_id, "byo:DATABASE_URL"))
    target = (
        byo_family(engine.vault.get(ctx.app_id, "byo:DATABASE_URL"))
        if params["db"] == "byo"
        else params["db"]
    )
    check_cloud_host(engine, params, source, target)
    findings = check_app(source, target, env_names=params.get("env_names", []))
    for finding in findings:
        ctx.log(str(finding))
    stoppers = blocking(findings)
    if stoppers:
        raise TerminalError(
            f"{len(stoppers)} blocking finding(s), nothing was provisioned:\n"
            + "\n".join(str(f) for f in stoppers)
        )
    return f"{len(findings)} finding(s), none blocking"


def check_cloud_host(engine: StepServices, params: dict[str, Any], source: Path, target: str) -> None:
    """A cloud host must reach the database, have credentials, and (Workers) be able to run the app."""
    host_kind = params.get("host", DEFAULT_HOST)
    if unreachable_database(host_kind, params["db"]):
        raise TerminalError(
            f"--db {params['db']} lives on this machine, where a {host_kind} deployment cannot reach it: "
            "choose --db turso, neon or byo"
        )
    from pipelines.providers import using_host

    with using_host(engine, host_kind):  # missing credentials fail here, before anything is created
        pass
    if (
        capabilities_of(host_kind).runtime == "workerd"
    ):  # what Workers cannot run, refused before anything exists
        from engine.webbuild.targets import parse_target
        from engine.webbuild.workers import schema_for_workers

        try:
            schema_for_workers(schema_path(source).read_text(), parse_target(target))
        except InputError as exc:
            raise TerminalError(str(exc)) from None


def byo_family(url: str) -> str:
    return "postgresql" if url.startswith(("postgres://", "postgresql://")) else "libsql"


def check_byo_database(url: str) -> None:
    """Connect before anything else happens, so a wrong URL fails with nothing created."""
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        try:
            with psycopg.connect(url, connect_timeout=10) as connection:
                connection.execute("SELECT 1")
        except psycopg.Error as exc:
            raise TerminalError(f"could not connect to the bring-your-own database: {exc}".strip()) from None
    else:  # a file: URL would decide which host folder the sandboxes mount (review C3)
        raise TerminalError("a bring-your-own database URL must start with postgresql://")


# -- 1. database ------------------------------------------------------------------------------------


def provision_database(ctx: StepContext) -> str:
    from engine.dbpath.importer import import_preview

    engine, params = services_of(ctx), ctx.params
    source = Path(params.get("source_path") or Path(params["schema_path"]).parent.parent)
    kind = params["db"]
    # An import that a crash interrupted left this marker: the database exists but may be empty or
    # half-imported, so it is imported again (replacing what it holds), never "kept" (review M2).
    interrupted = engine.vault.get_optional(ctx.app_id, DB_IMPORTING) is not None
    if (
        ctx.app.database_provider == kind
        and engine.vault.get_optional(ctx.app_id, DB_URL)
        and not interrupted
    ):
        ctx.state["db_created"] = False
        return f"existing {kind} database {ctx.app.database_id} kept (its data is not re-imported)"

    ctx.state["db_created"] = kind != "byo"
    engine.vault.put(ctx.app_id, DB_IMPORTING, ctx.deployment_id)
    preview = preview_source(source, params) if params.get("import_data", True) else None
    schema = schema_path(source, params)
    if preview is not None and holds_no_tables(preview):
        ctx.log(f"the preview database {preview.name} holds no tables (never migrated): empty tables created")
        preview = None

    def progress(done: int, total: int, table: str) -> None:
        ctx.progress(done, total, "rows", f"importing {table}")

    with tempfile.TemporaryDirectory(prefix="launchdeck-schema-") as scratch:
        data = preview or empty_database(schema, Path(scratch))
        seed = Path(scratch) / "seed.db"
        if kind == "turso":
            # A new Turso database is seeded by upload (upload.mdx): import into a local file first,
            # verified, so a preview that cannot be imported never creates a paid database.
            report = import_preview(
                schema, data, f"file:{seed}", progress=progress, migrations_dir=build_dir(ctx) / "migrations"
            )
            if not report.ok:
                raise import_failure(report)
            prepare_for_upload(seed)
        if kind == "byo":
            # A unique id per app, so deleting "the byo database" can never pick another app's.
            url, token, database_id = (
                engine.vault.get(ctx.app_id, "byo:DATABASE_URL"),
                None,
                f"byo-{ctx.app_name}",
            )
        else:
            with using_database(engine, kind, ctx.app_name) as provider:
                if kind == "turso":
                    handle = provider.provision(ctx.app_name, seed_file=seed)  # type: ignore[call-arg]
                else:
                    handle = provider.provision(ctx.app_name)
            url, token, database_id = handle.url, handle.token, handle.id
            if kind == "local-libsql":  # metering finds the file by its path in the workspace
                database_id = str(
                    Path(url.removeprefix("file:")).relative_to(engine.settings.workspace.resolve())
                )
        engine.vault.put(ctx.app_id, DB_URL, url)
        if token:
            engine.vault.put(ctx.app_id, DB_TOKEN, token)
        set_app(ctx, database_provider=kind, database_id=database_id)
        if kind != "turso":
            target_url = f"{url}?authToken={token}" if token and "authToken" not in url else url
            report = import_preview(
                schema,
                data,
                target_url,
                replace=interrupted or (kind == "byo" and bool(params.get("replace"))),
                progress=progress,
                migrations_dir=build_dir(ctx) / "migrations",
            )
    if not report.ok:
        raise import_failure(report)
    engine.vault.delete(ctx.app_id, DB_IMPORTING)
    tables = len(report.tables)
    rows = sum(t.imported_rows for t in report.tables.values())
    transferred = f", {rows} rows transferred from preview" if preview else ", no preview data"
    return f"{kind} database {database_id}: {tables} tables created{transferred}"


def holds_no_tables(preview: Path) -> bool:
    """A committed SQLite file with no tables of its own (only Prisma's migration journal, or none)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{preview}?mode=ro", uri=True)) as conn:
            names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    except sqlite3.DatabaseError:
        return False  # not a SQLite file (a SQL dump): the importer reads it
    return not [n for n in names if not n.startswith("sqlite_") and n != "_prisma_migrations"]


def import_failure(report: Any) -> TerminalError:
    first = report.rejected[0] if report.rejected else None
    why = (
        f"{first.table} row {first.key} column {first.column} value {first.value!r}: {first.reason}"
        if first
        else report.error or "verification failed"
    )
    return TerminalError(f"preview data could not be imported ({len(report.rejected)} rejected): {why}")


def prepare_for_upload(path: Path) -> None:
    """Turso's upload takes a SQLite file with 4096-byte pages, WAL mode and no auto-vacuum."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.execute("PRAGMA page_size=4096")
    connection.execute("PRAGMA auto_vacuum=NONE")
    connection.execute("VACUUM")
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()


def empty_database(schema: Path, scratch: Path) -> Path:
    """A SQLite file with the app's schema and no rows: the import source when there is no preview."""
    from engine.dbpath import ddl_for_schema

    path = scratch / "empty.sqlite"
    connection = sqlite3.connect(path)
    connection.executescript(ddl_for_schema(schema.read_text(), "sqlite"))
    connection.close()
    return path


def undo_database(ctx: StepContext) -> None:
    engine = services_of(ctx)
    engine.vault.delete(ctx.app_id, DB_IMPORTING)
    if not ctx.state.get("db_created"):
        return
    with using_database(engine, ctx.params["db"], ctx.app_name) as provider:
        provider.destroy(ctx.app_name)
    engine.vault.delete(ctx.app_id, DB_URL)
    engine.vault.delete(ctx.app_id, DB_TOKEN)
    set_app(ctx, database_provider=None, database_id=None)


# -- 2. environment ---------------------------------------------------------------------------------


def public_url(ctx: StepContext) -> str:
    return services_of(ctx).edge.url(ctx.app_name).rstrip("/")


def host_capabilities(ctx: StepContext) -> HostCapabilities:
    return capabilities_of(ctx.params.get("host", DEFAULT_HOST))


def environment(ctx: StepContext) -> str:
    engine, params = services_of(ctx), ctx.params
    vault = engine.vault
    url = vault.get(ctx.app_id, DB_URL)
    token = vault.get_optional(ctx.app_id, DB_TOKEN)
    env: dict[str, str] = {}
    if url.startswith(("libsql://", "https://", "http://", "wss://")):
        env["TURSO_DATABASE_URL"], env["TURSO_AUTH_TOKEN"] = url, token or ""
    else:
        env["DATABASE_URL"] = url
    secret = vault.get_optional(ctx.app_id, "NEXTAUTH_SECRET")
    if secret is None:  # generated once per app, kept across redeploys
        secret = secrets.token_urlsafe(32)
        vault.put(ctx.app_id, "NEXTAUTH_SECRET", secret)
    env["NEXTAUTH_SECRET"] = secret
    if host_capabilities(ctx).own_origin:  # a cloud host's URL is its own; NextAuth takes it from the request
        env["NEXTAUTH_URL"] = public_url(ctx)
    env["AUTH_TRUST_HOST"] = "true"
    for name in params.get("env_names", []):
        env[name] = vault.get(ctx.app_id, f"user-env:{name}")
    vault.put(ctx.app_id, f"env@{ctx.deployment_id}", json.dumps(env))
    ctx.state["env_names"] = sorted(env)
    return f"{len(env)} variables set: {', '.join(sorted(env))}"


def undo_environment(ctx: StepContext) -> None:
    services_of(ctx).vault.delete(ctx.app_id, f"env@{ctx.deployment_id}")


def deployment_env(ctx: StepContext) -> dict[str, str]:
    return dict(json.loads(services_of(ctx).vault.get(ctx.app_id, f"env@{ctx.deployment_id}")))


# -- 3. code transformation ---------------------------------------------------------------------------


def transform(ctx: StepContext) -> str:
    from engine.webbuild import transform as transform_app

    target = ctx.params["db"]
    if target == "byo":  # before the database step: the URL the user gave, as preflight checked it
        target = byo_family(services_of(ctx).vault.get(ctx.app_id, "byo:DATABASE_URL"))
    workdir = build_dir(ctx) / "app"
    if workdir.exists():  # a re-run after a crash: start from a clean copy
        from engine.webbuild.deps_cache import release_mounts

        release_mounts(workdir)  # the node_modules overlay a crashed build may have left mounted
        shutil.rmtree(workdir)
    result = transform_app(
        Path(ctx.params["source_path"]),
        workdir,
        target,
        runtime=host_capabilities(ctx).runtime,
        seed=bool(ctx.params.get("seed")),
        repository=ctx.params.get("repository_path"),
    )
    for change in result.changes:
        ctx.log(change)
    return f"Prisma {result.prisma_before or '?'} -> {result.prisma_after}, {len(result.changes)} change(s)"


def add_migration_baseline(ctx: StepContext) -> None:
    """The database step's migration baseline into the working copy, so `prisma migrate deploy` works
    later (the database step runs after the transform, beside the install)."""
    baseline = build_dir(ctx) / "migrations"
    if baseline.is_dir():
        shutil.copytree(baseline, build_dir(ctx) / "app" / "prisma" / "migrations", dirs_exist_ok=True)


def remove_build_dir(ctx: StepContext) -> None:
    discard_in_background(build_dir(ctx), services_of(ctx).settings.workspace / "trash")


# -- 4. install, build and host ---------------------------------------------------------------------


def dependency_caches(ctx: StepContext) -> dict[str, Any]:
    """The app's npm cache and node_modules entries, and the machine's package store (for build_app)."""
    from engine.webbuild.deps_cache import cache_folders

    return cache_folders(services_of(ctx).settings.workspace, ctx.app_name, str(ctx.app_id))


def install(ctx: StepContext) -> str:
    """The dependencies, into the app's deps cache, for the build step to attach. Runs beside the
    database step, so it sees none of the app's variables; the build runs the app's own install scripts
    again with them."""
    from engine.webbuild import build as build_app
    from engine.webbuild.deps_cache import release_mounts

    engine = services_of(ctx)
    logs = engine.settings.workspace / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    workdir = build_dir(ctx) / "app"
    release_mounts(workdir)  # a re-run after a crash: the node_modules overlay of the interrupted install
    result = build_app(
        workdir,
        {},
        timeout=engine.settings.build_timeout_seconds,
        memory_mb=engine.settings.build_memory_mb,
        log_path=logs / f"{ctx.deployment_id}-build.log",
        script=None,
        uid=sandbox_uid(engine, ctx.app_name),
        **dependency_caches(ctx),
    )
    ctx.state["dependencies"] = result.dependencies
    return f"{result.install_command} {result.install_seconds:.1f} s in a {result.sandbox} sandbox"


def build(ctx: StepContext) -> str:
    from engine.webbuild import build as build_app
    from engine.webbuild.deps_cache import release_mounts
    from engine.webbuild.fonts import fallback_findings
    from engine.webbuild.workers import BUILD_SCRIPT, worker_bundle

    engine = services_of(ctx)
    for_workers = host_capabilities(ctx).runtime == "workerd"
    logs = engine.settings.workspace / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    workdir = build_dir(ctx) / "app"
    release_mounts(workdir)  # a re-run after a crash: the node_modules overlay of the interrupted build
    add_migration_baseline(ctx)
    result = build_app(
        workdir,
        deployment_env(ctx),
        timeout=engine.settings.build_timeout_seconds,
        memory_mb=engine.settings.build_memory_mb,
        log_path=logs / f"{ctx.deployment_id}-build.log",
        build_cache=engine.settings.workspace / "build-cache" / ctx.app_name,  # Next's incremental cache
        script=BUILD_SCRIPT if for_workers else "build",
        dependencies=ctx.state.get("dependencies") or None,  # what the install step kept
        **dependency_caches(ctx),
        **build_isolation(engine, ctx.app_name),
    )
    warnings = fallback_findings(workdir)
    for finding in warnings:
        ctx.log(str(finding))
    note = f"; {len(warnings)} warning(s)" if warnings else ""
    if for_workers:
        bundle = worker_bundle(workdir, build_dir(ctx) / "worker")
        ctx.state["worker_bundle"] = str(bundle)
        size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
        return (
            f"{result.install_command} {result.install_seconds:.1f} s + OpenNext build {result.build_seconds:.1f} s "
            f"in a {result.sandbox} sandbox; Worker bundle {size / 1e6:.1f} MB{note}"
        )
    ctx.state["build"] = {
        "server_dir": str(result.server_dir),
        "server_command": result.server_command,
        "static_dir": str(result.static_dir),
        "public_dir": str(result.public_dir) if result.public_dir else None,
        "install_seconds": result.install_seconds,
        "build_seconds": result.build_seconds,
    }
    return (
        f"{result.install_command} {result.install_seconds:.1f} s + build {result.build_seconds:.1f} s "
        f"in a {result.sandbox} sandbox{note}"
    )


def install_inputs(ctx: StepContext) -> dict[str, Any]:
    """What the worker that installs gets from the engine (``pipelines.remote_build``)."""
    from pipelines.remote_build import install_inputs as inputs

    engine = services_of(ctx)
    return inputs(engine.settings, build_dir(ctx) / "app", sandbox_uid(engine, ctx.app_name))


def build_inputs(ctx: StepContext) -> dict[str, Any]:
    """What the worker that builds gets from the engine (``pipelines.remote_build``)."""
    from pipelines.remote_build import build_inputs as inputs

    engine = services_of(ctx)
    add_migration_baseline(ctx)
    env, isolation = deployment_env(ctx), build_isolation(engine, ctx.app_name)
    return inputs(engine.settings, build_dir(ctx) / "app", env, isolation)


def sandbox_uid(engine: StepServices, app: str) -> int | None:
    """The app's own host uid for its sandboxes (an engine running as root), else None."""
    from engine.jail import privileged

    return engine.edge.uids.uid(app) if privileged() else None


def build_isolation(engine: StepServices, app: str) -> dict[str, Any]:
    """The app's own uid, database folder or PostgreSQL role for its build sandbox, from the engine's
    records (never from a URL the tenant could set)."""
    from engine.providers.local_libsql import app_folder
    from engine.providers.local_postgres import identifier_for

    kind = engine.database_of(app)
    options: dict[str, Any] = {"uid": sandbox_uid(engine, app)}
    if kind == "local-libsql":
        from engine.edge.sandbox import give_to

        folder = app_folder(engine.settings.workspace, app)
        if folder.is_dir() and options["uid"] is not None:
            give_to(folder, options["uid"])
        options["database_folders"] = [folder.resolve()] if folder.is_dir() else []
    elif kind == "local-postgres":
        role = identifier_for(app)
        options["postgres"] = (role, engine.edge.postgres_target)
    return options


def static_mounts(built: dict[str, Any]) -> dict[str, Path]:
    """public/ at /, .next/static at /_next/static: the URL layout Next.js serves."""
    mounts = {"/_next/static": Path(built["static_dir"])}
    if built["public_dir"] and Path(built["public_dir"]).is_dir():
        mounts["/"] = Path(built["public_dir"])
    return {url: path for url, path in mounts.items() if path.is_dir()}


def host(ctx: StepContext) -> str:
    from engine.edge.deployments import ServerSpec
    from engine.temporal.blobs import engine_blobs
    from pipelines.remote_build import received_build

    engine = services_of(ctx)
    started = time.perf_counter()
    # The worker's output, from the blobs it sent.
    built = received_build(
        ctx.state["build"], engine_blobs(engine.settings.workspace), build_dir(ctx) / "output"
    )
    written = time.perf_counter()
    # Hard links, not copies: the build folder is deleted right after, and staging drops from seconds to ms.
    server = ServerSpec(
        command=list(built["server_command"]),
        cwd=Path(built["server_dir"]),
        env=deployment_env(ctx),
        link_files=True,
    )
    manifest = engine.edge.stage(ctx.app_name, ctx.deployment_id, static_mounts(built) or None, server)
    size = sum(f.size for f in manifest.files.values())
    # The plan: source code is not kept after deployment. The staged server bundle is the build output.
    discard_in_background(build_dir(ctx), engine.settings.workspace / "trash")
    return (
        f"build output written in {written - started:.1f} s; {len(manifest.files)} static files "
        f"({size / 1e6:.1f} MB) staged with the app server in {time.perf_counter() - written:.1f} s"
    )


def unstage(ctx: StepContext) -> None:
    from engine.errors import Conflict, NotFound

    with contextlib.suppress(NotFound, Conflict):
        services_of(ctx).edge.discard(ctx.app_name, ctx.deployment_id)


# -- 5. verify and promote ------------------------------------------------------------------------------


def check_health(status_code: int, body: str) -> None:
    if status_code >= 500 or status_code == 429:
        raise TransientError(f"/api/health answered {status_code}: {body[:200]}")
    if status_code != 200:
        raise TerminalError(f"/api/health answered {status_code}, not 200: {body[:300]}")


def check_without_health(ctx: StepContext) -> str:
    """No /api/health: GET / renders (below 500, not Next's error page) and the database answers with
    the app's credentials and has the schema's tables. Says which checks ran."""
    from engine.webbuild.appcheck import database_round_trip, page_problem, schema_tables

    engine = services_of(ctx)
    home = engine.edge.health(ctx.app_name, "/", deployment_id=ctx.deployment_id, timeout=60, page=True)
    problem = page_problem(home.status_code, home.body)
    if problem is not None:
        log = engine.edge.server_log(ctx.app_name, ctx.deployment_id, lines=20)
        raise TransientError(f"{problem}\nserver log:\n{log}")
    schema = Path(ctx.state.get("schema_path") or schema_path(Path(ctx.params["source_path"]), ctx.params))
    tables = schema_tables(schema.read_text(encoding="utf-8", errors="replace"))
    database = database_round_trip(deployment_env(ctx), tables)
    return f"no /api/health: GET / {home.status_code} in {home.seconds:.2f} s; {database}"


def verify_and_promote(ctx: StepContext) -> str:
    from engine.webbuild.appcheck import declares_route

    engine = services_of(ctx)
    server_dir = engine.edge.manifest(ctx.app_name, ctx.deployment_id).server_dir
    health = None  # not asked when the build has no /api/health route
    if declares_route(server_dir, "/api/health") is not False:
        health = engine.edge.health(ctx.app_name, deployment_id=ctx.deployment_id, timeout=60)
    if health is None or (health.status_code != 200 and health.status_code < 500):  # or a login wall
        checks = check_without_health(ctx)
    else:
        try:
            check_health(health.status_code, health.body)
        except (TransientError, TerminalError) as exc:  # what the app's server said about it
            log = engine.edge.server_log(ctx.app_name, ctx.deployment_id, lines=15)
            raise type(exc)(f"{exc}\nserver log (last lines):\n{log}") from None
        checks = f"health {health.status_code} in {health.seconds:.2f} s"
    engine.edge.promote(ctx.app_name, ctx.deployment_id)
    detail = f"{checks}; " + record_live(ctx, public_url(ctx) + "/")
    if ctx.params.get("domain"):
        from engine import domains

        domain = domains.add(
            engine.store, ctx.app_name, ctx.params["domain"], edge_hostname=engine.settings.edge_hostname
        )
        for record in domain.records():
            ctx.log(f"create DNS record {record['type']} {record['name']} -> {record['value']}")
        detail += f"; {domain.domain}: create its CNAME and TXT records, then `launchdeck domains check`"
    return detail


def record_live(ctx: StepContext, url: str, provider_deployment_id: str | None = None) -> str:
    """The deployment is what production serves now: say so in the deployment and the app records."""
    from engine.costs.tiers import subscription_tier

    engine = services_of(ctx)
    snapshot = DeploymentSnapshot(
        params=ctx.params,
        env_names=ctx.state.get("env_names", []),
        provider_deployment_id=provider_deployment_id,  # what a rollback asks the cloud host to promote
    ).to_json()
    engine.store.execute(
        "UPDATE deployments SET url = ?, config_snapshot = ? WHERE id = ?",
        [url, snapshot, ctx.deployment_id],
    )
    set_app(
        ctx,
        status="active",
        deployment_url=url,
        live_deployment_id=ctx.deployment_id,
        hosting_provider=ctx.params["host"],
        hosting_project_id=ctx.app_name,
        tier=subscription_tier(engine.store, str(ctx.app.user_id)),
        config=snapshot,
        last_deployed_at=datetime.now(UTC),
    )
    return f"live at {url}"


# -- 4-5 on a cloud host: the provider builds (Vercel) or runs what was built (Cloudflare) ---------------


def host_in_cloud(ctx: StepContext) -> str:
    """A deployment reachable at its own URL; production is not touched until verify promotes it."""
    from pipelines.providers import using_host

    kind = ctx.params["host"]
    with using_host(services_of(ctx), kind) as provider:
        if "project_created" not in ctx.state:  # kept across a retry: only a project this run made is undone
            ctx.state["project_created"] = not provider.exists(ctx.app_name)
        if (
            provider.capabilities.builds == "engine"
        ):  # built here (OpenNext): the Worker and its assets are uploaded
            staged = provider.stage(ctx.app_name, Path(ctx.state["worker_bundle"]), deployment_env(ctx))
        else:  # Vercel installs and builds the uploaded source itself, as `vercel deploy` has it do
            add_migration_baseline(ctx)
            staged = provider.stage(
                ctx.app_name, build_dir(ctx) / "app", deployment_env(ctx), framework="nextjs"
            )
    ctx.state["cloud_deployment"] = {"id": staged.id, "url": staged.url}
    discard_in_background(build_dir(ctx), services_of(ctx).settings.workspace / "trash")
    return f"{kind} deployment {staged.id} built, ready at {staged.url}"


def discard_cloud_deployment(ctx: StepContext) -> None:
    from pipelines.providers import using_host

    staged = ctx.state.get("cloud_deployment")
    with using_host(services_of(ctx), ctx.params["host"]) as provider:
        if ctx.state.get("project_created"):  # this run made the project (a first Worker upload is live at
            provider.destroy(ctx.app_name)  # once): remove it; a project that was there before stays
        elif staged:
            provider.delete_deployment(ctx.app_name, staged["id"])


def verify_and_promote_in_cloud(ctx: StepContext) -> str:
    from pipelines.providers import using_host, verify_domain_before_promote

    staged = ctx.state["cloud_deployment"]
    with using_host(services_of(ctx), ctx.params["host"]) as provider:
        headers = provider.preview_headers(ctx.app_name, staged["id"])  # e.g. through a dispatch Worker
        status_code, body, seconds = fetch_health(staged["url"], headers=headers)
        check_health(status_code, body)
        domain = ""
        if ctx.params.get("domain"):  # attached and validated first: a domain failure leaves production alone
            domain = "; " + verify_domain_before_promote(
                services_of(ctx),
                provider,
                ctx.app_name,
                ctx.params["domain"],
                ctx.log,
                kind=ctx.params["host"],
            )
        provider.promote(ctx.app_name, staged["id"])
        url = provider.production_url(ctx.app_name).rstrip("/") + "/"
        detail = f"health {status_code} in {seconds:.2f} s at {staged['url']}; " + record_live(
            ctx, url, staged["id"]
        )
    return detail + domain


def fetch_health(
    deployment_url: str, timeout: float = 60.0, headers: dict[str, str] | None = None
) -> tuple[int, str, float]:
    """GET /api/health of a deployment. ``*.localhost`` names (emulators) are not resolved by Python:
    connect to loopback and send the name as Host, as browsers do."""
    import time

    import httpx

    url = httpx.URL(deployment_url.rstrip("/") + "/api/health")
    headers = dict(headers or {})
    if url.host.endswith(".localhost"):
        headers["Host"] = url.netloc.decode()
        url = url.copy_with(host="127.0.0.1")
    started = time.perf_counter()
    try:
        response = httpx.get(url, headers=headers, timeout=timeout, follow_redirects=False, trust_env=False)
    except httpx.HTTPError as exc:
        raise TransientError(f"/api/health of {deployment_url} failed: {type(exc).__name__}: {exc}") from None
    return response.status_code, response.text, time.perf_counter() - started


def web(params: dict[str, Any]) -> list[Step]:
    builds = capabilities_of(params.get("host", DEFAULT_HOST)).builds  # an unknown host is refused here
    prepare = [
        Step("preflight", preflight, timeout=180, retry=NO_RETRY),
        Step("transform", transform, remove_build_dir, timeout=300, retry=NO_RETRY),
        Step("database", provision_database, undo_database, timeout=1800),
        Step("environment", environment, undo_environment, timeout=60),
    ]
    # The install needs only the transformed copy, so it runs beside the database and environment steps;
    # on a worker (the local host), the build runs on the install's machine, which keeps node_modules.
    built_here = [
        Step("install", install, timeout=3600, retry=RetryPolicy(max_attempts=2), needs=("transform",)),
        Step(
            "build", build, remove_build_dir, timeout=3600, retry=RetryPolicy(max_attempts=2),
            needs=("environment", "install"),
        ),
    ]  # fmt: skip
    if builds == "worker":  # then staged on this machine's edge host, and checked there
        from pipelines.remote_build import build_on_worker, install_on_worker, remove_worker_copy

        return [
            *prepare,
            Step(
                "install",
                install_on_worker,
                remove_worker_copy,
                timeout=3600,
                retry=RetryPolicy(max_attempts=2),
                queue="build",
                inputs=install_inputs,
                needs=("transform",),
            ),
            Step(
                "build",
                build_on_worker,
                remove_worker_copy,
                timeout=3600,
                retry=RetryPolicy(max_attempts=2),
                queue="build",
                inputs=build_inputs,
                needs=("environment", "install"),
                same_machine_as="install",
            ),
            Step("host", host, unstage, timeout=600),
            Step("verify", verify_and_promote, timeout=300, retry=VERIFY_RETRY),
        ]
    if builds == "provider":  # the host installs and builds the uploaded source itself (Vercel)
        built_here = []
    return [
        *prepare,
        *built_here,
        Step(
            "host", host_in_cloud, discard_cloud_deployment, timeout=3600, retry=RetryPolicy(max_attempts=2)
        ),
        Step("verify", verify_and_promote_in_cloud, timeout=300, retry=VERIFY_RETRY),
    ]


PIPELINES = {"web": web}
