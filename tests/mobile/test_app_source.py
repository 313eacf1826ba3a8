"""Shells made from a generated app's own folder: the example apps, and a static-export app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.mobile.app_source import shell_source
from engine.mobile.capacitor import generate
from engine.mobile.icon import png_size, solid_png
from pipelines.mobile import shell_spec
from tests.mobile.harness import REPO

EXAMPLES = REPO / "data" / "examples"


def test_example_app_with_a_server_part_gets_a_live_url_shell(tmp_path: Path) -> None:
    if not (EXAMPLES / "shop" / "package.json").is_file():
        pytest.skip("the example apps are not in this checkout")
    params = {
        "app": "shop-prod",
        "bundle_id": "com.acme.shop",
        "app_dir": str(EXAMPLES / "shop"),
        "server_url": "https://shop.acme.dev",
    }
    project = generate(shell_spec(params), tmp_path / "shell", ["android", "ios"])
    config = json.loads((project / "capacitor.config.json").read_text())
    assert config["appName"] == "shop"  # from the app's package.json
    assert config["server"]["url"] == "https://shop.acme.dev"
    assert (project / "android/app/src/main/res/mipmap-xxxhdpi/ic_launcher.png").is_file()


def _static_app(root: Path, *, built: bool) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "package.json").write_text('{"name": "brochure"}')
    (root / "next.config.ts").write_text(
        "const config = { output: 'export', images: { unoptimized: true } };\nexport default config;\n"
    )
    solid_png(root / "app" / "icon.png", 1024, "#1971c2")
    if built:
        (root / "out").mkdir()
        (root / "out" / "index.html").write_text("<h1>Brochure</h1>")
    return root


def test_static_export_app_is_bundled_with_its_own_icon(tmp_path: Path) -> None:
    app_dir = _static_app(tmp_path / "brochure", built=True)
    params = shell_source({"app": "brochure", "bundle_id": "com.acme.brochure", "app_dir": str(app_dir)})
    assert params["web_dir"] == str(app_dir / "out") and params["icon"] == str(app_dir / "app" / "icon.png")
    project = generate(shell_spec(params), tmp_path / "shell", ["android"])
    assert "server" not in json.loads((project / "capacitor.config.json").read_text())
    assert (project / "android/app/src/main/assets/public/index.html").read_text() == "<h1>Brochure</h1>"
    assert png_size(project / "android/app/src/main/res/mipmap-xxxhdpi/ic_launcher.png") == (192, 192)


def test_unbuilt_static_export_says_to_build_first(tmp_path: Path) -> None:
    app_dir = _static_app(tmp_path / "brochure", built=False)
    with pytest.raises(InputError, match="build the app first"):
        shell_source({"app": "brochure", "app_dir": str(app_dir)})
    with pytest.raises(InputError, match=r"has no package\.json"):
        shell_source({"app": "x", "app_dir": str(tmp_path)})
