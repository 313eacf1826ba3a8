"""Prisma's own validation of a transformed schema, with the Prisma 7 CLI in engine/webbuild/node."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

from engine.errors import ConfigError, InputError

NODE_TOOLS = Path(__file__).resolve().parent / "node"
PRISMA_CLI = NODE_TOOLS / "node_modules" / "prisma" / "build" / "index.js"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def validate_schema(schema_path: Path) -> None:
    """Raises InputError with Prisma's message when the schema is not valid for Prisma 7."""
    if not PRISMA_CLI.is_file():
        raise ConfigError(f"Prisma CLI missing: run `npm ci` in {NODE_TOOLS}")
    # A neutral folder, so the app's prisma.config.ts (not installed yet) is not loaded.
    with tempfile.TemporaryDirectory(prefix="launchdeck-validate-") as neutral:
        completed = subprocess.run(
            ["node", str(PRISMA_CLI), "validate", "--schema", str(schema_path)],
            cwd=neutral,
            env={
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "HOME": neutral,
                "CHECKPOINT_DISABLE": "1",
                "PRISMA_HIDE_UPDATE_MESSAGE": "1",
                "PRISMA_SCHEMA_ENGINE_BINARY": "/usr/bin/true",
                "NO_COLOR": "1",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
    if completed.returncode != 0:
        output = _ANSI.sub("", completed.stderr + completed.stdout)
        errors = [line.strip() for line in output.splitlines() if line.strip().lower().startswith("error")]
        raise InputError(
            f"the transformed Prisma schema {schema_path.name} is not valid: "
            + (" ".join(errors[-3:]) or output.strip()[-500:])
        )
