"""Billing routes: Stripe's webhook (tier changes and invoices; no engine token, Stripe signs each delivery), and
subscribing a user to a paid tier (operators for anyone; a platform token for its own users only)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from engine.api import error_body
from engine.api.deps import Deployer, EngineDep
from engine.api.models import ERRORS, SubscriptionStarted
from engine.auth import Principal
from engine.costs.tiers import subscription_row
from engine.errors import AuthError, ConfigError

router = APIRouter(tags=["billing"], responses=ERRORS)


@router.post("/api/stripe/webhook", response_model=None)
async def stripe_webhook(request: Request, engine: EngineDep) -> dict[str, Any] | JSONResponse:
    from engine.billing.webhooks import handle_webhook

    secret = engine.settings.stripe_webhook_secret
    if secret is None:
        raise ConfigError("STRIPE_WEBHOOK_SECRET is not set: the engine cannot verify Stripe's deliveries")
    try:
        outcome = handle_webhook(
            engine.store,
            await request.body(),
            request.headers.get("Stripe-Signature"),
            secret.get_secret_value(),
        )
    except AuthError as exc:
        return JSONResponse(error_body("AuthError", str(exc)), status_code=400)
    return {"received": True, "outcome": outcome}


class SubscribeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=200, description="the user (owner of apps) to subscribe")
    tier: str = Field(min_length=1, description="a paid tier of data/tiers.toml: starter, pro, business")
    email: str | None = Field(default=None, max_length=320, description="the Stripe customer's email")


def visible_user(principal: Principal, user: str) -> str:
    """The one place a user (an owner of apps) is checked against the caller: an operator may act for anyone, a
    platform token only for the owner it deploys as. Until engine.api.deps has its ownership dependency."""
    from engine.api.deps import visible_owner

    return visible_owner(principal, user)  # a platform's own users ("platform/user") included


@router.post("/api/billing/subscriptions", status_code=201, response_model=SubscriptionStarted)
def subscribe(body: SubscribeBody, engine: EngineDep, principal: Deployer) -> dict[str, Any]:
    """Subscribe a user to a paid tier with Stripe (a customer found again or created, then a subscription on
    the tier's monthly price). The tier takes effect when Stripe's webhook confirms the subscription."""
    from engine.apps import audit
    from engine.billing.stripe_billing import require
    from engine.costs.tiers import default_tiers

    user = visible_user(principal, body.user)
    default_tiers().get(body.tier)  # an unknown tier is a clear 422 before Stripe is asked
    billing = require(engine.settings)
    if body.email:
        billing.ensure_customer(engine.store, user, email=body.email)
    subscription = billing.subscribe(engine.store, user, body.tier)
    audit(engine.store, principal.actor, "subscribe", user, {"tier": body.tier, "subscription": subscription})
    row = subscription_row(engine.store, user) or {}
    return {
        "user": user,
        "tier_requested": body.tier,
        "subscription_id": subscription,
        "tier_now": row.get("tier"),
        "note": "the tier changes when Stripe's customer.subscription webhook confirms the subscription",
    }
