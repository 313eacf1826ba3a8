"""Supervised app servers: one child process per running deployment, on a free loopback port.

A server is started on demand (the first request, or a promote that warms it), restarted with
exponential backoff when it dies, and stopped when idle (scale to zero). Each child leads its own
process group, so stopping it also stops whatever it spawned (`npm start` -> `node`).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from engine.edge.usage import ServerStart

if TYPE_CHECKING:
    from engine.cgroups import Cage
    from engine.edge.sandbox import ServerSandbox
from engine.errors import TerminalError, TransientError

BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0  # running this long without dying resets the backoff
GIVE_UP_AFTER = 3  # consecutive failed starts after which a waiting request gets an error
STOP_GRACE = 5.0
LOG_ROTATE_BYTES = 5 * 1024 * 1024


class State(enum.StrEnum):
    STOPPED = "stopped"  # never started, or scaled to zero
    STARTING = "starting"
    RUNNING = "running"
    CRASHED = "crashed"  # waiting for its backoff before the next start


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def socket_open(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.2)
            sock.connect(path)
            return True
    except OSError:
        return False


def address_open(address: int | str) -> bool:
    return socket_open(address) if isinstance(address, str) else port_open(address)


def _kill_group(popen: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the child's process group, SIGKILL what is left after ``grace`` seconds, reap."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, sig)
        try:
            popen.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        with contextlib.suppress(ProcessLookupError):  # the leader is gone; its children may not be
            os.killpg(popen.pid, signal.SIGKILL)
        return


class ServerProcess:
    def __init__(
        self,
        app: str,
        deployment_id: str,
        command: list[str],
        cwd: Path,
        env: dict[str, str],
        log_path: Path,
        on_start: Callable[[str, ServerStart], None],
        startup_timeout: float = 60.0,
        pid_file: Path | None = None,
        sandbox: ServerSandbox | None = None,
    ) -> None:
        self.app = app
        self.deployment_id = deployment_id
        self.command = command
        self.cwd = cwd
        self.env = env
        self.log_path = log_path
        self.pid_file = pid_file
        # With a sandbox the server listens on a Unix socket (an address is its path), else on a
        # loopback port (an address is the port number).
        self.sandbox = sandbox
        self.cage: Cage | None = None
        self._on_start = on_start
        self.startup_timeout = startup_timeout
        self._cond = threading.Condition()
        self.state = State.STOPPED
        self.popen: subprocess.Popen[bytes] | None = None
        self.port: int | str | None = None
        self.crashes = 0  # consecutive
        self.restarts = 0  # in all
        self.backoff_until = 0.0
        self.running_since = 0.0
        self.inflight = 0
        self.last_active = time.monotonic()
        self.last_error: str | None = None

    # -- starting ---------------------------------------------------------------------------------

    def _spawn_locked(self, kind: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:  # keep the newest output and one older file
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        address: int | str
        pass_fds: list[int] = []
        if self.sandbox is not None:
            try:
                launch = self.sandbox.prepare(self.command, self.env)
            except OSError as exc:
                self._failed_locked(f"could not prepare the sandbox: {exc}")
                return
            argv, env, pass_fds, cwd = launch.argv, launch.env, launch.pass_fds, "/"
            address, self.cage = str(launch.socket_path), launch.cage
            where = "its socket"
        else:
            address = free_port()
            argv, cwd = self.command, str(self.cwd)
            env = {**self.env, "PORT": str(address), "HOSTNAME": "127.0.0.1"}
            where = f"port {address}"
        with self.log_path.open("ab") as log:
            log.write(f"--- launchdeck: starting {self.command} on {where} ({kind})\n".encode())
            log.flush()
            try:
                popen = subprocess.Popen(
                    argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    pass_fds=pass_fds,
                )
            except OSError as exc:
                self._failed_locked(f"could not run {argv[0]!r}: {exc}")
                return
            finally:
                for fd in pass_fds:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        self.popen, self.port, self.state = popen, address, State.STARTING
        if self.pid_file is not None:
            _write_pid_file(self.pid_file, popen.pid)
        started = time.monotonic()
        threading.Thread(
            target=self._await_ready,
            args=(popen, address, started, kind),
            name=f"ready-{self.app}",
            daemon=True,
        ).start()

    def _await_ready(
        self, popen: subprocess.Popen[bytes], address: int | str, started: float, kind: str
    ) -> None:
        deadline = started + self.startup_timeout
        while True:
            code = popen.poll()
            ready = code is None and address_open(address)
            with self._cond:
                if self.popen is not popen or self.state != State.STARTING:
                    return  # stopped meanwhile
                if ready:
                    self.state = State.RUNNING
                    self.running_since = time.monotonic()
                    self.last_active = self.running_since
                    seconds = self.running_since - started
                    # recorded before any waiter wakes, so whoever sees the server running sees this start
                    self._on_start(
                        self.app, ServerStart(self.deployment_id, kind, round(seconds, 4), time.time())
                    )
                    self._cond.notify_all()
                    return
                if code is not None:
                    self._failed_locked(f"server exited with code {code} before it listened")
                    return
                if time.monotonic() > deadline:
                    self._failed_locked(f"server did not listen within {self.startup_timeout:g} s")
                    return
            time.sleep(0.01)

    def _failed_locked(self, reason: str) -> None:
        popen, self.popen = self.popen, None
        if popen is not None:
            _kill_group(popen, grace=0)
            self._forget_pid()
        self._drop_cage()
        self.crashes += 1
        self.restarts += 1
        self.last_error = reason
        self.state = State.CRASHED
        self.backoff_until = time.monotonic() + min(BACKOFF_FIRST * 2 ** (self.crashes - 1), BACKOFF_MAX)
        with self.log_path.open("ab") as log:
            log.write(f"--- launchdeck: {reason}\n".encode())
        self._cond.notify_all()

    # -- requests ---------------------------------------------------------------------------------

    def acquire(self, timeout: float, kind: str = "request") -> int | str:
        """Wait until the server listens (starting it if stopped) and count one request in flight.
        Returns its address (a port, or a Unix socket's path). Every successful call must be paired with ``release()``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                self._check_exit_locked()
                now = time.monotonic()
                if self.state == State.RUNNING:
                    assert self.port is not None
                    self.inflight += 1
                    self.last_active = now
                    return self.port
                if self.state == State.STOPPED:
                    self._spawn_locked(kind)
                    continue
                if self.state == State.CRASHED:
                    if self.crashes >= GIVE_UP_AFTER:
                        raise TerminalError(
                            f"the server of {self.app} failed {self.crashes} times in a row: {self.last_error}"
                        )
                    if now >= self.backoff_until:
                        self._spawn_locked("restart")
                        continue
                remaining = deadline - now
                if remaining <= 0:
                    raise TransientError(
                        f"the server of {self.app} was not ready within {timeout:g} s ({self.state})",
                        retry_after=1.0,
                    )
                wake = self.backoff_until - now if self.state == State.CRASHED else remaining
                self._cond.wait(max(0.01, min(remaining, wake)))

    def try_acquire(self) -> int | str | None:
        """The fast path of ``acquire``: the address if the server is running, without waiting."""
        with self._cond:
            if self.state != State.RUNNING or self.port is None:
                return None
            self.inflight += 1
            self.last_active = time.monotonic()
            return self.port

    def notice_unreachable(self) -> None:
        """A request could not connect: if the child died, treat it as a crash now (not at the next tick)."""
        with self._cond:
            self._check_exit_locked()
            if self.state == State.RUNNING and self.port is not None and not address_open(self.port):
                time.sleep(0.05)
                self._check_exit_locked()

    def release(self) -> None:
        with self._cond:
            self.inflight -= 1
            self.last_active = time.monotonic()

    # -- supervision ------------------------------------------------------------------------------

    def _check_exit_locked(self) -> None:
        if self.state == State.RUNNING and self.popen is not None:
            code = self.popen.poll()
            if code is not None:
                self._failed_locked(f"server exited with code {code} ({_signal_name(code)})")

    def tick(self, idle_seconds: float | None, restart: bool = True) -> None:
        """Housekeeping: notice a dead server, restart it after its backoff (when ``restart``: the live
        deployment's; another one starts again only on a request), scale an idle one to zero."""
        with self._cond:
            self._check_exit_locked()
            now = time.monotonic()
            if self.state == State.RUNNING and self.crashes and now - self.running_since > STABLE_AFTER:
                self.crashes = 0
            if (
                restart
                and self.state == State.CRASHED
                and now >= self.backoff_until
                and self.crashes < GIVE_UP_AFTER * 4
            ):
                self._spawn_locked("restart")
            elif (
                self.state == State.RUNNING
                and idle_seconds is not None
                and self.inflight == 0
                and now - self.last_active >= idle_seconds
            ):
                self._stop_locked("idle for %.0f s: scaled to zero" % (now - self.last_active))

    def _stop_locked(self, reason: str) -> None:
        popen, self.popen = self.popen, None
        if popen is not None:  # killed before the state says so: "stopped" means the process is gone
            _kill_group(popen, grace=STOP_GRACE)
            self._forget_pid()
            with self.log_path.open("ab") as log:
                log.write(f"--- launchdeck: stopped ({reason})\n".encode())
        self._drop_cage()
        self.state = State.STOPPED
        self.port = None
        self.crashes = 0
        self._cond.notify_all()

    def stop(self, reason: str = "stopped") -> None:
        with self._cond:
            self._stop_locked(reason)

    def _drop_cage(self) -> None:
        cage, self.cage = self.cage, None
        if cage is not None:
            cage.remove()  # kills whatever escaped the process group, then deletes the cgroup

    def _forget_pid(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    @property
    def pid(self) -> int | None:
        popen = self.popen
        return None if popen is None else popen.pid


def _signal_name(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return "exited"


# -- servers left behind by an engine that died without stopping them ------------------------------


def _write_pid_file(path: Path, pid: int) -> None:
    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"pid": pid, "created": created}))


def reap_orphans(run_dir: Path) -> int:
    """Kill the process groups of servers recorded in ``run_dir`` that still run (the engine was killed
    before it could stop them). The start time guards against a recycled pid. Returns how many."""
    killed = 0
    for pid_file in run_dir.glob("*.json") if run_dir.is_dir() else []:
        try:
            record = json.loads(pid_file.read_text())
            if abs(psutil.Process(record["pid"]).create_time() - record["created"]) < 0.05:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(record["pid"], signal.SIGKILL)
                killed += 1
        except (psutil.NoSuchProcess, ValueError, KeyError, TypeError):
            pass
        pid_file.unlink(missing_ok=True)
    return killed
