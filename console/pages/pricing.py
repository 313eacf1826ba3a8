"""Pricing & margins: per tier revenue, cost and margin by month; the least profitable apps; the price
sheet versions in force; both Railway baselines (reserved size, measured use) beside the actual cost; subscribing
a user to a paid tier."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from console import ui

ui.require_role(*ui.READERS)
st.title("Pricing & margins")
ui.demo_banner()


@st.cache_data(ttl=60, show_spinner=False)
def history(url: str, token: str, months: int) -> dict[str, Any]:
    return ui.client_for(url, token).margin_history(months)


@st.cache_data(ttl=60, show_spinner=False)
def least_profitable(url: str, token: str, month: str, count: int) -> dict[str, Any]:
    return ui.client_for(url, token).margins(month, count)


@st.cache_data(ttl=300, show_spinner=False)
def sheets(url: str, token: str) -> list[dict[str, Any]]:
    return ui.client_for(url, token).price_sheets()


months = st.select_slider("Months", [1, 2, 3, 4, 6], value=3)
data = ui.call(history, *ui.key(), months)
if data is None or not data["months"]:
    st.info("No months to show yet: costs come from metered usage in the ledger.")
    st.stop()
latest = data["months"][-1]
totals = latest["totals"]
cols = st.columns(6)
cols[0].metric(f"Revenue {latest['month'][:7]}", ui.money(totals["revenue_cents"]),
               help=f"Source: {latest['revenue_source'].replace('_', ' ')}")  # fmt: skip
cols[1].metric("Cost", ui.money(totals["cost_cents"]), help="Provider bills allocated to apps, plus idle.")
cols[2].metric("Payment fees", ui.money(totals["payment_fee_cents"]))
cols[3].metric("Margin", ui.money(totals["margin_cents"]),
               delta=f"{100 * totals['margin_cents'] / totals['revenue_cents']:.1f}%" if totals["revenue_cents"] else None)  # fmt: skip
cols[4].metric("Railway, reserved size", ui.money(latest["railway_baseline_cents"]),
               help="The same apps, each as an always-on Railway service of 0.5 vCPU and 0.5 GB "
                    "(the plan's ~$15/app; data/prices/railway.toml).")  # fmt: skip
cols[5].metric("Railway, measured use", ui.money(latest.get("railway_measured_cents", 0)),
               help=f"{latest.get('apps_measured', 0)} of {latest.get('apps', 0)} apps at the CPU time and memory "
                    "they used on this machine, at Railway's per-minute prices; apps that did not run here "
                    "count at the reserved size.")  # fmt: skip
if latest["revenue_source"] == "list_price":
    st.caption(
        "Revenue is each tier's list price (Stripe is not configured or has no invoices for the month)."
    )

tiers = pl.DataFrame(
    [{"month": m["month"][:7], **row} for m in data["months"] for row in m["tiers"]], infer_schema_length=None
)
st.subheader("Per tier, by month")
dollars = tiers.with_columns(
    [(pl.col(c) / 100).alias(c.replace("_cents", "_usd")) for c in
     ("revenue_cents", "cost_cents", "margin_cents", "payment_fee_cents", "railway_baseline_cents",
      "railway_measured_cents")]
)  # fmt: skip
long = dollars.select("month", "tier", "revenue_usd", "cost_usd", "margin_usd").unpivot(
    index=["month", "tier"], variable_name="measure", value_name="usd"
)
chart = (
    alt.Chart(long.to_pandas())
    .mark_bar()
    .encode(
        x=alt.X("month:N", title=None), xOffset="measure:N", y=alt.Y("usd:Q", title="USD"),
        color=alt.Color("measure:N", title=None), column=alt.Column("tier:N", title=None),
        tooltip=["month:N", "tier:N", "measure:N", alt.Tooltip("usd:Q", format="$,.2f")],
    )
    .properties(width=120, height=220)
)  # fmt: skip
st.altair_chart(chart)
st.dataframe(
    dollars.select("month", "tier", "users", "apps", "revenue_usd", "cost_usd", "payment_fee_usd", "margin_usd",
                   "margin_percent", "railway_baseline_usd", "railway_measured_usd", "apps_measured"),
    hide_index=True, width="stretch",
    column_config={c: st.column_config.NumberColumn(format="$%.2f") for c in
                   ("revenue_usd", "cost_usd", "payment_fee_usd", "margin_usd")}
    | {"margin_percent": st.column_config.NumberColumn("margin %", format="%.1f%%"),
       "railway_baseline_usd": st.column_config.NumberColumn("Railway, reserved size", format="$%.2f"),
       "railway_measured_usd": st.column_config.NumberColumn("Railway, measured use", format="$%.2f"),
       "apps_measured": "apps measured"},
)  # fmt: skip
st.caption(f"Idle cost in {latest['month'][:7]} (plan fees no app used): {ui.money(latest['idle_cents'])}.")

st.subheader("Both Railway baselines beside actual cost")
baseline = pl.DataFrame(
    [{"month": m["month"][:7], "Launchdeck (actual)": m["totals"]["cost_cents"] / 100,
      "Railway, reserved size": m["railway_baseline_cents"] / 100,
      "Railway, measured use": m.get("railway_measured_cents", 0) / 100} for m in data["months"]]
).unpivot(index="month", variable_name="what", value_name="usd")  # fmt: skip
st.altair_chart(
    alt.Chart(baseline.to_pandas()).mark_bar().encode(
        x=alt.X("month:N", title=None), xOffset="what:N", y=alt.Y("usd:Q", title="USD per month"),
        color=alt.Color("what:N", title=None), tooltip=["month:N", "what:N", alt.Tooltip("usd:Q", format="$,.2f")],
    ).properties(height=240),
    width="stretch",
)  # fmt: skip

st.subheader(f"Least profitable apps, {latest['month'][:7]}")
margins = ui.call(least_profitable, *ui.key(), latest["month"][:7], 15)
if margins:
    least = pl.DataFrame(margins["least_profitable"], infer_schema_length=None)
    if not least.is_empty():
        st.dataframe(
            least.select("name", "user_id", "tier", *[(pl.col(c) / 100).alias(c.replace("_cents", "_usd")) for c in
                         ("revenue_cents", "cost_cents", "margin_cents", "railway_baseline_cents")]),
            hide_index=True, width="stretch",
            column_config={c: st.column_config.NumberColumn(format="$%.2f") for c in
                           ("revenue_usd", "cost_usd", "margin_usd", "railway_baseline_usd")},
        )  # fmt: skip

st.subheader("Price sheet versions")
versions = ui.call(sheets, *ui.key())
if versions:
    st.dataframe(
        pl.DataFrame(versions, infer_schema_length=None).select(
            "display_name", "effective_from", "in_force", "account_plan", "base_fee", "source", "differs_from_plan"
        ),
        hide_index=True, width="stretch",
        column_config={"source": st.column_config.LinkColumn("source"), "in_force": "in force this month",
                       "base_fee": "base fee (USD/month)"},
    )  # fmt: skip

if not ui.read_only():
    st.subheader("Subscribe a user to a paid tier")
    st.caption("Creates the Stripe customer (or finds it again) and a subscription on the tier's monthly price; "
               "the tier changes when Stripe's webhook confirms it.")  # fmt: skip
    with st.form("subscribe"):
        user = st.text_input("User (owner of apps)")
        tier = st.selectbox("Tier", ["starter", "pro", "business"])
        email = st.text_input("Email (optional)")
        if st.form_submit_button("Subscribe") and user:
            created = ui.call(
                lambda: ui.client_for(*ui.key()).request(
                    "POST",
                    "/api/billing/subscriptions",
                    json={"user": user, "tier": tier, "email": email or None},
                )
            )
            if created:
                st.success(f"Subscription {created['subscription_id']} created for {user} ({tier}).")
