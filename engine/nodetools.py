"""The one way the engine runs Node tools on its own machine (never an app's code: that runs in a sandbox).

The tool folders (``engine/dbpath/node``, ``engine/mobile/node``, ``engine/desktop/node``) hold a
package.json and a committed package-lock.json; ``make setup`` runs ``npm ci`` in each. Nothing is
downloaded at run time.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from engine.childenv import child_env
from engine.errors import ConfigError, TerminalError
from engine.redact import redact


def node_binary() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("node is not on PATH: install Node.js 20 (`make setup` does)")
    return node


def tool_script(folder: Path, package: str, script: str) -> Path:
    """The JavaScript entry point of ``package`` in ``folder``; a clear error when not installed."""
    path = folder / "node_modules" / package / script
    if not path.is_file():
        raise ConfigError(f"{package} is not installed: run `npm ci` in {folder} (`make setup` does)")
    return path


def installed_version(folder: Path, package: str) -> str:
    import json

    manifest = folder / "node_modules" / package / "package.json"
    if not manifest.is_file():
        raise ConfigError(f"{package} is not installed: run `npm ci` in {folder} (`make setup` does)")
    return str(json.loads(manifest.read_text())["version"])


def run_node(
    script: Path,
    args: Sequence[str],
    *,
    cwd: Path,
    what: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> str:
    """Run ``node script args`` in ``cwd``; return stdout, or raise TerminalError with its own words."""
    node = node_binary()
    full_env = child_env({"CI": "1", "NO_COLOR": "1", "CAPACITOR_TELEMETRY": "false", **(env or {})})
    try:
        done = subprocess.run(
            [node, str(script), *args],
            cwd=cwd,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise TerminalError(f"{what} did not finish within {timeout:g} s") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise TerminalError(redact(f"{what} failed (exit {done.returncode}):\n{tail}"))
    return done.stdout
