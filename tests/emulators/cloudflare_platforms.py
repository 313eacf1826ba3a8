"""The Cloudflare emulator's Workers for Platforms, Workers KV, Workers routes and Cloudflare for SaaS parts.

- Dispatch namespaces (``/accounts/{a}/workers/dispatch/namespaces``): create, get, list, delete; their user
  Workers use ``WorkersApi``'s script, version, deployment and asset routes under the namespace path.
- KV (``/accounts/{a}/storage/kv/namespaces``): create, list; values put (multipart ``value``), get, delete.
- Workers routes (``/zones/{z}/workers/routes``): list, create. A request whose host is in a zone with a route
  (or is an active custom hostname of that zone) runs the route's Worker.
- Custom hostnames (``/zones/{z}/custom_hostnames``): create, list (``hostname=``), get, delete, quota. A hostname
  becomes active when the TXT records it asks for are "published" (``publish``); it fails as Cloudflare's do:
  ``block`` makes it blocked, and a certificate whose TXT is still missing after ``validation_reads`` reads
  times out (``validation_timed_out``).

A dispatch Worker runs on workerd like any Worker; its ``dispatch_namespace`` and ``kv_namespace`` bindings are
shims (an entry module written next to its own) that call this emulator back under ``/__emulator/``:
``env.DISPATCHER.get(name, {}, {limits}).fetch(request)`` reaches the user Worker's version as the docs
describe (the version named by ``Cloudflare-Workers-Version-Overrides`` when it is in the active deployment,
else the deployment's), static assets first without running code, a missing Worker throwing
"Worker not found", a run over ``limits.cpuMs`` throwing "Worker exceeded CPU time limit" (subrequests are
not observed, so not limited). Sources: tests/emulators/SOURCES.md.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from tests.emulators.cloudflare import EmulatedScript, EmulatedVersion, WorkersApi
    from tests.emulators.common import Scope

API = "/client/v4"
HOSTNAME = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$")
OVERRIDE = re.compile(r'^\s*([A-Za-z0-9_-]+)\s*=\s*"([0-9a-f-]{36})"\s*$')


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def _ok(result: Any, **info: Any) -> JSONResponse:
    body: dict[str, Any] = {"success": True, "errors": [], "messages": [], "result": result}
    if info:
        body["result_info"] = info
    return JSONResponse(body)


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"success": False, "errors": [{"code": code, "message": message}], "messages": [], "result": None},
        status_code=status,
    )


@dataclass
class Namespace:
    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created_on: str = field(default_factory=_now)
    scripts: dict[str, EmulatedScript] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "namespace_id": self.id,
            "namespace_name": self.name,
            "created_on": self.created_on,
            "created_by": "0" * 32,
            "modified_on": self.created_on,
            "modified_by": "0" * 32,
            "script_count": len(self.scripts),
            "trusted_workers": False,
        }


@dataclass
class CustomHostname:
    hostname: str
    zone: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    ownership: str = field(default_factory=lambda: str(uuid.uuid4()))
    certificate: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    created_at: str = field(default_factory=_now)
    status: str = "pending"
    ssl_status: str = "pending_validation"
    reads: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ownership_name(self) -> str:
        return f"_cf-custom-hostname.{self.hostname}"

    @property
    def certificate_name(self) -> str:
        return f"_acme-challenge.{self.hostname}"

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "hostname": self.hostname,
            "status": self.status,
            "created_at": self.created_at,
            "ownership_verification": {"type": "txt", "name": self.ownership_name, "value": self.ownership},
            "ownership_verification_http": {
                "http_url": f"http://{self.hostname}/.well-known/cf-custom-hostname-challenge/{self.id}",
                "http_body": self.ownership,
            },
            "ssl": {
                "id": self.id,
                "type": "dv",
                "method": "txt",
                "status": self.ssl_status,
                "certificate_authority": "google",
                "validation_records": []
                if self.ssl_status == "active"
                else [
                    {"txt_name": self.certificate_name, "txt_value": self.certificate, "status": "pending"}
                ],
                "validation_errors": [{"message": e} for e in self.errors],
                "settings": {"min_tls_version": "1.2"},
            },
            "verification_errors": list(self.errors) if self.status != "active" else [],
        }


class PlatformsApi:
    def __init__(self, workers: WorkersApi, *, hostname_cap: int = 5_000, validation_reads: int = 3) -> None:
        self.workers = workers
        self.namespaces: dict[str, Namespace] = {}
        self.kv: dict[str, dict[str, Any]] = {}  # id -> {"title", "values": {key: str}}
        self.zone_routes: dict[str, list[dict[str, Any]]] = {}  # zone id -> routes
        self.hostnames: dict[str, CustomHostname] = {}  # hostname -> it
        self.dns: dict[str, str] = {}  # TXT name -> value, as the world publishes them (``publish``)
        self.blocked: set[str] = set()
        self.hostname_cap, self.validation_reads = hostname_cap, validation_reads
        self.hostname_allocation = 100  # included in Cloudflare for SaaS; more are billed, up to the cap

    # -- test controls ----------------------------------------------------------------------------
    def publish(self, name: str, value: str) -> None:
        """A TXT record appears in public DNS."""
        self.dns[name] = value

    def block(self, hostname: str) -> None:
        """Cloudflare blocks a hostname (as it does for a flagged or a high-risk one)."""
        self.blocked.add(hostname)

    def all_scripts(self) -> list[EmulatedScript]:
        return [s for n in self.namespaces.values() for s in n.scripts.values()]

    def routes(self) -> list[Route]:
        account = API + "/accounts/{account_id}"
        namespaces = account + "/workers/dispatch/namespaces"
        kv = account + "/storage/kv/namespaces"
        zone = API + "/zones/{zone_id}"
        return [
            Route(namespaces, self.create_namespace, methods=["POST"]),
            Route(namespaces, self.list_namespaces, methods=["GET"]),
            Route(namespaces + "/{namespace}", self.get_namespace, methods=["GET"]),
            Route(namespaces + "/{namespace}", self.delete_namespace, methods=["DELETE"]),
            Route(kv, self.create_kv, methods=["POST"]),
            Route(kv, self.list_kv, methods=["GET"]),
            Route(kv + "/{kv_id}/values/{key:path}", self.put_value, methods=["PUT"]),
            Route(kv + "/{kv_id}/values/{key:path}", self.get_value, methods=["GET"]),
            Route(kv + "/{kv_id}/values/{key:path}", self.delete_value, methods=["DELETE"]),
            Route(zone + "/workers/routes", self.list_routes, methods=["GET"]),
            Route(zone + "/workers/routes", self.create_route, methods=["POST"]),
            Route(zone + "/custom_hostnames/quota", self.quota, methods=["GET"]),
            Route(zone + "/custom_hostnames", self.create_hostname, methods=["POST"]),
            Route(zone + "/custom_hostnames", self.list_hostnames, methods=["GET"]),
            Route(zone + "/custom_hostnames/{hostname_id}", self.get_hostname, methods=["GET"]),
            Route(zone + "/custom_hostnames/{hostname_id}", self.delete_hostname, methods=["DELETE"]),
        ]

    def _guard(self, request: Request) -> Response | None:
        return self.workers.cf._guard(request)

    def _zone_guard(self, request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {self.workers.cf.api_token}":
            return _error(403, 10000, "Authentication error")
        if request.path_params["zone_id"] not in self.workers.zones.values():
            return _error(404, 1001, "Invalid zone identifier")
        return None

    # -- dispatch namespaces ------------------------------------------------------------------------
    async def create_namespace(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        name = (await request.json()).get("name", "")
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", str(name)):
            return _error(400, 10021, "namespace name must be lower-case letters, digits, - and _")
        if name in self.namespaces:
            return _error(409, 100118, f"a dispatch namespace named {name!r} already exists")
        self.namespaces[name] = Namespace(name)
        return _ok(self.namespaces[name].as_json())

    async def list_namespaces(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        return _ok([n.as_json() for n in self.namespaces.values()])

    async def get_namespace(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        found = self.namespaces.get(request.path_params["namespace"])
        return _error(404, 100119, "dispatch namespace not found") if found is None else _ok(found.as_json())

    async def delete_namespace(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        found = self.namespaces.pop(request.path_params["namespace"], None)
        if found is None:
            return _error(404, 100119, "dispatch namespace not found")
        from tests.emulators.cloudflare import _stop

        for script in found.scripts.values():
            await asyncio.to_thread(_stop, script)
        return _ok(None)

    # -- KV -------------------------------------------------------------------------------------------
    async def create_kv(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        title = str((await request.json()).get("title") or "")
        if not title:
            return _error(400, 10019, "a KV namespace needs a title")
        if any(n["title"] == title for n in self.kv.values()):
            return _error(400, 10014, "a namespace with this account ID and title already exists")
        kv_id = uuid.uuid4().hex
        self.kv[kv_id] = {"title": title, "values": {}}
        return _ok({"id": kv_id, "title": title, "supports_url_encoding": True})

    async def list_kv(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        found = [{"id": k, "title": v["title"], "supports_url_encoding": True} for k, v in self.kv.items()]
        return _ok(found, page=1, per_page=100, count=len(found), total_count=len(found), total_pages=1)

    def _kv(self, request: Request) -> dict[str, Any] | Response:
        found = self.kv.get(request.path_params["kv_id"])
        return _error(404, 10013, "namespace not found") if found is None else found

    async def put_value(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        kv = self._kv(request)
        if isinstance(kv, Response):
            return kv
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            async with request.form() as form:
                value = form.get("value")
                text = (
                    value
                    if isinstance(value, str)
                    else None
                    if value is None
                    else (await value.read()).decode()
                )
        else:
            text = (await request.body()).decode()
        if text is None:
            return _error(400, 10021, "a multipart KV write needs a value part")
        kv["values"][unquote(request.path_params["key"])] = text
        return _ok({})

    async def get_value(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        kv = self._kv(request)
        if isinstance(kv, Response):
            return kv
        value = kv["values"].get(unquote(request.path_params["key"]))
        return _error(404, 10009, "key not found") if value is None else Response(value)

    async def delete_value(self, request: Request) -> Response:
        if (denied := self._guard(request)) is not None:
            return denied
        kv = self._kv(request)
        if isinstance(kv, Response):
            return kv
        kv["values"].pop(unquote(request.path_params["key"]), None)
        return _ok(None)

    # -- Workers routes ------------------------------------------------------------------------------
    async def list_routes(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        return _ok(self.zone_routes.get(request.path_params["zone_id"], []))

    async def create_route(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        body = await request.json()
        pattern, script = str(body.get("pattern") or ""), body.get("script")
        if not pattern:
            return _error(400, 10020, "a route needs a pattern")
        if script is not None and script not in self.workers.scripts:
            return _error(400, 10019, f"no Worker named {script!r} on this account")
        routes = self.zone_routes.setdefault(request.path_params["zone_id"], [])
        if any(r["pattern"] == pattern for r in routes):
            return _error(409, 10020, "A route with the same pattern already exists")
        route = {"id": uuid.uuid4().hex, "pattern": pattern, "script": script}
        routes.append(route)
        return _ok(route)

    def routed_script(self, host_header: str) -> str | None:
        """The Worker a zone route sends this host to: a host in the zone, or an active custom hostname."""
        host = host_header.rsplit(":", 1)[0].lower() if ":" in host_header else host_header.lower()
        custom = self.hostnames.get(host)
        for zone, zone_id in self.workers.zones.items():
            in_zone = host == zone or host.endswith("." + zone)
            served = custom is not None and custom.zone == zone_id and custom.status == "active"
            if not (in_zone or served):
                continue
            for route in self.zone_routes.get(zone_id, []):
                if route["script"] and _pattern_matches(route["pattern"], host):
                    return str(route["script"])
        return None

    # -- custom hostnames (Cloudflare for SaaS) ----------------------------------------------------------
    def _validate(self, found: CustomHostname) -> None:
        """What Cloudflare's validation finds each time it looks: TXT records published, or not (yet)."""
        found.reads += 1
        if found.hostname in self.blocked:
            found.status, found.errors = "blocked", ["This hostname is blocked by Cloudflare"]
            return
        if found.status == "active" or found.ssl_status == "validation_timed_out":
            return
        owned = self.dns.get(found.ownership_name) == found.ownership
        certified = self.dns.get(found.certificate_name) == found.certificate
        if owned and certified:
            found.status, found.ssl_status, found.errors = "active", "active", []
        elif found.reads >= self.validation_reads:
            found.ssl_status = "validation_timed_out"
            found.errors = [f"TXT record {found.certificate_name} was not found before validation timed out"]

    async def create_hostname(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        body = await request.json()
        hostname = str(body.get("hostname") or "").lower()
        ssl = body.get("ssl") or {}
        if not HOSTNAME.fullmatch(hostname):
            return _error(400, 1407, f"{hostname!r} is not a valid hostname")
        if ssl.get("method") not in (None, "txt", "http", "email") or ssl.get("type", "dv") != "dv":
            return _error(400, 1414, "ssl.method must be txt, http or email and ssl.type dv")
        if hostname in self.hostnames:
            return _error(409, 1406, "Duplicate custom hostname found.")
        if len(self.hostnames) >= self.hostname_cap:
            return _error(400, 1405, "You have reached the custom hostname quota for this zone.")
        found = CustomHostname(hostname, request.path_params["zone_id"])
        self.hostnames[hostname] = found
        return _ok(found.as_json())

    async def list_hostnames(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        wanted = request.query_params.get("hostname")
        found = [
            h
            for h in self.hostnames.values()
            if h.zone == request.path_params["zone_id"] and wanted in (None, h.hostname)
        ]
        for hostname in found:
            self._validate(hostname)
        return _ok(
            [h.as_json() for h in found],
            page=1,
            per_page=50,
            count=len(found),
            total_count=len(found),
            total_pages=1,
        )

    def _hostname(self, request: Request) -> CustomHostname | Response:
        found = next((h for h in self.hostnames.values() if h.id == request.path_params["hostname_id"]), None)
        if found is None or found.zone != request.path_params["zone_id"]:
            return _error(404, 1436, "The custom hostname was not found.")
        return found

    async def get_hostname(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        found = self._hostname(request)
        if isinstance(found, Response):
            return found
        self._validate(found)
        return _ok(found.as_json())

    async def delete_hostname(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        found = self._hostname(request)
        if isinstance(found, Response):
            return found
        del self.hostnames[found.hostname]
        return _ok({"id": found.id})

    async def quota(self, request: Request) -> Response:
        if (denied := self._zone_guard(request)) is not None:
            return denied
        used = sum(1 for h in self.hostnames.values() if h.zone == request.path_params["zone_id"])
        return _ok(
            {
                "allocated": self.hostname_allocation,
                "used": used,
                "hard_cap": self.hostname_cap,
                "exceeded": used > self.hostname_allocation,
            }
        )

    # -- what the shims call back ------------------------------------------------------------------------
    def shim(self, metadata: dict[str, Any], server: tuple[str, int] | None) -> str | None:
        """An entry module giving a Worker its dispatch namespace and KV bindings from this emulator."""
        bindings = [
            b for b in metadata.get("bindings", []) if b["type"] in ("dispatch_namespace", "kv_namespace")
        ]
        if not bindings:
            return None
        assert server is not None, "a Worker with platform bindings is started by a request to this emulator"
        base = f"http://127.0.0.1:{server[1]}/__emulator"
        made = ", ".join(
            f"{json.dumps(b['name'])}: dispatcher({json.dumps(b['namespace'])})"
            if b["type"] == "dispatch_namespace"
            else f"{json.dumps(b['name'])}: kv({json.dumps(b['namespace_id'])})"
            for b in bindings
        )
        return (
            SHIM.replace("__BASE__", base)
            .replace("__MAIN__", "./" + metadata["main_module"])
            .replace("__BINDINGS__", made)
        )

    async def internal(self, scope: Scope, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        parts = scope["path"].removeprefix("/__emulator/").split("/", 2)
        if parts[0] == "kv" and len(parts) == 3:
            kv = self.kv.get(parts[1])
            value = None if kv is None else kv["values"].get(unquote(parts[2]))
            response: Response = Response(value) if value is not None else Response("", status_code=404)
        elif parts[0] == "dispatch" and len(parts) == 2:
            response = await self._dispatch(parts[1], request)
        else:
            response = Response("not found", status_code=404)
        await response(scope, receive, send)

    async def _dispatch(self, namespace: str, request: Request) -> Response:
        """``env.DISPATCHER.get(name, {}, {limits}).fetch(request)``: the user Worker answers."""
        from tests.emulators.cloudflare import Invocation

        name = request.headers.get("x-emulator-script", "")
        found = self.namespaces.get(namespace)
        script = found.scripts.get(name) if found is not None else None
        version = (
            _version_for(script, request.headers.get("cloudflare-workers-version-overrides"))
            if script
            else None
        )
        if script is None or version is None:
            return Response("", status_code=404, headers={"cf-emulator-error": "not-found"})
        url = httpx.URL(request.headers.get("x-emulator-url", "http://localhost/"))
        asset = _asset_for(version, url.path)
        if asset is not None and request.method in ("GET", "HEAD"):  # assets first, no Worker invocation
            content, kind = self.workers.assets[asset]
            return Response(content, media_type=kind or "application/octet-stream")
        limits = json.loads(request.headers.get("x-emulator-limits") or "{}")
        port = await asyncio.to_thread(self.workers._running, script, version, request.scope.get("server"))
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if not k.startswith("x-emulator-")
            and k not in ("host", "content-length", "transfer-encoding", "accept-encoding")
        ]
        headers.append(("host", url.netloc.decode()))
        async with httpx.AsyncClient(trust_env=False, timeout=120) as client:
            answer = await client.request(
                request.method,
                f"http://127.0.0.1:{port}{url.raw_path.decode()}",
                headers=headers,
                content=await request.body(),
            )
        cpu = await asyncio.to_thread(self.workers._cpu_since_last, version)
        # The first answer of a fresh workerd also compiles the Worker, which Cloudflare does not count against
        # a request's CPU limit (startup has its own): it is measured, not limited.
        version.answered += 1
        limited = version.answered > 1 and "cpuMs" in limits
        over = limited and cpu is not None and cpu > int(limits["cpuMs"]) * 1000
        status = (
            "exceededResources" if over else "success" if answer.status_code < 500 else "scriptThrewException"
        )
        with self.workers._usage_lock:
            self.workers.invocations.append(Invocation(script.name, datetime.now(UTC), status, cpu))
        if over:
            return Response("", status_code=500, headers={"cf-emulator-error": "cpu"})
        kept = {
            k: v
            for k, v in answer.headers.items()
            if k not in ("content-length", "content-encoding", "transfer-encoding")
        }
        return Response(answer.content, status_code=answer.status_code, headers=kept)


def _pattern_matches(pattern: str, host: str) -> bool:
    """A Workers route's host part (``*/*``, ``*.example.com/*``, ``example.com/*``) against a host."""
    host_part = pattern.split("/", 1)[0]
    if host_part == "*":
        return True
    if host_part.startswith("*."):
        return host.endswith(host_part[1:]) or host == host_part[2:]
    return host == host_part


def _version_for(script: EmulatedScript, override: str | None) -> EmulatedVersion | None:
    """The version a dispatched request runs: an override naming a version in the active deployment, else
    the deployment's largest share (the emulator sends all traffic to it)."""
    if not script.deployments:
        return None
    active = {v["version_id"] for v in script.deployments[0]["versions"]}
    for item in (override or "").split(","):
        match = OVERRIDE.match(item)
        if match and match[1] == script.name and match[2] in active:
            return script.versions[match[2]]
    return script.live()


def _asset_for(version: EmulatedVersion, path: str) -> str | None:
    """The asset a path serves ("auto-trailing-slash" HTML handling: /a, /a.html, /a/index.html)."""
    path = unquote(path) or "/"
    for candidate in (path, f"{path}.html", f"{path.rstrip('/')}/index.html"):
        if candidate in version.manifest:
            return version.manifest[candidate]
    return None


SHIM = """\
import worker from "__MAIN__";

const BASE = "__BASE__";

function kv(id) {
  return {
    async get(key, options) {
      const answer = await fetch(`${BASE}/kv/${id}/${encodeURIComponent(key)}`);
      if (answer.status === 404) return null;
      const type = typeof options === "string" ? options : options?.type;
      return type === "json" ? answer.json() : answer.text();
    },
  };
}

function dispatcher(namespace) {
  return {
    get(name, args, options) {
      return {
        async fetch(input, init) {
          const request = new Request(input, init);
          const headers = new Headers(request.headers);
          headers.set("x-emulator-script", name);
          headers.set("x-emulator-url", request.url);
          if (options?.limits) headers.set("x-emulator-limits", JSON.stringify(options.limits));
          const body = ["GET", "HEAD"].includes(request.method) ? undefined : await request.arrayBuffer();
          const answer = await fetch(`${BASE}/dispatch/${namespace}`, {
            method: request.method, headers, body, redirect: "manual",
          });
          const error = answer.headers.get("cf-emulator-error");
          if (error === "not-found") throw new Error(`Worker not found: ${name}`);
          if (error === "cpu") throw new Error("Worker exceeded CPU time limit.");
          return answer;
        },
      };
    },
  };
}

export default {
  fetch(request, env, ctx) {
    return worker.fetch(request, { ...env, __BINDINGS__ }, ctx);
  },
};
"""
