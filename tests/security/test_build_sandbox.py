"""A hostile build step (what a postinstall script could run) tries the review's build escapes (C5, M7,
M8): PostgreSQL and the engine on the host's loopback, a site other than the npm registry (directly
and through the egress proxy), /etc/shadow, /etc/ssl/private, /etc/npmrc, and running as host root.
The npm registry itself must stay reachable. Runs one sandboxed command, no Next build."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.jail import bwrap_works
from engine.webbuild.egress import EgressProxy
from engine.webbuild.sandbox import EGRESS_PORT, run_sandboxed

pytestmark = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work here")

PROBE = r"""
const net = require("net"), fs = require("fs");
const tcp = (host, port) => new Promise((ok) => {
  const s = net.connect({ host, port, timeout: 3000 });
  s.on("connect", () => { s.destroy(); ok("reached"); });
  s.on("timeout", () => { s.destroy(); ok("refused: timeout"); });
  s.on("error", (e) => ok("refused: " + e.code));
});
const viaProxy = (target) => new Promise((ok) => {
  const s = net.connect({ host: "127.0.0.1", port: Number(process.env.EGRESS_PORT) });
  s.on("connect", () => s.write(`CONNECT ${target} HTTP/1.1\r\nhost: ${target}\r\n\r\n`));
  s.on("data", (d) => { s.destroy(); ok(d.toString().startsWith("HTTP/1.1 200") ? "reached" : "refused: " + d.toString().split("\r\n")[0]); });
  s.on("error", (e) => ok("refused: " + e.code));
});
const exists = (p) => fs.existsSync(p) ? "reached" : "refused: absent";
(async () => {
  const out = {
    postgres: await tcp("127.0.0.1", 5432),
    engine_api: await tcp("127.0.0.1", Number(process.env.ENGINE_PORT)),
    direct_internet: await tcp("104.16.0.35", 443),
    proxy_other_site: await viaProxy("example.com:443"),
    proxy_engine: await viaProxy(`127.0.0.1:${process.env.ENGINE_PORT}`),
    etc_shadow: exists("/etc/shadow"),
    ssl_private: exists("/etc/ssl/private"),
    npmrc: exists("/etc/npmrc"),
    registry: (await viaProxy("registry.npmjs.org:443")) === "reached" ? "allowed" : "blocked",
  };
  fs.writeFileSync("probe.json", JSON.stringify(out));
})();
"""


@pytest.fixture
def loopback_service() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_a_build_reaches_the_registry_and_nothing_else(tmp_path: Path, loopback_service: int) -> None:
    import json

    workdir, tmp, cache, net = (tmp_path / name for name in ("work", "tmp", "cache", "net"))
    for folder in (workdir, tmp, cache, net):
        folder.mkdir()
    (workdir / "probe.js").write_text(PROBE)
    with EgressProxy(net / "egress.sock") as proxy, (tmp_path / "log").open("wb") as log:
        outcome = run_sandboxed(
            ["node", "probe.js"],
            kind="bwrap",
            workdir=workdir,
            tmp=tmp,
            npm_cache=cache,
            env={"ENGINE_PORT": str(loopback_service), "EGRESS_PORT": str(EGRESS_PORT), "HOME": "/tmp"},
            timeout=60,
            memory_mb=512,
            max_processes=64,
            log=log,
            uid=250_123,
            net_dir=net,
            forward={EGRESS_PORT: "egress.sock"},
            disk_quota_mb=64,
        )
    assert outcome.returncode == 0, (tmp_path / "log").read_text()
    report = json.loads((workdir / "probe.json").read_text())
    registry = report.pop("registry")
    assert {k: v for k, v in report.items() if not v.startswith("refused")} == {}, report
    assert registry == "allowed"
    assert any("example.com" in refused for refused in proxy.refused)
    if os.geteuid() == 0:  # written as the app's own host uid, not as root
        assert (workdir / "probe.json").stat().st_uid == 250_123
