"""Validate recorded exchanges against a provider's OpenAPI document with openapi-core.

Each emulator records every request and response on the wire; ``check`` validates the request
(path, query, body) and the response (status and body) of every exchange whose path the spec covers,
and returns the paths it could not check so a test can assert they are the documented gaps.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openapi_core import Config, OpenAPI
from openapi_core.templating.paths.exceptions import PathNotFound
from openapi_core.testing import MockRequest, MockResponse

from tests.emulators.common import Exchange

SPECS = Path("/work/shared/specs")


@cache
def spec(name: str) -> tuple[OpenAPI, str]:
    document = json.loads((SPECS / name).read_text())
    # Cloudflare's extract spells one response key "4xx"; OpenAPI 3.0 only allows "4XX".
    for operations in document["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = {
                    (k.upper() if k.lower().endswith("xx") else k): v
                    for k, v in operation["responses"].items()
                }
                # Its operations list only the legacy key pair, though the document-level security
                # (and wrangler, and Cloudflare's docs) accept an API token as a bearer token.
                if "security" in operation and "security" in document:
                    operation["security"] = operation["security"] + [
                        r for r in document["security"] if r not in operation["security"]
                    ]
    # Its path parameters reuse schemas marked readOnly (meant for bodies); a path is always "written".
    schemas = document.get("components", {}).get("schemas", {})
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []) if isinstance(operation, dict) else []:
                ref = parameter.get("schema", {}).get("$ref", "")
                if ref.startswith("#/components/schemas/"):
                    schemas[ref.rsplit("/", 1)[1]].pop("readOnly", None)
    # Cloudflare's domain-name pattern admits no dot, so not even its own example "…-01.com".
    if "pages_domain_name" in schemas:
        schemas["pages_domain_name"]["pattern"] = "^[a-z0-9][a-z0-9.-]*$"
    # Vercel's GET deployment answer is oneOf [full, public-only] but the public shape is a subset of
    # the full one, so every full answer matches both and oneOf can never pass: read it as anyOf.
    deployment = document["paths"].get("/v13/deployments/{idOrUrl}", {}).get("get")
    if deployment:
        body = deployment["responses"]["200"]["content"]["application/json"]["schema"]
        body["anyOf"] = body.pop("oneOf")
    # openapi-spec-validator rejects one of the Vercel project schemas (the document as published does
    # not validate); the paths and schemas used here are sound, so validate exchanges against it anyway.
    config = Config(spec_validator_cls=None) if name.startswith("vercel/") else Config()
    return OpenAPI.from_dict(document, config=config), document["servers"][0]["url"].rstrip("/")


def _query(exchange: Exchange) -> dict[str, Any]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(exchange.query, keep_blank_values=True))


def check(
    spec_name: str, exchanges: list[Exchange], *, prefix: str = "", skip_status: tuple[int, ...] = ()
) -> tuple[int, list[str]]:
    """Validate; return (number checked, sorted paths not in the spec). Raises on the first violation.

    ``prefix`` is the emulator's path for the spec's server URL (``/client/v4`` for Cloudflare).
    """
    openapi, server_url = spec(spec_name)
    server = urlsplit(server_url)
    uncovered: set[str] = set()
    checked = 0
    for exchange in exchanges:
        if exchange.status in skip_status:
            continue
        if not exchange.path.startswith(prefix):
            continue
        path = server.path + exchange.path.removeprefix(prefix)
        content_type = exchange.request_headers.get("content-type", "application/json").split(";")[0]
        if content_type.startswith("multipart/"):
            content_type = exchange.request_headers["content-type"]
        request = MockRequest(
            f"{server.scheme}://{server.netloc}",
            exchange.method.lower(),
            path,
            args=_query(exchange),
            headers=exchange.request_headers,
            data=exchange.request_body or None,
            content_type=content_type if exchange.request_body else "application/json",
        )
        try:
            openapi.validate_request(request)
        except PathNotFound:
            uncovered.add(f"{exchange.method} {path}")
            continue
        except Exception as exc:
            raise AssertionError(
                f"request {exchange.method} {exchange.path} violates {spec_name}: {_why(exc)}\n"
                f"body: {exchange.request_body[:500]!r}"
            ) from exc
        response = MockResponse(
            exchange.response_body,
            status_code=exchange.status,
            headers=exchange.response_headers,
            content_type=exchange.response_headers.get("content-type", "application/json").split(";")[0],
        )
        try:
            openapi.validate_response(request, response)
        except Exception as exc:
            raise AssertionError(
                f"response {exchange.status} to {exchange.method} {exchange.path} violates {spec_name}: "
                f"{_why(exc)}\nbody: {exchange.response_body[:500]!r}"
            ) from exc
        checked += 1
    return checked, sorted(uncovered)


def _why(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    for inner in getattr(exc, "schema_errors", None) or []:
        parts.append(f"  - {inner.message} at {list(inner.absolute_path)}")
    cause = exc.__cause__
    if cause is not None:
        parts.append(_why(cause))
    return "\n".join(parts)
