"""Apps: the fleet, filterable by tier, provider, state and owner; live URL, health and this month's cost;
rollback, suspend, resume and destroy (with a confirmation); each app's deployment history."""

from __future__ import annotations

from typing import Any

import polars as pl
import streamlit as st

from console import ui

ui.require_role(ui.OPERATOR_ONLY)
st.title("Apps")
ui.demo_banner()

HEALTH = {"active": "serving", "suspended": "suspended (503)", "failed": "failed",
          "deploying": "deploying", "provisioning": "provisioning", "destroyed": "destroyed"}  # fmt: skip


fleet = ui.call(ui.cached_fleet, *ui.key())
if fleet is None:
    st.stop()
if fleet.is_empty():
    st.info("No apps yet: deploy one from the Deploy page.")
    st.stop()
fleet = fleet.with_columns(pl.col("status").replace_strict(HEALTH, default="unknown").alias("health"))
costed = fleet["cost_cents"].null_count() < fleet.height

filters = st.columns(5)
tier = filters[0].multiselect("Tier", sorted(fleet["tier"].unique().to_list()))
providers = sorted(
    {p for p in fleet["database_provider"].to_list() + fleet["hosting_provider"].to_list() if p}
)
provider = filters[1].multiselect("Provider", providers)
state = filters[2].multiselect("State", sorted(fleet["status"].unique().to_list()))
owner = filters[3].text_input("Owner contains")
name = filters[4].text_input("Name contains")
shown = fleet
if tier:
    shown = shown.filter(pl.col("tier").is_in(tier))
if provider:
    shown = shown.filter(
        pl.col("database_provider").is_in(provider) | pl.col("hosting_provider").is_in(provider)
    )
if state:
    shown = shown.filter(pl.col("status").is_in(state))
if owner:
    shown = shown.filter(pl.col("user_id").str.contains(owner, literal=True))
if name:
    shown = shown.filter(pl.col("name").str.contains(name, literal=True))

total = int(shown["cost_cents"].sum()) if costed else None
cols = st.columns(4)
cols[0].metric("Apps shown", f"{shown.height:,} of {fleet.height:,}")
cols[1].metric("Serving", f"{shown.filter(pl.col('status') == 'active').height:,}")
cols[2].metric("Cost this month", ui.money(total) if costed else "—",
               help="Allocated cost in the latest month with metered usage.")  # fmt: skip
cols[3].metric(
    "Average per app", ui.money(total / shown.height) if total is not None and shown.height else "—"
)
if not costed:
    st.caption("No costs yet: they come from metered usage (`launchdeck usage collect`).")

if st.button("Refresh", icon=":material/refresh:"):
    ui.refresh_fleet()
    st.rerun()
TABLE_ROWS = 1_000  # a browser table of every app of a 10,000-app fleet is slow to send and to read
table = shown.sort("cost_cents", descending=True, nulls_last=True).head(TABLE_ROWS).select(
    "name", "user_id", "tier", "health", "deployment_url", "custom_domain", "database_provider",
    "hosting_provider", (pl.col("cost_cents") / 100).alias("cost_usd"), "last_deployed_at",
)  # fmt: skip
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "name": "App", "user_id": "Owner", "tier": "Tier", "health": "Health",
        "deployment_url": st.column_config.LinkColumn("Live URL"),
        "custom_domain": "Custom domain", "database_provider": "Database", "hosting_provider": "Hosting",
        "cost_usd": st.column_config.NumberColumn("Cost this month", format="$%.2f"),
        "last_deployed_at": st.column_config.DatetimeColumn("Last deployed", format="YYYY-MM-DD HH:mm"),
    },
)  # fmt: skip
if shown.height > TABLE_ROWS:
    st.caption(f"The {TABLE_ROWS:,} costliest of {shown.height:,} apps; filter to see others.")

st.subheader("Manage an app")
# A picker of every app of a 10,000-app fleet is slow to send and to search: beyond the table's rows it
# offers those (the costliest), and the filters above find any other.
names = (shown if shown.height <= TABLE_ROWS else table)["name"].sort().to_list()
if not names:
    st.stop()
chosen = st.selectbox("App", names, index=None, placeholder="Choose an app (type to search)")
if shown.height > TABLE_ROWS:
    st.caption(f"Offers the {TABLE_ROWS:,} apps in the table; use **Name contains** above to find another.")
if chosen is None:
    st.stop()
detail = ui.call(ui.client().app, chosen)
if detail is None:
    st.stop()
st.markdown(
    f"**{detail['name']}** · {HEALTH.get(detail['status'], detail['status'])} · owner {detail['user_id']} · "
    f"{detail['tier']} tier · {detail['database_provider'] or '-'} + {detail['hosting_provider'] or '-'}"
    + (f" · [{detail['deployment_url']}]({detail['deployment_url']})" if detail["deployment_url"] else "")
)
history = detail.get("deployments", [])
if history:
    st.dataframe(pl.DataFrame(history, infer_schema_length=None), hide_index=True, width="stretch")
else:
    st.caption("No deployment history in the engine for this app.")
if detail.get("secrets"):
    st.caption("Secrets set: " + ", ".join(detail["secrets"]))


def act(label: str, action: Any, *args: Any) -> None:
    """Start a lifecycle pipeline; the Status page follows it like any deployment."""
    started = ui.call(action, *args)
    if started is not None:
        ui.refresh_fleet()
        st.session_state.deployment_id = str(started["deployment_id"])
        st.success(f"{label} of {chosen} started (deployment {started['deployment_id']}).")
        st.page_link("pages/status.py", label="Follow it on the Status page", icon=":material/monitor_heart:")


suspend, resume, rollback, destroy = st.tabs(["Suspend", "Resume", "Rollback", "Destroy"])
with suspend:
    st.write("A suspended app answers 503 with a plain page, and its database refuses its credentials.")
    confirm = st.checkbox(f"Yes, suspend {chosen}", key="confirm-suspend")
    if st.button("Suspend", disabled=not confirm):
        act("Suspend", ui.client().suspend, chosen)
with resume:
    st.write("Resuming brings the app back as it was; nothing is lost.")
    if st.button("Resume"):
        act("Resume", ui.client().resume, chosen)
with rollback:
    kept = [str(d["id"]) for d in history if d["status"] == "succeeded"]
    target = st.selectbox("Roll back to", kept, index=None, placeholder="the previous live deployment")
    st.caption(
        "The deployment's configuration snapshot comes back with it; database migrations are not reversed."
    )
    confirm = st.checkbox(f"Yes, roll {chosen} back", key="confirm-rollback")
    if st.button("Roll back", disabled=not confirm):
        act("Rollback", ui.client().rollback, chosen, target)
with destroy:
    st.warning(
        "Destroying deletes the database, its role, files, processes, domains and secrets. It cannot be undone."
    )
    typed = st.text_input(f"Type {chosen} to confirm", key="confirm-destroy")
    if st.button("Destroy", type="primary", disabled=typed != chosen):
        act("Destroy", ui.client().destroy, chosen)


@st.cache_data(ttl=60, show_spinner=False)
def headroom(url: str, token: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = ui.client_for(url, token).request("GET", "/api/providers/headroom")
    return found


with st.expander("Provider plan headroom", expanded=False):
    st.caption("What each provider account's plan allows for one more app, what Launchdeck's apps use, and "
               "what lifts the limit. A deploy past a limit is refused before anything is created.")  # fmt: skip
    limits = ui.call(headroom, *ui.key())
    if limits:
        st.dataframe(
            pl.DataFrame(limits, infer_schema_length=None).with_columns(
                pl.col("limit").cast(pl.String).fill_null("unlimited"), pl.col("left").cast(pl.String).fill_null("—")
            ),
            hide_index=True, width="stretch",
            column_config={"provider": "Provider", "plan": "Plan", "limit_name": "Limit of", "limit": "Limit",
                           "used": "Used", "left": "Left", "lifted_by": "What lifts it"},
        )  # fmt: skip
