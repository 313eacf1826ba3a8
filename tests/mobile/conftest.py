from __future__ import annotations

from pathlib import Path

import pytest

from engine.mobile.icon import solid_png
from tests.mobile.harness import require_tools


@pytest.fixture(autouse=True)
def _mobile_tools() -> None:
    require_tools("engine/mobile/node", "@capacitor/cli")
    require_tools("engine/mobile/node", "@capacitor/assets")


@pytest.fixture
def web_export(tmp_path: Path) -> Path:
    """A tiny static export, as an app without a server part ships."""
    root = tmp_path / "export"
    root.mkdir()
    (root / "index.html").write_text("<!doctype html><title>Demo</title><h1>Offline demo</h1>\n")
    (root / "app.js").write_text("document.body.dataset.ready = '1';\n")
    return root


@pytest.fixture
def icon(tmp_path: Path) -> Path:
    return solid_png(tmp_path / "icon.png", 1024, "#e8590c")
