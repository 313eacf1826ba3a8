"""The Tauri 2 project generated with the real Tauri CLI, validated against the shared schema."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from nacl.signing import VerifyKey

from engine.desktop.targets import parse_targets
from engine.desktop.tauri import TOOLS, DesktopSpec, generate, generate_updater_keys, validate_config
from engine.errors import InputError
from engine.mobile.icon import png_size
from tests.mobile.harness import SPECS

ENDPOINT = "https://github.com/acme/demo-desktop/releases/latest/download/latest.json"


def spec_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads((SPECS / "tauri/config.schema.json").read_text()))


def test_project_for_three_platforms(tmp_path: Path, icon: Path) -> None:
    keys = generate_updater_keys()
    spec = DesktopSpec(
        "com.acme.demo",
        "Acme Demo",
        parse_targets("linux,windows,macos"),
        ENDPOINT,
        version="1.4.2",
        server_url="https://demo.acme.dev",
        icon=icon,
    )
    project = generate(spec, tmp_path / "desktop", keys.public_key)

    config = json.loads((project / "src-tauri/tauri.conf.json").read_text())
    spec_validator().validate(config)
    assert config["identifier"] == "com.acme.demo" and config["version"] == "1.4.2"
    assert config["build"]["frontendDist"] == "https://demo.acme.dev"
    assert config["bundle"]["targets"] == ["msi", "nsis", "app", "dmg", "appimage", "deb"]
    assert config["bundle"]["createUpdaterArtifacts"] is True
    assert config["plugins"]["updater"] == {"pubkey": keys.public_key, "endpoints": [ENDPOINT]}

    cargo = tomllib.loads((project / "src-tauri/Cargo.toml").read_text())
    assert cargo["dependencies"]["tauri-plugin-updater"] == "2"
    assert "tauri_plugin_updater::Builder::new().build()" in (project / "src-tauri/src/lib.rs").read_text()
    capability = json.loads((project / "src-tauri/capabilities/default.json").read_text())
    assert "updater:default" in capability["permissions"]
    # `tauri icon` rendered our icon in every size.
    assert png_size(project / "src-tauri/icons/128x128.png") == (128, 128)
    assert (project / "src-tauri/icons/icon.icns").stat().st_size > 0

    workflow = yaml.safe_load((project / ".github/workflows/desktop.yml").read_text())
    assert "workflow_dispatch" in workflow["on"]
    matrix = workflow["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert [(m["platform"], m["bundles"]) for m in matrix] == [
        ("windows", "msi,nsis"),
        ("macos", "app,dmg"),
        ("linux", "appimage,deb"),
    ]


def test_static_export_and_one_target(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "index.html").write_text("<h1>offline</h1>")
    spec = DesktopSpec("com.acme.offline", "Offline", ("linux",), ENDPOINT, web_dir=export)
    project = generate(spec, tmp_path / "desktop", generate_updater_keys().public_key)
    config = json.loads((project / "src-tauri/tauri.conf.json").read_text())
    spec_validator().validate(config)
    assert config["build"]["frontendDist"] == "../dist"
    assert (project / "dist/index.html").read_text() == "<h1>offline</h1>"
    assert config["bundle"]["targets"] == ["appimage", "deb"]


def test_example_app_gives_a_valid_project(tmp_path: Path) -> None:
    from pipelines.desktop import desktop_spec
    from tests.mobile.harness import REPO

    example = REPO / "data" / "examples" / "taskboard"
    if not (example / "package.json").is_file():
        pytest.skip("the example apps are not in this checkout")
    spec = desktop_spec(
        {
            "app": "taskboard-prod",
            "identifier": "com.acme.taskboard",
            "targets": "windows,linux",
            "repo": "acme/taskboard",
            "app_dir": str(example),
            "server_url": "https://tasks.acme.dev",
        }
    )
    project = generate(spec, tmp_path / "desktop", generate_updater_keys().public_key)
    config = json.loads((project / "src-tauri/tauri.conf.json").read_text())
    spec_validator().validate(config)
    assert config["productName"] == "taskboard"
    assert config["bundle"]["targets"] == ["msi", "nsis", "appimage", "deb"]


def test_invalid_configuration_is_refused_with_its_path() -> None:
    bad = {"identifier": "com.acme.demo", "bundle": {"targets": ["exe"]}}
    with pytest.raises(InputError, match=r"tauri\.conf\.json is invalid: bundle/targets"):
        validate_config(bad)
    with pytest.raises(jsonschema.ValidationError):
        spec_validator().validate(bad)


def test_bad_input_names_every_problem(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        parse_targets("windows,android")
    assert "android" in str(caught.value)
    spec = DesktopSpec("demo", "", ("linux",), "http://insecure/latest.json", version="1.0")
    with pytest.raises(InputError) as caught:
        generate(spec, tmp_path / "desktop", "key")
    for problem in (
        "identifier 'demo'",
        "app name is empty",
        "MAJOR.MINOR.PATCH",
        "must be an https URL",
        "neither was given",
    ):
        assert problem in str(caught.value)
    assert not (tmp_path / "desktop").exists()


def test_updater_key_pair_signs_what_its_public_key_verifies(tmp_path: Path) -> None:
    """The pair really works: the Tauri CLI signs with the private key and password, and the
    signature verifies (minisign, Ed25519 over BLAKE2b-512) against the public key in the config."""
    keys = generate_updater_keys()
    payload = tmp_path / "Acme_1.4.2_x64.msi"
    payload.write_bytes(b"installer bytes " * 1000)
    subprocess.run(
        [
            "node",
            str(TOOLS / "node_modules/@tauri-apps/cli/tauri.js"),
            "signer",
            "sign",
            "--private-key",
            keys.private_key,
            "--password",
            keys.password,
            str(payload),
        ],
        check=True,
        capture_output=True,
    )
    signature_lines = base64.b64decode(Path(f"{payload}.sig").read_text()).decode().splitlines()
    public_lines = base64.b64decode(keys.public_key).decode().splitlines()
    signature, public = base64.b64decode(signature_lines[1]), base64.b64decode(public_lines[1])
    assert signature[:2] == b"ED" and signature[2:10] == public[2:10]  # same key id
    digest = hashlib.blake2b(payload.read_bytes(), digest_size=64).digest()
    VerifyKey(public[10:]).verify(digest, signature[10:])
    with pytest.raises(Exception, match="Signature was forged or corrupt"):
        VerifyKey(public[10:]).verify(hashlib.blake2b(b"tampered", digest_size=64).digest(), signature[10:])
