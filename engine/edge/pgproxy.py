"""A per-app PostgreSQL forwarder: the only way from an app server's sandbox (its own network namespace,
no route to the host's loopback) to the PostgreSQL server.

It listens on a Unix socket bound into that one app's sandbox, reads each connection's startup
message and admits it only when the user *and* the database are the app's own (``ld_app_<name>``),
then pipes it to the server. The operator's PostgreSQL may trust loopback logins (it does on these
machines), so a tenant must never get a raw path to 127.0.0.1:5432: through this forwarder it can
log in as its own role only, never as ``postgres`` or as another app. SSL and GSS encryption requests
are declined (the hop is a local socket); cancel requests are dropped (they carry no role).
"""

from __future__ import annotations

import logging
import socket
import struct
from pathlib import Path

from engine.relay import UnixSocketServer, relay

log = logging.getLogger("launchdeck.edge")

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
CANCEL_REQUEST = 80877102
PROTOCOL_3 = 196608
MAX_STARTUP = 10_000


def _read_exact(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed during the startup message")
        data += chunk
    return data


def _error(message: str) -> bytes:
    """An ErrorResponse the client library shows as a normal login error."""
    fields = b"SFATAL\x00C28000\x00M" + message.encode() + b"\x00\x00"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


def parse_startup(payload: bytes) -> dict[str, str]:
    parts = payload.split(b"\x00")
    params: dict[str, str] = {}
    for key, value in zip(parts[0::2], parts[1::2], strict=False):
        if not key:
            break
        params[key.decode(errors="replace")] = value.decode(errors="replace")
    return params


class PgForwarder(UnixSocketServer):
    """One listening Unix socket for one app's role and database."""

    def __init__(self, socket_path: Path, role: str, database: str, target: tuple[str, int]) -> None:
        super().__init__(socket_path, f"pg-forward-{role}")
        self.role = role
        self.database = database
        self.target = target

    def _serve(self, conn: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            conn.settimeout(10)
            while True:
                (length,) = struct.unpack("!I", _read_exact(conn, 4))
                if length < 8 or length > MAX_STARTUP:
                    return
                body = _read_exact(conn, length - 4)
                (code,) = struct.unpack("!I", body[:4])
                if code in (SSL_REQUEST, GSS_REQUEST):
                    conn.sendall(b"N")
                    continue
                if code != PROTOCOL_3:  # cancel requests and old protocols
                    return
                break
            params = parse_startup(body[4:])
            user = params.get("user", "")
            database = params.get("database") or user
            if user != self.role or database != self.database:
                log.warning("refused a database login as %r to %r (only %s may)", user, database, self.role)
                conn.sendall(_error(f'this app may log in only as "{self.role}" to its own database'))
                return
            host, port = self.target
            if host.startswith("/"):  # the server's Unix socket folder (libpq's host=/run/postgresql)
                upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                upstream.settimeout(10)
                upstream.connect(f"{host}/.s.PGSQL.{port}")
            else:
                upstream = socket.create_connection((host, port), timeout=10)
            upstream.sendall(struct.pack("!I", length) + body)
            relay(conn, upstream, linger=5)
        except (OSError, ConnectionError, struct.error):
            pass
        finally:
            conn.close()
            if upstream is not None:
                upstream.close()
