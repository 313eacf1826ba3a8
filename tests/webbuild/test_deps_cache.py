"""Dependencies reused between builds: node_modules by lockfile key, the machine's package store.

A tiny package with one small dependency (ms) from the npm registry, built by the real sandbox.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.errors import BuildFailed
from engine.webbuild import build, deps_cache
from engine.webbuild.deps_cache import PackageStore

MS = {
    "2.1.3": "sha512-6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
    "2.1.2": "sha512-sGkPx+VjMtmA6MX27oA4FBFELFCZZ4S4XqeGOXCv68tT+jb3vk/RyaKWP0PTKyWtmLSM0b+adUTEvbs1PEaH2w==",
}
# Prints what ms says, then tries to change the installed dependency in place.
BUILD = (
    "node -e \"console.log('ms says ' + require('ms')('2h')); "
    "require('fs').writeFileSync('node_modules/ms/index.js', 'module.exports = () => 666')\""
)


@pytest.fixture
def root() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="launchdeck-deps-", dir="/var/tmp"))
    folder.chmod(0o711)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _app(folder: Path, ms: str = "2.1.3", scripts: dict[str, str] | None = None) -> Path:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    package = {
        "name": "tiny",
        "version": "1.0.0",
        "private": True,
        "scripts": {"build": BUILD, **(scripts or {})},
        "dependencies": {"ms": ms},
    }
    lock = {
        "name": "tiny",
        "version": "1.0.0",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            "": {"name": "tiny", "version": "1.0.0", "dependencies": {"ms": ms}},
            "node_modules/ms": {
                "version": ms,
                "resolved": f"https://registry.npmjs.org/ms/-/ms-{ms}.tgz",
                "integrity": MS[ms],
                "license": "MIT",
            },
        },
    }
    (folder / "package.json").write_text(json.dumps(package))
    (folder / "package-lock.json").write_text(json.dumps(lock))
    return folder


def _build(root: Path, work: Path, app: str = "tiny", env: dict[str, str] | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
    log = root / "logs" / f"{work.name}.log"
    log.unlink(missing_ok=True)
    result = build(
        work,
        env or {},
        timeout=180,
        memory_mb=512,
        log_path=log,
        npm_cache=root / "npm-cache" / app,
        deps_cache=root / "deps-cache" / app,
        **kwargs,  # type: ignore[arg-type]
    )
    return result, log.read_text()


def _entries(root: Path, app: str = "tiny") -> list[Path]:
    folder = root / "deps-cache" / app
    return sorted(p for p in folder.iterdir() if (p / "key.json").is_file()) if folder.is_dir() else []


@pytest.mark.parametrize("kind", ["bwrap", "user"])
def test_an_install_step_hands_its_node_modules_to_the_build_of_the_same_copy(
    root: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web pipeline's install step (no app variables: it runs beside the database step) and its
    build step (with them). The transform changed package.json, so the install rewrites the lockfile:
    the build finds the entry by the key the install step reports, not by its own."""
    monkeypatch.setenv("LAUNCHDECK_BUILD_SANDBOX", kind)
    work = _app(root / "one")
    package = json.loads((work / "package.json").read_text())
    package["dependencies"]["ms"] = "^2.1.2"
    (work / "package.json").write_text(json.dumps(package))
    installed, log = _build(root, work, script=None)
    assert installed.install_command == "npm install" and "ms says" not in log  # installed, not built
    [entry] = _entries(root)
    assert installed.dependencies == entry.name
    assert not (work / "node_modules" / "ms").exists()  # kept in the cache, not left in the copy

    built, log = _build(root, work, env={"NEXTAUTH_SECRET": "a-secret-value"}, dependencies=entry.name)
    assert built.install_command == f"reused node_modules ({'overlay' if kind == 'bwrap' else 'copy'})"
    assert "$ npm ci" not in log and "$ npm install" not in log and "ms says 7200000" in log
    assert _entries(root) == [entry]

    # A later deployment's install step finds its entry and installs nothing.
    first, _ = _build(root, _app(root / "two"), script=None)
    assert first.dependencies not in ("", entry.name)  # the app's own package.json: another key
    again, log = _build(root, _app(root / "three"), script=None)
    assert again.install_command == "reused node_modules" and "$ npm" not in log
    assert again.dependencies == first.dependencies


@pytest.mark.parametrize("kind", ["bwrap", "user"])
def test_unchanged_lockfile_reuses_node_modules_that_the_build_cannot_change(
    root: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAUNCHDECK_BUILD_SANDBOX", kind)
    first, log = _build(root, _app(root / "one"))
    assert first.install_command == "npm ci" and "ms says 7200000" in log
    [entry] = _entries(root)
    cached = entry / "node_modules" / "ms" / "index.js"
    original = cached.read_text()
    assert "666" not in original  # the first build's write went to its own copy, not the cache

    second, log = _build(root, _app(root / "two"))
    assert second.install_command == f"reused node_modules ({'overlay' if kind == 'bwrap' else 'copy'})"
    assert "npm ci" not in log
    assert "ms says 7200000" in log  # the cached, unchanged dependency ran
    assert cached.read_text() == original
    assert _entries(root) == [entry]
    # `next start` apps run from the working copy: it keeps a plain node_modules after the build
    assert (root / "two" / "node_modules" / "ms" / "package.json").is_file()
    assert not (root / "two" / "node_modules").is_mount()


def _ms_version(work: Path) -> str | None:
    path = work / "node_modules" / "ms" / "package.json"
    return json.loads(path.read_text())["version"] if path.is_file() else None


def test_a_lockfile_change_installs_again_over_the_last_node_modules(root: Path) -> None:
    _build(root, _app(root / "one", "2.1.3"))
    [first] = _entries(root)
    result, log = _build(root, _app(root / "two", "2.1.2"))
    assert result.install_command == "npm install over the last node_modules" and "$ npm install" in log
    assert _ms_version(root / "two") == "2.1.2"
    assert len(_entries(root)) == 2
    assert json.loads((first / "node_modules" / "ms" / "package.json").read_text())["version"] == "2.1.3"
    # both entries restore what their lockfile pins
    again, _ = _build(root, _app(root / "three", "2.1.2"))
    assert again.install_command == "reused node_modules (overlay)" and _ms_version(root / "three") == "2.1.2"
    back, _ = _build(root, _app(root / "four", "2.1.3"))
    assert back.install_command == "reused node_modules (overlay)" and _ms_version(root / "four") == "2.1.3"


def _app_without_dependencies(folder: Path) -> Path:
    _app(folder)
    package = json.loads((folder / "package.json").read_text())
    package["dependencies"] = {}
    package["scripts"]["build"] = "node -e \"require('fs').existsSync('node_modules/ms') && process.exit(9)\""
    lock = json.loads((folder / "package-lock.json").read_text())
    lock["packages"] = {"": {"name": "tiny", "version": "1.0.0"}}
    (folder / "package.json").write_text(json.dumps(package))
    (folder / "package-lock.json").write_text(json.dumps(lock))
    return folder


def test_a_removed_dependency_stays_removed_in_the_layer(root: Path) -> None:
    _build(root, _app(root / "one", "2.1.3"))
    result, _ = _build(root, _app_without_dependencies(root / "two"))
    assert result.install_command == "npm install over the last node_modules"
    assert _ms_version(root / "two") is None
    again, _ = _build(root, _app_without_dependencies(root / "three"))
    assert again.install_command == "reused node_modules (overlay)" and _ms_version(root / "three") is None


def test_another_node_version_installs_again(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _build(root, _app(root / "one"))
    real = deps_cache.node_identity()
    monkeypatch.setattr(deps_cache, "node_identity", lambda: {**real, "version": "v22.0.0", "modules": "127"})
    result, _ = _build(root, _app(root / "two"))
    assert result.install_command == "npm ci"


def test_a_failed_install_writes_nothing_and_reuses_nothing(root: Path) -> None:
    _build(root, _app(root / "one", "2.1.3"))
    [kept] = _entries(root)
    # npm writes node_modules, then the app's own install script fails: the install failed
    broken = _app(root / "two", "2.1.2", scripts={"postinstall": "exit 7"})
    with pytest.raises(BuildFailed, match="npm install"):
        _build(root, broken)
    assert _entries(root) == [kept]
    assert not list((root / "deps-cache" / "tiny").glob(".staging-*"))
    result, _ = _build(root, _app(root / "three", "2.1.2"))
    # not the 2.1.3 entry as it is, nothing from the failure: npm reconciles the last good one
    assert result.install_command == "npm install over the last node_modules"
    assert _ms_version(root / "three") == "2.1.2"
    assert not list((root / "deps-cache" / "tiny").glob(".staging-*"))


def test_reuse_runs_the_apps_own_install_scripts_again(root: Path) -> None:
    scripts = {"postinstall": "node -e \"require('fs').writeFileSync('generated.txt', 'made at install')\""}
    _build(root, _app(root / "one", scripts=scripts))
    result, log = _build(root, _app(root / "two", scripts=scripts))
    assert result.install_command.startswith("reused node_modules")
    assert "npm run postinstall" in log
    assert (root / "two" / "generated.txt").read_text() == "made at install"


def test_a_second_app_installs_from_the_package_store_offline(root: Path) -> None:
    store = root / "package-store"
    _build(root, _app(root / "one"), app="first", package_store=store)
    digest = base64.b64decode(MS["2.1.3"].removeprefix("sha512-")).hex()
    assert (store / "sha512" / digest[:2] / digest[2:4] / digest[4:]).is_file()
    offline = {"npm_config_offline": "true"}  # npm may not reach the registry: only the store can help
    second = _app(root / "two")
    lock = json.loads((second / "package-lock.json").read_text())
    del lock["packages"]["node_modules/ms"]["resolved"]  # as in lockfiles some tools write
    (second / "package-lock.json").write_text(json.dumps(lock))
    result, log = _build(root, second, app="second", env=offline, package_store=store)
    assert result.install_command == "npm ci"
    assert "1 lockfile entries without `resolved`" in log
    with pytest.raises(BuildFailed):  # the same without the store: nothing to install from
        _build(root, _app(root / "three"), app="third", env=offline)


def test_the_store_keeps_only_content_that_matches_its_name(root: Path) -> None:
    content = root / "npm-cache" / "_cacache" / "content-v2" / "sha512"
    good = b"a real tarball"
    good_hex = hashlib.sha512(good).hexdigest()
    wrong_hex = hashlib.sha512(b"what the lockfile pins").hexdigest()
    for hex_digest, data in ((good_hex, good), (wrong_hex, b"planted by a build")):
        path = content / hex_digest[:2] / hex_digest[2:4] / hex_digest[4:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    linked_hex = hashlib.sha512(b"secret").hexdigest()
    (root / "secret").write_bytes(b"secret")
    link = content / linked_hex[:2] / linked_hex[2:4] / linked_hex[4:]
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(root / "secret")

    store = PackageStore(root / "store")
    moved = store.harvest(root / "npm-cache")
    assert moved.files == 1
    kept = sorted(p for p in (root / "store").rglob("*") if p.is_file())
    assert [p.read_bytes() for p in kept] == [good]


def test_a_mount_left_by_a_crashed_build_is_released(root: Path) -> None:
    _build(root, _app(root / "one"))
    [entry] = _entries(root)
    work = _app(root / "two")
    cache = deps_cache.DepsCache(root / "deps-cache" / "tiny")
    attached = cache.attach(entry, work, root)
    assert attached is not None and attached.mode == "overlay" and (work / "node_modules").is_mount()
    deps_cache.release_mounts(work)
    assert not (work / "node_modules").is_mount()
    shutil.rmtree(work)  # what the transform step does next


def test_seeding_never_follows_a_link_the_build_left_in_its_cache(root: Path) -> None:
    store_root = root / "store"
    data = b"tarball"
    hex_digest = hashlib.sha512(data).hexdigest()
    stored = store_root / "sha512" / hex_digest[:2] / hex_digest[2:4] / hex_digest[4:]
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data)
    work = root / "work"
    work.mkdir()
    integrity = "sha512-" + base64.b64encode(bytes.fromhex(hex_digest)).decode()
    lock = {
        "lockfileVersion": 3,
        "packages": {"": {}, "node_modules/x": {"version": "1.0.0", "integrity": integrity}},
    }
    (work / "package-lock.json").write_text(json.dumps(lock))
    outside = root / "outside"
    outside.mkdir()
    npm_cache = root / "npm-cache"
    npm_cache.mkdir()
    (npm_cache / "_cacache").symlink_to(outside)  # planted by the app's previous build
    assert PackageStore(store_root).seed(work, npm_cache).files == 0
    assert list(outside.iterdir()) == []
    (npm_cache / "_cacache").unlink()
    assert PackageStore(store_root).seed(work, npm_cache).files == 1  # the same, without the link


def test_missing_resolved_urls_are_completed_from_the_registry_layout(root: Path) -> None:
    lock = {
        "lockfileVersion": 3,
        "packages": {
            "": {"name": "tiny"},
            "node_modules/@prisma/client": {"version": "7.10.0", "integrity": MS["2.1.3"]},
            "node_modules/alias": {"name": "ms", "version": "2.1.2", "integrity": MS["2.1.2"]},
            "node_modules/local": {"resolved": "lib/local", "link": True},
            "node_modules/from-git": {
                "version": "git+https://example.com/x.git#abc",
                "integrity": MS["2.1.2"],
            },
            "node_modules/kept": {"version": "1.0.0", "resolved": "https://mirror.example/kept-1.0.0.tgz"},
        },
    }
    (root / "package-lock.json").write_text(json.dumps(lock))
    assert deps_cache.fill_resolved(root) == 2
    packages = json.loads((root / "package-lock.json").read_text())["packages"]
    assert packages["node_modules/@prisma/client"]["resolved"] == (
        "https://registry.npmjs.org/@prisma/client/-/client-7.10.0.tgz"
    )
    assert packages["node_modules/alias"]["resolved"] == "https://registry.npmjs.org/ms/-/ms-2.1.2.tgz"
    assert "resolved" not in packages["node_modules/from-git"]
    assert packages["node_modules/kept"]["resolved"] == "https://mirror.example/kept-1.0.0.tgz"
    (root / ".npmrc").write_text("registry=https://npm.example/\n")  # the app's own registry: left alone
    del packages["node_modules/alias"]["resolved"]
    (root / "package-lock.json").write_text(json.dumps({"lockfileVersion": 3, "packages": packages}))
    assert deps_cache.fill_resolved(root) == 0
