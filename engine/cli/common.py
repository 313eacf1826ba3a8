"""What every ``launchdeck`` sub-command shares: failing with a message, the settings, the caller's token,
a client of the engine (or an embedded one), and rendering apps and deployments."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import typer

from engine import api_types as T
from engine.client import EngineClient
from engine.config import Settings, load_settings
from engine.errors import ConfigError, LaunchdeckError


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def current_settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        fail(str(exc))


def read_token() -> str | None:
    """The caller's engine token: LAUNCHDECK_TOKEN, else the file LAUNCHDECK_TOKEN_FILE names."""
    token = os.environ.get("LAUNCHDECK_TOKEN")
    if token:
        return token.strip()
    path = os.environ.get("LAUNCHDECK_TOKEN_FILE")
    if path:
        try:
            return Path(path).expanduser().read_text().strip()
        except OSError as exc:
            fail(f"LAUNCHDECK_TOKEN_FILE: cannot read {path} ({exc.strerror})")
    return None


def show_first_token(token: str | None) -> None:
    if token:
        typer.echo(
            "first operator token (shown this once; only its hash is kept, so store it now):\n"
            f"  {token}\n"
            "sign in to the console with it, or set LAUNCHDECK_TOKEN for commands",
            err=True,
        )


SESSION_SECONDS = 3600


def session_token(store: Any, purpose: str) -> tuple[str, str]:
    """A short-lived operator token for a command on this machine (which may open the store, so it is
    the operator's): (token, id). Revoked when the command ends; it expires in an hour regardless."""
    from datetime import UTC, datetime, timedelta

    from engine.auth import issue_token, token_info

    token = issue_token(
        store,
        role="operator",
        principal="operator",
        name=f"launchdeck {purpose} (this machine)",
        expires_at=datetime.now(UTC) + timedelta(seconds=SESSION_SECONDS),
    )
    return token, token_info(store, token).id


def remote_url(engine_url: str | None) -> str | None:
    return engine_url or os.environ.get("LAUNCHDECK_ENGINE_URL") or None


@contextmanager
def engine_client(engine_url: str | None = None) -> Iterator[EngineClient]:
    """A client of the engine at ``engine_url`` (or LAUNCHDECK_ENGINE_URL), else of the engine serving this
    workspace; when none runs, an embedded one in-process for the command's duration."""
    from engine.auth import end_session
    from engine.service import Engine, find_running_engine

    settings = current_settings()
    url = remote_url(engine_url) or find_running_engine(settings)
    embedded: Engine | None = None
    token = read_token()
    session: str | None = None
    if url is None:
        try:
            embedded = Engine(settings)
        except LaunchdeckError as exc:
            fail(str(exc))
        show_first_token(embedded.first_token)
        if token is None:
            token, session = session_token(embedded.store, "command")
        try:
            url = embedded.start_in_thread()
        except LaunchdeckError as exc:  # what starts with it, such as the engine's own PostgreSQL cluster
            embedded.close()
            fail(str(exc))
    elif token is None:
        fail(f"the engine at {url} needs a token: set LAUNCHDECK_TOKEN (or LAUNCHDECK_TOKEN_FILE)")
    client = EngineClient(url, token)
    try:
        yield client
    except LaunchdeckError as exc:
        fail(str(exc))
    finally:
        client.close()
        if embedded is not None:
            if session is not None:
                end_session(embedded.store, session)
            embedded.stop_thread()


def echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, default=str))


def render_app(detail: T.AppDetail) -> str:
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


def render_status(status: T.DeploymentStatus) -> str:
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
