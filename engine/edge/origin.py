"""A per-app forwarder to the edge: how an app server reaches its OWN public origin.

Generated apps call their own URL from the server (Clerk's middleware, `fetch(new URL("/api/x",
request.url))`, NextAuth's session check). An app server's sandbox has its own network namespace with
only a loopback, so the sandbox's ``/etc/hosts`` names the app's host names as 127.0.0.1 and its
launcher pipes 127.0.0.1:<edge port> inside to this forwarder's Unix socket (in a folder the app's uid
owns). The forwarder connects to the edge from a loopback address it registers in ``OriginCallers``
first; the edge serves a connection from a registered address only for that app's own host names
(live, previews, custom domains) and answers 404 for any other: no route to another tenant, and none
to any other host service (only the edge's port is forwarded).
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

from engine.relay import UnixSocketServer, relay

# Connections one app's server may hold open to its own origin at once. Each costs the engine two
# threads, and a self-proxying loop (a middleware rewrite to the app's own public URL, which Next
# proxies back in) would otherwise open them without end: past the cap a connection is closed at once.
MAX_CONNECTIONS = 64


class OriginCallers:
    """Which app each registered edge connection comes from, by its local (address, port)."""

    def __init__(self) -> None:
        self._apps: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()

    def add(self, address: tuple[str, int], app: str) -> None:
        with self._lock:
            self._apps[address] = app

    def remove(self, address: tuple[str, int]) -> None:
        with self._lock:
            self._apps.pop(address, None)

    def app_of(self, client: tuple[str, int] | None) -> str | None:
        """The app a connection to the edge was made for, or None for any other client."""
        if client is None:
            return None
        with self._lock:
            return self._apps.get((client[0], client[1]))


class OriginForwarder(UnixSocketServer):
    """One listening Unix socket for one app's server: each connection becomes one edge connection that
    the edge confines to the app's own host names."""

    def __init__(self, socket_path: Path, app: str, edge: tuple[str, int], callers: OriginCallers) -> None:
        super().__init__(socket_path, f"origin-{app}")
        self.app = app
        self.edge = edge
        self.callers = callers
        self._open = 0
        self._count_lock = threading.Lock()

    def _serve(self, conn: socket.socket) -> None:
        with self._count_lock:
            admitted = self._open < MAX_CONNECTIONS
            self._open += admitted
        if not admitted:
            conn.close()
            return
        try:
            self._forward(conn)
        finally:
            with self._count_lock:
                self._open -= 1

    def _forward(self, conn: socket.socket) -> None:
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        address: tuple[str, int] | None = None
        try:
            upstream.bind((self.edge[0], 0))  # registered before it connects: the edge never sees it unknown
            address = upstream.getsockname()[:2]
            self.callers.add(address, self.app)
            upstream.settimeout(10)
            upstream.connect(self.edge)
            relay(conn, upstream, linger=5)
        except OSError:
            pass
        finally:
            conn.close()
            upstream.close()
            if address is not None:
                self.callers.remove(address)


def edge_address(bind: str, port: int) -> tuple[str, int]:
    """Where the forwarder connects: the edge's loopback address (also when it listens on all)."""
    return ("127.0.0.1" if bind in ("", "0.0.0.0") else bind, port)


def hosts_file(names: list[str]) -> bytes:
    """The sandbox's /etc/hosts: loopback, and the app's own host names on it."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    if names:
        lines.append("127.0.0.1\t" + " ".join(names))
    return ("\n".join(lines) + "\n").encode()
