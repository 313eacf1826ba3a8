"""M3: a secret written while the vault rotates its key is never sealed with a key the rotation drops."""

from __future__ import annotations

import threading
from pathlib import Path

from engine.store import Store
from engine.vault import Vault


def test_a_put_racing_a_rotation_stays_readable(tmp_path: Path) -> None:
    store = Store(tmp_path / "store.duckdb")
    vault = Vault(store, key_file=tmp_path / "vault.key")
    vault.put("app", "existing", "value-before")
    sealing, release = threading.Event(), threading.Event()
    original_seal = vault.seal

    def slow_seal(scope: str, name: str, plaintext: str, key: bytes | None = None) -> bytes:
        blob = original_seal(scope, name, plaintext, key)
        if name == "racing":  # sealed with the old key; the rotation tries to run now
            sealing.set()
            release.wait(5)
        return blob

    vault.seal = slow_seal  # type: ignore[method-assign]
    writer = threading.Thread(target=vault.put, args=("app", "racing", "value-during"))
    writer.start()
    assert sealing.wait(5)
    rotator = threading.Thread(target=vault.rotate)
    rotator.start()
    rotator.join(0.5)  # the rotation waits for the put (it would otherwise finish in this time)
    release.set()
    writer.join(5)
    rotator.join(10)
    assert not rotator.is_alive()
    reopened = Vault(store, key_file=tmp_path / "vault.key")  # only the new key from here on
    assert reopened.get("app", "racing") == "value-during"
    assert reopened.get("app", "existing") == "value-before"
    store.close()


def test_each_value_of_a_stored_environment_is_redacted_after_a_restart(tmp_path: Path) -> None:
    """L4: a deployment's environment is one JSON secret; after a restart, opening it must register
    every value, or the build log would show any value whose name does not look secret."""
    import json

    from engine import redact

    store = Store(tmp_path / "store.duckdb")
    Vault(store, key_file=tmp_path / "vault.key").put(
        "app", "env@d1", json.dumps({"GREETING_SALT": "plain-looking-value-93c1"})
    )
    reopened = Vault(store, key_file=tmp_path / "vault.key")
    reopened.get("app", "env@d1")
    assert redact.redact("log: plain-looking-value-93c1") == "log: ***"
    store.close()
