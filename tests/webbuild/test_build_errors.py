"""build() on a tiny dependency-free package: failures, secrets kept out of the log, the database file."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import BuildFailed, InputError
from engine.webbuild import build


@pytest.fixture
def package() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="launchdeck-build-errors-", dir="/var/tmp"))
    root.chmod(0o711)
    work = root / "work"
    work.mkdir()
    try:
        yield work
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write_package(work: Path, build_script: str) -> None:
    package = {"name": "tiny", "version": "1.0.0", "private": True, "scripts": {"build": build_script}}
    lock = {
        "name": "tiny",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {"": {"name": "tiny", "version": "1.0.0"}},
    }
    (work / "package.json").write_text(json.dumps(package))
    (work / "package-lock.json").write_text(json.dumps(lock))


@pytest.mark.parametrize("kind", ["bwrap", "user"])
def test_failing_build_names_the_step_and_shows_the_tail_without_secrets(
    package: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCHDECK_BUILD_SANDBOX", kind)
    script = "node -e \"console.log('token is ' + process.env.API_TOKEN); console.error('Error: boom at line 7'); process.exit(3)\""
    _write_package(package, script)
    log_path = package.parent / "logs" / "build.log"
    with pytest.raises(BuildFailed) as failure:
        build(package, {"API_TOKEN": "tok_live_abcdef123456"}, timeout=120, memory_mb=512, log_path=log_path)
    message = str(failure.value)
    assert "`npm run build` failed with exit code 3" in message
    assert "Error: boom at line 7" in failure.value.log_tail
    log = log_path.read_text()
    assert f"$ npm ci --no-audit --no-fund    [sandbox: {kind}]" in log  # the lockfile fits: a clean install
    assert "token is ***" in log and "tok_live_abcdef123456" not in log + message


def test_timeout_is_reported(package: Path) -> None:
    _write_package(package, "sleep 60")
    with pytest.raises(BuildFailed, match=r"timed out after 5 s"):
        build(package, {}, timeout=5, memory_mb=512, log_path=package.parent / "build.log")


def test_the_database_folder_is_visible_to_the_build_and_nothing_beside_it(
    package: Path, tmp_path: Path
) -> None:
    """The build sees the app's own database folder (given by the engine, not read from DATABASE_URL:
    a URL naming another tenant's file mounts nothing, review C3)."""
    databases = package.parent / "databases"
    (databases / "app").mkdir(parents=True)
    (databases / "other").mkdir()
    (databases / "app" / "app.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    (databases / "other" / "other.db").write_bytes(b"another tenant")
    script = (
        "node -e \"const fs=require('fs');const p=process.env.DATABASE_URL.slice(5);"
        "console.log('db bytes', fs.statSync(p).size);"
        "console.log('other', fs.existsSync(process.env.OTHER))\""
    )
    _write_package(package, script)
    log_path = package.parent / "build.log"
    result = build(
        package,
        {
            "DATABASE_URL": f"file:{databases / 'app' / 'app.db'}",
            "OTHER": str(databases / "other" / "other.db"),
        },
        timeout=120,
        memory_mb=512,
        log_path=log_path,
        database_folders=[databases / "app"],
    )
    log = log_path.read_text()
    assert "db bytes 116" in log
    assert json.loads(json.dumps(result.detail()))["install"] == "npm ci"
    if result.sandbox == "bwrap":
        assert "other false" in log


def test_reserved_variables_cannot_be_overridden(package: Path) -> None:
    _write_package(package, "true")
    with pytest.raises(InputError, match="PATH is set by the build sandbox"):
        build(package, {"PATH": "/evil"}, timeout=60, memory_mb=512, log_path=package.parent / "b.log")


def test_build_output_links_to_the_machine_are_dropped(package: Path, tmp_path: Path) -> None:
    """A build can leave symlinks in what gets served; the privileged copy must not follow them."""
    from engine.webbuild.build import _publishable

    secret = tmp_path / "vault.key"
    secret.write_text("s3cr3t-vault-key")
    standalone = package / ".next" / "standalone"
    (standalone / "node_modules").mkdir(parents=True)
    (standalone / "server.js").write_text("// server")
    (package / ".next" / "static" / "chunks").mkdir(parents=True)
    (package / ".next" / "static" / "chunks" / "app.js").write_text("console.log(1)")
    (package / ".next" / "static" / "chunks" / "leak.js").symlink_to(secret)
    (package / "public").mkdir()
    (package / "public" / "robots.txt").write_text("User-agent: *")
    (package / "public" / "leak.txt").symlink_to(secret)
    (package / "public" / "same.txt").symlink_to("robots.txt")  # inside the app: kept

    server_dir, command, standalone_flag = _publishable(package)
    assert (server_dir, command, standalone_flag) == (standalone, ["node", "server.js"], True)
    served = [p for p in server_dir.rglob("*") if p.is_file()]
    assert {p.name for p in served} >= {"server.js", "app.js", "robots.txt"}
    assert all(b"s3cr3t" not in p.read_bytes() for p in served)
    assert not (server_dir / "public" / "leak.txt").is_symlink()
    assert (server_dir / "public" / "same.txt").read_text() == "User-agent: *"
