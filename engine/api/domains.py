"""``POST /api/domains/configure`` (add; returns the records), ``POST /api/domains/check``,
``GET /api/domains``, ``DELETE /api/domains/{domain}?app=``. Every route is limited to the caller's
apps. Uses ``engine.edge`` (the EdgeHost) to route a verified domain, else the edge routing file."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from engine.api.deps import AnyRole, Deployer, EngineDep, owner_clause, visible_app
from engine.api.models import ERRORS, DomainInfo
from engine.apps import owner_of
from engine.domains import (
    DomainRouter,
    add,
    check,
    check_domain_slot,
    get,
    normalize_domain,
    parse_resolvers,
    remove,
)
from engine.edge.routes import RouteTable
from engine.errors import Conflict, Forbidden


class ConfigureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app: str = Field(min_length=1, max_length=63, description="the app's name")
    domain: str = Field(min_length=1, max_length=300, description="e.g. shop.example.com")


class CheckBody(ConfigureBody):
    resolvers: list[str] | None = Field(
        default=None,
        max_length=10,
        description="operators only: DNS resolvers, ip or ip:port; default: the engine's dns_resolvers setting",
    )


def router_of(engine: Any) -> DomainRouter:
    edge = getattr(engine, "edge", None)
    if edge is not None:
        return edge  # type: ignore[no-any-return]
    return RouteTable(engine.settings.workspace / "edge" / "routes.json")


router = APIRouter(prefix="/api/domains", tags=["domains"], responses=ERRORS)


@router.post("/configure", response_model=DomainInfo)
def configure(body: ConfigureBody, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    app = visible_app(engine, principal, body.app)
    domain = normalize_domain(body.domain, edge_hostname=engine.settings.edge_hostname)
    existing = get(engine.store, domain)
    if existing is not None and existing.app != app.name:
        other = owner_of(engine.store, existing.app)
        if other is None or not principal.may_see_owner(other):
            raise Conflict(f"{domain} is already configured for an app of another owner")
    check_domain_slot(engine.store, str(app.user_id), domain)
    return add(engine.store, app.name, domain, edge_hostname=engine.settings.edge_hostname).to_json()


@router.post("/check", response_model=DomainInfo)
def check_route(body: CheckBody, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    app = visible_app(engine, principal, body.app)
    if body.resolvers is not None and principal.role != "operator":
        raise Forbidden("resolvers: choosing DNS resolvers is for operators only")
    resolvers = parse_resolvers(
        body.resolvers if body.resolvers is not None else engine.settings.dns_resolvers
    )
    return check(
        engine.store,
        app.name,
        body.domain,
        resolvers=resolvers,
        router=router_of(engine),
        edge_hostname=engine.settings.edge_hostname,
    ).to_json()


@router.get("", response_model=list[DomainInfo])
def list_route(
    engine: EngineDep,
    principal: AnyRole,
    app: str | None = Query(default=None, max_length=63, description="only this app's domains"),
) -> list[dict[str, Any]]:
    clause, params = owner_clause(principal)
    rows = engine.store.fetchall(
        f"SELECT d.domain FROM domains d JOIN deployed_apps a ON a.name = d.app WHERE {clause}"
        + (" AND d.app = ?" if app else "")
        + " ORDER BY d.domain",
        [*params, *([app] if app else [])],
    )
    found = [get(engine.store, row["domain"]) for row in rows]
    return [d.to_json() for d in found if d is not None]


@router.delete("/{domain}", status_code=204)
def delete_route(
    domain: str,
    engine: EngineDep,
    principal: Deployer,
    app: str = Query(min_length=1, max_length=63, description="the app the domain belongs to"),
) -> None:
    visible_app(engine, principal, app)
    remove(engine.store, app, domain, router=router_of(engine), edge_hostname=engine.settings.edge_hostname)
