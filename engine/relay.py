"""Unix-socket forwarders' shared parts: a listening socket that serves each connection on its own thread
(the build's registry proxy, an app's PostgreSQL forwarder), and the byte relay both end with."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from abc import ABC, abstractmethod
from pathlib import Path


class UnixSocketServer(ABC):
    def __init__(self, socket_path: Path, thread_name: str) -> None:
        self.socket_path = socket_path
        self.thread_name = thread_name
        self._sock: socket.socket | None = None

    def start(self, owner_uid: int | None = None) -> None:
        """Listen at ``socket_path`` (mode 0600, owned by ``owner_uid`` when given: a sandbox's own uid)."""
        self.socket_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.socket_path))
        if owner_uid is not None:
            os.chown(self.socket_path, owner_uid, owner_uid)
        os.chmod(self.socket_path, 0o600)
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._accept, name=self.thread_name, daemon=True).start()

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.socket_path.unlink(missing_ok=True)

    def _accept(self) -> None:
        while (sock := self._sock) is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @abstractmethod
    def _serve(self, conn: socket.socket) -> None:
        """Handle one connection, closing it when done."""


def relay(conn: socket.socket, upstream: socket.socket, *, linger: float) -> None:
    """Copy bytes both ways until either side closes, then shut both down; waits up to ``linger``
    seconds for the other direction to finish."""
    conn.settimeout(None)
    upstream.settimeout(None)

    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    back = threading.Thread(target=copy, args=(upstream, conn), daemon=True)
    back.start()
    copy(conn, upstream)
    back.join(linger)
