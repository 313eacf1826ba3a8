"""Request dependencies: the engine and the caller's principal, with role checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine.auth import Principal, Role, authenticate
from engine.errors import Forbidden

if TYPE_CHECKING:
    from engine.service import Engine

_bearer = HTTPBearer(auto_error=False)


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated["Engine", Depends(get_engine)]


def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    return authenticate(get_engine(request).store, credentials.credentials if credentials else None)


def require(*roles: Role) -> Callable[..., Principal]:
    def check(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
        if principal.role not in roles:
            raise Forbidden(
                f"a {principal.role} token may not do this; it needs a {' or '.join(roles)} token"
            )
        return principal

    return check


AnyRole = Annotated[Principal, Depends(get_principal)]
Operator = Annotated[Principal, Depends(require("operator"))]
Deployer = Annotated[Principal, Depends(require("operator", "platform"))]
Reader = Annotated[Principal, Depends(require("operator", "finance"))]
