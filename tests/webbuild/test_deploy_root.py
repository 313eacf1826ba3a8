"""`launchdeck deploy --root PATH`: an app in a subfolder of its repository; refused before any engine is
contacted when the folder is wrong."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from engine.cli import app as cli
from tests.webbuild.apps import make_app

runner = CliRunner()


def test_repository_root_without_package_json_hints_at_root(tmp_path: Path) -> None:
    make_app(tmp_path / "repo" / "apps" / "web")
    result = runner.invoke(cli, ["deploy", str(tmp_path / "repo")])
    assert result.exit_code != 0 and "add --root PATH" in result.output


def test_root_cannot_lead_outside_the_repository(tmp_path: Path) -> None:
    make_app(tmp_path / "elsewhere")
    (tmp_path / "repo").mkdir()
    result = runner.invoke(cli, ["deploy", str(tmp_path / "repo"), "--root", "../elsewhere"])
    assert result.exit_code != 0 and "leads outside" in result.output
