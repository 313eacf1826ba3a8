"""Engine API tokens: three roles, stored as SHA-256 hashes only.

- ``operator``: everything.
- ``finance``: read-only usage, costs and margins.
- ``platform``: deploy and read status for its own apps (those whose owner is its principal).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from engine.errors import AuthError, InputError
from engine.files import write_private
from engine.store import Store

Role = Literal["operator", "finance", "platform"]
ROLES: tuple[Role, ...] = ("operator", "finance", "platform")
TOKEN_PREFIX = "ldk_"


@dataclass(frozen=True)
class Principal:
    role: Role
    name: str  # for platform tokens: the owner whose apps it may see

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    store: Store, *, role: str, principal: str, name: str, expires_at: datetime | None = None
) -> str:
    """Create a token and return it; only its hash is kept, so this is the one time it is seen."""
    if role not in ROLES:
        raise InputError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.execute(
        "INSERT INTO api_tokens (name, role, principal, token_hash, expires_at) VALUES (?, ?, ?, ?, ?)",
        [name, role, principal, hash_token(token), expires_at],
    )
    return token


def authenticate(store: Store, token: str | None) -> Principal:
    if not token:
        raise AuthError("missing engine token: send 'Authorization: Bearer <token>'")
    row = store.fetchone(
        "SELECT role, principal, expires_at < now() AS expired, revoked_at IS NOT NULL AS revoked"
        " FROM api_tokens WHERE token_hash = ?",
        [hash_token(token)],
    )
    if row is None:
        raise AuthError("unknown engine token: check the token, or ask an operator for a new one")
    if row["revoked"]:
        raise AuthError("this engine token was revoked: ask an operator for a new one")
    if row["expired"]:
        raise AuthError("this engine token has expired: ask an operator for a new one")
    return Principal(role=row["role"], name=row["principal"])


def ensure_first_operator_token(store: Store, path: str) -> str | None:
    """On a new workspace, create the first operator token and write it (mode 0600) to ``path``.
    Returns the token when one was created."""
    has_operator = store.scalar(
        "SELECT count(*) FROM api_tokens WHERE role = 'operator' AND revoked_at IS NULL"
    )
    if has_operator and Path(path).exists():
        return None
    token = issue_token(store, role="operator", principal="operator", name="first operator")
    write_private(Path(path), token + "\n")
    return token
