"""Status: one deployment, live. Each step with its duration and detail, a progress bar, the estimated
time remaining, the tail of the log, and cancel."""

from __future__ import annotations

import streamlit as st

from console import ui
from engine.api_types import StepRun

ui.require_role(ui.OPERATOR_ONLY)
st.title("Deployment status")
ui.demo_banner()

MARKS = {"succeeded": ":green[:material/check_circle:]", "running": ":blue[:material/progress_activity:]",
         "failed": ":red[:material/error:]", "pending": ":gray[:material/radio_button_unchecked:]",
         "cancelled": ":orange[:material/cancel:]", "undone": ":orange[:material/undo:]",
         "skipped": ":gray[:material/skip_next:]"}  # fmt: skip
ACTIVE = ("pending", "running")

recent = ui.call(ui.client().recent_deployments, 50) or []
options = [str(d["id"]) for d in recent]
current = st.session_state.deployment_id
if current and current not in options:
    options.insert(0, current)
if not options:
    st.info("No deployments yet: start one from the Deploy page.")
    st.stop()
labels = {str(d["id"]): f"{d['app']} · {d['pipeline']} · {d['status']} · {ui.when(d['created_at'])}"
          for d in recent}  # fmt: skip
st.session_state.deployment_id = st.selectbox(
    "Deployment", options, index=options.index(current) if current in options else 0,
    format_func=lambda i: labels.get(i, i),
)  # fmt: skip


def overall_progress(steps: list[StepRun]) -> float:
    """Finished steps count whole; the running one counts by its own progress when it reports any."""
    if not steps:
        return 0.0
    done = 0.0
    for step in steps:
        if step["status"] in ("succeeded", "skipped"):
            done += 1
        elif step["status"] == "running" and step["progress_total"]:
            done += min(1.0, (step["progress_done"] or 0) / step["progress_total"])
    return done / len(steps)


def render_step(step: StepRun) -> None:
    mark = MARKS.get(step["status"], "•")
    line, seconds = st.columns([6, 1])
    line.markdown(f"{mark} **{step['name']}** · {step['status']}")
    seconds.markdown(ui.duration(step["seconds"]))
    if step["detail"]:
        st.caption(f"└─ {step['detail']}")
    if step["status"] == "running" and step["progress_total"]:
        done, total = step["progress_done"] or 0, step["progress_total"]
        st.progress(min(1.0, done / total), text=f"{done:,} / {total:,} {step['progress_unit'] or ''}")
    if step["error"]:
        st.caption(f"└─ error: {step['error']}")


def render(deployment_id: str) -> None:
    status = ui.call(ui.client().status, deployment_id)
    if status is None:
        return
    deployment = status["deployment"]
    if st.session_state.get("status_polling") and deployment["status"] not in ACTIVE:
        st.session_state.status_polling = False
        st.rerun()  # the whole page again, so the finished deployment stops polling
    st.subheader(f"{status.get('app', '?')}: {deployment['status']}")
    steps = status["steps"]
    fraction = 1.0 if deployment["status"] == "succeeded" else overall_progress(steps)
    st.progress(fraction, text=f"{fraction:.0%} of {len(steps)} steps")
    for step in steps:
        render_step(step)
    if deployment["status"] in ACTIVE:
        eta = status.get("eta_seconds")
        st.markdown(
            f"**Estimated time remaining:** ~{ui.duration(eta)}" if eta is not None
            else "**Estimated time remaining:** not known yet (no earlier run of this pipeline to go by)"
        )  # fmt: skip
        if st.button("Cancel deployment", type="secondary"):
            accepted = ui.call(ui.client().cancel, deployment_id)
            st.toast(
                "Cancel requested: finished steps are being undone."
                if accepted
                else "It had already finished."
            )
    elif deployment["status"] == "succeeded":
        url = deployment.get("url")
        st.success(f"Live at {url}" if url else "Succeeded.")
        if url:
            st.link_button("Open the app", url)
    elif deployment.get("error"):
        st.error(deployment["error"])
    if status["log"]:
        st.markdown("**Log**")
        st.code("\n".join(f"{ui.when(e['logged_at'], '%H:%M:%S')} {e['step'] or '-'}: {e['line']}" for e in status["log"]),
                language=None)  # fmt: skip


# Refresh every second while the deployment runs; a finished one is shown once, without polling.
first = ui.call(ui.client().status, st.session_state.deployment_id)
live = bool(first) and first["deployment"]["status"] in ACTIVE  # type: ignore[index]
st.session_state.status_polling = live
st.fragment(run_every=1.0 if live else None)(render)(st.session_state.deployment_id)
