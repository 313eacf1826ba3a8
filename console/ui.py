"""Shared console helpers: the cached API client, error display, role checks, money and byte formats."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import polars as pl
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx, get_script_run_ctx

from engine.api_types import TierInfo, WorkspaceSummary
from engine.client import EngineClient
from engine.costs.money import cents_to_dollars
from engine.errors import AuthError, Forbidden, LaunchdeckError, NotAvailableYet, TransientError

T = TypeVar("T")
DEFAULT_ENGINE_URL = "http://127.0.0.1:8470"
OPERATOR_ONLY = "operator"
READERS = ("operator", "finance")


def engine_url() -> str:
    return os.environ.get("LAUNCHDECK_ENGINE_URL", DEFAULT_ENGINE_URL)


@st.cache_resource(show_spinner=False)
def client_for(url: str, token: str) -> EngineClient:
    return EngineClient(url, token, timeout=30.0)


def client() -> EngineClient:
    return client_for(engine_url(), str(st.session_state.get("token", "")))


def explain(error: LaunchdeckError) -> str:
    """A message for a person: what happened and what to do, never a stack trace."""
    if isinstance(error, AuthError):
        return f"The engine refused the token: {error}"
    if isinstance(error, Forbidden):
        return f"Not allowed for your role: {error}"
    if isinstance(error, NotAvailableYet):
        return f"Not available yet in this engine: {error}"
    if isinstance(error, TransientError):
        return f"The engine could not be reached: {error}"
    message = str(error)
    if "answered 404" in message or "answered 405" in message:
        return f"This engine does not offer that yet ({message.split(':')[0]})."
    return message


def call(function: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """Call the engine; on a Launchdeck error show it (signing out on a refused token) and return None."""
    try:
        return function(*args, **kwargs)
    except AuthError as exc:
        sign_out(reason=explain(exc))
        st.rerun()
    except LaunchdeckError as exc:
        st.error(explain(exc))
    return None


def sign_out(reason: str | None = None) -> None:
    st.session_state.token = ""
    st.session_state.role = None
    st.session_state.principal = None
    st.session_state.sign_in_error = reason


def require_role(*roles: str) -> None:
    """Stop a page that the signed-in role may not see (the navigation hides it too)."""
    role = st.session_state.get("role")
    if role not in roles:
        st.warning(f"This page is for {' or '.join(roles)} tokens; you are signed in as {role or 'nobody'}.")
        st.stop()


def read_only() -> bool:
    return st.session_state.get("role") != OPERATOR_ONLY


# -- cached reads: keyed by engine URL and token, so one person's view is never another's ----------------


@st.cache_data(ttl=60, show_spinner=False)
def cached_fleet(url: str, token: str) -> pl.DataFrame:
    """Every app with its cost in the latest month: one compact request, shared by the pages."""
    fleet = client_for(url, token).fleet()
    frame = pl.DataFrame(fleet["rows"], schema=fleet["columns"], orient="row", infer_schema_length=None)
    return frame.with_columns(
        pl.col("last_deployed_at").cast(pl.String).str.to_datetime(time_zone="UTC", strict=False),
        pl.col("cost_cents").cast(pl.Int64),
    )


def warm_fleet_in_background(url: str, token: str) -> None:
    """Fetch the fleet into the cache above while the landing page is read: the Apps page opens with it, and
    at 10,000 apps it is the console's largest answer (2 MB). The page waits for this fetch, never repeats it."""

    def fetch() -> None:
        with contextlib.suppress(LaunchdeckError):  # the page asks again, and shows the error, if this fails
            cached_fleet(url, token)

    thread = threading.Thread(target=fetch, name="console-fleet-warm-up", daemon=True)
    add_script_run_ctx(thread, get_script_run_ctx())  # so the cache is the one the pages read
    thread.start()


def owner_apps(owner: str) -> list[dict[str, Any]]:
    fleet = client().fleet(owner=owner)
    return [dict(zip(fleet["columns"], row, strict=True)) for row in fleet["rows"]]


@st.cache_data(ttl=60, show_spinner=False)
def cached_summary(url: str, token: str) -> WorkspaceSummary:
    return client_for(url, token).workspace_summary()


@st.cache_data(ttl=300, show_spinner=False)
def cached_tiers(url: str, token: str) -> dict[str, TierInfo]:
    return client_for(url, token).tiers()


def key() -> tuple[str, str]:
    return engine_url(), str(st.session_state.get("token", ""))


def refresh_fleet() -> None:
    cached_fleet.clear()
    cached_summary.clear()


def demo_banner() -> None:
    """Every page says so when the workspace holds demo data."""
    summary = call(cached_summary, *key())
    if summary and summary.get("demo_apps"):
        st.info(
            f"**Demo data**: {summary['demo_apps']:,} of the {summary['apps']:,} apps (names starting "
            "`demo-`) and their usage are synthetic, seeded by `launchdeck up --demo`.",
            icon=":material/science:",
        )


def money(cents: int | float | None) -> str:
    return "—" if cents is None else cents_to_dollars(round(cents))


def size(num_bytes: float | None) -> str:
    if num_bytes is None:
        return "not measured"
    value = float(num_bytes)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} TB"


def when(value: str | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An engine timestamp (ISO 8601 text over JSON) formatted for people, in UTC."""
    if not value:
        return ""
    return datetime.fromisoformat(value).astimezone(UTC).strftime(fmt)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{seconds:.0f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"
