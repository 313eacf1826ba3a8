"""The one bubblewrap builder: what every untrusted process (a build command, an app server) gets.

``namespaces(preset)`` is the head of the ``bwrap`` command line: every namespace unshared (mount, pid,
ipc, uts, user and network), no nested user namespaces, a new session, no capabilities, dies with its
parent, and only ``/usr`` (the ``/lib*`` links) and the preset's few ``/etc`` files read-only. The
callers add their own binds (a build's working copy, a server's output) after it.

As root, ``drop_to`` is the prefix that bind-mounts the host folders a sandbox needs onto mount points
in a private mount namespace (bwrap, run as an unprivileged uid, cannot open paths under a workspace
closed to other users), then becomes the app's uid with no capabilities and no_new_privs.

Tools are run by absolute path with ``PATH=/usr/bin:/bin``: never found through a tenant's variables.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

BWRAP = "/usr/bin/bwrap"
SETPRIV = "/usr/bin/setpriv"
UNSHARE = "/usr/bin/unshare"
PRLIMIT = "/usr/bin/prlimit"
NODE = "/usr/bin/node"
SYSTEM_PATH = "/usr/bin:/bin"


@dataclass(frozen=True)
class Preset:
    """What differs between kinds of sandbox: the host name inside and the read-only /etc files."""

    hostname: str
    etc_files: tuple[str, ...]


# A Node build: DNS, TLS roots, users (npm asks who it is), npm's alternatives, time zone.
BUILD = Preset(
    "build",
    (
        "hosts",
        "nsswitch.conf",
        "ssl/certs",
        "ca-certificates",
        "passwd",
        "group",
        "alternatives",
        "localtime",
    ),
)
# A Node server: TLS roots, name lookup, time zone. No passwd, no resolv.conf (there is no network to
# resolve on), never /etc/ssl/private. Its /etc/hosts is its own (engine.edge.origin), not the host's.
APP_SERVER = Preset(
    "app", ("ssl/certs", "ca-certificates", "ca-certificates.conf", "nsswitch.conf", "localtime")
)

_MOUNT_SCRIPT = (
    'n=$1; shift; while [ "$n" -gt 0 ]; do /usr/bin/mount --rbind "$1" "$2" || exit 96; shift 2; '
    'n=$((n-1)); done; exec "$@"'
)


def privileged() -> bool:
    return os.geteuid() == 0


def root_layout(preset: Preset) -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib64", "lib32", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    for name in preset.etc_files:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def namespaces(preset: Preset) -> list[str]:
    """``bwrap`` and the isolation every sandbox has; the caller appends its binds and its command."""
    return [
        BWRAP, "--unshare-all", "--unshare-user", "--disable-userns", "--new-session", "--die-with-parent",
        "--cap-drop", "ALL", "--hostname", preset.hostname, *root_layout(preset), "--proc", "/proc", "--dev", "/dev",
    ]  # fmt: skip


def drop_to(uid: int, mounts: list[tuple[Path, Path]], gid: int | None = None) -> list[str]:
    """The prefix that, as root, bind-mounts each host ``source`` onto its ``mount point`` in a private
    mount namespace (so the unprivileged bwrap can open them wherever they are), then becomes ``uid``
    (group ``gid``, default ``uid``) with no capabilities, no supplementary groups and no_new_privs."""
    argv = [UNSHARE, "--mount", "--propagation", "private", "--", "/bin/sh", "-c", _MOUNT_SCRIPT]
    argv += ["launchdeck-mounts", str(len(mounts))]
    for source, point in mounts:
        argv += [str(source), str(point)]
    argv += [
        SETPRIV, f"--reuid={uid}", f"--regid={uid if gid is None else gid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]  # fmt: skip
    return argv


def memfd(name: str, data: bytes) -> int:
    """A file for ``bwrap --ro-bind-data``: contents that never touch the disk or a command line."""
    fd = os.memfd_create(name, 0)
    os.write(fd, data)
    os.lseek(fd, 0, os.SEEK_SET)
    os.set_inheritable(fd, True)
    return fd


@cache
def bwrap_works() -> bool:
    """bubblewrap is installed and this kernel lets an unprivileged user create its namespaces."""
    if not os.access(BWRAP, os.X_OK):
        return False
    if privileged() and not (os.access(SETPRIV, os.X_OK) and os.access(UNSHARE, os.X_OK)):
        return False
    probe = [
        BWRAP,
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        *root_layout(APP_SERVER),
        "--",
        "/usr/bin/true",
    ]
    if privileged():
        probe = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups", "--", *probe]
    try:
        result = subprocess.run(probe, capture_output=True, timeout=20, env={"PATH": SYSTEM_PATH}, cwd="/")
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0
