"""Check recorded Google Play exchanges against the androidpublisher v3 discovery document.

Each request must match a method of the document (HTTP method and path template, or its media-upload
path); its JSON body is validated against the method's request schema and the response against its
response schema. Discovery schemas are JSON Schema with bare ``$ref`` names, rewritten here.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import jsonschema

from tests.emulators.common import Exchange
from tests.mobile.harness import SPECS


@cache
def _document() -> dict[str, Any]:
    return dict(json.loads((SPECS / "google-play/androidpublisher-v3.json").read_text()))


def _refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: (f"#/definitions/{v}" if k == "$ref" else _refs(v)) for k, v in node.items() if k != "id"}
    if isinstance(node, list):
        return [_refs(item) for item in node]
    return node


@cache
def _methods() -> list[tuple[str, re.Pattern[str], dict[str, Any]]]:
    found = []

    def walk(resource: dict[str, Any]) -> None:
        for method in resource.get("methods", {}).values():
            paths = ["/" + method["path"]]
            upload = method.get("mediaUpload", {}).get("protocols", {}).get("simple", {}).get("path")
            if upload:
                paths.append(upload)
            for path in paths:
                pattern = re.escape(path).replace(r"\{", "{").replace(r"\}", "}")
                pattern = re.sub(r"{[^}]+}", r"[^/]+", pattern)
                found.append((method["httpMethod"], re.compile(f"^{pattern}$"), method))
        for child in resource.get("resources", {}).values():
            walk(child)

    walk(_document())
    return found


def _validate(schema_name: str, value: Any) -> None:
    definitions = _refs(_document()["schemas"])
    jsonschema.Draft7Validator({"definitions": definitions, "$ref": f"#/definitions/{schema_name}"}).validate(
        value
    )


def check(exchanges: list[Exchange]) -> int:
    """Validate every API exchange (not the OAuth token endpoint); returns how many were checked."""
    checked = 0
    for exchange in exchanges:
        if exchange.path == "/token":
            continue
        matches = [
            m for verb, pattern, m in _methods() if verb == exchange.method and pattern.match(exchange.path)
        ]
        # The most specific template wins (``.../edits/{editId}:commit`` over ``.../edits/{editId}``).
        assert matches, f"{exchange.method} {exchange.path} is not a method of androidpublisher v3"
        method = max(matches, key=lambda m: len(m["path"]))
        request_ref = method.get("request", {}).get("$ref")
        if request_ref and exchange.request_body:
            _validate(request_ref, exchange.request_json)
        response_ref = method.get("response", {}).get("$ref")
        if response_ref and exchange.status < 300 and exchange.response_body:
            _validate(response_ref, exchange.response_json)
        checked += 1
    return checked
