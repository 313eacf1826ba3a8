"""The PostgreSQL server behind ``local-postgres``: never one that lets anyone in without a password.

The operator's server may trust loopback logins (it does on these machines), and then anything on the
host is ``postgres``. So the engine first knocks on the configured server with a deliberately wrong
password (``probe``):

* refused: the server checks passwords, and the engine uses it;
* let in (trust), or no server answers: the engine runs a cluster of its own (``Cluster``) from Debian's
  binaries (``/usr/lib/postgresql/<version>/bin``): ``initdb`` once under the workspace, SCRAM passwords
  only (``pg_hba.conf`` names no other method), listening on 127.0.0.1 on a port chosen at ``initdb``
  and on no Unix socket, run as the ``postgres`` OS user (postgres refuses root). Its superuser password
  is kept in the vault. A cluster left running by a killed engine is adopted, never initialised again;
  the engine stops its cluster when it stops.

``LAUNCHDECK_POSTGRES_SERVER``: ``auto`` (the above), ``operator`` (the configured server only, and the
engine refuses to start if it trusts) or ``launchdeck`` (always the engine's own). A workspace that has a
cluster of its own keeps it in ``auto`` mode, so apps' databases never move between servers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Literal

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from engine.edge.sandbox import run_root
from engine.errors import ConfigError
from engine.jail import SYSTEM_PATH, drop_to, memfd, privileged
from engine.redact import redact_url
from engine.retry import poll_until
from engine.vault import Vault

log = logging.getLogger("launchdeck.postgres")

DEBIAN_BINARIES = Path("/usr/lib/postgresql")
OS_USER = "postgres"
SUPERUSER = "postgres"
VAULT_SCOPE = "engine"
VAULT_PASSWORD = "postgres-superuser"
SERVER_MODES = ("auto", "operator", "launchdeck")
HBA = (
    "# Written by Launchdeck: SCRAM passwords only, over TCP on 127.0.0.1. No trust, no Unix socket.\n"
    "host all all 127.0.0.1/32 scram-sha-256\n"
)
Verdict = Literal["password", "trust", "unreachable"]
# libpq's words when a server turns a login down (rather than not answering)
AUTH_REFUSALS = ("authentication failed", "no password supplied", "no pg_hba.conf entry")


def probe(admin_url: str, timeout: int = 5) -> tuple[Verdict, str]:
    """Log in to ``admin_url``'s server with a wrong password: ``trust`` if that works, ``password`` if
    the server refuses it, ``unreachable`` (with the error) if no server answered."""
    params = {k: str(v) for k, v in conninfo_to_dict(admin_url).items() if v is not None}
    params.update(password="launchdeck-probe-" + secrets.token_hex(12), connect_timeout=str(timeout))
    try:
        with psycopg.connect(make_conninfo("", **params)):
            return "trust", ""
    except psycopg.OperationalError as exc:
        text = str(exc)
        # Refused credentials (28P01) or no pg_hba line for us (28000): the server decides who gets in.
        if any(refusal in text for refusal in AUTH_REFUSALS):
            return "password", text
        return "unreachable", text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _binaries_found() -> list[Path]:
    """Debian's PostgreSQL ``bin`` folders, oldest version first."""
    return sorted(
        (p for p in DEBIAN_BINARIES.glob("*/bin") if (p / "initdb").is_file() and (p / "postgres").is_file()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )


def _newest_binaries() -> Path:
    found = _binaries_found()
    if not found:
        raise ConfigError(
            f"no PostgreSQL binaries under {DEBIAN_BINARIES} to run Launchdeck's own cluster: "
            "apt-get install postgresql, or point LAUNCHDECK_POSTGRES_ADMIN_URL at a server that requires "
            "passwords and set LAUNCHDECK_POSTGRES_SERVER=operator"
        )
    return found[-1]


class Cluster:
    """The engine's own cluster: ``<workspace>/postgres/{data,cluster.json,server.log}``."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace
        self.home = workspace / "postgres"
        self.data = self.home / "data"
        self.record = self.home / "cluster.json"
        self.log_file = self.home / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    def exists(self) -> bool:
        return (self.data / "PG_VERSION").is_file() and self.record.is_file()

    @property
    def port(self) -> int:
        return int(json.loads(self.record.read_text())["port"])

    def url(self, password: str) -> str:
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/postgres"

    def start(self, password: str) -> str:
        """Initialise (first time), start or adopt the cluster; returns its superuser URL."""
        if not self.exists():
            self._initialise(password)
        url = self.url(password)
        if self._answers(url):
            log.info("adopted the PostgreSQL cluster already running on 127.0.0.1:%d", self.port)
            return url
        self._launch()
        poll_until(
            lambda: self._answers(url) or (self._process is not None and self._process.poll() is not None),
            bool,
            interval=0.05,
            max_interval=0.5,
            timeout=60,
            timed_out=lambda _: ConfigError(self._failure("did not answer within 60 s")),
        )
        if not self._answers(url):
            raise ConfigError(self._failure("stopped at start"))
        log.info("started Launchdeck's PostgreSQL cluster on 127.0.0.1:%d (%s)", self.port, self.data)
        return url

    def stop(self, timeout: float = 30.0) -> None:
        """Fast shutdown (SIGINT: sessions end, data is flushed), and wait for the server to exit."""
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT)
        poll_until(
            lambda: self._running(pid),
            lambda running: not running,
            interval=0.05,
            max_interval=0.5,
            timeout=timeout,
            timed_out=lambda _: ConfigError(
                f"the PostgreSQL cluster (pid {pid}) did not stop in {timeout} s"
            ),
        )
        self._process = None

    def pid(self) -> int | None:
        """The postmaster's pid while it runs (from ``postmaster.pid``), else None."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        return pid if self._running(pid) else None

    def _running(self, pid: int) -> bool:
        if self._process is not None and self._process.pid == pid:
            return self._process.poll() is None  # our child: reap it, or it lingers as a zombie
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    # -- helpers ---------------------------------------------------------------------------------
    def _binaries(self) -> Path:
        version = (self.data / "PG_VERSION").read_text().strip()
        folder = DEBIAN_BINARIES / version / "bin"
        if not (folder / "postgres").is_file():
            raise ConfigError(
                f"the cluster in {self.data} is PostgreSQL {version}, but {folder}/postgres is missing: "
                f"apt-get install postgresql-{version}"
            )
        return folder

    def _mount_point(self) -> Path:
        return run_root(self.workspace) / "postgres"

    def _as_postgres(self, argv: list[str]) -> list[str]:
        """``argv`` as the ``postgres`` OS user, with the data folder at ``_mount_point`` (root's
        workspace is closed to other users); an unprivileged engine runs it as itself."""
        if not privileged():
            return argv
        user = self._os_user()
        return drop_to(user.pw_uid, [(self.data, self._mount_point())], gid=user.pw_gid) + argv

    def _data_argument(self) -> str:
        return str(self._mount_point() if privileged() else self.data)

    @staticmethod
    def _os_user() -> pwd.struct_passwd:
        try:
            return pwd.getpwnam(OS_USER)
        except KeyError:
            raise ConfigError(
                f"no {OS_USER!r} OS user to run Launchdeck's PostgreSQL cluster as: apt-get install postgresql"
            ) from None

    def _initialise(self, password: str) -> None:
        binaries = _newest_binaries()
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        shutil.rmtree(self.data, ignore_errors=True)  # an initdb a crash interrupted starts over
        self.data.mkdir()
        self.data.chmod(0o700)
        if privileged():
            user = self._os_user()
            os.chown(self.data, user.pw_uid, user.pw_gid)
            self._mount_point().mkdir(exist_ok=True)
        password_fd = memfd("pwfile", password.encode())
        try:
            command = [
                str(binaries / "initdb"), "-D", self._data_argument(), "-U", SUPERUSER,
                "--auth=scram-sha-256", f"--pwfile=/proc/self/fd/{password_fd}",
                "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
            ]  # fmt: skip
            result = subprocess.run(
                self._as_postgres(command),
                capture_output=True,
                text=True,
                pass_fds=(password_fd,),
                env={"PATH": SYSTEM_PATH},
                cwd="/",
                timeout=300,
                check=False,
            )
        finally:
            os.close(password_fd)
        if result.returncode != 0:
            raise ConfigError(
                f"initdb of Launchdeck's PostgreSQL cluster failed: {result.stderr.strip()[-800:]}"
            )
        port = _free_port()
        # Files initdb made keep their owner (postgres) when rewritten in place.
        with (self.data / "pg_hba.conf").open("w") as hba:
            hba.write(HBA)
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n# Launchdeck\n"
                f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n"
                "password_encryption = 'scram-sha-256'\n"
            )
        self.record.write_text(json.dumps({"port": port}))
        log.info("initialised Launchdeck's PostgreSQL cluster in %s (port %d)", self.data, port)

    def _launch(self) -> None:
        command = [str(self._binaries() / "postgres"), "-D", self._data_argument()]
        with self.log_file.open("ab") as output:
            # Its own session: Ctrl-C in the engine's terminal does not reach it; the engine stops it.
            self._process = subprocess.Popen(
                self._as_postgres(command),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env={"PATH": SYSTEM_PATH},
                cwd="/",
                start_new_session=True,
            )

    @staticmethod
    def _answers(url: str) -> bool:
        try:
            with psycopg.connect(url, connect_timeout=3) as connection:
                connection.execute("SELECT 1")
        except psycopg.OperationalError:
            return False
        return True

    def _failure(self, what: str) -> str:
        tail = self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""
        return f"Launchdeck's PostgreSQL cluster ({self.data}) {what}; its log ends:\n{tail}"


class PostgresServer:
    """The server that hosts ``local-postgres`` databases: the configured one if it checks passwords,
    else the engine's own cluster (see the module's docstring). Decided at construction (a refusal is a
    ``ConfigError`` then); the own cluster starts with ``start`` and stops with ``stop``."""

    def __init__(self, configured_url: str, mode: str, workspace: Path, vault: Vault) -> None:
        if mode not in SERVER_MODES:
            raise ConfigError(
                f"LAUNCHDECK_POSTGRES_SERVER must be one of {', '.join(SERVER_MODES)}, not {mode!r}"
            )
        self.configured_url = configured_url
        self.cluster = Cluster(workspace)
        self.vault = vault
        self.own = self._needs_own_cluster(mode)

    def _needs_own_cluster(self, mode: str) -> bool:
        if mode == "launchdeck" or (mode == "auto" and self.cluster.exists()):
            return True
        verdict, detail = probe(self.configured_url)
        where = redact_url(self.configured_url)
        if verdict == "password":
            return False
        if mode == "operator":
            if verdict == "trust":
                raise ConfigError(
                    f"the PostgreSQL server at {where} let the engine in with a wrong password (trust "
                    "authentication): any process on this machine could log in as its superuser. Require "
                    "passwords for it (scram-sha-256 in pg_hba.conf, then a password in "
                    "LAUNCHDECK_POSTGRES_ADMIN_URL), or unset LAUNCHDECK_POSTGRES_SERVER so that Launchdeck "
                    "runs a cluster of its own"
                )
            log.warning(
                "the PostgreSQL server at %s does not answer (%s); local-postgres will fail", where, detail
            )
            return False
        if verdict == "trust":
            log.warning(
                "the PostgreSQL server at %s trusts logins without a password: local-postgres databases "
                "live on Launchdeck's own cluster in %s instead",
                where,
                self.cluster.home,
            )
            return True
        if not _binaries_found():  # a machine without PostgreSQL: local-postgres fails when used
            log.warning(
                "no PostgreSQL server answers at %s (%s), and none is installed to run", where, detail
            )
            return False
        log.info("no PostgreSQL server answers at %s: Launchdeck runs its own cluster", where)
        return True

    def start(self) -> str:
        """The superuser URL of the server to use (starting or adopting the own cluster)."""
        if not self.own:
            return self.configured_url
        password = self.vault.get_optional(VAULT_SCOPE, VAULT_PASSWORD)
        if password is None:
            if self.cluster.exists():
                raise ConfigError(
                    f"the vault no longer holds the superuser password of the PostgreSQL cluster in "
                    f"{self.cluster.home}: restore the vault key, or move that folder away to start afresh"
                )
            password = secrets.token_hex(24)
            self.vault.put(VAULT_SCOPE, VAULT_PASSWORD, password)  # before initdb: never a cluster without it
        return self.cluster.start(password)

    def stop(self) -> None:
        if self.own:
            self.cluster.stop()
