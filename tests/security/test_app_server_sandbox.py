"""A hostile app server tries each escape of the security review (C1, C3, C5, H7) from inside its
sandbox: host root, capabilities, /etc/shadow, the workspace (vault key, operator token), another
tenant's database and socket, PostgreSQL as a superuser or as another app's role, the engine API and
other loopback services, another app through the edge port that serves the app its own origin, the
outside network, its own build output, unmounting and remounting, and a fork bomb. Each must be refused,
while what the app is entitled to (its own database, its own public origin) keeps working.
A plain Node server stands in for a built app here (no Next build needed); the web test deploys one."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from engine.edge import EdgeHost, ServerSpec
from engine.edge.sandbox import Limits
from engine.jail import bwrap_works, privileged
from engine.providers.local_libsql import LocalLibsql, app_folder
from engine.providers.local_postgres import LocalPostgres, identifier_for
from engine.service import postgres_target
from tests.edge.conftest import APP_SERVER_JS, fetch

PROBE_JS = Path(__file__).with_name("probe_server.js")

pytestmark = pytest.mark.skipif(not bwrap_works(), reason="bubblewrap does not work here")


@pytest.fixture
def loopback_service() -> Iterator[int]:
    """Something listening on the host's loopback, like the engine API."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


@pytest.fixture
def probe_app(pg_admin_url: str) -> Iterator[str]:
    """A unique app name whose local PostgreSQL role and database exist for the test, then go."""
    name = f"sec-probe-{secrets.token_hex(3)}"
    provider = LocalPostgres(pg_admin_url)
    provider.provision(name)
    try:
        yield name
    finally:
        provider.destroy(name)


def test_a_hostile_server_reaches_nothing_but_its_own_database(
    tmp_path: Path, loopback_service: int, probe_app: str, pg_admin_url: str
) -> None:
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    (workspace / "vault.key").write_text("the engine's key")
    (workspace / "operator.token").write_text("ld_operator")
    victim_db = Path(
        LocalLibsql(app_folder(workspace, "victim")).provision("victim").url.removeprefix("file:")
    )
    kinds = {"victim": "local-libsql", probe_app: "local-postgres"}
    edge = EdgeHost(
        workspace,
        0,
        idle_seconds=None,
        database_source=kinds.get,
        limits=Limits(memory_mb=512, max_processes=64, cpus=1.0),
        postgres_target=postgres_target(pg_admin_url),
    )
    edge.start()
    try:
        victim_dir = tmp_path / "victim"
        victim_dir.mkdir()
        shutil.copy(APP_SERVER_JS, victim_dir / "server.js")
        edge.stage("victim", "v1", None, ServerSpec(["node", "server.js"], victim_dir, {"APP_VERSION": "v"}))
        edge.promote("victim", "v1")
        victim_socket = edge.server("victim", edge.manifest("victim", "v1")).port
        assert isinstance(victim_socket, str)  # sandboxed servers listen on a socket, not a port

        probe_dir = tmp_path / "probe"
        probe_dir.mkdir()
        shutil.copy(PROBE_JS, probe_dir / "server.js")
        env = {
            "PROBE_WORKSPACE": str(workspace.resolve()),
            "PROBE_OTHER_DB": str(victim_db),
            "PROBE_OTHER_SOCKET": victim_socket,
            "PROBE_OTHER_ROLE": identifier_for("victim"),
            "PROBE_OWN_ROLE": identifier_for(probe_app),
            "PROBE_PG_PORT": str(postgres_target(pg_admin_url)[1]),
            "PROBE_ENGINE_PORT": str(loopback_service),
            "PROBE_EDGE_PORT": str(edge.port),
            "PROBE_OWN_ORIGIN": f"http://{probe_app}.localhost:{edge.port}/",
            # refused by the API; here it reaches the edge anyway, which must keep it inside (C2)
            "LD_PRELOAD": str(tmp_path / "evil.so"),
        }
        edge.stage(probe_app, "p1", None, ServerSpec(["node", "server.js"], probe_dir, env))
        edge.promote(probe_app, "p1")
        with httpx.Client(trust_env=False, timeout=60) as client:
            report = fetch(client, edge, f"{probe_app}.localhost", "/probe").json()
            reached = {name: why for name, why in report["results"].items() if not why.startswith("refused")}
            assert reached == {}, json.dumps(report, indent=1)
            # its own database is reachable, and the server (not only the forwarder) wants its password
            assert report["own"]["own_role"] == "password requested"
            # and its own public origin, by name, from inside (what Clerk's middleware fetches)
            assert report["own"]["own_origin"] == "reached: 200 probe server", report["own"]
            if privileged():  # a host uid of its own (as seen from the host), not root in a namespace
                server_pid = edge.server(probe_app, edge.manifest(probe_app, "p1")).pid
                assert server_pid is not None
                tree = [psutil.Process(server_pid), *psutil.Process(server_pid).children(recursive=True)]
                host_uids = {uid for process in tree for uid in process.uids()}
                assert len(tree) >= 2 and min(host_uids) >= 200_000, host_uids
                # the victim (libSQL) can still write its own database folder
                assert fetch(client, edge, "victim.localhost", "/api/health").status_code == 200
            # the launchers outside (setpriv, bwrap) ran with the fixed environment, not the app's
            server = edge.server(probe_app, edge.manifest(probe_app, "p1"))
            assert server.pid is not None
            outer = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
            assert not [v for v in outer if v.startswith(b"LD_PRELOAD")], outer
            assert b"PATH=/usr/bin:/bin" in outer
            bomb = fetch(client, edge, f"{probe_app}.localhost", "/fork-bomb").json()
            assert bomb["alive"] <= 64, bomb
    finally:
        edge.stop()


def test_without_a_sandbox_the_engine_refuses_to_run_servers(tmp_path: Path) -> None:
    from engine.errors import ConfigError

    with pytest.raises(ConfigError, match="SINGLE_TENANT"):
        EdgeHost(tmp_path / "ws", 0, sandbox="none")
