"""The Capacitor shell generated with the real Capacitor CLI and @capacitor/assets, offline."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from engine.errors import InputError
from engine.mobile.capacitor import ShellSpec, generate
from engine.mobile.eas_json import SCHEMA, eas_config
from engine.mobile.icon import png_size
from tests.mobile.harness import SPECS


def test_live_url_shell_for_both_platforms(tmp_path: Path, icon: Path) -> None:
    spec = ShellSpec(
        "com.acme.demo", "Acme Demo", version="2.1.0", server_url="https://demo.acme.dev", icon=icon
    )
    project = generate(spec, tmp_path / "shell", ["android", "ios"])

    config = json.loads((project / "capacitor.config.json").read_text())
    assert config == {
        "appId": "com.acme.demo",
        "appName": "Acme Demo",
        "webDir": "www",
        "server": {"url": "https://demo.acme.dev", "androidScheme": "https", "cleartext": False},
    }
    # The CLI itself copied the config into both native projects: it really ran.
    for copied in ("android/app/src/main/assets/capacitor.config.json", "ios/App/App/capacitor.config.json"):
        assert json.loads((project / copied).read_text())["server"]["url"] == "https://demo.acme.dev"
    assert 'applicationId "com.acme.demo"' in (project / "android/app/build.gradle").read_text()

    # Icons and splash screens from our icon, in the sizes each platform wants.
    assert png_size(project / "android/app/src/main/res/mipmap-xxxhdpi/ic_launcher.png") == (192, 192)
    assert png_size(project / "ios/App/App/Assets.xcassets/AppIcon.appiconset/AppIcon-512@2x.png") == (
        1024,
        1024,
    )
    assert png_size(project / "ios/App/App/Assets.xcassets/Splash.imageset/splash-2732x2732.png") == (
        2732,
        2732,
    )

    manifest = json.loads((project / "package.json").read_text())
    versions = {**manifest["dependencies"], **manifest["devDependencies"]}
    assert set(versions) == {"@capacitor/core", "@capacitor/android", "@capacitor/ios", "@capacitor/cli"}
    assert len({v.split(".")[0] for v in versions.values()}) == 1, versions
    assert not (project / "node_modules").exists()

    eas = json.loads((project / "eas.json").read_text())
    jsonschema.Draft7Validator(json.loads((SPECS / "expo/eas.schema.json").read_text())).validate(eas)
    assert eas["build"]["production"]["android"]["buildType"] == "app-bundle"
    assert eas["build"]["production"]["ios"]["scheme"] == "App"


def test_static_export_is_bundled(tmp_path: Path, web_export: Path) -> None:
    spec = ShellSpec("com.acme.offline", "Offline", web_dir=web_export)
    project = generate(spec, tmp_path / "shell", ["android"])
    config = json.loads((project / "capacitor.config.json").read_text())
    assert "server" not in config
    public = project / "android/app/src/main/assets/public"
    assert (public / "index.html").read_text() == (web_export / "index.html").read_text()
    assert (public / "app.js").is_file()
    assert not (project / "ios").exists()


def test_bad_input_names_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    empty = tmp_path / "empty-export"
    empty.mkdir()
    not_png = tmp_path / "icon.jpg"
    not_png.write_bytes(b"\xff\xd8\xff\xe0 jpeg")
    spec = ShellSpec("demo app", "Demo", web_dir=empty, icon=not_png)
    with pytest.raises(InputError) as caught:
        generate(spec, tmp_path / "shell", ["android"])
    message = str(caught.value)
    assert "bundle id 'demo app'" in message
    assert "has no index.html" in message
    assert "is not a PNG" in message
    assert not (tmp_path / "shell").exists()


def test_unknown_platform_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="platform must be one of android, ios"):
        generate(ShellSpec("com.acme.demo", "Demo", server_url="https://x.dev"), tmp_path / "s", ["windows"])


def test_eas_schema_copy_matches_the_spec_and_rejects_bad_profiles() -> None:
    assert json.loads(SCHEMA.read_text()) == json.loads((SPECS / "expo/eas.schema.json").read_text())
    from engine.mobile.eas_json import validate_eas_config

    config = eas_config(["android"])
    config["build"]["production"]["android"]["buildType"] = "ipa"
    with pytest.raises(InputError, match="build/production/android/buildType"):
        validate_eas_config(config)
