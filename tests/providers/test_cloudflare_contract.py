"""Every exchange of a full Cloudflare Pages life cycle, checked against the spec and the SDK shapes.

The 2024 OpenAPI extract covers projects, deployments, rollback and domains. It has no upload token and
no ``/pages/assets/*``; those are checked against JSON schemas written from the SDK types named in
``tests/emulators/SOURCES.md``. Error answers are checked against the v4 failure envelope (the spec's
4XX schemas combine ``success: true`` and ``success: false`` and so admit nothing).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from openapi_schema_validator import OAS30Validator

from engine.providers.cloudflare import CloudflarePages
from tests.emulators.cloudflare import CloudflareEmulator
from tests.providers.conftest import write_site
from tests.providers.contract import SPECS, check

HASHES = {
    "type": "object",
    "required": ["hashes"],
    "additionalProperties": False,
    "properties": {"hashes": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}},
}
# cloudflare-typescript src/resources/pages/assets.ts: AssetUploadParams (the KV bulk-write shape).
UPLOAD = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["key", "value", "metadata", "base64"],
        "additionalProperties": False,
        "properties": {
            "key": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
            "value": {"type": "string"},
            "metadata": {
                "type": "object",
                "required": ["contentType"],
                "properties": {"contentType": {"type": "string"}},
            },
            "base64": {"const": True},
        },
    },
}
ENVELOPE = {"type": "object", "required": ["success", "errors", "messages", "result"]}
STRINGS = {
    "type": "object",
    "required": ["result"],
    "properties": {"result": {"type": "array", "items": {"type": "string"}}},
}
JWT_RESULT = {
    "type": "object",
    "required": ["result"],
    "properties": {
        "result": {"type": "object", "required": ["jwt"], "properties": {"jwt": {"type": "string"}}}
    },
}
SDK_SHAPES = {  # path: (request schema, response schema)
    "/client/v4/pages/assets/check-missing": (HASHES, STRINGS),
    "/client/v4/pages/assets/upsert-hashes": (HASHES, ENVELOPE),
    "/client/v4/pages/assets/upload": (UPLOAD, ENVELOPE),
}


def test_every_exchange_follows_the_spec_or_the_sdk(
    cloudflare: CloudflarePages, cloudflare_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    emulator, _ = cloudflare_emulator
    first = cloudflare.deploy(
        "contract",
        write_site(tmp_path / "v1", {"index.html": "1", "a.css": "b{}"}),
        {"DATABASE_URL": "postgresql://u:p@h/db"},
    )
    emulator.expire_upload_tokens()
    cloudflare.deploy("contract", write_site(tmp_path / "v2", {"index.html": "2", "a.css": "b{}"}), {})
    cloudflare.rollback("contract", first.id)
    cloudflare.add_domain("contract", "app.example.com")
    cloudflare.domain("contract", "app.example.com")
    cloudflare.deployments("contract")
    cloudflare.destroy("contract")
    cloudflare.destroy("contract")  # a 404 answer

    exchanges = emulator.recorder.exchanges
    schemas = json.loads((SPECS / "cloudflare/openapi.pages.json").read_text())["components"]["schemas"]
    failure = _inline(schemas["pages_api-response-common-failure"], schemas)
    errors = [e for e in exchanges if e.status >= 400]
    assert {e.status for e in errors} == {401, 404}
    for exchange in errors:
        OAS30Validator(failure).validate(exchange.response_json)

    checked, uncovered = check(
        "cloudflare/openapi.pages.json", exchanges, prefix="/client/v4", skip_status=(401, 404)
    )
    assert checked >= 12
    assert uncovered == [
        "GET /client/v4/accounts/0123456789abcdef0123456789abcdef/pages/projects/contract/upload-token",
        "POST /client/v4/pages/assets/check-missing",
        "POST /client/v4/pages/assets/upload",
        "POST /client/v4/pages/assets/upsert-hashes",
    ]
    for exchange in exchanges:
        if exchange.path.endswith("/upload-token"):
            jsonschema.validate(exchange.response_json, JWT_RESULT)
        shapes = SDK_SHAPES.get(exchange.path)
        if shapes and exchange.status == 200:
            jsonschema.validate(exchange.request_json, shapes[0])
            jsonschema.validate(exchange.response_json, shapes[1])
            assert exchange.request_headers["authorization"].startswith("Bearer ey")  # the JWT, not the token


def _inline(schema: Any, schemas: dict[str, Any]) -> Any:
    """Replace ``#/components/schemas/X`` references by the schemas themselves (no cycles here)."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(schemas[schema["$ref"].rsplit("/", 1)[1]], schemas)
        return {k: _inline(v, schemas) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, schemas) for v in schema]
    return schema
