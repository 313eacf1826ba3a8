"""Usage: per provider (the fleet) or per app over time: rows read and written, storage, requests,
bandwidth and compute, with the tier's monthly quota drawn on an app's month-to-date totals."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl
import streamlit as st

from console import ui

ui.require_role(*ui.READERS)
st.title("Usage")
ui.demo_banner()

METRICS = {
    "requests": ("Requests", "requests"),
    "bandwidth_bytes": ("Bandwidth (bytes)", "bandwidth_bytes"),
    "db_rows_read": ("Rows read", "db_rows_read"),
    "db_rows_written": ("Rows written", "db_rows_written"),
    "db_storage_bytes": ("Storage (bytes, daily peak)", "db_storage_bytes_peak"),
    "compute_ms": ("Compute (ms)", None),
}


@st.cache_data(ttl=60, show_spinner=False)
def series(url: str, token: str, app: str | None, days: int) -> dict[str, Any]:
    return ui.client_for(url, token).usage_series(app=app, days=days)


@st.cache_data(ttl=60, show_spinner=False)
def names_containing(url: str, token: str, search: str, limit: int) -> list[str]:
    found = ui.client_for(url, token).fleet(contains=search, limit=limit)
    column = found["columns"].index("name")
    return [row[column] for row in found["rows"]]


view, period = st.columns([3, 1])
PICKER_LIMIT = 1_000  # beyond this a picker of every app is slow to send: search by name first
summary = ui.call(ui.cached_summary, *ui.key())
apps = summary["apps"] if summary else 0
if apps > PICKER_LIMIT:  # the engine searches; the whole fleet is not fetched for a list of names
    search = view.text_input("Find an app by name", placeholder=f"{apps:,} apps: type part of a name")
    names = (ui.call(names_containing, *ui.key(), search, PICKER_LIMIT) or []) if search else []
else:
    fleet = ui.call(ui.cached_fleet, *ui.key())
    names = fleet["name"].to_list() if fleet is not None else []
app = view.selectbox("App", names, index=None,
                     placeholder="All apps, per provider (or choose one app)")  # fmt: skip
days = period.select_slider("Days", [7, 30, 60, 90], value=90)
data = ui.call(series, *ui.key(), app, days)
if data is None:
    st.stop()
rows = pl.DataFrame(data["rows"], infer_schema_length=None)
if rows.is_empty():
    st.info(
        "No usage in the ledger for this period yet. Metering collects it hourly (`launchdeck usage collect`)."
    )
    st.stop()
rows = rows.with_columns(pl.col("period").str.to_datetime())
st.caption(
    "Build minutes are not metered by the ledger yet; a metric with no reading shows as a gap, not zero."
)

if app is None:
    chosen = st.multiselect("Metrics", list(METRICS), default=["requests", "db_rows_read", "db_storage_bytes"],
                            format_func=lambda m: METRICS[m][0])  # fmt: skip
    for metric in chosen:
        chart = (
            alt.Chart(rows.select("period", "provider", metric).to_pandas())
            .mark_line()
            .encode(x=alt.X("period:T", title=None), y=alt.Y(f"{metric}:Q", title=METRICS[metric][0]),
                    color=alt.Color("provider:N", title="Provider"), tooltip=["period:T", "provider:N", f"{metric}:Q"])
            .properties(height=220, title=f"{METRICS[metric][0]} per day, by provider")
        )  # fmt: skip
        st.altair_chart(chart, width="stretch")
    totals = rows.group_by("provider").agg([pl.col(m).sum() for m in METRICS if m != "db_storage_bytes"])
    st.dataframe(totals.sort("provider"), hide_index=True, width="stretch")
    st.stop()

tiers = ui.call(ui.cached_tiers, *ui.key()) or {}
tier = tiers.get(data["tier"])
quotas: dict[str, int] = tier["quotas"] if tier else {}
st.markdown(f"**{data['app']}** · {data['tier']} tier · quotas are per app per calendar month")
daily = rows.group_by("period").agg([pl.col(m).sum() for m in METRICS if m != "db_storage_bytes"]
                                    + [pl.col("db_storage_bytes").max()]).sort("period")  # fmt: skip
month = pl.col("period").dt.truncate("1mo")
to_date = daily.with_columns(
    [pl.col(m).cum_sum().over(month).alias(f"{m}_to_date") for m in METRICS if m != "db_storage_bytes"]
    + [pl.col("db_storage_bytes").alias("db_storage_bytes_to_date")]
)
for metric, (title, quota_name) in METRICS.items():
    frame = to_date.select("period", metric, f"{metric}_to_date").to_pandas()
    if frame[metric].isna().all():
        st.caption(f"{title}: not measured for this app.")
        continue
    bars = alt.Chart(frame).mark_bar(opacity=0.5).encode(x=alt.X("period:T", title=None),
                                                         y=alt.Y(f"{metric}:Q", title=title))  # fmt: skip
    cumulative = alt.Chart(frame).mark_line(color="#444").encode(x="period:T", y=f"{metric}_to_date:Q")
    layers: list[alt.Chart] = [bars, cumulative]
    quota = quotas.get(quota_name) if quota_name else None
    if quota is not None:
        layers.append(alt.Chart(pl.DataFrame({"quota": [quota]}).to_pandas())
                      .mark_rule(color="red", strokeDash=[6, 3]).encode(y="quota:Q"))  # fmt: skip
    caption = f" (red: {data['tier']} quota {quota:,}/month)" if quota is not None else ""
    st.altair_chart(alt.layer(*layers).properties(height=200, title=f"{title}: per day and month to date{caption}"),
                    width="stretch")  # fmt: skip
