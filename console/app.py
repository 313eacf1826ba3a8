"""Launchdeck operator console (Streamlit). A thin client: it reaches the engine only through
``engine.client.EngineClient`` over HTTP, never the store."""

from __future__ import annotations

import os

import streamlit as st

from engine.client import EngineClient
from engine.errors import LaunchdeckError

st.set_page_config(page_title="Launchdeck", page_icon="🚀", layout="wide")


@st.cache_resource
def client_for(url: str, token: str) -> EngineClient:
    return EngineClient(url, token)


engine_url = os.environ.get("LAUNCHDECK_ENGINE_URL", "http://127.0.0.1:8470")
token = st.session_state.get("token", "")
with st.sidebar:
    token = st.text_input("Engine token", value=token, type="password")
    st.session_state["token"] = token

if not token:
    st.title("Launchdeck")
    st.info("Sign in with an engine token (`launchdeck up` prints where the first operator token is).")
    st.stop()

try:
    apps = client_for(engine_url, token).apps()
except LaunchdeckError as exc:
    st.error(str(exc))
    st.stop()

st.title("Apps")
st.dataframe(apps, use_container_width=True)
