"""The build sandbox: no reading outside the working copy, a clean environment, limits that hold."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from engine.jail import bwrap_works
from engine.webbuild.sandbox import RunOutcome, SandboxKind, run_sandboxed

KINDS: list[SandboxKind] = ["bwrap", "user"]


@pytest.fixture
def area() -> Iterator[Path]:
    # /var/tmp, not pytest's tmp_path: the unprivileged build user must be able to pass through it.
    root = Path(tempfile.mkdtemp(prefix="launchdeck-sandbox-test-", dir="/var/tmp"))
    root.chmod(0o711)
    for name in ("work", "tmp", "cache"):
        (root / name).mkdir()
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _run(
    kind: SandboxKind,
    area: Path,
    script: str,
    *,
    timeout: float = 30,
    memory_mb: int = 512,
    extra_env: dict[str, str] | None = None,
) -> tuple[RunOutcome, str]:
    if kind == "bwrap" and not bwrap_works():
        pytest.fail("bubblewrap is not usable here: apt-get install bubblewrap")
    log_path = area / "run.log"
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "APP_SETTING": "visible", **(extra_env or {})}
    with log_path.open("ab") as log:
        outcome = run_sandboxed(
            ["/bin/sh", "-c", script],
            kind=kind,
            workdir=area / "work",
            tmp=area / "tmp",
            npm_cache=area / "cache",
            env=env,
            timeout=timeout,
            memory_mb=memory_mb,
            max_processes=64,
            log=log,
        )
    return outcome, log_path.read_text(errors="replace")


@pytest.mark.parametrize("kind", KINDS)
def test_build_cannot_read_outside_its_working_copy(kind: SandboxKind, area: Path, tmp_path: Path) -> None:
    secret = tmp_path / "vault.key"
    secret.write_text("s3cr3t-vault-key")
    secret.chmod(0o600)
    (area / "work" / "own.txt").write_text("own file")
    outcome, log = _run(kind, area, f"cat own.txt; echo; cat {secret}; echo rc=$?")
    assert "own file" in log
    assert "s3cr3t-vault-key" not in log
    assert "rc=1" in log  # cat failed: no such file (bwrap) or permission denied (user)
    assert outcome.returncode == 0


def test_bwrap_shows_nothing_of_the_machine_but_usr(area: Path) -> None:
    _, log = _run(
        "bwrap", area, "ls / ; test -e /work && echo WORK-VISIBLE; test -e /root && echo ROOT-VISIBLE; pwd"
    )
    assert "WORK-VISIBLE" not in log and "ROOT-VISIBLE" not in log
    assert "/build" in log


@pytest.mark.parametrize("kind", KINDS)
def test_only_the_apps_environment_reaches_the_build(
    kind: SandboxKind, area: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREDENTIALS_ENCRYPTION_KEY", "engine-only-secret")
    _, log = _run(kind, area, "env")
    assert "APP_SETTING=visible" in log
    assert "engine-only-secret" not in log and "CREDENTIALS_ENCRYPTION_KEY" not in log


@pytest.mark.parametrize("kind", KINDS)
def test_variables_arrive_literally_and_never_on_a_command_line(kind: SandboxKind, area: Path) -> None:
    tricky = 'it\'s $(touch /tmp/pwned) `id` "quoted"\nsecond line'
    script = (
        'printf "%s|" "$TRICKY"; test -e /tmp/pwned && echo "FILE""MADE"; cat /proc/*/cmdline | tr "\\0" " "'
    )
    _, log = _run(kind, area, script, extra_env={"TRICKY": tricky})
    assert tricky + "|" in log
    assert "FILEMADE" not in log
    assert "second line" not in log.split("|", 1)[1]  # no process inside shows the value in its arguments


@pytest.mark.parametrize("kind", KINDS)
def test_timeout_kills_every_process_of_the_build(kind: SandboxKind, area: Path) -> None:
    started = time.monotonic()
    outcome, _ = _run(kind, area, "sleep 31.4159 & sleep 31.4159", timeout=1.5)
    assert outcome.timed_out
    assert time.monotonic() - started < 15
    time.sleep(0.3)
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if "31.4159" in " ".join(p.info["cmdline"] or [])
    ]
    assert leftovers == []


@pytest.mark.parametrize("kind", KINDS)
def test_memory_limit_stops_a_hungry_build(kind: SandboxKind, area: Path) -> None:
    hog = "node -e 'const a=[];for(let i=0;i<80;i++){a.push(Buffer.alloc(10*1024*1024,1))};console.log(\"ALLOCATED\")'"
    outcome, log = _run(kind, area, hog, memory_mb=256)
    assert outcome.returncode != 0 and not outcome.timed_out
    assert "ALLOCATED" not in log
