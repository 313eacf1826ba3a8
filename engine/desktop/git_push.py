"""Put a generated desktop project on the CI repository's branch with git, so its workflow can run.

A personal or app token for an https remote is passed as an ``http.extraHeader`` through git's
``GIT_CONFIG_*`` environment, never on the command line or in the remote URL.
"""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

from engine.childenv import child_env
from engine.errors import ProviderUnavailable, TerminalError
from engine.redact import redact, register

AUTHOR = {
    "GIT_AUTHOR_NAME": "Launchdeck",
    "GIT_AUTHOR_EMAIL": "launchdeck@localhost",
    "GIT_COMMITTER_NAME": "Launchdeck",
    "GIT_COMMITTER_EMAIL": "launchdeck@localhost",
}


def _git(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        message = redact(f"git {args[0]} failed: {(done.stderr or done.stdout).strip()[-800:]}")
        if args[0] == "push" and ("Could not resolve" in done.stderr or "timed out" in done.stderr):
            raise ProviderUnavailable("git", message)
        raise TerminalError(message)
    return done.stdout.strip()


def push_project(project: Path, remote: str, branch: str, *, token: str | None = None, message: str) -> str:
    """Commit everything in ``project`` (its own .gitignore applies) and force-push it to ``branch``.

    Returns the pushed commit's sha. The project directory is a generated one that Launchdeck owns.
    """
    env = child_env({**AUTHOR, "GIT_TERMINAL_PROMPT": "0"})
    if token:
        register(token)
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        register(basic)
        env.update(
            GIT_CONFIG_COUNT="1",
            GIT_CONFIG_KEY_0="http.extraHeader",
            GIT_CONFIG_VALUE_0=f"Authorization: Basic {basic}",
        )
    if not (project / ".git").is_dir():
        _git(["init", "--quiet", "--initial-branch", branch], project, env)
    _git(["checkout", "--quiet", "-B", branch], project, env)
    _git(["add", "--all"], project, env)
    _git(["commit", "--quiet", "--allow-empty", "-m", message], project, env)
    sha = _git(["rev-parse", "HEAD"], project, env)
    _git(["push", "--quiet", "--force", remote, f"HEAD:refs/heads/{branch}"], project, env)
    return sha
