"""Benchmark: time to first render of each console page in a real browser, with 10,000 apps in the store.

For each fleet size a fresh workspace is seeded with the demo seeder (90 days of usage, one reading per app
and day for speed), then `launchdeck up` starts the engine and the console, and Chromium (Debian, driven by
playwright) signs in and opens every page from the navigation. It signs in once the engine has computed
the console's figures (the engine does at start, then every minute), as an operator arriving after the
start finds them. Per page it prints:

- first render: click in the navigation until the page has finished its first run with its data shown
  (Streamlit's "running" indicator gone and no loading placeholders): a new browser, so none of the
  console's code is cached yet, and a new console process, so its caches are cold;
- warm: the same page opened again a moment later (console and engine caches warm), median of 2.

The named baseline, measured in the same run, is the demo fleet of 500 apps. Target: every page under 1 s.

    .venv/bin/python bench/console.py [--apps 10000] [--baseline 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect, sync_playwright

from engine.client import EngineClient
from engine.config import Settings
from engine.demo import seed_workspace

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 1.0
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PAGES = [  # (navigation label, heading, text that shows once the page's data is in)
    ("Deploy", "Deploy an app", "Choose how to deploy the app's database"),
    ("Status", "Deployment status", "Deployment"),
    ("Apps", "Apps", "Apps shown"),
    ("Usage", "Usage", "Build minutes are not metered"),
    ("Pricing & margins", "Pricing & margins", "Price sheet versions"),
    ("Cost model", "Cost model", "Cheapest architecture"),
]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def open_and_time(page: Page, label: str, heading: str, ready: str) -> float:
    start = time.perf_counter()
    page.get_by_role("link", name=label, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible(timeout=120_000)
    expect(page.get_by_text(ready).first).to_be_visible(timeout=120_000)
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=120_000)
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=120_000)
    return time.perf_counter() - start


def wait_for_warm_caches(engine_url: str, token: str, timeout: float = 300) -> float:
    started = time.perf_counter()
    with EngineClient(engine_url, token) as client:
        while not client.request("GET", "/api/console/caches")["warm"]:
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the engine did not warm the console's caches within {timeout:.0f} s")
            time.sleep(0.2)
    return time.perf_counter() - started


def seeded_copy(apps: int, workspace: Path) -> None:
    """Seed a workspace of ``apps`` apps once (bench/output/, git-ignored) and copy its store for each run:
    seeding 10,000 apps with closed months takes minutes and is not what is measured."""
    template = ROOT / "bench" / "output" / f"console-{apps}-apps"
    if not (template / "launchdeck.duckdb").exists():
        started = time.perf_counter()
        seeded = seed_workspace(Settings(workspace=template), apps=apps, days=90, reading_hours=24)
        print(f"  seeded {seeded.apps:,} apps, {seeded.usage.added if seeded.usage else 0:,} ledger rows "
              f"in {time.perf_counter() - started:.1f} s (kept in {template})")  # fmt: skip
    shutil.copy(template / "launchdeck.duckdb", workspace / "launchdeck.duckdb")


def measure(apps: int) -> dict[str, tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-console-") as workspace:
        seeded_copy(apps, Path(workspace))
        ports = {name: free_port() for name in ("ENGINE", "CONSOLE", "EDGE")}
        env = {**os.environ, "LAUNCHDECK_WORKSPACE": workspace,
               "LAUNCHDECK_OPERATOR_TOKEN_FILE": str(Path(workspace) / "operator.token"),
               **{f"LAUNCHDECK_{name}_PORT": str(port) for name, port in ports.items()}}  # fmt: skip
        log = open(Path(workspace) / "up.log", "w")  # noqa: SIM115 - closed in finally
        up = subprocess.Popen([sys.executable, "-m", "engine.cli", "up"], cwd=ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT)  # fmt: skip
        console = f"http://127.0.0.1:{ports['CONSOLE']}"
        try:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if httpx.get(f"{console}/_stcore/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if up.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"launchdeck up did not start; see {log.name}")
                time.sleep(0.3)
            token = (Path(workspace) / "operator.token").read_text().strip()
            # A real operator signs in to an engine that has been up for a while; the engine computes the
            # console's figures at start (then every minute), so wait for that first warm-up, as they would.
            warm_up = wait_for_warm_caches(f"http://127.0.0.1:{ports['ENGINE']}", token)
            print(
                f"  engine's first warm-up of the console's figures done {warm_up:.1f} s after the console answered"
            )
            results: dict[str, tuple[float, float]] = {}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.goto(console)
                page.get_by_label("Engine token").fill(token)
                page.get_by_role("button", name="Sign in").click()
                expect(page.get_by_role("link", name="Apps", exact=True)).to_be_visible(timeout=60_000)
                # The sign-in lands on Deploy; open another page first so every page is a navigation.
                open_and_time(page, *PAGES[1])
                first = {label: open_and_time(page, label, heading, ready) for label, heading, ready in PAGES}
                warm: dict[str, list[float]] = {label: [] for label, _, _ in PAGES}
                for _ in range(2):
                    for label, heading, ready in PAGES:
                        warm[label].append(open_and_time(page, label, heading, ready))
                browser.close()
            for label, _, _ in PAGES:
                results[label] = (first[label], statistics.median(warm[label]))
            return results
        finally:
            up.send_signal(signal.SIGINT)
            try:
                up.wait(timeout=30)
            except subprocess.TimeoutExpired:
                up.kill()
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--apps", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=500, help="the named baseline: the demo fleet size")
    args = parser.parse_args()
    runs = {}
    for apps in (args.baseline, args.apps):
        print(f"fleet of {apps:,} apps:")
        runs[apps] = measure(apps)
    print(
        f"\ntime to first render per page (s); baseline = demo fleet of {args.baseline:,} apps; target < {TARGET_S} s"
    )
    print(f"{'page':<20} {'baseline first':>15} {'baseline warm':>14} {f'{args.apps:,} first':>14} "
          f"{f'{args.apps:,} warm':>13}  target")  # fmt: skip
    for label, _, _ in PAGES:
        base_first, base_warm = runs[args.baseline][label]
        first, warm = runs[args.apps][label]
        verdict = "met" if first < TARGET_S else "MISSED"
        print(f"{label:<20} {base_first:>15.2f} {base_warm:>14.2f} {first:>14.2f} {warm:>13.2f}  {verdict}")


if __name__ == "__main__":
    main()
