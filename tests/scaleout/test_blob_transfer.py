"""A worker sends and fetches a tree of many files through a real engine's API, within its request limits."""

from __future__ import annotations

from pathlib import Path

from engine.temporal.blobs import BlobStore
from engine.temporal.worker import DIGESTS_PER_REQUEST, EngineApi
from tests.scaleout.conftest import Engine


def test_a_tree_of_more_files_than_one_request_names_goes_both_ways(engine: Engine, tmp_path: Path) -> None:
    # A standalone Next server can hold tens of thousands of files; their digests alone are over the
    # engine's 1 MB request body limit (legeno.gg's build failed with 413 on them).
    count = DIGESTS_PER_REQUEST * 3 + 7
    source = tmp_path / "out"
    for index in range(count):
        path = source / f"chunk-{index // 1000}" / f"{index}.js"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"module.exports = {index};\n")
    api = EngineApi(engine.url, engine.worker_token())
    try:
        manifest = api.send_tree(source, tmp_path / "scratch")
        fetched = api.fetch_tree(manifest, tmp_path / "back", BlobStore(tmp_path / "other-machine"))
    finally:
        api.client.close()
    assert fetched == count
    back = sorted(p.relative_to(tmp_path / "back") for p in (tmp_path / "back").rglob("*.js"))
    assert back == sorted(p.relative_to(source) for p in source.rglob("*.js"))
    last = f"chunk-{(count - 1) // 1000}/{count - 1}.js"
    assert (tmp_path / "back" / last).read_text() == f"module.exports = {count - 1};\n"
