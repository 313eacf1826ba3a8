"""Tokens: every engine token with its role, scope, expiry and state; revoke one; issue one (shown once)."""

from __future__ import annotations

import streamlit as st

from console import ui

ui.require_role(ui.OPERATOR_ONLY)
st.title("Tokens")
ui.demo_banner()
st.caption("Only a token's hash is kept: a new token is shown once, here, when it is issued.")

with st.form("issue-token"):
    st.subheader("Issue a token")
    left, middle, right = st.columns(3)
    name = left.text_input("Name", placeholder="builder-prod", key="token-name")
    role = middle.selectbox("Role", ["platform", "finance", "operator"], key="token-role")
    days = right.number_input("Expires in days (0: never)", min_value=0, value=90, key="token-days")
    left, right = st.columns(2)
    principal = left.text_input("Platform (platform tokens; default: the name)", key="token-principal")
    users = right.text_input("Only these users' apps (comma-separated; empty: all)", key="token-users")
    if st.form_submit_button("Issue", type="primary"):
        issued = ui.call(
            ui.client().issue_token_record,
            name.strip(),
            role,
            principal.strip() or None,
            users=[u.strip() for u in users.split(",") if u.strip()] or None,
            expires_in_days=float(days) or None,
        )
        if issued:
            st.success(f"Issued {issued['name']} ({issued['role']}). Copy it now; it is not shown again:")
            st.code(issued["token"], language=None)

tokens = ui.call(ui.client().tokens) or []
st.subheader(f"{len(tokens)} token(s)")
st.dataframe(
    [
        {
            "name": t["name"],
            "role": t["role"],
            "principal": t["principal"],
            "users": ", ".join(t["users"] or []) or "all",
            "created": ui.when(t["created_at"]),
            "expires": ui.when(t["expires_at"]) if t["expires_at"] else "never",
            "state": "revoked" if t["revoked_at"] else "active",
            "id": t["id"],
        }
        for t in tokens
    ],
    hide_index=True,
    width="stretch",
)
active = {f"{t['name']} ({t['role']}, {t['id'][:8]})": t["id"] for t in tokens if not t["revoked_at"]}
if active:
    choice = st.selectbox("Revoke", list(active), key="token-revoke-choice")
    if st.button("Revoke", key="token-revoke"):
        revoked = ui.call(ui.client().revoke_token, active[choice])
        if revoked:
            st.success(f"Revoked {revoked['name']}: it stops working at once.")
            st.rerun()
