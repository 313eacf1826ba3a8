"""The API's contract: the OpenAPI document (built from the routes' models) and the client's types,
generated from that document with datamodel-code-generator into ``engine/api_types.py`` (committed).

    .venv/bin/python -m engine.contract     # after changing a route or a model: regenerate
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

TYPES_FILE = Path(__file__).resolve().parent / "api_types.py"
HEADER = '"""The engine API\'s types, generated from its OpenAPI document by ``python -m engine.contract``: do not edit."""\n'


def openapi_document() -> dict[str, Any]:
    """The document the engine serves at /openapi.json (built on a scratch workspace)."""
    from engine.api import create_app
    from engine.config import Settings
    from engine.service import Engine

    with tempfile.TemporaryDirectory(prefix="launchdeck-openapi-") as scratch:
        engine = Engine(Settings(workspace=Path(scratch) / "workspace", edge_port=0))
        try:
            return create_app(engine).openapi()
        finally:
            engine.close()


def client_types(document: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory(prefix="launchdeck-types-") as scratch:
        source, output = Path(scratch) / "openapi.json", Path(scratch) / "api_types.py"
        source.write_text(json.dumps(document, indent=1, sort_keys=True))
        subprocess.run(
            [
                str(Path(sys.executable).with_name("datamodel-codegen")),
                "--input", str(source), "--input-file-type", "openapi",
                "--output-model-type", "typing.TypedDict", "--output", str(output),
                "--target-python-version", "3.11", "--use-standard-collections", "--use-union-operator",
                "--disable-timestamp", "--formatters", "ruff-format", "--custom-file-header", HEADER,
            ],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        return output.read_text()


def main() -> None:
    TYPES_FILE.write_text(client_types(openapi_document()))
    print(f"wrote {TYPES_FILE}")


if __name__ == "__main__":
    main()
