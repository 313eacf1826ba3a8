"""Request dependencies: the engine, the caller's principal with role checks, and the apps the caller
may see. Ownership is one small set of dependencies, reused by every router:

- ``PathApp``: the app named by the path parameter ``name``, or 404 (missing and not-yours look alike).
- ``visible_app(engine, principal, name)``: the same, for an app named in a body or query.
- ``owner_clause(principal)``: a SQL condition on ``deployed_apps a`` for listing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from engine import apps
from engine.auth import WORKER_ROUTES, Principal, Role, authenticate
from engine.errors import Forbidden
from engine.records import App

if TYPE_CHECKING:
    from engine.service import Engine

_bearer = HTTPBearer(auto_error=False, description="an engine token: `ldk_...`")


def get_engine(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


EngineDep = Annotated["Engine", Depends(get_engine)]


def get_principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    known = getattr(request.state, "principal", None)  # authenticated by the limits middleware already
    principal = (
        known
        if isinstance(known, Principal)
        else authenticate(get_engine(request).store, credentials.credentials if credentials else None)
    )
    if principal.role == "worker" and not request.url.path.startswith(WORKER_ROUTES):
        raise Forbidden("a worker token may only call the /api/worker/ routes")
    return principal


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
WorkerRole = Annotated[Principal, Depends(require("worker"))]


def visible_app(engine: Engine, principal: Principal, name: str) -> App:
    """The app ``name`` if the caller may see it; otherwise the same 404 as for a missing app."""
    return apps.visible_app(engine.store, principal, name)


def path_app(name: str, engine: EngineDep, principal: AnyRole) -> App:
    return visible_app(engine, principal, name)


PathApp = Annotated[App, Depends(path_app)]


def owner_clause(principal: Principal) -> tuple[str, list[Any]]:
    """``(sql, params)``: a condition on ``deployed_apps a`` that keeps the apps the caller may see."""
    return apps.owner_filter(principal)


def visible_owner(principal: Principal, owner: str) -> str:
    """An owner id (``platform`` or ``platform/user``) the caller may act for; else the 404 a missing one gets."""
    from engine.errors import NotFound

    if not principal.may_see_owner(owner):
        raise NotFound(f"no user {owner!r} among this token's")
    return owner


def operator_only(principal: Principal, what: str) -> None:
    if principal.role != "operator":
        raise Forbidden(f"{what} is for operators only")
