"""Stripe's webhook: tier changes from subscription events. No engine token: Stripe signs each
delivery (``Stripe-Signature``), and a wrong, stale or replayed signature is refused."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engine.api import error_body
from engine.api.deps import EngineDep
from engine.errors import AuthError, ConfigError

router = APIRouter(tags=["billing"])


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
