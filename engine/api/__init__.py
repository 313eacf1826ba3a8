"""The engine's HTTP API (FastAPI). Errors from ``engine.errors`` are mapped to status codes here, at
the boundary, with a JSON body ``{"error": {"type": ..., "message": ...}}`` that the client maps back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine import errors

if TYPE_CHECKING:
    from engine.service import Engine

STATUS_BY_ERROR: list[tuple[type[errors.LaunchdeckError], int]] = [
    (errors.TooLarge, 413),
    (errors.RateLimited, 429),
    (errors.AuthError, 401),
    (errors.Forbidden, 403),
    (errors.TierLimitExceeded, 403),
    (errors.NotFound, 404),
    (errors.LockTimeout, 409),
    (errors.Conflict, 409),
    (errors.InputError, 422),
    (errors.NotAvailableYet, 501),
    (errors.ConfigError, 503),  # the engine is not configured for this (a setting is missing)
    (errors.TransientError, 503),
]


def error_body(kind: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"type": kind, "message": message}}


def create_app(engine: Engine) -> FastAPI:
    from engine.api import analytics, billing, core, deploy, domains, uploads, worker
    from engine.api.limits import ApiLimits, RateLimits, StreamSlots

    app = FastAPI(
        title="Launchdeck engine",
        version="0.1.0",
        description="Deploy generated full-stack apps and account for what each one costs.",
    )
    app.state.engine = engine
    app.state.stream_slots = StreamSlots(engine.settings.sse_max_per_token)
    app.state.rate_limits = RateLimits(engine.settings.rate_limit)
    app.add_middleware(ApiLimits, engine=engine, rates=app.state.rate_limits)

    @app.exception_handler(errors.LaunchdeckError)
    async def launchdeck_error(_: Request, exc: errors.LaunchdeckError) -> JSONResponse:
        status = next((code for kind, code in STATUS_BY_ERROR if isinstance(exc, kind)), 500)
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        return JSONResponse(error_body(type(exc).__name__, str(exc)), status_code=status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "NotFound", 405: "MethodNotAllowed", 401: "AuthError", 403: "Forbidden"}.get(
            exc.status_code, "HTTPError"
        )
        detail = str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = "no such route: GET /openapi.json lists the engine's routes"
        elif exc.status_code == 405:
            detail = f"method not allowed on this route ({detail}): GET /openapi.json lists the methods"
        return JSONResponse(error_body(kind, detail), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_body(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p not in ('body', 'query', 'path')) or 'body'}: {e['msg']}"
            for e in exc.errors()[:10]
        )
        return JSONResponse(error_body("InputError", f"bad request: {problems}"), status_code=422)

    app.include_router(core.router)
    app.include_router(deploy.router)
    app.include_router(uploads.router)
    app.include_router(analytics.router)
    app.include_router(billing.router)
    app.include_router(domains.router)
    app.include_router(worker.router)
    for router in engine.extensions.routers:
        app.include_router(router)
    return app
