"""The console in a real browser (Debian Chromium driven by playwright) against `launchdeck up --demo`:
sign in, visit every page and save a screenshot of each, deploy an example app through the wizard, watch
Status reach live, open the app's URL and suspend it from Apps."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from engine.client import EngineClient
from tests.servers.asgi import free_port
from tests.servers.engine import operator_token, token_file

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PAGES = [  # (navigation label, heading, something only that page shows once its data is in)
    ("Deploy", "Deploy an app", "Step 1 of 3"),
    ("Status", "Deployment status", "Estimated time remaining"),
    ("Apps", "Apps", "Apps shown"),
    ("Usage", "Usage", "Build minutes are not metered"),
    ("Pricing & margins", "Pricing & margins", "Price sheet versions"),
    ("Cost model", "Cost model", "Cheapest architecture"),
]


@dataclass
class Demo:
    console: str
    engine: str
    edge_port: int
    workspace: Path

    @property
    def operator_token(self) -> str:
        return operator_token(self.workspace)


def wait_until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{what} did not come up within {timeout:.0f} s")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    workspace = tmp_path_factory.mktemp("browser-demo")
    ports = {name: free_port() for name in ("ENGINE", "CONSOLE", "EDGE")}
    # The Status page follows a real run of a small test pipeline (tests/console/steps_pipeline.py).
    env = {**os.environ, "LAUNCHDECK_WORKSPACE": str(workspace), "LAUNCHDECK_EXTRA_PIPELINES": "tests.console.steps_pipeline",
           "LAUNCHDECK_OPERATOR_TOKEN_FILE": str(token_file(workspace)),
           **{f"LAUNCHDECK_{name}_PORT": str(port) for name, port in ports.items()}}  # fmt: skip
    log = (workspace / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "up", "--demo"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    demo = Demo(
        f"http://127.0.0.1:{ports['CONSOLE']}",
        f"http://127.0.0.1:{ports['ENGINE']}",
        ports["EDGE"],
        workspace,
    )
    try:
        wait_until(lambda: process.poll() is None and httpx.get(f"{demo.console}/_stcore/health").status_code == 200,
                   120, "launchdeck up --demo")  # fmt: skip
        yield demo
    finally:
        process.send_signal(signal.SIGINT)  # `up` stops the engine and the console it started
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def sign_in(browser: Browser, demo: Demo, token: str) -> Page:
    page = browser.new_page(viewport={"width": 1440, "height": 1600})
    page.set_default_timeout(30_000)
    page.goto(demo.console)
    page.get_by_label("Engine token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    return page


def open_page(page: Page, label: str, heading: str, ready: str) -> None:
    page.get_by_role("link", name=label, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    expect(page.get_by_text(ready).first).to_be_visible(timeout=60_000)
    settled(page)


def settled(page: Page) -> None:
    """Wait until the script run has finished and nothing is still loading."""
    expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=60_000)
    expect(page.locator('[data-testid="stSkeleton"]')).to_have_count(0, timeout=60_000)
    expect(page.locator('[data-stale="true"]')).to_have_count(0, timeout=60_000)


def test_sign_in_rejects_a_wrong_token(browser: Browser, demo: Demo) -> None:
    page = sign_in(browser, demo, "ldk_wrong")
    expect(page.get_by_text("unknown engine token")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "sign-in-wrong-token.png")
    page.close()


def start_steps_run(demo: Demo, app: str, hold: bool) -> str:
    with EngineClient(demo.engine, demo.operator_token) as client:
        deployment_id = client.start_pipeline(app, "console-steps", {"hold": hold})
        if not hold:
            client.wait(deployment_id, timeout=60)
        return deployment_id


def test_every_page_as_operator_with_screenshots(browser: Browser, demo: Demo) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    start_steps_run(demo, "steps-history", hold=False)  # a finished run: what the ETA is estimated from
    held = start_steps_run(demo, "steps-live", hold=True)
    page = sign_in(browser, demo, demo.operator_token)
    expect(page.get_by_text("Signed in as operator (operator)")).to_be_visible()
    expect(page.get_by_text("Demo data").first).to_be_visible()
    for label, heading, ready in PAGES:
        open_page(page, label, heading, ready)
        expect(page.get_by_text("Demo data").first).to_be_visible()
        page.screenshot(
            path=SCREENSHOTS / f"{label.lower().replace(' & ', '-').replace(' ', '-')}.png", full_page=True
        )
        if label == "Status":  # the live run: cancel it from the page and watch the page say so
            expect(page.get_by_text("Uploading 47 files (2.3 MB)")).to_be_visible()
            page.get_by_role("button", name="Cancel deployment").click()
            expect(page.get_by_text("steps-live: cancelled")).to_be_visible(timeout=30_000)
            with EngineClient(demo.engine, demo.operator_token) as client:
                assert client.status(held)["deployment"]["status"] == "cancelled"
            page.screenshot(path=SCREENSHOTS / "status-cancelled.png", full_page=True)
    page.close()


def test_finance_sees_only_its_pages(browser: Browser, demo: Demo) -> None:
    issued = httpx.post(f"{demo.engine}/api/tokens", json={"name": "browser-finance", "role": "finance"},
                        headers={"Authorization": f"Bearer {demo.operator_token}"})  # fmt: skip
    assert issued.status_code == 201, issued.text
    page = sign_in(browser, demo, issued.json()["token"])
    expect(page.get_by_text("Read-only: finance sees usage, costs and margins.")).to_be_visible()
    for label in ("Deploy", "Status", "Apps"):
        expect(page.get_by_role("link", name=label, exact=True)).to_have_count(0)
    open_page(page, *PAGES[4])
    page.screenshot(path=SCREENSHOTS / "finance-pricing.png", full_page=True)
    page.close()


@pytest.mark.slow
def test_deploy_through_the_wizard_then_suspend(browser: Browser, demo: Demo) -> None:
    with EngineClient(demo.engine, demo.operator_token) as client:
        # `up --demo` started a real deploy of an example app; stop it so this build has the machine.
        for deployment in client.recent_deployments():
            if deployment["pipeline"] == "web" and deployment["status"] in ("pending", "running"):
                client.cancel(str(deployment["id"]))
    page = sign_in(browser, demo, demo.operator_token)
    open_page(page, *PAGES[0])
    page.get_by_label("App folder (on the engine's machine)").fill(
        str(ROOT / "data" / "examples" / "taskboard")
    )
    page.get_by_role("textbox", name="App name").fill("browser-taskboard")
    page.get_by_label("Owner (user id)").fill("browser-owner")
    page.get_by_role("button", name="Next: Hosting →").click()
    expect(page.get_by_text("Step 2 of 3")).to_be_visible()
    page.get_by_role("button", name="+ Add variable").click()
    page.get_by_placeholder("STRIPE_SECRET_KEY").fill("GREETING")
    page.locator("input[type=password]").last.fill("hello from the wizard")
    page.get_by_role("button", name="Next: Review →").click()
    expect(page.get_by_text("Estimated monthly cost to Launchdeck")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "deploy-review.png", full_page=True)
    page.get_by_test_id("stBaseButton-primary").filter(has_text="Deploy").click()
    expect(page.get_by_role("heading", name="Deployment status")).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "status-running.png", full_page=True)
    expect(page.get_by_text(re.compile(r"^Live at "))).to_be_visible(timeout=240_000)
    page.screenshot(path=SCREENSHOTS / "status-live.png", full_page=True)
    url = f"http://browser-taskboard.localhost:{demo.edge_port}/"
    app_page = browser.new_page()
    assert app_page.goto(url).status == 200  # type: ignore[union-attr]
    app_page.close()

    open_page(page, *PAGES[2])
    page.get_by_label("Name contains").fill("browser-taskboard")
    page.keyboard.press("Enter")
    expect(page.get_by_text("1 of ")).to_be_visible()
    settled(page)
    page.get_by_role("combobox", name="App", exact=True).click()
    page.get_by_role("option", name="browser-taskboard").click()
    page.get_by_text("Yes, suspend browser-taskboard").click()
    page.get_by_role("button", name="Suspend", exact=True).click()
    expect(page.get_by_text("Suspend of browser-taskboard started")).to_be_visible()

    def suspended() -> bool:
        return (
            httpx.get(
                f"http://127.0.0.1:{demo.edge_port}/", headers={"Host": "browser-taskboard.localhost"}
            ).status_code
            == 503
        )

    wait_until(suspended, 60, "the suspended app answering 503")
    page.screenshot(path=SCREENSHOTS / "apps-suspended.png", full_page=True)
    page.close()
