"""Run app servers in a bubblewrap sandbox: generated code is untrusted, and the engine's workspace next
to it holds the store, the vault key and the other apps. The server sees the system read-only, its own
deployment folder writable, an empty /tmp and home, no workspace, and the network (it must listen on
loopback and reach its database)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

from engine.errors import ConfigError

log = logging.getLogger("launchdeck.edge")

MODES = ("auto", "bwrap", "none")


@lru_cache(maxsize=1)
def bwrap_works() -> bool:
    """bubblewrap is installed and this kernel lets it create namespaces."""
    binary = shutil.which("bwrap")
    if binary is None:
        return False
    try:
        probe = subprocess.run(
            [binary, "--unshare-all", "--share-net", "--ro-bind", "/", "/", "--", "true"],
            capture_output=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def resolve_mode(mode: str) -> str:
    """'auto' -> 'bwrap' where it works, else 'none' (with a warning); 'bwrap' must work."""
    if mode not in MODES:
        raise ConfigError(f"edge sandbox must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "none":
        return "none"
    if bwrap_works():
        return "bwrap"
    if mode == "bwrap":
        raise ConfigError("the edge sandbox needs bubblewrap: apt-get install -y bubblewrap")
    log.warning("bubblewrap is not usable here: app servers run without a sandbox")
    return "none"


def bwrap_prefix(server_dir: Path, hidden: list[Path], writable: list[Path] | None = None) -> list[str]:
    """The bwrap command line that runs a server in ``server_dir`` with ``hidden`` folders emptied and
    ``writable`` folders (an app's own SQLite database folder) bound back in."""
    args = [
        "bwrap", "--die-with-parent", "--unshare-all", "--share-net",
        "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
    ]  # fmt: skip
    for folder in ["/root", "/home", *map(str, hidden)]:
        args += ["--tmpfs", folder]
    for path in writable or []:
        args += ["--bind", str(path), str(path)]
    args += ["--bind", str(server_dir), str(server_dir), "--chdir", str(server_dir), "--"]
    return args
