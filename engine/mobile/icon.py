"""A placeholder app icon for an app that ships none: a solid square PNG, written with the stdlib."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from engine.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def solid_png(path: Path, size: int, color: str) -> Path:
    """Write a ``size``x``size`` RGB PNG of one ``#rrggbb`` colour."""
    rgb = parse_color(color)
    row = b"\x00" + bytes(rgb) * size  # filter byte 0, then the pixels
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    path.write_bytes(
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(row * size, 9))
        + _chunk(b"IEND", b"")
    )
    return path


def parse_color(color: str) -> tuple[int, int, int]:
    text = color.removeprefix("#")
    if len(text) != 6 or any(c not in "0123456789abcdefABCDEF" for c in text):
        raise InputError(f"colour {color!r} is not of the form #rrggbb")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG; an InputError naming the file when it is not one."""
    head = path.read_bytes()[:24]
    if not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        raise InputError(f"icon {path} is not a PNG file: give a square PNG of at least 1024x1024")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)
