from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from engine.mobile.icon import solid_png
from tests.mobile.harness import require_tools


@pytest.fixture(autouse=True)
def _desktop_tools() -> None:
    require_tools("engine/desktop/node", "@tauri-apps/cli")


@pytest.fixture
def icon(tmp_path: Path) -> Path:
    return solid_png(tmp_path / "icon.png", 1024, "#2f9e44")


@pytest.fixture
def bare_repo(tmp_path: Path) -> Path:
    """The CI repository, a real bare git repository the pipeline pushes to."""
    path = tmp_path / "ci-repo.git"
    subprocess.run(["git", "init", "--quiet", "--bare", str(path)], check=True)
    return path
