"""The ``launchdeck`` command."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from engine import api_types as T
from engine.cli.common import (
    current_settings,
    echo_json,
    engine_client,
    fail,
    read_token,
    remote_url,
    render_app,
    render_status,
    session_token,
    show_first_token,
)
from engine.client import EngineClient
from engine.config import PROJECT_ROOT, Settings
from engine.errors import LaunchdeckError
from engine.rules import DATABASE_KINDS, DEFAULT_DATABASE, DEFAULT_HOST, HOST_KINDS

app = typer.Typer(
    name="launchdeck",
    help="Deploy AI-generated full-stack apps to production and know, to the cent, what each one costs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
vault_app = typer.Typer(help="Secrets: rotate the encryption key, set an app's secret.", no_args_is_help=True)
tokens_app = typer.Typer(help="Engine API tokens for operators, finance and the app-builder platform.")
app.add_typer(vault_app, name="vault")
app.add_typer(tokens_app, name="tokens")


# -- processes ----------------------------------------------------------------------------------------


@app.command()
def engine(
    port: Annotated[int | None, typer.Option(help="HTTP port of the engine API (default 8470)")] = None,
) -> None:
    """Run the engine: HTTP API, scheduler, pipeline workers and the local edge host. Stops on Ctrl-C/SIGTERM."""
    from engine.service import Engine, configure_logging, find_running_engine

    settings = current_settings()
    if port is not None:
        settings.engine_port = port
    running = find_running_engine(settings)
    if running:
        fail(f"an engine already serves {settings.workspace} at {running}")
    configure_logging(settings.workspace)
    try:
        service = Engine(settings)
    except LaunchdeckError as exc:
        fail(str(exc))
    typer.echo(
        f"engine on http://{settings.engine_host}:{settings.engine_port}  (workspace {settings.workspace})"
    )
    show_first_token(service.first_token)
    if service.first_token and settings.operator_token_file:
        typer.echo(
            f"(also written to {settings.operator_token_file}, as LAUNCHDECK_OPERATOR_TOKEN_FILE asks)",
            err=True,
        )
    try:
        service.serve_forever()
    except LaunchdeckError as exc:  # what starts with it, such as the engine's own PostgreSQL cluster
        fail(str(exc))


@app.command()
def worker(
    engine_url: Annotated[
        str | None,
        typer.Option(
            "--engine", help="the engine's URL (default: LAUNCHDECK_ENGINE_URL, or this workspace's engine)"
        ),
    ] = None,
    queues: Annotated[str, typer.Option(help="task queues to serve, comma-separated")] = "build,import",
    workdir: Annotated[
        Path | None, typer.Option(help="this worker's own working folder (default: ~/.launchdeck-worker)")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="steps run at once per queue (default LAUNCHDECK_WORKER_CONCURRENCY)")
    ] = None,
    name: Annotated[str | None, typer.Option(help="this worker's name in logs (default host-pid)")] = None,
    temporal: Annotated[
        str | None, typer.Option(help="Temporal's host:port, when it differs from what the engine reports")
    ] = None,
) -> None:
    """Serve build and import steps for an engine, on this machine or another. Needs a worker token
    (`launchdeck tokens create NAME --role worker`) in LAUNCHDECK_WORKER_TOKEN. Stops on Ctrl-C/SIGTERM."""
    import asyncio

    from engine.service import configure_logging, find_running_engine
    from engine.temporal.worker import serve

    settings = current_settings()
    url = remote_url(engine_url) or find_running_engine(settings)
    if url is None:
        fail("no engine: give --engine URL (or LAUNCHDECK_ENGINE_URL)")
    token = os.environ.get("LAUNCHDECK_WORKER_TOKEN")
    if not token:
        fail(
            "LAUNCHDECK_WORKER_TOKEN: a worker token is needed (`launchdeck tokens create NAME --role worker`)"
        )
    folder = workdir or Path.home() / ".launchdeck-worker"
    configure_logging(folder)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per API call is noise here
    listed = [q.strip() for q in queues.split(",") if q.strip()]

    async def main() -> None:
        task = asyncio.ensure_future(
            serve(
                url,
                token,
                queues=listed,
                workdir=folder,
                concurrency=concurrency or settings.worker_concurrency,
                name=name,
                temporal_address=temporal,
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    except LaunchdeckError as exc:
        fail(str(exc))


@app.command()
def console(
    port: Annotated[int | None, typer.Option(help="HTTP port of the console (default 8471)")] = None,
    engine_url: Annotated[
        str | None, typer.Option(help="engine API URL (default: this workspace's engine)")
    ] = None,
) -> None:
    """Run the Streamlit operator console; it talks to the engine only through its HTTP API."""
    settings = current_settings()
    url = engine_url or f"http://{settings.engine_host}:{settings.engine_port}"
    raise typer.Exit(
        subprocess.call(console_command(settings, port or settings.console_port), env=console_env(url))
    )


def console_command(settings: Settings, port: int) -> list[str]:
    return [
        sys.executable, "-m", "streamlit", "run", str(PROJECT_ROOT / "console" / "app.py"),
        "--server.port", str(port), "--server.address", settings.engine_host,
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip


def console_env(engine_url: str) -> dict[str, str]:
    """The console's environment: its own settings (LAUNCHDECK_*) and the basics, never the engine's
    provider credentials or vault key (review L5)."""
    from engine.childenv import child_env

    own = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("LAUNCHDECK_", "STREAMLIT_")) or k in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    return child_env({**own, "LAUNCHDECK_ENGINE_URL": engine_url})


@app.command()
def up(
    demo: Annotated[bool, typer.Option(help="seed a demo workspace (500 apps, 90 days of usage)")] = False,
) -> None:
    """Start the engine and the console together on the embedded defaults. Ctrl-C stops both."""
    settings = current_settings()
    if demo:
        from engine.demo import seed_workspace

        try:
            seeded = seed_workspace(settings)
        except LaunchdeckError as exc:
            fail(str(exc))
        typer.echo(
            f"demo workspace: seeded {seeded.apps} demo apps for {seeded.users} demo users"
            if seeded.apps
            else "demo workspace: demo apps already present"
        )
    engine_url = f"http://{settings.engine_host}:{settings.engine_port}"
    from engine.service import find_running_engine

    if find_running_engine(settings):
        fail(f"an engine already serves {settings.workspace}: stop it first (`launchdeck stop`)")
    # Before the engine holds the store: the first operator token (shown once here) and, for seeding the
    # demo, a token of this command's own.
    demo_token: str | None = None
    demo_token_id: str | None = None
    store = open_store(settings)
    try:
        from engine.auth import ensure_first_operator_token

        first = ensure_first_operator_token(store)
        show_first_token(first)
        if first and settings.operator_token_file:
            from engine.files import write_private

            write_private(settings.operator_token_file, first + "\n")
        if demo:
            demo_token, demo_token_id = session_token(store, "up --demo")
    finally:
        store.close()
    launchdeck = [sys.executable, "-m", "engine.cli"]
    children = [subprocess.Popen([*launchdeck, "engine"])]
    deadline = time.monotonic() + 60
    while find_running_engine(settings) is None:
        if children[0].poll() is not None or time.monotonic() > deadline:
            fail("the engine did not start; see its messages above")
        time.sleep(0.2)
    if demo:
        from engine.demo import deploy_example

        with EngineClient(engine_url, demo_token) as client:
            typer.echo(f"demo workspace: {deploy_example(client)}")
            client.revoke_token(str(demo_token_id))
    children.append(
        subprocess.Popen(console_command(settings, settings.console_port), env=console_env(engine_url))
    )
    typer.echo(
        f"\nLaunchdeck is up.\n  engine API: {engine_url}  (OpenAPI at {engine_url}/docs)\n"
        f"  console:    http://{settings.engine_host}:{settings.console_port}\n"
        "  operator token: shown above on a new workspace; `launchdeck tokens create NAME --role operator`\n"
        "  (with the engine stopped) makes another.\nPress Ctrl-C to stop.\n"
    )

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
        raise typer.Exit(0)

    signal.signal(signal.SIGTERM, stop)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    stop()


def open_store(settings: Settings) -> Any:
    """The store itself, for commands on this machine while no engine runs (DuckDB allows one process)."""
    from engine.store import Store

    try:
        return Store(settings.store_path, memory_limit=settings.duckdb_memory_limit)
    except Exception as exc:  # duckdb.IOException when another process holds the file
        fail(f"cannot open the store {settings.store_path} ({type(exc).__name__}); is an engine running?")


@app.command()
def stop() -> None:
    """Stop the engine serving this workspace (one started by `launchdeck deploy` in the background, say)."""
    from engine.service import find_running_engine

    settings = current_settings()
    url = find_running_engine(settings)
    if url is None:
        typer.echo("no engine is running for this workspace")
        return
    pid = int(json.loads(settings.engine_info_path.read_text())["pid"])
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while find_running_engine(settings) is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    typer.echo(f"stopped the engine at {url} (pid {pid}); deployed apps are served again when one runs")


# -- apps and deployments ---------------------------------------------------------------------------


@app.command()
def apps(
    app_name: Annotated[str | None, typer.Argument(metavar="[APP]", help="show one app in detail")] = None,
    state: Annotated[
        str | None, typer.Option(help="only apps in this state: provisioning, deploying, active, failed, ...")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """List every app with its live deployment, URL, database, tier and state; or one app in detail."""
    with engine_client() as client:
        if app_name:
            detail = client.app(app_name)
            if as_json:
                echo_json(detail)
                return
            typer.echo(render_app(detail))
            return
        rows = client.apps(state)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        typer.echo("no apps yet: deploy one with `launchdeck deploy APP_DIR`")
        return
    typer.echo(f"{'APP':<24} {'STATE':<12} {'TIER':<10} {'DATABASE':<15} {'HOST':<10} URL")
    for row in rows:
        typer.echo(
            f"{row['name']:<24} {row['status']:<12} {row['tier']:<10} {row['database_provider'] or '-':<15} "
            f"{row['hosting_provider'] or '-':<10} {row['deployment_url'] or '-'}"
        )


@app.command()
def status(
    deployment_id: Annotated[str, typer.Argument(help="deployment id (printed by deploy)")],
    follow: Annotated[bool, typer.Option("--follow", "-f", help="refresh until the deployment ends")] = False,
    cancel: Annotated[bool, typer.Option("--cancel", help="ask the deployment to stop and undo")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show a deployment's steps, durations, progress, ETA and the tail of its log."""
    with engine_client() as client:
        if cancel:
            accepted = client.cancel(deployment_id)
            typer.echo("cancel requested" if accepted else "the deployment had already finished")
        current = client.status(deployment_id)
        while follow and current["deployment"]["status"] in ("pending", "running"):
            typer.echo(render_status(current) + "\n")
            time.sleep(1.0)
            current = client.status(deployment_id)
    if as_json:
        echo_json(current)
    else:
        typer.echo(render_status(current))
    if current["deployment"]["status"] in ("failed", "cancelled"):
        raise typer.Exit(1)


def follow(client: EngineClient, deployment_id: str, *, quiet: bool) -> T.DeploymentStatus:
    """Wait for a deployment to end, with a progress bar per stage on a terminal."""
    if quiet:
        return client.wait(deployment_id, poll=0.5)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    marks = {"succeeded": "✓", "running": "◐", "failed": "✗", "pending": "○", "undone": "↺", "skipped": "-",
             "cancelled": "✗"}  # fmt: skip
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
        transient=False,
    ) as bars:  # fmt: skip
        tasks: dict[int, Any] = {}
        while True:
            status = client.status(deployment_id)
            for step in status["steps"]:
                position = int(step["position"])
                if position not in tasks:
                    tasks[position] = bars.add_task(step["name"], total=1, note="", start=False)
                task = tasks[position]
                total = step["progress_total"] or 1
                done = (
                    step["progress_done"]
                    if step["progress_total"]
                    else (1 if step["status"] == "succeeded" else 0)
                )
                note = step["error"] or step["detail"] or ""
                if step["progress_total"]:
                    note = (
                        f"{step['progress_done']:,}/{step['progress_total']:,} {step['progress_unit'] or ''}"
                    )
                if step["status"] != "pending":
                    bars.start_task(task)
                bars.update(task, total=total, completed=done, note=note[:70],
                            description=f"{marks.get(step['status'], '?')} {step['name']:<12}")  # fmt: skip
                if step["status"] in ("succeeded", "failed", "skipped", "undone", "cancelled"):
                    bars.stop_task(task)
            if status["deployment"]["status"] in ("succeeded", "failed", "cancelled"):
                return status
            time.sleep(0.5)


def run_and_report(client: EngineClient, started: T.Started, *, as_json: bool) -> None:
    deployment_id = started["deployment_id"]
    if not as_json:
        typer.echo(
            f"deployment {deployment_id} started; following it (Ctrl-C stops following, not the deployment)"
        )
    status = follow(client, deployment_id, quiet=as_json or not sys.stdout.isatty())
    deployment = status["deployment"]
    if as_json:
        live = deployment["status"] == "succeeded" and deployment["url"]
        echo_json(
            {
                "deployment_id": deployment_id,
                "app": status.get("app"),
                "status": "live" if live else deployment["status"],
                "url": deployment["url"],
                "error": deployment["error"],
                "steps": [
                    {
                        "name": step["name"],
                        "status": step["status"],
                        "seconds": step["seconds"],
                        "detail": step["detail"] or step["error"],
                    }
                    for step in status["steps"]
                ],
            }
        )
    else:
        typer.echo(render_status(status))
        if deployment["url"] and deployment["status"] == "succeeded":
            typer.echo(f"\nlive at {deployment['url']}")
    if deployment["status"] != "succeeded":
        raise typer.Exit(1)


def parse_env(pairs: list[str]) -> dict[str, str]:
    from engine.rules import env_name_problem

    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--env {pair!r}: write it as KEY=VALUE")
        if name in env:
            fail(f"--env {name} is given twice")
        problem = env_name_problem(name)
        if problem:
            fail(f"--env {problem}")
        env[name] = value
    return env


@app.command()
def deploy(
    app_dir: Annotated[
        Path, typer.Argument(help="the generated app's folder (package.json, prisma/schema.prisma)")
    ],
    name: Annotated[str | None, typer.Option(help="app name (default: the folder's name)")] = None,
    db: Annotated[str, typer.Option(help=", ".join(DATABASE_KINDS))] = DEFAULT_DATABASE,
    database_url: Annotated[str | None, typer.Option(help="with --db byo: the database to use")] = None,
    host: Annotated[str, typer.Option(help=", ".join(HOST_KINDS))] = DEFAULT_HOST,
    domain: Annotated[
        str | None, typer.Option(help="custom domain (then `launchdeck domains check`)")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE for the app; repeat")] = None,
    tier: Annotated[
        str | None,
        typer.Option(help="operators: override the owner's tier (audited); default: their subscription's"),
    ] = None,
    preview: Annotated[Path | None, typer.Option(help="preview SQLite file or SQL dump to import")] = None,
    no_import_data: Annotated[bool, typer.Option("--no-import-data", help="start with empty tables")] = False,
    engine_url: Annotated[
        str | None,
        typer.Option(
            "--engine",
            help="a (remote) engine's URL: the app is packed and uploaded; token from "
            "LAUNCHDECK_TOKEN or LAUNCHDECK_TOKEN_FILE",
        ),
    ] = None,
    user: Annotated[str | None, typer.Option(help="platform tokens: the end user the app belongs to")] = None,
    seed: Annotated[
        bool, typer.Option("--seed", help="run the app's seed script in the build, against the new database")
    ] = False,
    root: Annotated[
        str | None,
        typer.Option(help="the app's folder inside APP_DIR (a repository with the app in a subfolder)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Deploy an app folder: preflight, database, environment, code transformation, build and host, verify.

    With --engine the folder is packed (as its .gitignore says; never node_modules, .next or .env*),
    uploaded and deployed there. Without it, the engine serving this workspace deploys it; when none
    runs, one is started in the background and keeps serving the app (`launchdeck stop` stops it).
    Exit code 0 only when the deployment is live and healthy; a failed one leaves the previous one serving."""
    repository = app_dir.resolve()
    source = (repository / root).resolve() if root else repository
    if not source.is_relative_to(repository):
        fail(f"--root {root} leads outside {app_dir}")
    if not (source / "package.json").is_file():
        hint = "" if root else " (an app in a subfolder: add --root PATH)"
        fail(f"{source} has no package.json: give the generated app's folder{hint}")
    app_name = name or repository.name.lower().replace("_", "-")
    variables = parse_env(env or [])
    url = remote_url(engine_url)
    session_id: str | None = None
    if url is None:
        url, token, session_id = local_engine(as_json=as_json)
    else:
        found = read_token()
        if found is None:
            fail(f"the engine at {url} needs a token: set LAUNCHDECK_TOKEN (or LAUNCHDECK_TOKEN_FILE)")
        token = found
    options: dict[str, Any] = {
        "app": app_name, "db": db, "host": host, "domain": domain, "env": variables, "tier": tier,
        "import_data": not no_import_data, "database_url": database_url, "user": user, "seed": seed,
        "root": Path(root).as_posix() if root else None,
    }  # fmt: skip
    with EngineClient(url, token, timeout=300) as client:
        try:
            if remote_url(engine_url) is None and client.whoami()["role"] == "operator":
                # this machine's engine reads the folder itself (paths are for operators)
                started = client.deploy_web(
                    str(repository), preview=str(preview.resolve()) if preview else None, **options
                )
            else:  # the whole repository travels: the app may use its workspace packages
                started = client.deploy_web(
                    **upload_app(client, repository, preview, not no_import_data, as_json, app_root=source),
                    **options,
                )
            run_and_report(client, started, as_json=as_json)
        except LaunchdeckError as exc:
            fail(str(exc))
        finally:
            if session_id is not None:
                with contextlib.suppress(LaunchdeckError):
                    client.revoke_token(session_id)


def local_engine(*, as_json: bool) -> tuple[str, str, str | None]:
    """The engine serving this workspace: (url, token, id of a token to revoke after). When none runs,
    one is started in the background, so the app keeps being served after this command ends."""
    from engine.auth import ensure_first_operator_token
    from engine.service import find_running_engine

    settings = current_settings()
    url = find_running_engine(settings)
    if url is not None:
        token = read_token()
        if token is None:
            fail(f"the engine at {url} needs a token: set LAUNCHDECK_TOKEN (or LAUNCHDECK_TOKEN_FILE)")
        return url, token, None
    store = open_store(settings)
    try:
        show_first_token(ensure_first_operator_token(store))
        token, token_id = session_token(store, "deploy")
    finally:
        store.close()
    log = settings.workspace / "logs" / "engine.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "LAUNCHDECK_OPERATOR_TOKEN_FILE"}
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.cli", "engine"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while (url := find_running_engine(settings)) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            fail(f"the engine did not start; see {log}")
        time.sleep(0.2)
    message = (
        f"no engine was running, so one was started in the background (pid {process.pid}, log {log}) at {url}; "
        "it keeps serving the app after this command ends: `launchdeck stop` stops it"
    )
    typer.echo(message, err=True)
    return url, token, token_id


def upload_app(
    client: EngineClient,
    source: Path,
    preview: Path | None,
    import_data: bool,
    as_json: bool,
    app_root: Path | None = None,
) -> dict[str, Any]:
    """Pack and upload the app folder (and its preview database): the deploy request's upload ids."""
    import tempfile

    from engine.cli.pack import pack

    quiet = as_json or not sys.stdout.isatty()
    with tempfile.TemporaryDirectory(prefix="launchdeck-pack-") as scratch:
        packed = pack(source, Path(scratch) / "app.tar.gz")
        for link in packed.skipped_links:
            typer.echo(f"left out {link}: a symlink to outside the app folder", err=True)
        if not as_json:
            size = packed.path.stat().st_size
            typer.echo(
                f"packed {packed.files} files ({packed.bytes_in / 1e6:.1f} MB) into {size / 1e6:.1f} MB"
            )
        app_upload = send(client, packed.path, "app", "uploading the app", quiet)
    ids = {"upload_id": app_upload["upload_id"]}
    if import_data:
        found = preview.resolve() if preview else find_preview(app_root or source)
        if found is not None:
            ids["preview_upload_id"] = send(client, found, "preview", f"uploading {found.name}", quiet)[
                "upload_id"
            ]
    return ids


def find_preview(source: Path) -> Path | None:
    from pipelines.web import preview_source

    try:
        return preview_source(source, {})
    except LaunchdeckError:
        return None


def send(client: EngineClient, path: Path, kind: str, label: str, quiet: bool) -> T.UploadInfo:
    if quiet:
        return client.upload(path, kind)
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    with Progress(TextColumn(label), BarColumn(), DownloadColumn(), TransferSpeedColumn()) as bars:
        task = bars.add_task(label, total=path.stat().st_size)
        result = client.upload(path, kind, progress=lambda sent, _: bars.update(task, completed=sent))
    typer.echo(f"  {kind} upload {result['upload_id']} ({result['digest'][:19]}…)")
    return result


AppArgument = Annotated[str, typer.Argument(metavar="APP", help="app name (`launchdeck apps` lists them)")]
JsonOption = Annotated[bool, typer.Option("--json", help="print JSON")]


@app.command()
def rollback(
    app_name: AppArgument,
    to: Annotated[
        str | None, typer.Option(help="deployment id (default: the one before the live one)")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Point an app back at an earlier deployment, with the configuration it had (migrations stay)."""
    with engine_client() as client:
        run_and_report(client, client.rollback(app_name, to), as_json=as_json)


@app.command()
def suspend(app_name: AppArgument, as_json: JsonOption = False) -> None:
    """Suspend an app: it answers 503 and its database refuses its credentials."""
    with engine_client() as client:
        run_and_report(client, client.suspend(app_name), as_json=as_json)


@app.command()
def resume(app_name: AppArgument, as_json: JsonOption = False) -> None:
    """Resume a suspended app; nothing is lost."""
    with engine_client() as client:
        run_and_report(client, client.resume(app_name), as_json=as_json)


@app.command()
def destroy(
    app_name: AppArgument,
    yes: Annotated[bool, typer.Option("--yes", help="confirm: this deletes the app's data")] = False,
    as_json: JsonOption = False,
) -> None:
    """Destroy an app: database, role, files, processes, domains and secrets."""
    if not yes:
        fail(f"destroying {app_name} deletes its database and files; add --yes to confirm")
    with engine_client() as client:
        run_and_report(client, client.destroy(app_name), as_json=as_json)


# -- vault and tokens -------------------------------------------------------------------------------


@vault_app.command("rotate")
def vault_rotate() -> None:
    """Re-encrypt every secret under a new key; afterwards the old key is not needed."""
    with engine_client() as client:
        result = client.rotate_vault()
    typer.echo(
        f"re-encrypted {result['secrets']} secret(s): key {result['old_key_id']} -> {result['new_key_id']}"
    )
    if result["new_key_path"]:
        typer.echo(
            f"the key came from CREDENTIALS_ENCRYPTION_KEY: set it to the contents of {result['new_key_path']}, "
            "then delete that file"
        )


@vault_app.command("set")
def vault_set(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="app name")],
    name: Annotated[str, typer.Argument(help="variable name, e.g. STRIPE_SECRET_KEY")],
) -> None:
    """Set an app's secret; the value is read from standard input so it stays out of shell history."""
    value = (
        sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty()
        else typer.prompt("value", hide_input=True)
    )
    if not value:
        fail("empty value: pipe the secret on standard input")
    with engine_client() as client:
        client.put_secret(app_name, name, value)
    typer.echo(f"{name} set for {app_name}")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="who the token is for")],
    role: Annotated[str, typer.Option(help="operator, finance, platform or worker")],
    principal: Annotated[
        str | None, typer.Option(help="platform tokens: the platform (owner of its apps); default NAME")
    ] = None,
    users: Annotated[
        list[str] | None, typer.Option("--user", help="platform tokens: only this user's apps; repeat")
    ] = None,
    expires_in_days: Annotated[
        float | None, typer.Option(help="the token stops working after this many days")
    ] = None,
    engine_url: Annotated[str | None, typer.Option("--engine", help="a (remote) engine's URL")] = None,
) -> None:
    """Issue an engine API token. It is printed once; only its hash is kept.

    On the engine's machine with no engine running, this needs no token (it writes to the store itself):
    the way to a new operator token when the first one is lost."""
    from engine.service import find_running_engine

    settings = current_settings()
    if remote_url(engine_url) is None and find_running_engine(settings) is None and read_token() is None:
        from datetime import UTC, datetime, timedelta

        from engine.auth import issue_token

        store = open_store(settings)
        try:
            expires = datetime.now(UTC) + timedelta(days=expires_in_days) if expires_in_days else None
            token = issue_token(
                store,
                role=role,
                principal=principal or name,
                name=name,
                expires_at=expires,
                users=users or None,
            )
            from engine.apps import audit

            audit(
                store,
                "operator:this-machine",
                "issue token",
                name,
                {"role": role, "principal": principal or name},
            )
        except LaunchdeckError as exc:
            fail(str(exc))
        finally:
            store.close()
        typer.echo(token)
        return
    with engine_client(engine_url) as client:
        typer.echo(
            client.issue_token(name, role, principal, users=users or None, expires_in_days=expires_in_days)
        )


@tokens_app.command("list")
def tokens_list(
    engine_url: Annotated[str | None, typer.Option("--engine", help="a (remote) engine's URL")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Tokens (operators: all; a platform: its own), with role, scope, expiry and revocation; never the token."""
    with engine_client(engine_url) as client:
        rows = client.tokens()
    if as_json:
        echo_json(rows)
        return
    typer.echo(f"{'ID':<36}  {'NAME':<24} {'ROLE':<9} {'PRINCIPAL':<16} {'EXPIRES':<20} STATE")
    for row in rows:
        state = "revoked" if row["revoked_at"] else "active"
        scope = f" users: {', '.join(row['users'])}" if row["users"] else ""
        typer.echo(
            f"{row['id']:<36}  {row['name'][:24]:<24} {row['role']:<9} {row['principal'][:16]:<16} "
            f"{(row['expires_at'] or 'never')[:19]:<20} {state}{scope}"
        )


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="the token's id (`launchdeck tokens list`)")],
    engine_url: Annotated[str | None, typer.Option("--engine", help="a (remote) engine's URL")] = None,
) -> None:
    """Revoke a token: it stops working at once."""
    with engine_client(engine_url) as client:
        row = client.revoke_token(token_id)
    typer.echo(f"revoked {row['name']} ({row['role']}, {row['principal']}) at {row['revoked_at']}")


@app.command()
def tier(
    user_id: Annotated[str, typer.Argument(metavar="USER", help="owner id: a platform, or platform/user")],
    set_to: Annotated[
        str | None, typer.Option("--set", help="operators: override the tier to this one")
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="why (kept in the audit log); required with --set")
    ] = None,
) -> None:
    """Show a user's tier and limits (from their subscription); operators may override it, audited."""
    with engine_client() as client:
        if set_to is not None:
            if not reason:
                fail("--reason: say why the tier is overridden (it goes in the audit log)")
            changed = client.override_tier(user_id, set_to, reason)
            typer.echo(f"{user_id}: {changed['previous_tier']} -> {changed['tier']}")
        info = client.subscription(user_id)
    typer.echo(
        f"{info['user_id']}: {info['tier']} tier ({info['status']}), {info['apps']} of "
        f"{'unlimited' if info['max_deployed_apps'] < 0 else info['max_deployed_apps']} app slot(s) used"
    )


def store_when_no_engine_runs() -> Any:
    """The cost commands read the store itself; DuckDB lets only one process open it, so while an
    engine runs they say where the same figures are instead of failing on a lock."""
    from engine.service import find_running_engine
    from engine.store import Store

    settings = current_settings()
    url = find_running_engine(settings)
    if url is not None:
        fail(
            f"the engine at {url} holds the store: read these figures in the console (Usage, Pricing & margins) "
            f"or from {url}/api/analytics/costs and {url}/api/analytics/margins, or stop the engine first"
        )
    return Store(settings.store_path, memory_limit=settings.duckdb_memory_limit)


def mount_area_commands() -> None:
    """Each area's commands live in their own module (engine/cli/<area>.py)."""
    from engine.cli import db as db_cli
    from engine.cli import desktop as desktop_cli
    from engine.cli import domains as domains_cli
    from engine.cli import mobile as mobile_cli
    from engine.webbuild.cli import preflight_command

    costs_cli = importlib.import_module("engine.cli.costs")
    costs_cli.__dict__["store_factory"] = store_when_no_engine_runs  # the module reads it at call time
    app.add_typer(db_cli.app, name="db")
    app.add_typer(domains_cli.app, name="domains")
    app.add_typer(costs_cli.usage_app, name="usage")
    app.add_typer(costs_cli.costs_app, name="costs")
    app.add_typer(costs_cli.margins_app, name="margins")
    app.add_typer(costs_cli.pricing_app, name="pricing")
    app.command("preflight")(preflight_command)
    app.command("mobile")(mobile_cli.mobile)
    app.command("desktop")(desktop_cli.desktop)


mount_area_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
