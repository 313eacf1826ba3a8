"""Desktop platforms and the Tauri bundle formats each one produces."""

from __future__ import annotations

from collections.abc import Iterable

from engine.errors import InputError

BUNDLES: dict[str, tuple[str, ...]] = {
    "windows": ("msi", "nsis"),
    "macos": ("app", "dmg"),
    "linux": ("appimage", "deb"),
}
RUNNERS = {"windows": "windows-latest", "macos": "macos-latest", "linux": "ubuntu-22.04"}


def parse_targets(text: str | Iterable[str]) -> tuple[str, ...]:
    """``"windows,macos,linux"`` to an ordered tuple; a clear error for anything else."""
    names = [part.strip().lower() for part in (text.split(",") if isinstance(text, str) else text)]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in BUNDLES]
    if unknown or not names:
        raise InputError(
            f"desktop targets must be a comma-separated subset of {', '.join(BUNDLES)}"
            f" (got {', '.join(unknown) if unknown else 'none'})"
        )
    return tuple(name for name in BUNDLES if name in names)


def bundle_targets(targets: Iterable[str]) -> list[str]:
    return [bundle for target in targets for bundle in BUNDLES[target]]
