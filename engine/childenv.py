"""The environment of the tools the engine runs (git, node CLIs, Prisma, the console): an allow-list of
the engine's own variables, never all of them (the engine's environment holds every provider's
secrets; review L5). Callers add what the tool needs explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping

ALLOWED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "TERM", "NODE_EXTRA_CA_CERTS")
ALLOWED_PREFIXES = ("LAUNCHDECK_ENGINE_URL",)


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ALLOWED or k.startswith(ALLOWED_PREFIXES)}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    return {**env, **(extra or {})}
