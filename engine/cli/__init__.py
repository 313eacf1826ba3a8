"""The ``launchdeck`` command."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from engine.client import EngineClient
from engine.config import PROJECT_ROOT, Settings, load_settings
from engine.errors import ConfigError, LaunchdeckError

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


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def not_available_yet(capability: str) -> NoReturn:
    fail(f"{capability} is not available yet", code=2)


def current_settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def read_token(settings: Settings) -> str | None:
    token = os.environ.get("LAUNCHDECK_TOKEN")
    if token:
        return token.strip()
    if settings.operator_token_path.exists():
        return settings.operator_token_path.read_text().strip()
    return None


@contextmanager
def engine_client() -> Iterator[EngineClient]:
    """A client of the engine serving this workspace; when none runs, an embedded one in-process."""
    from engine.service import Engine, find_running_engine

    settings = current_settings()
    url = find_running_engine(settings)
    embedded: Engine | None = None
    if url is None:
        try:
            embedded = Engine(settings)
        except LaunchdeckError as exc:
            fail(str(exc))
        url = embedded.start_in_thread()
    client = EngineClient(url, read_token(settings))
    try:
        yield client
    except LaunchdeckError as exc:
        fail(str(exc))
    finally:
        client.close()
        if embedded is not None:
            embedded.stop_thread()


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


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
    if service.first_token:
        typer.echo(f"first operator token written to {settings.operator_token_path}")
    service.serve_forever()


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
    return {**os.environ, "LAUNCHDECK_ENGINE_URL": engine_url}


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
    launchdeck = [sys.executable, "-m", "engine.cli"]
    children = [subprocess.Popen([*launchdeck, "engine"])]
    deadline = time.monotonic() + 60
    from engine.service import find_running_engine

    while find_running_engine(settings) is None:
        if children[0].poll() is not None or time.monotonic() > deadline:
            fail("the engine did not start; see its messages above")
        time.sleep(0.2)
    if demo:
        from engine.demo import deploy_example

        with EngineClient(engine_url, read_token(settings)) as client:
            typer.echo(f"demo workspace: {deploy_example(client)}")
    children.append(
        subprocess.Popen(console_command(settings, settings.console_port), env=console_env(engine_url))
    )
    typer.echo(
        f"\nLaunchdeck is up.\n  engine API: {engine_url}  (OpenAPI at {engine_url}/docs)\n"
        f"  console:    http://{settings.engine_host}:{settings.console_port}\n"
        f"  operator token: {settings.operator_token_path}\nPress Ctrl-C to stop.\n"
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


# -- apps and deployments ---------------------------------------------------------------------------


@app.command()
def apps(
    app_name: Annotated[str | None, typer.Argument(metavar="[APP]", help="show one app in detail")] = None,
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
        rows = client.apps()
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


def render_app(detail: dict[str, Any]) -> str:
    lines = [
        f"{detail['name']}: {detail['status']} ({detail['tier']} tier, owner {detail['user_id']})",
        f"  url:       {detail['deployment_url'] or '-'}",
        f"  database:  {detail['database_provider'] or '-'} {detail['database_id'] or ''}",
        f"  live:      {detail['live_deployment_id'] or '-'}",
        f"  secrets:   {', '.join(detail['secrets']) or '-'} (values are never shown)",
    ]
    hosting = detail.get("hosting")
    if hosting:
        cold = hosting["last_cold_start_seconds"]
        lines.append(
            f"  server:    {hosting['server_state'] or 'static'}, {hosting['server_restarts']} restart(s), "
            f"last cold start {f'{cold:.2f} s' if cold is not None else '-'}, "
            f"{hosting['traffic']['requests']} requests"
        )
    lines.append("  deployments:")
    lines.extend(
        f"    {d['id']}  {d['pipeline']:<10} {d['status']:<10} {d['created_at']}"
        for d in detail["deployments"][:10]
    )
    return "\n".join(lines)


def render_status(status: dict[str, Any]) -> str:
    deployment = status["deployment"]
    lines = [f"deployment {deployment['id']} of {status.get('app', '?')}: {deployment['status']}"]
    marks = {"succeeded": "✓", "running": "◐", "failed": "✗", "pending": "○", "undone": "↺", "skipped": "-"}
    for step in status["steps"]:
        seconds = f"{step['seconds']:.1f}s" if step["seconds"] is not None else ""
        progress = ""
        if step["progress_total"]:
            progress = f" {step['progress_done']}/{step['progress_total']} {step['progress_unit'] or ''}"
        lines.append(f"  {marks.get(step['status'], '?')} {step['name']:<28} {seconds:>8}{progress}")
        if step["detail"]:
            lines.append(f"      └─ {step['detail']}")
        if step["error"]:
            lines.append(f"      └─ error: {step['error']}")
    if deployment["status"] in ("pending", "running") and status.get("eta_seconds") is not None:
        lines.append(f"  estimated time remaining: ~{status['eta_seconds']:.0f} s")
    if deployment.get("error"):
        lines.append(f"  {deployment['error']}")
    if status["log"]:
        lines.append("  log:")
        lines.extend(f"    {entry['step'] or '-'}: {entry['line']}" for entry in status["log"][-10:])
    return "\n".join(lines)


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


def run_and_report(client: EngineClient, started: dict[str, Any], *, as_json: bool) -> None:
    deployment_id = started["deployment_id"]
    if not as_json:
        typer.echo(
            f"deployment {deployment_id} started; following it (Ctrl-C stops following, not the deployment)"
        )
    status = client.wait(deployment_id, poll=0.5)
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
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"--env {pair!r}: write it as KEY=VALUE")
        if name in env:
            fail(f"--env {name} is given twice")
        env[name] = value
    return env


@app.command()
def deploy(
    app_dir: Annotated[
        Path, typer.Argument(help="the generated app's folder (package.json, prisma/schema.prisma)")
    ],
    name: Annotated[str | None, typer.Option(help="app name (default: the folder's name)")] = None,
    db: Annotated[
        str, typer.Option(help="local-libsql, local-postgres, turso, neon or byo")
    ] = "local-libsql",
    database_url: Annotated[str | None, typer.Option(help="with --db byo: the database to use")] = None,
    host: Annotated[str, typer.Option(help="local, cloudflare or vercel")] = "local",
    domain: Annotated[
        str | None, typer.Option(help="custom domain (then `launchdeck domains check`)")
    ] = None,
    env: Annotated[list[str] | None, typer.Option("--env", help="KEY=VALUE for the app; repeat")] = None,
    tier: Annotated[str | None, typer.Option(help="pricing tier (default: the owner's subscription)")] = None,
    preview: Annotated[Path | None, typer.Option(help="preview SQLite file or SQL dump to import")] = None,
    no_import_data: Annotated[bool, typer.Option("--no-import-data", help="start with empty tables")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Deploy an app folder: preflight, database, environment, code transformation, build and host, verify.

    Exit code 0 only when the deployment is live and healthy; a failed one leaves the previous one serving."""
    from engine.service import find_running_engine

    source = app_dir.resolve()
    if not (source / "package.json").is_file():
        fail(f"{app_dir} has no package.json: give the generated app's folder")
    if find_running_engine(current_settings()) is None and not as_json:
        typer.echo(
            "no engine is running, so this command runs one for itself: the app is deployed and kept, and "
            "it is served whenever an engine runs (`launchdeck engine` or `make run`)",
            err=True,
        )
    with engine_client() as client:
        started = client.deploy_web(
            str(source),
            app=name or source.name.lower().replace("_", "-"),
            db=db,
            host=host,
            domain=domain,
            env=parse_env(env or []),
            tier=tier,
            import_data=not no_import_data,
            database_url=database_url,
            preview=str(preview.resolve()) if preview else None,
        )
        run_and_report(client, started, as_json=as_json)


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
    role: Annotated[str, typer.Option(help="operator, finance or platform")],
    principal: Annotated[
        str | None, typer.Option(help="platform tokens: the owner of the apps it may see")
    ] = None,
) -> None:
    """Issue an engine API token. It is printed once; only its hash is kept."""
    with engine_client() as client:
        typer.echo(client.issue_token(name, role, principal))


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
