"""Edge host figures: proxy overhead per request against the same Node server reached directly (the
baseline), static file serving, and the cold start after scale to zero.

    .venv/bin/python bench/edge_proxy.py [--requests 2000] [--cold-starts 5]

Prints medians and 95th percentiles of sequential keep-alive requests from one httpx client.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from engine.edge import EdgeHost, ServerSpec
from engine.edge.supervisor import free_port, port_open

APP_SERVER_JS = Path(__file__).resolve().parent.parent / "tests" / "edge" / "app_server.js"


def timings(client: httpx.Client, url: str, host: str | None, count: int, check: bool = True) -> list[float]:
    headers = {"host": host} if host else {}
    for _ in range(min(50, count)):  # warm up connections and the JIT
        response = client.get(url, headers=headers)
        if check:
            response.raise_for_status()
    seconds = []
    for _ in range(count):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        seconds.append(time.perf_counter() - started)
        if check:
            response.raise_for_status()
    return seconds


def direct_spawns(server_dir: Path, count: int) -> list[float]:
    seconds = []
    for _ in range(count):
        port = free_port()
        started = time.perf_counter()
        child = subprocess.Popen(
            ["node", "server.js"],
            cwd=server_dir,
            env={**os.environ, "PORT": str(port)},
            stdout=subprocess.DEVNULL,
        )
        while not port_open(port):
            time.sleep(0.01)
        seconds.append(time.perf_counter() - started)
        child.terminate()
        child.wait(timeout=10)
    return seconds


def next_figures(app_dir: Path, runs: int) -> None:
    """Stage time, warm start at promote and cold starts of a real Next.js standalone server."""
    work = Path(tempfile.mkdtemp(prefix="edge-bench-next-"))
    bundle = work / "bundle"
    shutil.copytree(app_dir / ".next" / "standalone", bundle, symlinks=True)
    mounts = {"/_next/static": app_dir / ".next" / "static"}
    if (app_dir / "public").is_dir():
        mounts["/"] = app_dir / "public"
    env = {"NEXTAUTH_SECRET": "bench-secret-0123456789abcdef", "NEXTAUTH_URL": "http://next.localhost/"}
    edge = EdgeHost(work / "workspace", 0, idle_seconds=1.0, env_source=lambda app, dep: env)
    try:
        edge.start()
        print(f"Next.js standalone server from {app_dir} (sandbox: {edge.sandbox}):")
        started = time.perf_counter()
        edge.stage("next", "d1", mounts, ServerSpec(["node", "server.js"], bundle, env, link_files=True))
        print(f"  stage (hard-linked bundle): {time.perf_counter() - started:.3f} s")
        started = time.perf_counter()
        edge.promote("next", "d1")
        print(f"  promote (server warmed before the switch): {time.perf_counter() - started:.3f} s")
        with httpx.Client(trust_env=False, timeout=60) as client:
            first = []
            for _ in range(runs):
                while edge.status("next").server_state != "stopped":
                    time.sleep(0.05)
                started = time.perf_counter()
                status = client.get(
                    f"{edge.base_url}/", headers={"host": f"next.localhost:{edge.port}"}
                ).status_code
                first.append(time.perf_counter() - started)
            warm = timings(client, f"{edge.base_url}/", f"next.localhost:{edge.port}", 200, check=False)
        cold = [s for s in edge.server_starts("next") if s.kind == "request"][-runs:]
        summary("cold start: spawn -> listening", [s.seconds for s in cold])
        summary(
            "cold start: request -> first response", [s.first_response_seconds or s.seconds for s in cold]
        )
        summary(f"client: first GET / after scale to zero (HTTP {status})", first)
        summary("baseline: warm GET / through the edge host", warm)
    finally:
        edge.stop()
        shutil.rmtree(work, ignore_errors=True)


def summary(name: str, seconds: list[float]) -> float:
    median = statistics.median(seconds)
    p95 = statistics.quantiles(seconds, n=20)[-1]
    print(
        f"  {name:<44} median {median * 1000:7.3f} ms   p95 {p95 * 1000:7.3f} ms   ({len(seconds)} requests)"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--cold-starts", type=int, default=5)
    parser.add_argument("--next", type=Path, help="also a built Next.js app folder (with .next/standalone)")
    args = parser.parse_args()
    if args.next:
        next_figures(args.next, args.cold_starts)
        return
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    server_dir = work / "server"
    server_dir.mkdir()
    shutil.copy(APP_SERVER_JS, server_dir / "server.js")
    static_dir = work / "static"
    static_dir.mkdir()
    (static_dir / "page.html").write_text("x" * 2048)
    port = free_port()
    direct = subprocess.Popen(
        ["node", "server.js"],
        cwd=server_dir,
        env={**os.environ, "PORT": str(port), "APP_VERSION": "bench"},
        stdout=subprocess.DEVNULL,
    )
    edge = EdgeHost(work / "workspace", 0, idle_seconds=None)
    try:
        while not port_open(port):
            time.sleep(0.01)
        edge.start()
        edge.stage(
            "bench", "d1", static_dir, ServerSpec(["node", "server.js"], server_dir, {"APP_VERSION": "bench"})
        )
        edge.promote("bench", "d1")
        host = f"bench.localhost:{edge.port}"
        print(
            f"node {subprocess.check_output(['node', '--version'], text=True).strip()}, "
            f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, app server sandbox: {edge.sandbox}"
        )
        print("Proxy overhead (GET /dynamic, ~70-byte body):")
        with httpx.Client(trust_env=False) as client:
            baseline = summary(
                "baseline: Node server directly",
                timings(client, f"http://127.0.0.1:{port}/dynamic", None, args.requests),
            )
            proxied = summary(
                "through the edge host (proxied)",
                timings(client, f"{edge.base_url}/dynamic", host, args.requests),
            )
            print(f"  => proxy overhead per request: {(proxied - baseline) * 1000:.3f} ms (median vs median)")
            if edge.sandbox == "bwrap":  # the same server without a sandbox: what the socket hop costs
                plain = EdgeHost(work / "plain", 0, idle_seconds=None, sandbox="none", single_tenant=True)
                plain.start()
                try:
                    plain.stage(
                        "bench", "d1", None,
                        ServerSpec(["node", "server.js"], server_dir, {"APP_VERSION": "bench"}),
                    )  # fmt: skip
                    plain.promote("bench", "d1")
                    unsandboxed = summary(
                        "through the edge host, no sandbox (TCP)",
                        timings(
                            client,
                            f"{plain.base_url}/dynamic",
                            f"bench.localhost:{plain.port}",
                            args.requests,
                        ),
                    )
                finally:
                    plain.stop()
                print(
                    f"  => sandbox (socket + launcher hop) per request: {(proxied - unsandboxed) * 1000:.3f} ms"
                )
            print("Static file from the blob store (2 KiB):")
            summary(
                "edge host static file", timings(client, f"{edge.base_url}/page.html", host, args.requests)
            )
        edge.stop()

        print(f"Cold start after scale to zero ({args.cold_starts} runs):")
        edge = EdgeHost(
            work / "workspace", 0, idle_seconds=0.3, env_source=lambda app, dep: {"APP_VERSION": "bench"}
        )
        edge.start()
        first_request = []
        with httpx.Client(trust_env=False) as client:
            for _ in range(args.cold_starts):
                while edge.status("bench").server_state != "stopped":
                    time.sleep(0.05)
                started = time.perf_counter()
                client.get(
                    f"{edge.base_url}/dynamic", headers={"host": f"bench.localhost:{edge.port}"}
                ).raise_for_status()
                first_request.append(time.perf_counter() - started)
        cold = [s for s in edge.server_starts("bench") if s.kind == "request"][-args.cold_starts :]
        recorded = [s.seconds for s in cold]
        waited = [s.first_response_seconds or s.seconds for s in cold]
        summary("baseline: spawn node directly -> port open", direct_spawns(server_dir, args.cold_starts))
        summary("recorded cold start (spawn -> port open)", recorded)
        summary("recorded cold start (request -> first response)", waited)
        summary("client: first request after scale to zero", first_request)
        print(f"  (baseline: a warm proxied request, median {proxied * 1000:.3f} ms)")
    finally:
        edge.stop()
        direct.terminate()
        direct.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
