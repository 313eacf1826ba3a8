"""Deploy: the plan's three steps (database; hosting, domain and variables; review), then Deploy."""

from __future__ import annotations

from typing import Any

import streamlit as st

from console import ui, wizard
from console.wizard import Answers
from engine import api_types as T

ui.require_role(ui.OPERATOR_ONLY)
st.title("Deploy an app")
ui.demo_banner()

if st.session_state.wizard is None:  # the tier starts as the default owner's own: no override unless chosen
    subscribed = ui.call(ui.client().subscription, Answers.owner)
    st.session_state.wizard = {
        "step": 1,
        "answers": Answers(tier=str(subscribed["tier"]) if subscribed else "free"),
    }
state: dict[str, Any] = st.session_state.wizard
answers: Answers = state["answers"]
tiers: dict[str, T.TierInfo] = ui.call(ui.cached_tiers, *ui.key()) or {}

STEPS = ("Database", "Hosting & domain", "Review")
st.progress(state["step"] / 3, text=f"Step {state['step']} of 3: {STEPS[state['step'] - 1]}")


def go(step: int, problems: list[str] | None = None) -> None:
    """Move to ``step`` unless the current step has problems; those are shown instead."""
    state["problems"] = problems or []
    if not state["problems"]:
        state["step"] = step


@st.cache_data(ttl=60, show_spinner=False, max_entries=32)
def estimate(url: str, token: str, tier: str) -> T.DeployEstimate:
    return ui.client_for(url, token).deploy_estimate(tier)


def cost_label(choice: str, costs: T.DeployEstimate | None) -> str:
    if not costs:
        return ""
    entry = costs["choices"].get(choice)
    if entry is None or entry["costed_as"] is None:
        return "no cost to Launchdeck (the user's own)"
    share = (
        ui.money(entry["app_cents"]) if entry["app_cents"] or not entry["plan_base_cents"] else "under $0.01"
    )
    return (
        f"≈ {share}/mo for this app "
        f"({entry['costed_as']} {entry['plan']}: {ui.money(entry['plan_base_cents'])}/mo base fee "
        f"shared by {entry['apps_sharing']:,} apps)"
    )


def owner_tier(owner: str) -> str | None:
    found = ui.call(ui.client().subscription, owner) if owner.strip() else None
    return str(found["tier"]) if found else None


def step_source() -> None:
    sources = list(wizard.SOURCES)
    answers.source = st.radio("The app", sources, index=sources.index(answers.source), key="wiz-source",
                              format_func=lambda s: wizard.SOURCES[s], horizontal=True)  # fmt: skip
    if answers.source == "folder":
        answers.app_dir = st.text_input(
            "App folder (on the engine's machine)", answers.app_dir, key="wiz-app-dir"
        )
        return
    left, right = st.columns(2)
    archive = left.file_uploader("App archive", type=["gz", "tgz", "zip"], key="wiz-archive",
                                 help="The generated app's folder as a .tar.gz or .zip, without node_modules")  # fmt: skip
    if archive is not None:
        answers.archive, answers.archive_name = archive.getvalue(), archive.name
    preview = right.file_uploader("Preview database (optional)", type=["sqlite", "db", "sql"], key="wiz-preview",
                                  help="sql.js `db.export()` output or a SQL dump")  # fmt: skip
    if preview is not None:
        answers.preview, answers.preview_name = preview.getvalue(), preview.name


def step_database(costs: T.DeployEstimate | None) -> None:
    step_source()
    left, right = st.columns(2)
    answers.name = left.text_input("App name", answers.name, placeholder="my-app", key="wiz-name",
                                   help="Lower-case letters, digits and hyphens; it becomes the host name.")  # fmt: skip
    answers.owner = right.text_input("Owner (user id)", answers.owner, key="wiz-owner")
    tier_names = list(tiers) or [answers.tier]
    subscribed = owner_tier(answers.owner)
    answers.tier = st.selectbox("Owner's tier", tier_names, key="wiz-tier",
                                index=tier_names.index(answers.tier) if answers.tier in tier_names else 0,
                                help="The owner's subscription decides the tier; choosing another overrides it for "
                                "this owner, with an entry in the audit log.")  # fmt: skip
    if subscribed and subscribed != answers.tier:
        st.caption(f"{answers.owner}'s subscription is on {subscribed}: deploying overrides it to {answers.tier} "
                   "(audited).")  # fmt: skip
    st.subheader("Database")
    choices = list(wizard.DATABASES)
    chosen = st.radio(
        "Choose how to deploy the app's database",
        choices,
        index=choices.index(answers.database),
        key="wiz-database",
        format_func=lambda c: wizard.DATABASES[c][0],
        captions=[f"{wizard.DATABASES[c][1]} {cost_label(c, costs)}" for c in choices],
    )
    answers.database = chosen or answers.database  # an index is given, so a choice is always made
    if answers.database == "byo":
        answers.database_url = st.text_input(
            "Database URL", answers.database_url, type="password", key="wiz-database-url"
        )
    answers.import_data = st.checkbox(
        "Import data from preview", answers.import_data, key="wiz-import",
        help="Transfer the preview SQLite data (users, posts, …) to the production database; "
        "row counts and checksums are verified after the copy.",
    )  # fmt: skip
    if st.button("Next: Hosting →", type="primary", key="wiz-next-1"):
        go(
            2,
            wizard.check_database(answers)
            + wizard.check_tier(answers, tiers, ui.call(ui.owner_apps, answers.owner) or []),
        )
        st.rerun()


def step_hosting() -> None:
    st.subheader("Hosting")
    hosts = list(wizard.HOSTS)
    answers.host = st.radio("Hosting provider", hosts, index=hosts.index(answers.host), key="wiz-host",
                            format_func=lambda h: wizard.HOSTS[h][0],
                            captions=[wizard.HOSTS[h][1] for h in hosts])  # fmt: skip
    st.subheader("Domain")
    subdomain = {
        "cloudflare": f"{answers.name}.pages.dev",
        "vercel": f"{answers.name}.vercel.app",
        "local": f"{answers.name}.localhost",
    }[answers.host]
    mode = st.radio("Domain", ["free", "custom"], index=1 if answers.custom_domain else 0, key="wiz-domain-mode",
                    format_func=lambda m: f"Free subdomain: {subdomain}" if m == "free" else "Custom domain",
                    horizontal=True)  # fmt: skip
    answers.custom_domain = mode == "custom"
    if answers.custom_domain:
        answers.domain = st.text_input(
            "Custom domain", answers.domain, placeholder="myapp.com", key="wiz-domain"
        )
        if answers.domain:
            problems = wizard.check_domain(answers.domain)
            (st.error(problems[0]) if problems else st.success(f"{answers.domain} is a valid domain name"))
    st.subheader("Environment variables")
    st.caption("Stored encrypted in the engine's vault and injected at run time; never shown again once set.")
    show = st.toggle("Show values", value=False, key="wiz-show-values")
    for index, row in enumerate(answers.env):
        name_col, value_col, remove_col = st.columns([2, 3, 1])
        row["name"] = name_col.text_input("Name", row["name"], key=f"env-name-{index}", placeholder="STRIPE_SECRET_KEY",
                                          label_visibility="collapsed")  # fmt: skip
        row["value"] = value_col.text_input("Value", row["value"], key=f"env-value-{index}",
                                            type="default" if show else "password", label_visibility="collapsed")  # fmt: skip
        if remove_col.button("Remove", key=f"env-remove-{index}"):
            answers.env.pop(index)
            st.rerun()
    if st.button("+ Add variable", key="wiz-add-env"):
        answers.env.append({"name": "", "value": ""})
        st.rerun()
    back, forward = st.columns([1, 1])
    if back.button("← Back", key="wiz-back-2"):
        go(1)
        st.rerun()
    if forward.button("Next: Review →", type="primary", key="wiz-next-2"):
        go(
            3,
            wizard.check_hosting(answers)
            + wizard.check_tier(answers, tiers, ui.call(ui.owner_apps, answers.owner) or []),
        )
        st.rerun()


def step_review(costs: T.DeployEstimate | None) -> None:
    st.subheader("Review")
    summary = {
        "App": f"{answers.name} from "
        + (answers.app_dir if answers.source == "folder" else f"the upload {answers.archive_name}"),
        "Owner": f"{answers.owner} ({answers.tier} tier)",
        "Database": wizard.DATABASES[answers.database][0]
        + (", importing preview data" if answers.import_data else ", empty"),
        "Hosting": wizard.HOSTS[answers.host][0],
        "Domain": answers.domain if answers.custom_domain else "free subdomain",
        "Environment": ", ".join(wizard.env_dict(answers.env)) or "none",
    }
    st.table([{"": k, "Value": v} for k, v in summary.items()])
    if costs:
        db_cents = costs["choices"][answers.database]["app_cents"]
        host_cents = costs["choices"][answers.host]["app_cents"]
        st.metric("Estimated monthly cost to Launchdeck", ui.money(db_cents + host_cents),
                  help=f"Price sheets in force {costs['month']}; usage assumed: the median {answers.tier} app.")  # fmt: skip
        st.caption(f"Database {ui.money(db_cents)} + hosting {ui.money(host_cents)} per month.")
    tier = tiers.get(answers.tier)
    if tier:
        quotas = tier["quotas"]
        st.markdown(
            f"**{answers.tier} tier limits**: {tier['max_deployed_apps']} deployed apps, "
            f"{tier['max_custom_domains']} custom domains, databases: "
            f"{', '.join(tier['allowed_database_providers'])}"
            + (
                f"; monthly quotas: {', '.join(f'{k} {v:,}' for k, v in quotas.items())}" if quotas else ""
            ).replace("-1", "unlimited")
        )
    problems = (
        wizard.check_database(answers)
        + wizard.check_hosting(answers)
        + wizard.check_tier(answers, tiers, ui.call(ui.owner_apps, answers.owner) or [])
    )
    for problem in problems:
        st.error(problem)
    back, forward = st.columns([1, 1])
    if back.button("← Back", key="wiz-back-3"):
        go(2)
        st.rerun()
    if forward.button("Deploy", type="primary", disabled=bool(problems), key="wiz-deploy"):
        sources = upload_sources() if answers.source == "upload" else {"source_path": answers.app_dir}
        started = (
            None
            if sources is None
            else ui.call(
                ui.client().deploy_web,
                **sources,
                app=answers.name,
                db=answers.database,
                host=answers.host,
                domain=answers.domain if answers.custom_domain else None,
                env=wizard.env_dict(answers.env),
                tier=answers.tier if answers.tier != owner_tier(answers.owner) else None,
                owner=answers.owner,
                import_data=answers.import_data,
                database_url=answers.database_url or None,
            )
        )
        if started:
            st.session_state.deployment_id = str(started["deployment_id"])
            st.session_state.wizard = None
            ui.refresh_fleet()
            st.switch_page("pages/status.py")


def upload_sources() -> dict[str, str] | None:
    """Send the archive (and the preview database) to the engine; their upload ids for the deploy."""
    import tempfile
    from pathlib import Path

    sources: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="launchdeck-console-") as scratch:
        for kind, data, field in (
            ("app", answers.archive, "upload_id"),
            ("preview", answers.preview, "preview_upload_id"),
        ):
            if not data:
                continue
            path = Path(scratch) / kind
            path.write_bytes(data)
            with st.spinner(f"Uploading the {kind} ({len(data) / 1e6:.1f} MB)…"):
                sent = ui.call(ui.client().upload, path, kind)
            if sent is None:
                return None
            sources[field] = str(sent["upload_id"])
    return sources


costs = ui.call(estimate, *ui.key(), answers.tier)
if state["step"] == 1:
    step_database(costs)
elif state["step"] == 2:
    step_hosting()
else:
    step_review(costs)
for problem in state.get("problems", []):
    st.error(problem)
