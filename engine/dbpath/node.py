"""Run Prisma's own engines (schema parser, schema engine, CLI) from the Node tool folder beside this file.

The folder is installed with ``npm ci`` (see ``make setup``); nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
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
    answers = call_lines(request, timeout=timeout)
    answer = answers[0]
    for more in answers[1:]:
        answer.update(more)
    return answer


def call_lines(
    request: dict[str, Any],
    *,
    timeout: float = 120.0,
    on_line: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Like ``call``, for a request answered in several JSON lines; ``on_line`` sees each as it arrives."""
    with subprocess.Popen(
        # V8's baseline WebAssembly compiler only: Prisma's engines start 0.1 s sooner in 40 MB less.
        [_node(), "--liftoff-only", str(SCRIPT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=NODE_DIR,
    ) as process:
        stdin, stdout, stderr_pipe = process.stdin, process.stdout, process.stderr
        assert stdin is not None and stdout is not None and stderr_pipe is not None
        stderr: list[bytes] = []
        reader = threading.Thread(target=lambda: stderr.append(stderr_pipe.read()), daemon=True)
        reader.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        lines: list[bytes] = []
        answers: list[dict[str, Any]] = []
        try:
            stdin.write(json.dumps(request).encode())
            stdin.close()
            for line in stdout:
                lines.append(line)
                answer = json.loads(line) if line.strip() else {}
                if not isinstance(answer, dict) or not answer.get("ok"):
                    break
                answers.append(answer)
                if on_line is not None:
                    on_line(answer)
            process.wait()
        except json.JSONDecodeError:
            process.wait()
        finally:
            timer.cancel()
        reader.join(timeout=5)
    if timer.finished.is_set() and process.returncode not in (0, 1):
        raise TerminalError(f"Prisma's engine did not answer {request.get('op')!r} within {timeout:.0f} s")
    errors = stderr[0].decode(errors="replace")[-2000:] if stderr else ""
    last = lines[-1] if lines else b"{}"
    try:
        final = json.loads(last) if last.strip() else {}
    except json.JSONDecodeError:
        raise TerminalError(f"Prisma's engine crashed: {errors}") from None
    if not answers or not isinstance(final, dict) or not final.get("ok"):
        message = final.get("error") if isinstance(final, dict) else None
        raise InputError(f"Prisma rejected the schema: {_readable(str(message or errors))}")
    return answers


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
