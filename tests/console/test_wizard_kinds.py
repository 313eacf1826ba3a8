"""The Deploy wizard offers exactly the kinds the engine accepts, and refuses what the engine's rules refuse."""

from __future__ import annotations

import pytest

from console import wizard
from engine.rules import DATABASE_KINDS, HOST_KINDS


def test_the_wizard_offers_every_kind_the_engine_accepts_in_its_order() -> None:
    assert tuple(wizard.DATABASES) == DATABASE_KINDS
    assert tuple(wizard.HOSTS) == HOST_KINDS


@pytest.mark.parametrize("host", ["vercel", "cloudflare"])
def test_a_cloud_host_with_a_database_on_this_machine_is_refused(host: str) -> None:
    problems = wizard.check_hosting(wizard.Answers(host=host, database="local-postgres"))
    assert problems == [
        f"{wizard.HOSTS[host][0]} cannot reach a database on this machine: choose Turso or Neon"
    ]
    assert wizard.check_hosting(wizard.Answers(host=host, database="turso")) == []
    assert wizard.check_hosting(wizard.Answers(host="local", database="local-postgres")) == []
