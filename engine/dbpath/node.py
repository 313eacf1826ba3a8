"""Run Prisma's own engines (schema parser, schema engine, CLI) from the Node tool folder beside this file.

The folder is installed with ``npm ci`` (see ``make setup``); nothing is downloaded at run time.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.childenv import child_env
from engine.errors import ConfigError, InputError, TerminalError
from engine.nodetools import node_binary

NODE_DIR = Path(__file__).resolve().parent / "node"
SCRIPT = NODE_DIR / "dbpath.mjs"
PRISMA_CLI = NODE_DIR / "node_modules" / "prisma" / "build" / "index.js"


def _node() -> str:
    node = node_binary()
    if not (NODE_DIR / "node_modules" / "@prisma" / "schema-engine-wasm").is_dir():
        raise ConfigError(f"Prisma tooling is not installed: run `npm ci` in {NODE_DIR}")
    return node


def ddl_request(
    schema: str, dialect: str, *, url: str | None = None, with_dmmf: bool = False
) -> dict[str, Any]:
    """The request for ``dbpath.mjs``'s DDL (``schema`` already transformed for ``dialect``)."""
    request: dict[str, Any] = {"op": "ddl", "schema": schema, "dialect": dialect}
    if url is not None:
        request["url"] = url
    if with_dmmf:
        request["withDmmf"] = True
    return request


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
    """Like ``call``, for a request answered in several JSON lines; ``on_line`` sees each as it arrives.

    A run ``start_early`` began on the same request is taken over instead of starting another.
    """
    running = _early.pop(_key(request), None) or _Running(request)
    return running.answers(timeout=timeout, on_line=on_line)


def start_early(request: dict[str, Any]) -> None:
    """Start Node on ``request`` now, for a later ``call_lines`` with the same request to answer.

    The command line does this before it imports the importer (0.2 s of Python imports Node then works
    through). It starts no thread, so the importer can still fork its worker processes.
    """
    key = _key(request)
    if key not in _early:
        _early[key] = _Running(request)


def stop_early() -> None:
    """Stop what ``start_early`` began and nothing took over (the import failed before it asked)."""
    while _early:
        _early.popitem()[1].stop()


def _key(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True)


class _Running:
    """One run of ``dbpath.mjs``: started with its request on stdin, answered by ``answers``."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.op = request.get("op")
        self.process = subprocess.Popen(
            # V8's baseline WebAssembly compiler only: Prisma's engines start 0.1 s sooner in 40 MB less.
            [_node(), "--liftoff-only", str(SCRIPT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=NODE_DIR,
        )
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode())
        finally:
            stdin.close()  # before anything forks: a child holding it open would keep Node waiting

    def stop(self) -> None:
        with self.process:
            self.process.kill()

    def answers(
        self,
        *,
        timeout: float,
        on_line: Callable[[dict[str, Any]], None] | None,
    ) -> list[dict[str, Any]]:
        with self.process as process:
            stdout, stderr_pipe = process.stdout, process.stderr
            assert stdout is not None and stderr_pipe is not None
            stderr: list[bytes] = []
            reader = threading.Thread(target=lambda: stderr.append(stderr_pipe.read()), daemon=True)
            reader.start()
            timer = threading.Timer(timeout, process.kill)
            timer.start()
            lines: list[bytes] = []
            answers: list[dict[str, Any]] = []
            try:
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
            raise TerminalError(f"Prisma's engine did not answer {self.op!r} within {timeout:.0f} s")
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


_early: dict[str, _Running] = {}


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
    env = child_env()
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


def validate_schema(schema_path: Path) -> None:
    """Raise InputError with Prisma's own message when the schema is not valid for Prisma 7."""
    # A neutral folder, so an app's prisma.config.ts (whose imports are not installed) is not loaded.
    with tempfile.TemporaryDirectory(prefix="launchdeck-validate-") as neutral:
        done = prisma_cli(["validate", "--schema", str(schema_path)], cwd=Path(neutral), timeout=60)
    if done.returncode != 0:
        output = ANSI.sub("", done.stderr + done.stdout)
        errors = [line.strip() for line in output.splitlines() if line.strip().lower().startswith("error")]
        raise InputError(
            f"the Prisma schema {schema_path.name} is not valid: "
            + (" ".join(errors[-3:]) or output.strip()[-500:])
        )
