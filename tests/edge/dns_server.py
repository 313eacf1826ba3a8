"""An authoritative DNS server on loopback for the domain tests (dnslib), answering from a dict that the
test edits: {(name, "CNAME" | "TXT"): [value, ...]}. Unknown names get NXDOMAIN."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dnslib import CNAME, QTYPE, RCODE, RR, TXT
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        for value in self.records.get((name, kind), []):
            rdata = CNAME(value) if kind == "CNAME" else TXT(value)
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=rdata, ttl=60))
        if not reply.rr and not any(known == name for known, _ in self.records):
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def dns_server() -> Iterator[tuple[ZoneResolver, tuple[str, int]]]:
    resolver = ZoneResolver()
    port = free_udp_port()
    server = DNSServer(
        resolver, address="127.0.0.1", port=port, logger=DNSLogger("-request,-reply,-truncated", logf=print)
    )
    server.start_thread()
    try:
        yield resolver, ("127.0.0.1", port)
    finally:
        server.stop()
        server.server.server_close()
        server.thread.join(timeout=5)
