"""Engine API tokens: three roles, stored as SHA-256 hashes only.

- ``operator``: everything.
- ``finance``: read-only usage, costs and margins.
- ``worker``: a ``launchdeck worker`` process; it may call the ``/api/worker/`` routes and nothing else.
- ``platform``: deploy and read its own apps. A platform's apps belong to the platform itself (owner
  ``P``) or to one of its users (owner ``P/user``); a platform token may be limited to named users.

A token is shown once, when it is issued; it can expire and be revoked.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from engine.errors import AuthError, Forbidden, InputError, NotFound
from engine.records import TokenInfo
from engine.store import Store

Role = Literal["operator", "finance", "platform", "worker"]
ROLES: tuple[Role, ...] = ("operator", "finance", "platform", "worker")
WORKER_ROUTES = "/api/worker/"  # the only routes a worker token may call
TOKEN_PREFIX = "ldk_"
# Principals and platform user names: they become owner ids ("platform/user"), so no slash in either.
NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
OWNER_SEPARATOR = "/"


def check_name(value: str, what: str) -> str:
    if not NAME_RULE.match(value):
        raise InputError(
            f"{what} {value[:40]!r} must be 1-100 letters, digits, '.', '_', '@' or '-', starting with a "
            "letter or digit"
        )
    return value


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str  # for platform tokens: the platform, owner of its apps and prefix of its users' owner ids
    users: tuple[str, ...] | None = None  # platform tokens limited to these users' apps
    token_id: str | None = None

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"

    def owner_for(self, user: str | None) -> str:
        """The owner id of an app this platform deploys for ``user`` (None: for itself)."""
        if user is None:
            if self.users is not None:
                raise InputError(
                    "this token is limited to the apps of some users: name one of them in 'user' "
                    f"({', '.join(self.users)})"
                )
            return self.name
        check_name(user, "user")
        if self.users is not None and user not in self.users:
            raise InputError(
                f"this token may not act for user {user!r}; it is limited to {', '.join(self.users)}"
            )
        return f"{self.name}{OWNER_SEPARATOR}{user}"

    def may_see_owner(self, owner: str) -> bool:
        if self.role == "worker":
            return False
        if self.role != "platform":
            return True
        if self.users is not None:
            return owner in {f"{self.name}{OWNER_SEPARATOR}{u}" for u in self.users}
        return owner == self.name or owner.startswith(self.name + OWNER_SEPARATOR)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    store: Store,
    *,
    role: str,
    principal: str,
    name: str,
    expires_at: datetime | None = None,
    users: list[str] | None = None,
) -> str:
    """Create a token and return it; only its hash is kept, so this is the one time it is seen."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    check_name(principal, "principal")
    if users is not None:
        if role != "platform":
            raise InputError("users: only a platform token can be limited to some users' apps")
        if not users:
            raise InputError("users: name at least one user, or leave it out for all the platform's users")
        for user in users:
            check_name(user, "user")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.execute(
        "INSERT INTO api_tokens (name, role, principal, token_hash, expires_at, users) VALUES (?, ?, ?, ?, ?, ?)",
        [
            name,
            role,
            principal,
            hash_token(token),
            expires_at,
            json.dumps(sorted(set(users))) if users else None,
        ],
    )
    return token


def authenticate(store: Store, token: str | None) -> Principal:
    if not token:
        raise AuthError("missing engine token: send 'Authorization: Bearer <token>'")
    row = store.fetchone(
        "SELECT CAST(id AS TEXT) AS id, role, principal, users, expires_at < now() AS expired,"
        " revoked_at IS NOT NULL AS revoked FROM api_tokens WHERE token_hash = ?",
        [hash_token(token)],
    )
    if row is None:
        raise AuthError("unknown engine token: check the token, or ask an operator for a new one")
    if row["revoked"]:
        raise AuthError("this engine token was revoked: ask an operator for a new one")
    if row["expired"]:
        raise AuthError("this engine token has expired: ask an operator for a new one")
    users = tuple(json.loads(row["users"])) if row["users"] else None
    return Principal(role=row["role"], name=row["principal"], users=users, token_id=row["id"])


TOKEN_FIELDS = "CAST(id AS TEXT) AS id, name, role, principal, users, created_at, expires_at, revoked_at"


def _token_row(row: dict[str, Any]) -> TokenInfo:
    return TokenInfo.model_validate({**row, "users": json.loads(row["users"]) if row["users"] else None})


def token_info(store: Store, token: str) -> TokenInfo:
    row = store.fetchone(f"SELECT {TOKEN_FIELDS} FROM api_tokens WHERE token_hash = ?", [hash_token(token)])
    if row is None:
        raise NotFound("no such token")
    return _token_row(row)


def list_tokens(store: Store, principal: Principal) -> list[TokenInfo]:
    """Tokens the caller may see: every token for operators; a platform's own tokens for a platform."""
    if principal.role == "operator":
        rows = store.fetchall(f"SELECT {TOKEN_FIELDS} FROM api_tokens ORDER BY created_at")
    else:
        rows = store.fetchall(
            f"SELECT {TOKEN_FIELDS} FROM api_tokens WHERE role = ? AND principal = ? ORDER BY created_at",
            [principal.role, principal.name],
        )
    return [_token_row(row) for row in rows]


def revoke_token(store: Store, principal: Principal, token_id: str) -> TokenInfo:
    """Revoke a token the caller may see (an operator any; a platform its own). Revoking twice is fine."""
    visible = {token.id for token in list_tokens(store, principal)}
    if token_id not in visible:
        raise NotFound(f"no token {token_id}: `launchdeck tokens list` shows them")
    if principal.role == "platform" and principal.users is not None:
        raise Forbidden("a token limited to some users cannot revoke tokens: use the platform's full token")
    store.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE CAST(id AS TEXT) = ?",
        [token_id],
    )
    row = store.fetchone(f"SELECT {TOKEN_FIELDS} FROM api_tokens WHERE CAST(id AS TEXT) = ?", [token_id])
    assert row is not None
    return _token_row(row)


def has_operator_token(store: Store) -> bool:
    return bool(
        store.scalar(
            "SELECT count(*) FROM api_tokens WHERE role = 'operator' AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())"
        )
    )


def ensure_first_operator_token(store: Store) -> str | None:
    """On a workspace with no usable operator token, issue one and return it (to be shown once);
    otherwise None. It is never written in plaintext by this function."""
    if has_operator_token(store):
        return None
    return issue_token(store, role="operator", principal="operator", name="first operator")


def end_session(store: Store, token_id: str) -> None:
    """Revoke a command's own short-lived session token when the command ends."""
    store.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE CAST(id AS TEXT) = ?",
        [token_id],
    )
