"""Cloudflare Workers client against the emulator, which runs every uploaded version on workerd.

A staged version answers at its own preview URL while production keeps serving the live one; promote
and rollback re-point production. The shared specs have no Workers path, so the shapes of every
exchange are checked against JSON schemas written from the sources named in tests/emulators/SOURCES.md.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import logging
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from engine.errors import InputError
from engine.providers.base import HostingProvider
from engine.providers.cloudflare_workers import CloudflareWorkers
from tests.emulators.cloudflare import WRANGLER, CloudflareEmulator
from tests.emulators.common import Exchange
from tests.providers.conftest import fetch, write_site
from tests.providers.contract import check

pytestmark = pytest.mark.skipif(not WRANGLER.exists(), reason="npm ci in tests/emulators/node first")

WORKER_JS = """\
export default {
  async fetch(request, env) {
    const url = new URL(request.url);
    if (url.pathname === "/api/health") {
      return Response.json({ ok: true, greeting: env.GREETING, has_key: Boolean(env.API_KEY) });
    }
    return env.ASSETS.fetch(request);
  },
};
"""


def bundle(root: Path, page: str) -> Path:
    """What the build step hands over: worker.json, the dry-run modules, and the static assets."""
    write_site(
        root,
        {
            "worker.json": json.dumps(
                {
                    "main_module": "worker.js",
                    "compatibility_date": "2026-04-01",
                    "compatibility_flags": ["nodejs_compat"],
                }
            ),
            "modules/worker.js": WORKER_JS,
            "modules/worker.js.map": "{}",  # source maps are not uploaded
            "modules/README.md": "written by wrangler --dry-run",  # nor anything wrangler would not bundle
            "assets/index.html": page,
            "assets/logo.svg": "<svg/>",
        },
    )
    return root


def test_assets_only_site_is_staged_beside_production_then_promoted(
    workers: CloudflareWorkers, workers_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    cf, url = workers_emulator
    assert isinstance(workers, HostingProvider)
    port = url.split(":")[2].split("/")[0]
    production = f"http://closed.launchdeck.workers.localhost:{port}"
    site = write_site(
        tmp_path / "site",
        {
            "index.html": "<h1>Closed v1</h1>",
            "style.css": "h1{}",
            "_headers": "/*\n  X-Robots-Tag: noindex\n",
        },
    )
    assert not workers.exists("closed")
    first = workers.stage("closed", site, {})
    assert workers.exists("closed")
    assert first.url == production == workers.production_url("closed")  # a new Worker is live at once
    page = fetch(first.url + "/")
    assert page.status_code == 200 and page.text == "<h1>Closed v1</h1>"
    assert page.headers["x-robots-tag"] == "noindex"  # _headers went to the assets config, not the assets
    assert cf.workers.uploads == 2

    (site / "index.html").write_text("<h1>Closed v2</h1>")
    staged = workers.stage("closed", site, {})
    assert cf.workers.uploads == 3  # only the changed file
    assert workers.upload_stats["closed"] == {"files": 2, "uploaded": 1, "bytes": len("<h1>Closed v2</h1>")}
    assert staged.url == f"http://{staged.id[:8]}-closed.launchdeck.workers.localhost:{port}"
    assert fetch(staged.url + "/").text == "<h1>Closed v2</h1>"
    assert fetch(production + "/").text == "<h1>Closed v1</h1>"  # production untouched until promoted

    promoted = workers.promote("closed", staged.id)
    assert (promoted.id, promoted.url) == (staged.id, production)
    assert fetch(production + "/").text == "<h1>Closed v2</h1>"
    workers.delete_deployment("closed", first.id)  # documented no-op: versions cannot be deleted
    workers.destroy("closed")
    workers.destroy("closed")  # already gone is not an error
    assert fetch(production + "/").status_code == 404


def test_worker_bundle_runs_with_its_env_and_rolls_back(
    workers: CloudflareWorkers,
    workers_emulator: tuple[CloudflareEmulator, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cf, _ = workers_emulator
    caplog.set_level(logging.DEBUG)
    first = workers.stage(
        "shop", bundle(tmp_path / "v1", "<h1>Shop</h1>"), {"GREETING": "one", "API_KEY": "s3cr3t-one"}
    )
    production = workers.production_url("shop")
    assert fetch(production + "/api/health").json() == {"ok": True, "greeting": "one", "has_key": True}
    assert fetch(production + "/").text == "<h1>Shop</h1>"  # assets served beside the code
    version = cf.workers.scripts["shop"].versions[first.id]
    assert set(version.modules) == {"worker.js"}
    assert {b["type"] for b in version.metadata["bindings"] if b["name"] in ("GREETING", "API_KEY")} == {
        "secret_text"
    }

    staged = workers.stage(
        "shop", bundle(tmp_path / "v2", "<h1>Shop</h1>"), {"GREETING": "two", "API_KEY": "s3cr3t-two"}
    )
    assert fetch(staged.url + "/api/health").json()["greeting"] == "two"
    assert fetch(production + "/api/health").json()["greeting"] == "one"
    workers.promote("shop", staged.id)
    assert fetch(production + "/api/health").json()["greeting"] == "two"

    # Rollback: the old version's secrets differ from the live one's, so Cloudflare wants force=true.
    rolled = workers.promote("shop", first.id)
    assert rolled.id == first.id and fetch(production + "/api/health").json()["greeting"] == "one"
    deployments = cf.recorder.matching("POST", "/workers/scripts/shop/deployments$")
    assert [(e.status, e.query) for e in deployments] == [(200, ""), (400, ""), (200, "force=true")]
    assert cf.workers.started == 2  # one workerd per version, started when first asked for
    assert "s3cr3t" not in caplog.text


def test_429_is_waited_out_for_as_long_as_retry_after_says(
    workers: CloudflareWorkers, workers_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    cf, _ = workers_emulator
    workers.stage("busy", write_site(tmp_path / "a", {"index.html": "a"}), {})
    cf.faults.add(429, times=2, retry_after=0.5, path="/workers/scripts/busy/versions$")
    staged = workers.stage("busy", write_site(tmp_path / "b", {"index.html": "b"}), {})
    # The first answer is the first stage's: no such script yet, so it was created with PUT.
    probe, *attempts = cf.recorder.matching("POST", "/workers/scripts/busy/versions$")
    assert [probe.status] + [e.status for e in attempts] == [404, 429, 429, 200]
    assert all(later.at - earlier.at >= 0.5 for earlier, later in itertools.pairwise(attempts))
    assert len(cf.workers.scripts["busy"].versions) == 2 and staged.id in cf.workers.scripts["busy"].versions


def test_expired_upload_jwt_starts_a_new_session(
    workers: CloudflareWorkers, workers_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    cf, _ = workers_emulator
    cf.workers.refuse_next_session = True
    workers.stage("late", write_site(tmp_path / "a", {"index.html": "a", "b.css": "b{}"}), {})
    assert [e.status for e in cf.recorder.matching("POST", "/workers/assets/upload$")] == [401, 201]
    assert len(cf.recorder.matching("POST", "/assets-upload-session$")) == 2
    assert workers.upload_stats["late"]["uploaded"] == 2


# -- contract: the shapes followed, from the sources in tests/emulators/SOURCES.md --------------------------
def _envelope(result: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "errors", "messages", "result"],
        "properties": {"success": {"const": True}, "result": result},
    }


HASH = {"type": "string", "pattern": "^[0-9a-f]{32}$"}
SESSION_REQUEST = {
    "type": "object",
    "required": ["manifest"],
    "additionalProperties": False,
    "properties": {
        "manifest": {
            "type": "object",
            "minProperties": 1,
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {
                "type": "object",
                "required": ["hash", "size"],
                "properties": {"hash": HASH, "size": {"type": "integer"}},
            },
        }
    },
}
SESSION_RESULT = {
    "type": "object",
    "required": ["jwt", "buckets"],
    "properties": {
        "jwt": {"type": "string"},
        "buckets": {"type": "array", "items": {"type": "array", "items": HASH}},
    },
}
METADATA = {
    "type": "object",
    "required": ["main_module", "compatibility_date", "bindings"],
    "properties": {
        "main_module": {"type": "string"},
        "compatibility_date": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "compatibility_flags": {"type": "array", "items": {"type": "string"}},
        "bindings": {
            "type": "array",
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "required": ["name", "type", "text"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "type": {"const": "secret_text"},
                            "text": {"type": "string"},
                        },
                    },
                    {
                        "type": "object",
                        "required": ["name", "type"],
                        "additionalProperties": False,
                        "properties": {"name": {"type": "string"}, "type": {"const": "assets"}},
                    },
                ]
            },
        },
        "assets": {
            "type": "object",
            "required": ["jwt"],
            "properties": {"jwt": {"type": "string"}, "config": {"type": "object"}},
        },
    },
}
VERSION_RESULT = {
    "type": "object",
    "required": ["id", "resources"],
    "properties": {
        "id": {"type": "string"},
        "number": {"type": "integer"},
        "resources": {
            "type": "object",
            "properties": {
                "bindings": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name", "type"], "not": {"required": ["text"]}},
                }
            },
        },
    },
}
DEPLOYMENT_REQUEST = {
    "type": "object",
    "required": ["strategy", "versions"],
    "additionalProperties": False,
    "properties": {
        "strategy": {"const": "percentage"},
        "versions": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["version_id", "percentage"],
                "properties": {"version_id": {"type": "string"}, "percentage": {"type": "number"}},
            },
        },
    },
}
DEPLOYMENT = {
    "type": "object",
    "required": ["strategy", "versions"],
    "properties": {"id": {"type": "string"}, **DEPLOYMENT_REQUEST["properties"]},  # type: ignore[dict-item]
}
SUBDOMAIN = {
    "type": "object",
    "required": ["enabled", "previews_enabled"],
    "properties": {"enabled": {"type": "boolean"}, "previews_enabled": {"type": "boolean"}},
}
DOMAIN_REQUEST = {
    "type": "object",
    "required": ["hostname", "service", "zone_id", "environment"],
    "additionalProperties": False,
    "properties": {k: {"type": "string"} for k in ("hostname", "service", "zone_id", "environment")},
}
DOMAIN = {"type": "object", "required": ["id", "hostname", "service", "zone_id", "zone_name", "environment"]}
ZONES = {"type": "array", "items": {"type": "object", "required": ["id", "name", "status"]}}
SHAPES: dict[tuple[str, str], tuple[dict[str, Any] | None, dict[str, Any]]] = {
    # (method, path suffix): (JSON request schema or None for multipart/none, response schema)
    ("POST", "/assets-upload-session"): (SESSION_REQUEST, _envelope(SESSION_RESULT)),
    ("POST", "/workers/assets/upload"): (None, _envelope({"type": "object"})),
    ("PUT", "/workers/scripts/contract"): (None, _envelope({"type": "object", "required": ["id"]})),
    ("POST", "/versions"): (None, _envelope(VERSION_RESULT)),
    ("POST", "/deployments"): (DEPLOYMENT_REQUEST, _envelope(DEPLOYMENT)),
    ("GET", "/deployments"): (
        None,
        _envelope(
            {
                "type": "object",
                "required": ["deployments"],
                "properties": {"deployments": {"type": "array", "items": DEPLOYMENT}},
            }
        ),
    ),
    ("POST", "/contract/subdomain"): (SUBDOMAIN, _envelope(SUBDOMAIN)),
    ("GET", "/workers/subdomain"): (None, _envelope({"type": "object", "required": ["subdomain"]})),
    ("PUT", "/workers/domains"): (DOMAIN_REQUEST, _envelope(DOMAIN)),
    ("GET", "/zones"): (None, _envelope(ZONES)),
    ("DELETE", "/workers/scripts/contract"): (None, {"type": "object", "required": ["success"]}),
}


def _multipart(exchange: Exchange) -> dict[str, tuple[str | None, str, Any]]:
    """name -> (file name, content type, bytes) of a multipart/form-data request."""
    raw = f"Content-Type: {exchange.request_headers['content-type']}\r\n\r\n".encode() + exchange.request_body
    message = email.parser.BytesParser(policy=email.policy.default).parsebytes(raw)
    return {
        str(part.get_param("name", header="content-disposition")): (
            part.get_filename(),
            part.get_content_type(),
            part.get_payload(decode=True),
        )
        for part in message.iter_parts()
    }


def test_every_workers_exchange_has_the_documented_shape(
    workers: CloudflareWorkers, workers_emulator: tuple[CloudflareEmulator, str], tmp_path: Path
) -> None:
    cf, _ = workers_emulator
    first = workers.stage("contract", bundle(tmp_path / "v1", "one"), {"DATABASE_URL": "libsql://db"})
    staged = workers.stage("contract", bundle(tmp_path / "v2", "two"), {"DATABASE_URL": "libsql://db"})
    workers.promote("contract", staged.id)
    workers.promote("contract", first.id)
    assert workers.add_domain("contract", "app.example.com").status == "active"
    with pytest.raises(InputError, match="no zone"):
        workers.add_domain("contract", "app.elsewhere.org")
    workers.destroy("contract")
    assert cf.workers.domains == {}

    exchanges = cf.recorder.exchanges
    # The shared specs (the 2024 Pages extract) cover none of these paths: each one is a documented gap.
    checked, uncovered = check("cloudflare/openapi.pages.json", exchanges, prefix="/client/v4")
    assert checked == 0
    assert {u.split(" ", 1)[1].split("/workers/")[-1].split("/")[-1] for u in uncovered} >= {
        "assets-upload-session",
        "upload",
        "versions",
        "deployments",
        "subdomain",
        "domains",
        "zones",
        "contract",
    }
    seen = set()
    for exchange in exchanges:
        shape = next(
            (
                s
                for (m, suffix), s in SHAPES.items()
                if m == exchange.method and exchange.path.endswith(suffix)
            ),
            None,
        )
        assert shape is not None, f"no documented shape for {exchange.method} {exchange.path}"
        seen.add((exchange.method, exchange.path.rsplit("/", 1)[-1]))
        if shape[0] is not None:
            jsonschema.validate(exchange.request_json, shape[0])
        if exchange.status < 300:
            jsonschema.validate(exchange.response_json, shape[1])
        if exchange.path.endswith("/workers/assets/upload"):
            assert exchange.query == "base64=true"
            assert exchange.request_headers["authorization"].startswith("Bearer ey")  # the session JWT
            for name, (filename, _, content) in _multipart(exchange).items():
                assert filename == name and re.fullmatch(HASH["pattern"], name)
                assert content.decode().isascii()  # base64 text, not the raw bytes
        if exchange.method in ("PUT", "POST") and exchange.path.endswith(("/versions", "/scripts/contract")):
            parts = _multipart(exchange)
            metadata = json.loads(parts["metadata"][2])
            jsonschema.validate(metadata, METADATA)
            assert parts[metadata["main_module"]][1] == "application/javascript+module"
            assert set(parts) == {"metadata", "worker.js"}
    assert len(seen) >= 10
