"""The edge host's ASGI application: find the app by Host header, then serve a static file from the
deployment's manifest, or stream the request to the app's server, or answer 404/503 pages.

Proxying uses httpx (streaming both ways); the HTTP server itself is uvicorn. Every response is counted
for metering (one request, the body bytes sent) by wrapping ``send``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
import httpx
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, PlainTextResponse, Response, StreamingResponse

from engine.edge.blobs import BlobStore
from engine.edge.deployments import Manifest, StaticFile
from engine.edge.usage import UsageBook
from engine.errors import TerminalError, TransientError

if TYPE_CHECKING:
    from engine.edge.supervisor import ServerProcess


class ServedApps(Protocol):
    """What the proxy needs of the edge host (``engine.edge.host.EdgeHost``): find the app a Host header
    names, and a running server for it."""

    blobs: BlobStore
    usage: UsageBook
    startup_timeout: float

    def resolve(self, host_header: str) -> tuple[str, Manifest | None, bool] | None: ...

    def confined_to(self, client: tuple[str, int] | None) -> str | None: ...

    def server(self, app: str, manifest: Manifest) -> ServerProcess: ...


Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "proxy-connection",
    }
)
IMMUTABLE_PREFIX = "/_next/static/"

SUSPENDED_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Suspended</title></head>
<body style="font-family:sans-serif;margin:4em"><h1>This app is suspended</h1>
<p>Its owner or the operator has suspended it. Nothing was deleted; it comes back when resumed.</p>
</body></html>"""


def find_static(files: dict[str, StaticFile], path: str) -> tuple[str, StaticFile] | None:
    """Exact file, then `<path>.html`, then `<path>/index.html` (what `next export` writes)."""
    candidates = [path + "index.html"] if path.endswith("/") else [path, path + ".html", path + "/index.html"]
    for candidate in candidates:
        found = files.get(candidate)
        if found is not None:
            return candidate, found
    return None


class EdgeApp:
    def __init__(self, host: ServedApps) -> None:
        self.host = host
        self.client: httpx.AsyncClient | None = None
        self.socket_clients: dict[str, httpx.AsyncClient] = {}  # one per sandboxed server's socket
        self.small_files = SmallFileCache(host.blobs.path)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # websockets are not proxied (only `next dev` needs them)
            await send({"type": "websocket.close", "code": 1003})
            return
        request = Request(scope, receive)
        target = self.host.resolve(request.headers.get("host", ""))
        confined = self.host.confined_to(scope.get("client"))
        if confined is not None and (target is None or target[0] != confined):
            target = None  # an app server calling through its own origin forwarder: its own hosts only
        if target is None:
            await PlainTextResponse("No app is served at this address.\n", status_code=404)(
                scope, receive, send
            )
            return
        app, manifest, suspended = target
        context = _RequestContext()

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.body":
                context.bytes_out += len(message.get("body", b""))
                if not message.get("more_body", False):  # counted before the client can see the end
                    context.counted = True
                    self.host.usage.count(app, 1, context.bytes_out)
            await send(message)

        try:
            response = await self._respond(request, app, manifest, suspended, context)
            await response(scope, receive, counting_send)
        finally:
            # here rather than in a background task: this also runs when the client goes away mid-body
            if context.upstream is not None:
                await context.upstream.aclose()
            if context.server is not None:
                context.server.release()
            if not context.counted:  # the client went away or the response failed midway
                self.host.usage.count(app, 1, context.bytes_out)

    async def _respond(
        self, request: Request, app: str, manifest: Manifest | None, suspended: bool, context: _RequestContext
    ) -> Response:
        if suspended:
            return HTMLResponse(SUSPENDED_PAGE, status_code=503, headers={"cache-control": "no-store"})
        if manifest is None:
            return PlainTextResponse(f"{app} has no live deployment.\n", status_code=404)
        if request.method in ("GET", "HEAD"):
            found = find_static(manifest.files, request.url.path)
            if found is not None:
                return self._static(request, found[0], found[1])
        if manifest.has_server:
            return await self._proxy(request, app, manifest, context)
        not_found = manifest.files.get("/404.html")
        if not_found is not None and request.method in ("GET", "HEAD"):
            return FileResponse(
                self.host.blobs.path(not_found.digest), status_code=404, media_type=not_found.content_type
            )
        return PlainTextResponse("Not found.\n", status_code=404)

    def _static(self, request: Request, path: str, file: StaticFile) -> Response:
        etag = f'"{file.digest}"'
        cache = (
            "public, max-age=31536000, immutable"
            if path.startswith(IMMUTABLE_PREFIX)
            else "public, max-age=0, must-revalidate"
        )
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers={"etag": etag, "cache-control": cache})
        headers = {"etag": etag, "cache-control": cache}
        body = self.small_files.get(file)
        if body is not None:  # small files from memory: FileResponse costs several thread hops
            return Response(
                body if request.method == "GET" else b"",
                media_type=file.content_type,
                headers={**headers, "content-length": str(file.size)},
            )
        return FileResponse(self.host.blobs.path(file.digest), media_type=file.content_type, headers=headers)

    # -- proxy ------------------------------------------------------------------------------------

    async def _acquire(self, server: ServerProcess) -> tuple[int | str, bool]:
        """(address, whether this request had to wait for the server to start)."""
        port = server.try_acquire()
        if port is not None:
            return port, False
        return await anyio.to_thread.run_sync(server.acquire, self.host.startup_timeout), True

    async def _proxy(
        self, request: Request, app: str, manifest: Manifest, context: _RequestContext
    ) -> Response:
        assert self.client is not None
        server = self.host.server(app, manifest)
        # the edge is the first hop: forwarding headers from the client would let it spoof its address
        headers = [
            (k, v)
            for k, v in request.headers.raw
            if (name := k.decode("latin-1").lower()) not in HOP_BY_HOP and not name.startswith("x-forwarded-")
        ]
        client_ip = request.client.host if request.client else "127.0.0.1"
        headers += [
            (b"x-forwarded-for", client_ip.encode()),
            (b"x-forwarded-proto", request.url.scheme.encode()),
            (b"x-forwarded-host", request.headers.get("host", "").encode("latin-1")),
        ]
        has_body = "content-length" in request.headers or "transfer-encoding" in request.headers
        # A body can be sent once; without one the request can be retried after a server restart.
        attempts = 1 if has_body else 2
        for attempt in range(attempts):
            arrived = time.perf_counter()
            try:
                port, waited = await self._acquire(server)
            except TransientError as exc:
                return PlainTextResponse(
                    f"{app} is starting: {exc}\n", status_code=503, headers={"retry-after": "1"}
                )
            except TerminalError as exc:
                return PlainTextResponse(f"{app} is unavailable: {exc}\n", status_code=502)
            client = self.client if isinstance(port, int) else self._socket_client(port)
            upstream_request = client.build_request(
                request.method,
                httpx.URL(
                    scheme="http",
                    host="127.0.0.1",
                    port=port if isinstance(port, int) else None,
                    raw_path=_raw_path(request),
                ),
                headers=headers,
                content=request.stream() if has_body else None,
            )
            try:
                upstream = await client.send(upstream_request, stream=True)
            except httpx.ConnectError:
                server.release()
                if attempt + 1 < attempts:
                    await anyio.to_thread.run_sync(server.notice_unreachable)
                    continue
                return PlainTextResponse(f"{app}'s server is not reachable.\n", status_code=502)
            except httpx.HTTPError as exc:
                server.release()
                return PlainTextResponse(f"{app}'s server failed: {type(exc).__name__}\n", status_code=502)
            context.server, context.upstream = server, upstream
            if waited:
                self.host.usage.note_first_response(
                    app, manifest.deployment_id, time.perf_counter() - arrived
                )
            length = upstream.headers.get("content-length", "")
            if length.isdigit() and int(length) <= BUFFERED_BODY_MAX and request.method != "HEAD":
                # A small body whole: a streamed response costs a task group (and its thread hops) per request.
                body = b"".join([chunk async for chunk in upstream.aiter_raw()])  # as sent (still encoded)
                response: Response = Response(body, status_code=upstream.status_code)
            else:
                response = StreamingResponse(upstream.aiter_raw(), status_code=upstream.status_code)
            response.raw_headers = [
                (k, v) for k, v in upstream.headers.raw if k.decode("latin-1").lower() not in HOP_BY_HOP
            ]
            return response
        raise AssertionError("unreachable")

    def _socket_client(self, path: str) -> httpx.AsyncClient:
        client = self.socket_clients.get(path)
        if client is None:
            client = self.socket_clients[path] = httpx.AsyncClient(
                transport=httpx.AsyncHTTPTransport(
                    uds=path, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50)
                ),
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=30.0),
            )
        return client

    # -- lifespan ---------------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.client = httpx.AsyncClient(
                    trust_env=False,  # never send loopback traffic through an HTTP(S)_PROXY
                    follow_redirects=False,
                    timeout=httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=30.0),
                    limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                for client in self.socket_clients.values():
                    await client.aclose()
                self.socket_clients.clear()
                await send({"type": "lifespan.shutdown.complete"})
                return


class SmallFileCache:
    """Bodies of small static files, least recently used dropped first. Blobs never change, so
    entries never go stale."""

    MAX_FILE = 128 * 1024
    MAX_TOTAL = 64 * 1024 * 1024

    def __init__(self, path_of: Callable[[str], Path]) -> None:
        self._path_of = path_of
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._total = 0

    def get(self, file: StaticFile) -> bytes | None:
        if file.size > self.MAX_FILE:
            return None
        body = self._entries.get(file.digest)
        if body is not None:
            self._entries.move_to_end(file.digest)
            return body
        try:
            body = self._path_of(file.digest).read_bytes()
        except FileNotFoundError:
            return None
        self._entries[file.digest] = body
        self._total += len(body)
        while self._total > self.MAX_TOTAL:
            _, dropped = self._entries.popitem(last=False)
            self._total -= len(dropped)
        return body


# Upstream responses of at most this many bytes (content-length) are read whole before they are sent on.
BUFFERED_BODY_MAX = 256 * 1024


class _RequestContext:
    __slots__ = ("bytes_out", "counted", "server", "upstream")

    def __init__(self) -> None:
        self.bytes_out = 0
        self.counted = False
        self.server: ServerProcess | None = None  # holds one count of its in-flight requests
        self.upstream: httpx.Response | None = None


def _raw_path(request: Request) -> bytes:
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    query: bytes = request.scope.get("query_string", b"")
    return raw + (b"?" + query if query else b"")
