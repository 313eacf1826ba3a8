"""L5: tools the engine starts (git, Node CLIs, Prisma, the console) never get its provider secrets."""

from __future__ import annotations

import pytest

from engine.childenv import child_env
from engine.cli import console_env


def test_children_get_an_allow_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "cf-secret")
    monkeypatch.setenv("CREDENTIALS_ENCRYPTION_KEY", "ab" * 32)
    monkeypatch.setenv("LAUNCHDECK_TOKEN", "ld_platform")
    monkeypatch.setenv("LD_PRELOAD", "/tmp/x.so")
    tool = child_env({"GIT_TERMINAL_PROMPT": "0"})
    console = console_env("http://127.0.0.1:8470")
    for env in (tool, console):
        assert "CLOUDFLARE_API_TOKEN" not in env and "CREDENTIALS_ENCRYPTION_KEY" not in env
        assert "LD_PRELOAD" not in env and "PATH" in env
    assert tool["GIT_TERMINAL_PROMPT"] == "0"
    assert console["LAUNCHDECK_TOKEN"] == "ld_platform"
    assert console["LAUNCHDECK_ENGINE_URL"] == "http://127.0.0.1:8470"
