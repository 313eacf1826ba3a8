"""Small crafted apps for the web-build tests."""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "data" / "examples"

SCHEMA = """generator client {
  provider = "prisma-client-js"
}

datasource db {
  provider = "sqlite"
  url      = env("DATABASE_URL")
}

model User {
  id        Int      @id @default(autoincrement())
  email     String   @unique
  createdAt DateTime @default(now())
}
"""

CLIENT = """import { PrismaClient } from "@prisma/client";

export const prisma = new PrismaClient();
export default prisma;
"""


def make_app(root: Path, files: dict[str, str] | None = None, *, prisma: str = "6.19.3") -> Path:
    """A minimal generated app: package.json, schema, client module, plus ``files``."""
    package = {
        "name": "crafted",
        "private": True,
        "scripts": {"build": "next build"},
        "dependencies": {"@prisma/client": prisma, "next": "16.4.6"},
        "devDependencies": {"prisma": prisma},
    }
    contents = {
        "package.json": json.dumps(package, indent=2),
        "prisma/schema.prisma": SCHEMA,
        "lib/prisma.ts": CLIENT,
        **(files or {}),
    }
    for relative, text in contents.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes (and every symlink's target), keyed by relative path."""
    result: dict[str, bytes] = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        if path.is_symlink():
            result[key] = b"-> " + str(path.readlink()).encode()
        elif path.is_file():
            result[key] = path.read_bytes()
    return result
