"""The promises every ``DatabaseProvider`` keeps, as one suite run once per implementation.

The pipelines rely on these and nothing more: a step that runs again adopts what it made (same id, no
second database), ``find`` sees a database in every state and never returns its credentials, suspend and
resume keep the data's identity, destroy is final and can be repeated (an undo may run twice), and a
handle's ``repr`` shows neither its URL nor its token. Each provider's own file tests what is particular
to it (suspension's effect, its API's faults). ``Forgetful`` breaks the promises on purpose, and the last
test checks that this suite notices: a suite that cannot fail proves nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from engine.providers.base import DatabaseHandle, DatabaseProvider
from engine.providers.local_libsql import LocalLibsql
from engine.providers.local_postgres import LocalPostgres
from engine.providers.neon import Neon
from engine.providers.turso import Turso
from tests.emulators.neon import NeonEmulator
from tests.emulators.turso import TursoEmulator


class Forgetful(LocalLibsql):
    """A provider that gets it wrong: a rerun makes a new database, and destroy leaves it behind."""

    name = "forgetful"

    def provision(self, name: str) -> DatabaseHandle:
        if self.exists(name):
            self.path_for(name).unlink()
        handle = super().provision(name)
        return DatabaseHandle(handle.provider, name, f"{handle.id}-{secrets.token_hex(2)}", handle.url)

    def destroy(self, name: str) -> None:
        pass


def rerun_adopts(provider: DatabaseProvider, name: str) -> None:
    first = provider.provision(name)
    again = provider.provision(name)  # a retried or resumed step provisions again
    assert again.id == first.id, "a second provision must adopt the first database"
    assert first.provider == provider.name and first.name == name and first.url
    found = provider.find(name)
    assert found is not None and found.id == first.id
    for handle in (first, again):
        assert handle.url not in repr(handle)
        assert not handle.token or handle.token not in repr(handle)


def suspend_keeps_identity(provider: DatabaseProvider, name: str) -> None:
    made = provider.provision(name)
    provider.suspend(name)
    provider.suspend(name)  # a retried suspend step
    while_suspended = provider.find(name)
    assert while_suspended is not None and while_suspended.id == made.id
    provider.resume(name)
    provider.resume(name)
    resumed = provider.find(name)
    assert resumed is not None and resumed.id == made.id


def destroy_is_final_and_repeatable(provider: DatabaseProvider, name: str) -> None:
    provider.provision(name)
    provider.destroy(name)
    assert provider.find(name) is None, "a destroyed database must be gone"
    provider.destroy(name)  # an undo that runs twice
    assert provider.find(name) is None
    assert provider.find(f"{name}-never-made") is None


PROMISES = [rerun_adopts, suspend_keeps_identity, destroy_is_final_and_repeatable]


@pytest.fixture(params=["local-libsql", "local-postgres", "turso", "neon"])
def provider(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[DatabaseProvider, Callable[[str], None]]]:
    kind: str = request.param
    if kind == "local-libsql":
        yield LocalLibsql(tmp_path / "databases"), lambda name: None
    elif kind == "local-postgres":
        local = LocalPostgres()
        made: list[str] = []
        yield local, made.append
        for name in made:
            local.destroy(name)
    elif kind == "turso":
        turso_emulator = request.getfixturevalue("turso_emulator")
        emulator: TursoEmulator = turso_emulator[0]
        client = Turso(emulator.org, emulator.api_token, base_url=turso_emulator[1])
        yield client, lambda name: None
        client.close()
    else:
        neon_emulator = request.getfixturevalue("neon_emulator")
        neon: NeonEmulator = neon_emulator[0]
        neon_client = Neon(neon.api_key, base_url=neon_emulator[1], adopt_wait=0.5)
        yield neon_client, lambda name: None
        neon_client.close()


@pytest.mark.parametrize("promise", PROMISES, ids=lambda p: p.__name__)
def test_every_provider_keeps_the_promises_pipelines_rely_on(
    provider: tuple[DatabaseProvider, Callable[[str], None]], promise: Callable[[DatabaseProvider, str], None]
) -> None:
    implementation, clean_up_later = provider
    assert isinstance(implementation, DatabaseProvider)
    name = f"contract-{secrets.token_hex(3)}"
    clean_up_later(name)
    promise(implementation, name)


def test_the_suite_fails_a_provider_that_breaks_them(tmp_path: Path) -> None:
    broken = Forgetful(tmp_path / "databases")
    for promise in (rerun_adopts, destroy_is_final_and_repeatable):
        with pytest.raises(AssertionError):
            promise(broken, f"contract-{secrets.token_hex(3)}")
