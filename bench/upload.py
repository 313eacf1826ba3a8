"""Direct-upload benchmark against the Cloudflare and Vercel emulators (loopback, same process).

1. First deploy of a 1,000-file, 50 MB site: bytes sent against the raw size (baseline: raw bytes; base64
   should cost about 4/3 on Cloudflare), requests made, time. Vercel's per-file upload for comparison.
2. Redeploy with one file changed: files uploaded (target: exactly 1) and requests.
3. 500 app deployments queued at once against Cloudflare's rate limit (1,200 requests per window):
   total time against the lower bound the limit alone allows (target: within 1.2x), failures and
   duplicate projects or deployments (target: zero), and 429s the server had to send (target: zero).
   The window is shortened (``--window``, default 20 s instead of 300 s) so the run takes a minute.

Run: ``.venv/bin/python bench/upload.py`` (``--deploys 500 --window 20``).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.providers.cloudflare import RATE_LIMIT, RATE_SLACK, CloudflarePages
from engine.providers.cloudflare_workers import CloudflareWorkers
from engine.providers.http import RateLimiter
from engine.providers.vercel import Vercel
from tests.emulators.cloudflare import CloudflareEmulator
from tests.emulators.vercel import VercelEmulator
from tests.servers.asgi import serve

MB = 1024 * 1024


def make_site(root: Path, seed: int = 7) -> int:
    """1,000 files, 50 MB of incompressible bytes: 10 x 2 MB, 90 x 200 KB, 900 small pages and scripts."""
    rng = random.Random(seed)
    sizes = [2 * MB] * 10 + [200 * 1024] * 90
    rest = 50 * MB - sum(sizes)
    sizes += [rest // 900 + (1 if i < rest % 900 else 0) for i in range(900)]
    extensions = [".png", ".js", ".css", ".woff2", ".html"]
    total = 0
    for i, size in enumerate(sizes):
        name = "index.html" if i == 999 else f"assets/d{i % 20}/f{i}{extensions[i % len(extensions)]}"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(size))
        total += size
    return total


def first_and_redeploy(site: Path, raw: int) -> None:
    emulator = CloudflareEmulator()
    with serve(emulator.app) as url:
        client = CloudflarePages(
            emulator.account_id,
            emulator.api_token,
            base_url=url + "/client/v4",
            limiter=RateLimiter(RATE_LIMIT, 300),
            poll_interval=0.05,
        )
        started = time.perf_counter()
        client.deploy("bench-site", site, {"DATABASE_URL": "libsql://bench"})
        elapsed = time.perf_counter() - started
        first = (client.http.stats.requests, client.http.stats.bytes_sent, emulator.uploads)
        target = site / "assets/d3/f3.woff2"
        target.write_bytes(b"changed" + target.read_bytes()[7:])
        started = time.perf_counter()
        client.deploy("bench-site", site, {})
        re_elapsed = time.perf_counter() - started
        second = (
            client.http.stats.requests - first[0],
            client.http.stats.bytes_sent - first[1],
            emulator.uploads - first[2],
        )
        client.close()
    print("## Cloudflare Pages direct upload (1,000 files)")
    print(f"raw site size (baseline)          {raw:>14,} bytes")
    print(
        f"first deploy: bytes sent          {first[1]:>14,} bytes  = {first[1] / raw:.3f} x raw "
        f"(base64 alone: {4 / 3:.3f})"
    )
    print(f"first deploy: requests            {first[0]:>14,}        files uploaded {first[2]:,}")
    print(f"first deploy: time                {elapsed:>14.2f} s")
    print(f"redeploy, 1 file changed: files   {second[2]:>14,}        (target: 1)")
    print(f"redeploy: requests                {second[0]:>14,}        bytes sent {second[1]:,}")
    print(f"redeploy: time                    {re_elapsed:>14.2f} s")


def workers_assets(site: Path, raw: int) -> None:
    """The same site as a Cloudflare Worker's static assets (the path `--host cloudflare` deploys by)."""
    emulator = CloudflareEmulator()
    try:
        with serve(emulator.app) as url:
            client = CloudflareWorkers(
                emulator.account_id,
                emulator.api_token,
                base_url=url + "/client/v4",
                limiter=RateLimiter(RATE_LIMIT, 300),
            )
            started = time.perf_counter()
            client.stage("bench-worker", site, {})
            elapsed = time.perf_counter() - started
            first = (
                client.http.stats.requests,
                client.http.stats.bytes_sent,
                client.upload_stats["bench-worker"],
            )
            target = site / "assets/d5/f5.png"
            target.write_bytes(b"changed" + target.read_bytes()[7:])
            started = time.perf_counter()
            client.stage("bench-worker", site, {})
            re_elapsed = time.perf_counter() - started
            second = (
                client.http.stats.requests - first[0],
                client.upload_stats["bench-worker"],
                client.http.stats.bytes_sent - first[1],
            )
            client.close()
    finally:
        emulator.close()
    print("## Cloudflare Workers static assets (upload session, same site)")
    print(f"first deploy: bytes sent          {first[1]:>14,} bytes  = {first[1] / raw:.3f} x raw")
    print(f"first deploy: requests            {first[0]:>14,}        files uploaded {first[2]['uploaded']:,}")
    print(f"first deploy: time                {elapsed:>14.2f} s")
    print(f"redeploy, 1 file changed: files   {second[1]['uploaded']:>14,}        (target: 1)")
    print(f"redeploy: requests                {second[0]:>14,}        bytes sent {second[2]:,}")
    print(f"redeploy: time                    {re_elapsed:>14.2f} s")


def vercel_comparison(site: Path, raw: int) -> None:
    emulator = VercelEmulator()
    with serve(emulator.app) as url:
        client = Vercel(emulator.token, base_url=url, poll_interval=0.05)
        started = time.perf_counter()
        client.deploy("bench-site", site, {})
        elapsed = time.perf_counter() - started
        stats = client.http.stats
        client.close()
    emulator.close()
    print("## Vercel (same site, one request per file, raw bodies)")
    print(
        f"first deploy: bytes sent          {stats.bytes_sent:>14,} bytes  = {stats.bytes_sent / raw:.3f} x raw"
    )
    print(
        f"first deploy: requests            {stats.requests:>14,}        files uploaded {emulator.uploads:,}"
    )
    print(f"first deploy: time                {elapsed:>14.2f} s")


def fleet(deploys: int, window: float, workers: int, tmp: Path) -> None:
    emulator = CloudflareEmulator(rate_limit=RATE_LIMIT, rate_period=window)
    sites = []
    for i in range(deploys):
        site = tmp / f"app{i}"
        (site / "assets").mkdir(parents=True)
        (site / "index.html").write_text(f"<h1>app {i}</h1>")
        (site / "assets/app.js").write_text("console.log('shared bundle')")
        sites.append(site)
    limiter = RateLimiter(RATE_LIMIT, window * RATE_SLACK)
    failures: list[str] = []
    with serve(emulator.app) as url:
        client = CloudflarePages(
            emulator.account_id,
            emulator.api_token,
            base_url=url + "/client/v4",
            limiter=limiter,
            poll_interval=0.05,
        )
        started = time.perf_counter()
        with ThreadPoolExecutor(workers, thread_name_prefix="deploy") as pool:
            futures = {
                pool.submit(client.deploy, f"app-{i}", site, {"APP": str(i)}): i
                for i, site in enumerate(sites)
            }
            for future in as_completed(futures):
                try:
                    future.result()
                except Exception as exc:
                    failures.append(f"app-{futures[future]}: {exc}")
        elapsed = time.perf_counter() - started
        requests, retries = client.http.stats.requests, client.http.stats.retries
        client.close()
    # Sliding window: request k (0-based) cannot go before floor(k / limit) windows have passed.
    bound = (math.ceil(requests / RATE_LIMIT) - 1) * window
    duplicates = sum(1 for p in emulator.projects.values() if len(p.deployments) != 1)
    missing = deploys - len(emulator.projects)
    print(f"## {deploys} deployments queued at once, {workers} workers, limit {RATE_LIMIT} per {window:g} s")
    print(
        f"requests made                     {requests:>14,}        ({requests / deploys:.1f} per deploy, "
        f"{retries} retried)"
    )
    print(f"rate-limit lower bound (baseline) {bound:>14.2f} s")
    print(
        f"total time                        {elapsed:>14.2f} s  = {elapsed / bound:.3f} x bound (target <= 1.2)"
        if bound
        else f"total time {elapsed:.2f} s (all requests fit in one window)"
    )
    print(f"failures                          {len(failures):>14}")
    print(f"duplicate or missing resources    {duplicates + missing:>14}")
    print(
        f"429s the server sent              {emulator.window.rejected:>14}        peak in any window "
        f"{emulator.window.peak:,} of {RATE_LIMIT:,}"
    )
    for failure in failures[:5]:
        print("  ", failure)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deploys", type=int, default=500)
    parser.add_argument("--window", type=float, default=20.0, help="rate-limit window in seconds (real: 300)")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--skip-site", action="store_true", help="only the fleet part")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        root = Path(tmp)
        if not args.skip_site:
            raw = make_site(root / "site")
            first_and_redeploy(root / "site", raw)
            workers_assets(root / "site", raw)
            vercel_comparison(root / "site", raw)
        fleet(args.deploys, args.window, args.workers, root / "fleet")


if __name__ == "__main__":
    main()
