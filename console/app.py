"""Launchdeck operator console (Streamlit): the entry point. A thin client: it reaches the engine only
through ``engine.client.EngineClient`` over HTTP, never the store.

Sign-in takes an engine token; the pages shown depend on its role (operators: all; finance: usage,
pricing and the cost model, read-only). Session state is initialised here, once, for every page."""

from __future__ import annotations

# Imported once here (the sign-in page pays, about 2 s on a busy machine), so no page pays on its first visit.
import altair  # noqa: F401
import pandas  # noqa: F401 - charts and tables convert through it
import polars  # noqa: F401
import pyarrow  # noqa: F401
import streamlit as st

from console import ui
from console.preload import preload_elements
from engine.errors import LaunchdeckError

# An operator console, not a Streamlit app to publish: no "Deploy" button or developer menu in the header.
st.set_option("client.toolbarMode", "minimal")
st.set_page_config(page_title="Launchdeck", page_icon=":material/rocket_launch:", layout="wide")

DEFAULTS: dict[str, object] = {
    "token": "",
    "role": None,
    "principal": None,
    "sign_in_error": None,
    "deployment_id": None,  # the deployment the Status page follows
    "wizard": None,  # the Deploy wizard's answers (console/wizard.py)
}
for name, value in DEFAULTS.items():
    st.session_state.setdefault(name, value)


def sign_in(token: str) -> None:
    token = token.strip()
    if not token:
        st.session_state.sign_in_error = "Paste an engine token first."
        return
    try:
        who = ui.client_for(ui.engine_url(), token).whoami()
    except LaunchdeckError as exc:
        st.session_state.sign_in_error = ui.explain(exc)
        return
    if who["role"] not in ui.READERS:
        st.session_state.sign_in_error = (
            f"A {who['role']} token is for the app-builder platform's API, not the console: "
            "use an operator or finance token."
        )
        return
    st.session_state.update(token=token, role=who["role"], principal=who["principal"], sign_in_error=None)
    if who["role"] == ui.OPERATOR_ONLY:  # operators land on Deploy; the Apps page's fleet loads meanwhile
        ui.warm_fleet_in_background(ui.engine_url(), token)


def sign_in_page() -> None:
    st.title("Launchdeck console")
    st.write("Sign in with an engine token. `launchdeck up` shows the first operator token once, when it starts on a "
             "new workspace; `launchdeck tokens create NAME --role finance` makes one for finance.")  # fmt: skip
    with st.form("sign-in"):
        token = st.text_input("Engine token", type="password", placeholder="ldk_…")
        if st.form_submit_button("Sign in", type="primary"):
            sign_in(token)
            if st.session_state.role:
                st.rerun()
    if st.session_state.sign_in_error:
        st.error(st.session_state.sign_in_error)
    st.caption(f"Engine: {ui.engine_url()}")
    preload_elements()


def pages_for(role: str) -> list[st.Page]:
    operator = [
        st.Page("pages/deploy.py", title="Deploy", icon=":material/rocket_launch:", url_path="deploy"),
        st.Page("pages/status.py", title="Status", icon=":material/monitor_heart:", url_path="status"),
        st.Page("pages/apps.py", title="Apps", icon=":material/apps:", url_path="apps"),
        st.Page("pages/tokens.py", title="Tokens", icon=":material/key:", url_path="tokens"),
    ]
    finance = [
        st.Page("pages/usage.py", title="Usage", icon=":material/query_stats:", url_path="usage"),
        st.Page(
            "pages/pricing.py", title="Pricing & margins", icon=":material/payments:", url_path="pricing"
        ),
        st.Page(
            "pages/cost_model.py", title="Cost model", icon=":material/calculate:", url_path="cost-model"
        ),
    ]
    return [*operator, *finance] if role == "operator" else finance


if not st.session_state.role:
    st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/key:")]).run()
else:
    with st.sidebar:
        st.markdown(f"Signed in as **{st.session_state.principal}** ({st.session_state.role})")
        if ui.read_only():
            st.caption("Read-only: finance sees usage, costs and margins.")
        if st.button("Sign out"):
            ui.sign_out()
            st.rerun()
        st.caption(f"Engine: {ui.engine_url()}")
    st.navigation(pages_for(str(st.session_state.role))).run()
