"""How long generating a mobile shell and a desktop project takes, against a named baseline.

Baseline: starting each real CLI once (``cap --version``, ``tauri --version``), the floor any
generation through the CLIs pays. Figures: Capacitor shell for android+ios with icons and splash
screens; Tauri project with icons, updater key pair and CI workflow. Median of 3 runs each.

    .venv/bin/python bench/shells.py
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from engine.desktop import tauri
from engine.mobile import capacitor
from engine.mobile.icon import solid_png
from engine.nodetools import run_node, tool_script

RUNS = 3


def median_seconds(action: Callable[[Path], object]) -> float:
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            action(Path(tmp))
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    cap = tool_script(capacitor.TOOLS, "@capacitor/cli", "bin/capacitor")
    cli = tool_script(tauri.TOOLS, "@tauri-apps/cli", "tauri.js")
    with tempfile.TemporaryDirectory() as tmp:
        icon = solid_png(Path(tmp) / "icon.png", 1024, "#e8590c")
        rows = [
            (
                "baseline: cap --version",
                median_seconds(lambda d: run_node(cap, ["--version"], cwd=d, what="cap")),
            ),
            (
                "baseline: tauri --version",
                median_seconds(lambda d: run_node(cli, ["--version"], cwd=d, what="tauri")),
            ),
            (
                "capacitor shell android+ios",
                median_seconds(
                    lambda d: capacitor.generate(
                        capacitor.ShellSpec(
                            "com.acme.bench", "Bench", server_url="https://bench.acme.dev", icon=icon
                        ),
                        d / "shell",
                        ["android", "ios"],
                    )
                ),
            ),
            ("tauri updater key pair", median_seconds(lambda d: tauri.generate_updater_keys())),
            (
                "tauri project 3 targets",
                median_seconds(
                    lambda d: tauri.generate(
                        tauri.DesktopSpec(
                            "com.acme.bench",
                            "Bench",
                            ("windows", "macos", "linux"),
                            "https://example.com/latest.json",
                            server_url="https://bench.acme.dev",
                            icon=icon,
                        ),
                        d / "desktop",
                        "pubkey",
                    )
                ),
            ),
        ]
    for name, seconds in rows:
        print(f"{name:<32} {seconds:7.2f} s")


if __name__ == "__main__":
    main()
