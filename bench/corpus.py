"""Benchmark: every app of the corpus (../shared/corpus), deployed unedited on the embedded default.

Each app is copied to a temporary folder and deployed from its app root, with its preview database when
it has one (`--no-import-data` otherwise), one at a time. Prints one row per app: the stage reached,
seconds per stage, the first failure's message; then the success rate. A failure caused only by this
machine's network (only the package registries are reachable) is named with its URL and counted apart.
The engine's own time (all but install and build) is printed against the 2 s target.

    .venv/bin/python bench/corpus.py [--db local-libsql|local-postgres] [--only NAME ...] [--examples]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.client import EngineClient
from engine.config import Settings
from engine.service import Engine
from tests.corpus import CORPUS

STAGES = ("preflight", "database", "environment", "transform", "install", "build", "host", "verify")
# A fetch that failed because nothing but the package registries is reachable from this machine.
_NETWORK = re.compile(
    r"(?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|getaddrinfo|fetch failed|Failed to fetch)"
    r"[^\n]*?(https?://[^\s'\"`)]+)|(https?://[^\s'\"`)]+)[^\n]*?(?:ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT)"
)
_REGISTRIES = ("registry.npmjs.org", "pypi.org", "deb.debian.org")


@dataclass
class Row:
    app: str
    status: str = "not run"
    reached: str = "-"
    seconds: dict[str, float] = field(default_factory=dict)
    error: str = ""
    network_url: str | None = None
    engine_seconds: float | None = None
    details: dict[str, str] = field(default_factory=dict)  # each step's own report


def corpus_apps(corpus: Path) -> list[dict[str, Any]]:
    apps: list[dict[str, Any]] = json.loads((corpus / "corpus.json").read_text())
    return apps


def network_only(message: str) -> str | None:
    match = _NETWORK.search(message)
    if not match:
        return None
    url = match.group(1) or match.group(2)
    return None if any(host in url for host in _REGISTRIES) else url


def build_seconds(detail: str) -> float:
    """'npm install 42.1 s + build 30.2 s in a bwrap sandbox' -> 72.3"""
    return sum(float(x) for x in re.findall(r"([\d.]+) s\b", detail.split(" in a ")[0]))


EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"
# Keys a user supplies for the services an app uses (preflight names them); placeholders here, so such an
# app is deployed as its user would deploy it. The table marks these rows.
USER_KEYS: dict[str, dict[str, str]] = {
    "0xflame-7__FlowScraper": {
        # a well-formed test publishable key (base64 of "example.clerk.accounts.dev$") and secret key
        "NEXT_PUBLIC_CLERK_PUBLISHABLE_KEY": "pk_test_ZXhhbXBsZS5jbGVyay5hY2NvdW50cy5kZXYk",
        "CLERK_SECRET_KEY": "sk_test_placeholder_for_the_users_own_key",
    },
    "Arfazrll__AI-Docs-Scanner": {"GROQ_API_KEY": "gsk_placeholder_for_the_users_own_key"},
}


def example_apps() -> list[dict[str, Any]]:
    """The repository's own two examples, as a baseline beside the corpus."""
    return [
        {"name": f"example-{name}", "root": ".", "preview": "preview.sqlite", "folder": str(EXAMPLES / name)}
        for name in ("shop", "taskboard")
    ]


def deploy_one(client: EngineClient, app: dict[str, Any], db: str, scratch: Path, corpus: Path) -> Row:
    row = Row(app["name"])
    copy = scratch / app["name"]
    source = Path(app["folder"]) if "folder" in app else corpus / app["name"]
    shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns("node_modules", ".next"))
    root = copy / app["root"]
    preview = app.get("preview")
    options: dict[str, Any] = {"db": db}
    if app["name"] in USER_KEYS:
        options["env"] = USER_KEYS[app["name"]]
        row.app += " (k)"
    if preview and preview != "none" and (root / preview).is_file():
        options["preview"] = str(root / preview)
    else:
        options["import_data"] = False
    name = re.sub(r"[^a-z0-9-]+", "-", app["name"].lower()).strip("-")[:40]
    started = time.perf_counter()
    try:
        if app["root"] not in (".", ""):  # an app in a subfolder: the repository and --root
            options["root"] = app["root"]
        deployment = client.deploy_web(str(copy if "root" in options else root), app=name, **options)
        status = client.wait(deployment["deployment_id"], timeout=1800)
    except Exception as exc:  # the request itself was refused: report it as the first failure
        row.status, row.error = "failed", f"{type(exc).__name__}: {exc}"
        return row
    wall = time.perf_counter() - started
    row.status = "live" if status["deployment"]["status"] == "succeeded" else "failed"
    for step in status["steps"]:
        if step.get("status") in ("succeeded", "failed", "undone"):  # undone: ran, then rolled back
            row.seconds[step["name"]] = float(step.get("seconds") or 0)
            row.details[step["name"]] = str(step.get("detail") or "")
        if step.get("status") in ("succeeded", "undone"):
            row.reached = step["name"]
        if step.get("status") == "failed" and not row.error:
            row.error = str(step.get("error") or "")
            row.reached = f"{step['name']} (failed)"
    if row.status == "failed":
        row.network_url = network_only(row.error)
    steps = {s["name"]: s for s in status["steps"]}
    if "build" in steps and steps["build"].get("status") == "succeeded":  # the install may be its own step
        app_seconds = sum(
            build_seconds(steps[name].get("detail") or "") for name in ("install", "build") if name in steps
        )
        row.engine_seconds = wall - app_seconds
    return row


def short(message: str, width: int = 160) -> str:
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    useful = [line for line in lines if re.search(r"error|Error|failed|cannot|Cannot|not found", line)]
    text = " | ".join((useful or lines)[:2])
    return text[:width]


def print_table(rows: list[Row], db: str) -> None:
    print(f"\ncorpus on {db}: {len(rows)} apps")
    print(
        f"{'app':<32} {'status':<7} {'reached':<18} "
        + " ".join(f"{s[:6]:>6}" for s in STAGES)
        + "  engine  first failure"
    )
    for row in rows:
        secs = " ".join(f"{row.seconds[s]:>6.1f}" if s in row.seconds else f"{'-':>6}" for s in STAGES)
        engine = f"{row.engine_seconds:>6.1f}" if row.engine_seconds is not None else f"{'-':>6}"
        error = f"network only: {row.network_url}" if row.network_url else short(row.error)
        print(f"{row.app[:32]:<32} {row.status:<7} {row.reached[:18]:<18} {secs}  {engine}  {error}")
    if any(r.app.endswith(" (k)") for r in rows):
        print("(k): deployed with placeholder keys for the third-party service it needs (see USER_KEYS)")
    examples = [r for r in rows if r.app.startswith("example-")]
    if examples:
        print(
            f"\nexamples (baseline, not counted): {sum(r.status == 'live' for r in examples)}/{len(examples)} live"
        )
    rows = [r for r in rows if not r.app.startswith("example-")]
    live = sum(r.status == "live" for r in rows)
    network = sum(r.network_url is not None for r in rows)
    counted = len(rows) - network
    rate = 100.0 * live / counted if counted else 0.0
    print(
        f"\nlive: {live}/{counted} ({rate:.0f} %) on {db}"
        + (f"; {network} failed only on this machine's network (counted apart)" if network else "")
    )
    own = sorted(r.engine_seconds for r in rows if r.engine_seconds is not None)
    if own:
        print(
            f"engine's own time per deploy (wall minus install and build): median {own[len(own) // 2]:.1f} s, "
            f"max {own[-1]:.1f} s (target <= 2 s)"
        )
        steps = sorted(
            (r.engine_seconds or 0) - r.seconds.get("verify", 0) - r.seconds.get("host", 0)
            for r in rows
            if r.engine_seconds is not None
        )
        print(
            f"  without host and verify (staging the server, its start and first pages): median "
            f"{steps[len(steps) // 2]:.1f} s, max {steps[-1]:.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", default="local-libsql", choices=["local-libsql", "local-postgres"])
    parser.add_argument("--only", nargs="*", help="corpus app names (default: all)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--keep", action="store_true", help="keep the workspace (logs) and print its path")
    parser.add_argument("--examples", action="store_true", help="also the two example apps (a baseline)")
    parser.add_argument("--details", action="store_true", help="each step's own report, per app")
    args = parser.parse_args()
    everything = corpus_apps(args.corpus) + (example_apps() if args.examples else [])
    apps = [a for a in everything if not args.only or a["name"] in args.only]
    scratch = Path(tempfile.mkdtemp(prefix="launchdeck-corpus-"))
    settings = Settings(workspace=scratch / "workspace", edge_port=0)
    engine = Engine(settings)
    url = engine.start_in_thread()
    client = EngineClient(url, str(engine.first_token), timeout=300)
    rows = []
    try:
        for app in apps:
            row = deploy_one(client, app, args.db, scratch, args.corpus)
            rows.append(row)
            print(f"{row.app}: {row.status} ({row.reached}) {short(row.error, 300)}", flush=True)
            if args.details:
                for step, detail in row.details.items():
                    print(f"  {step:<12} {row.seconds[step]:>6.1f} s  {short(detail, 400)}", flush=True)
    finally:
        client.close()
        engine.stop_thread()
        print_table(rows, args.db)
        if args.keep:
            print(f"workspace kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
