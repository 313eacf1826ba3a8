"""The only way out of a build's sandbox: an HTTP CONNECT proxy on a Unix socket that reaches the
package registries and nothing else.

The build runs in its own network namespace (loopback only); ``forward.js`` inside pipes npm's
``https_proxy`` (127.0.0.1:3128) to this socket. Each connection must start with
``CONNECT <host>:443``, ``host`` one of the allowed registry names; the proxy resolves it itself and
refuses addresses on loopback, private or link-local networks (a registry name pointed at the engine
would otherwise reach it). Everything else gets ``403``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from pathlib import Path

from engine.relay import UnixSocketServer, relay

log = logging.getLogger("launchdeck.build")

DEFAULT_HOSTS = ("registry.npmjs.org",)
MAX_HEAD = 8192


_INTERNAL = [
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
]


def _public(address: str) -> bool:
    """Not this machine nor its local networks (a registry name pointed there is refused)."""
    ip = ipaddress.ip_address(address)
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    return not any(ip in network for network in _INTERNAL if ip.version == network.version)


class EgressProxy(UnixSocketServer):
    def __init__(self, socket_path: Path, hosts: tuple[str, ...] = DEFAULT_HOSTS) -> None:
        super().__init__(socket_path, "build-egress")
        self.hosts = {h.lower() for h in hosts}
        self.refused: list[str] = []

    def __enter__(self) -> EgressProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _refuse(self, conn: socket.socket, what: str) -> None:
        self.refused.append(what)
        log.info("build egress refused: %s", what)
        with contextlib.suppress(OSError):
            conn.sendall(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(4096)
                if not chunk or len(head) > MAX_HEAD:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split()
            if len(parts) != 3 or parts[0] != "CONNECT":
                self._refuse(conn, line[:200])
                return
            host, _, port = parts[1].rpartition(":")
            host = host.strip("[]").lower()
            if host not in self.hosts or port != "443":
                self._refuse(conn, parts[1][:200])
                return
            infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
            addresses = [info for info in infos if _public(str(info[4][0]))]
            if not addresses:
                self._refuse(conn, f"{host} resolves to no public address")
                return
            family, kind, proto, _, address = addresses[0]
            upstream = socket.socket(family, kind, proto)
            upstream.settimeout(30)
            upstream.connect(address)
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                upstream.sendall(rest)
            relay(conn, upstream, linger=30)
        except (OSError, UnicodeError, ValueError):
            pass
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()
