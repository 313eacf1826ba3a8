"""C4 and H4: a tenant's symbolic links never lead the engine's privileged copies and writes out of the
working copy: a linked build-output root is refused, and links that leave the app are dropped before
the transform writes into the copy."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.edge.deployments import static_mounts
from engine.errors import BuildFailed, InputError
from engine.webbuild.build import _publishable
from engine.webbuild.transform import copy_app


@pytest.mark.parametrize("root", ["public", ".next/standalone", ".next"])
def test_a_linked_build_output_root_is_refused(tmp_path: Path, root: str) -> None:
    workspace = tmp_path / "ws"
    (workspace / "secret").mkdir(parents=True)
    (workspace / "vault.key").write_text("key")
    workdir = workspace / "builds" / "b1" / "app"
    (workdir / ".next" / "static").mkdir(parents=True)
    target = workdir / root
    if target.exists():
        os.rename(target, workdir / "moved")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(workspace)
    with pytest.raises(BuildFailed, match="symbolic link"):
        _publishable(workdir)


def test_a_linked_static_folder_is_not_staged(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(InputError, match="symbolic link"):
        static_mounts({"/": tmp_path / "link"})


def test_links_leaving_the_app_are_dropped_before_the_transform_writes(tmp_path: Path) -> None:
    app = tmp_path / "upload" / "app"
    app.mkdir(parents=True)
    (app / "package.json").write_text("{}")
    (app / "prisma.config.ts").symlink_to("../../../vault.key")  # dangles here, hits the key from the copy
    (app / "inside.txt").write_text("x")
    (app / "alias.txt").symlink_to("inside.txt")
    workdir = tmp_path / "ws" / "builds" / "b1" / "app"
    copy_app(app, workdir)
    assert not (workdir / "prisma.config.ts").is_symlink()
    assert (workdir / "alias.txt").is_symlink()  # links inside the app are kept
