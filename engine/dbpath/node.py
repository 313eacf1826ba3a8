"""Run Prisma's own engines (schema parser, schema engine, CLI) from the Node tool folder beside this file.

The folder is installed with ``npm ci`` (see ``make setup``); nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, InputError, TerminalError

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "dbpath.mjs"
PRISMA_CLI = NODE_DIR / "node_modules" / "prisma" / "build" / "index.js"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise ConfigError("Node.js is not installed: the database path needs `node` (v20) on PATH")
    if not (NODE_DIR / "node_modules" / "@prisma" / "schema-engine-wasm").is_dir():
        raise ConfigError(f"Prisma tooling is not installed: run `npm ci` in {NODE_DIR}")
    return node


def call(request: dict[str, Any], *, timeout: float = 120.0) -> dict[str, Any]:
    """Send one request to ``dbpath.mjs``; a schema error becomes ``InputError`` with Prisma's message."""
    try:
        done = subprocess.run(
            [_node(), str(SCRIPT)],
            input=json.dumps(request).encode(),
            capture_output=True,
            timeout=timeout,
            cwd=NODE_DIR,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TerminalError(
            f"Prisma's engine did not answer {request.get('op')!r} within {timeout:.0f} s"
        ) from None
    try:
        answer: dict[str, Any] = json.loads(done.stdout or b"{}")
    except json.JSONDecodeError:
        raise TerminalError(
            f"Prisma's engine crashed: {done.stderr.decode(errors='replace')[-2000:]}"
        ) from None
    if not answer.get("ok"):
        message = str(answer.get("error") or done.stderr.decode(errors="replace")[-2000:])
        raise InputError(f"Prisma rejected the schema: {_readable(message)}")
    return answer


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _readable(message: str) -> str:
    """Prisma's parser answers a JSON document with a rendered report inside; keep the report."""
    message = ANSI.sub("", message)
    try:
        parsed = json.loads(message)
    except json.JSONDecodeError:
        return message
    if isinstance(parsed, dict) and "message" in parsed:
        return str(parsed["message"])
    return message


def prisma_cli(args: list[str], *, cwd: Path, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run the real Prisma CLI offline.

    Prisma 7 fetches its native schema engine at start unless ``PRISMA_SCHEMA_ENGINE_BINARY`` names an
    existing file; ``validate`` and ``format`` never run it, so any file will do.
    """
    env = dict(os.environ)
    env.setdefault("PRISMA_SCHEMA_ENGINE_BINARY", _node())
    env["PRISMA_HIDE_UPDATE_MESSAGE"] = "1"
    env["CHECKPOINT_DISABLE"] = "1"
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [_node(), str(PRISMA_CLI), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
