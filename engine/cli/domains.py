"""``launchdeck domains``: add a custom domain to an app and check its DNS records.

Mount in engine/cli/__init__.py with ``app.add_typer(domains.app, name="domains")``. Commands go through
the engine's HTTP API (``/api/domains/...``); with no engine running, an embedded one is started.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Custom domains: the DNS records to create, and their verification.", no_args_is_help=True
)


def _print_domain(data: dict[str, Any]) -> None:
    typer.echo(f"{data['unicode_name']} -> app {data['app']}")
    typer.echo(f"  dns: {data['dns_status']}   certificate: {data['certificate_status']}")
    if data.get("detail"):
        typer.echo(f"  {data['detail']}")


@app.command("add")
def add_command(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="the app's name")],
    domain: Annotated[str, typer.Argument(help="e.g. shop.example.com (internationalised names work)")],
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Register DOMAIN for APP and print the CNAME and TXT records to create at your DNS provider."""
    from engine.cli.common import echo_json, engine_client

    with engine_client() as client:
        data = client.request("POST", "/api/domains/configure", json={"app": app_name, "domain": domain})
    if as_json:
        echo_json(data)
        return
    typer.echo(f"Create these records for {data['unicode_name']} at your DNS provider:")
    for record in data["records"]:
        typer.echo(f"  {record['type']:<6} {record['name']:<40} {record['value']}")
    typer.echo(f"Then run: launchdeck domains check {app_name} {data['domain']}")


@app.command("check")
def check_command(
    app_name: Annotated[str, typer.Argument(metavar="APP", help="the app's name")],
    domain: Annotated[str, typer.Argument(help="the domain added with `domains add`")],
    resolver: Annotated[
        list[str] | None,
        typer.Option(
            "--resolver",
            help="DNS resolver ip or ip:port (repeatable); default: LAUNCHDECK_DNS_RESOLVERS or the system's",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Resolve DOMAIN's CNAME and TXT records and update its DNS and certificate status.
    Exits 0 only when the domain is verified (dns valid)."""
    from engine.cli.common import echo_json, engine_client

    body: dict[str, Any] = {"app": app_name, "domain": domain}
    if resolver:
        body["resolvers"] = resolver
    with engine_client() as client:
        data = client.request("POST", "/api/domains/check", json=body)
    if as_json:
        echo_json(data)
    else:
        _print_domain(data)
    raise typer.Exit(0 if data["dns_status"] == "valid" else 1)
