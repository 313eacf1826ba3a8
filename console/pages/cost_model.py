"""Cost model: the what-if of ``launchdeck pricing simulate``, with sliders. The engine runs the same
function as the command and the notebooks (``engine.costs.simulate``) for each architecture."""

from __future__ import annotations

import json
from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from console import ui

ui.require_role(*ui.READERS)
st.title("Cost model")
ui.demo_banner()
st.write("What a fleet would cost per month on each architecture, with the price sheets in force, and the "
         "margin at a tier mix. Move the sliders; every figure is recomputed by the engine.")  # fmt: skip


@st.cache_data(ttl=600, show_spinner=False)
def run(url: str, token: str, assumptions: str) -> dict[str, Any]:
    return ui.client_for(url, token).simulate(**json.loads(assumptions))


@st.cache_data(ttl=600, show_spinner=False)
def architectures(url: str, token: str) -> list[str]:
    return ui.client_for(url, token).simulate_architectures()


@st.cache_data(ttl=600, show_spinner=False)
def cpu_defaults(url: str, token: str) -> dict[str, Any]:
    found: dict[str, Any] = ui.client_for(url, token).request("GET", "/api/analytics/cpu-per-request")
    return found


left, right = st.columns(2)
apps = left.slider("Apps", 10, 20_000, 500, step=10)
active = left.slider("Share of apps active in a month", 0.0, 1.0, 0.2, step=0.05)
reads = left.select_slider("Rows read per active app per month",
                           [10_000, 100_000, 1_000_000, 10_000_000, 100_000_000], value=1_000_000)  # fmt: skip
writes = left.select_slider("Rows written per active app per month",
                            [1_000, 20_000, 100_000, 1_000_000, 10_000_000], value=20_000)  # fmt: skip
requests = right.select_slider("Requests per active app per month",
                               [1_000, 30_000, 300_000, 3_000_000], value=30_000)  # fmt: skip
storage_mb = right.select_slider("Storage per app (MB)", [1, 20, 100, 500, 2_000], value=20)
defaults = ui.call(cpu_defaults, *ui.key()) or {}
measured_cpu = defaults.get("measured_median")
start_cpu = min(50.0, round(float(measured_cpu or defaults.get("documented") or 7), 1))
cpu_ms = right.slider(
    "CPU time per request (ms)", 0.0, 50.0, start_cpu, step=0.5,
    help="What Workers, Workers for Platforms and Vercel Functions bill beside requests. "
    + (f"Starts at the fleet's measured median, {measured_cpu} ms." if measured_cpu
       else "Starts at 7 ms, the average in Cloudflare's Workers pricing examples (no measured median yet)."),
)  # fmt: skip
st.markdown("**Tier mix** (shares of paying apps)")
mix_cols = st.columns(3)
starter = mix_cols[0].slider("Starter", 0, 100, 70)
pro = mix_cols[1].slider("Pro", 0, 100, 25)
business = mix_cols[2].slider("Business", 0, 100, 5)
mix_total = starter + pro + business
if mix_total == 0:
    st.error("The tier mix is empty: give at least one tier a share.")
    st.stop()
tier_mix = {"starter": starter / mix_total, "pro": pro / mix_total, "business": business / mix_total}
st.caption("Mix normalised to " + ", ".join(f"{k} {v:.0%}" for k, v in tier_mix.items()))

rows = []
for architecture in ui.call(architectures, *ui.key()) or []:
    assumptions = {
        "apps": apps, "active_share": active, "reads_per_active_app": reads, "writes_per_active_app": writes,
        "requests_per_active_app": requests, "storage_bytes_per_app": storage_mb * 1_000_000,
        "tier_mix": tier_mix, "architecture": architecture, "cpu_ms_per_request": cpu_ms,
    }  # fmt: skip
    result = ui.call(run, *ui.key(), json.dumps(assumptions, sort_keys=True))
    if result:
        rows.append({
            "architecture": architecture,
            "total_usd": result["total_cents"] / 100,
            "per_app_usd": float(result["per_app_cents"]["mean"]) / 100,
            "revenue_usd": result["revenue_cents"] / 100,
            "margin_usd": result["margin_cents"] / 100,
            "margin_percent": result["margin_percent"],
            "bills": ", ".join(f"{p} {ui.money(c)}" for p, c in result["provider_bills_cents"].items()),
            "limits": "; ".join(result.get("limit_problems", [])) or "within plan limits",
        })  # fmt: skip
if not rows:
    st.stop()
table = pl.DataFrame(rows)
cheapest = table.sort("total_usd").row(0, named=True)
railway = table.filter(pl.col("architecture") == "railway")
cols = st.columns(3)
cols[0].metric("Cheapest architecture", cheapest["architecture"], f"${cheapest['total_usd']:,.2f}/month",
               delta_color="off")  # fmt: skip
if not railway.is_empty():
    cols[1].metric("Railway baseline", f"${railway['total_usd'][0]:,.2f}/month")
    saving = railway["total_usd"][0] - cheapest["total_usd"]
    cols[2].metric("Saving against Railway", f"${saving:,.2f}/month")
st.altair_chart(
    alt.Chart(table.to_pandas()).mark_bar().encode(
        x=alt.X("total_usd:Q", title="USD per month", scale=alt.Scale(type="symlog")),
        y=alt.Y("architecture:N", sort="x", title=None),
        tooltip=["architecture:N", alt.Tooltip("total_usd:Q", format="$,.2f"),
                 alt.Tooltip("per_app_usd:Q", format="$,.4f")],
    ).properties(height=200),
    width="stretch",
)  # fmt: skip
st.dataframe(
    table, hide_index=True, width="stretch",
    column_config={c: st.column_config.NumberColumn(format="$%.2f") for c in
                   ("total_usd", "revenue_usd", "margin_usd")}
    | {"per_app_usd": st.column_config.NumberColumn(format="$%.4f"),
       "margin_percent": st.column_config.NumberColumn("margin %", format="%.1f%%")},
)  # fmt: skip
st.caption("The plan promised $50-250/month for 500 apps on Turso + Cloudflare against $7,500 on Railway; "
           "the rows above say where that holds for these assumptions.")  # fmt: skip
