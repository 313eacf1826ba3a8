"""Vault: round trip, rotation, wrong key, tampering, and no plaintext in the store file or the logs."""

from __future__ import annotations

import logging
import secrets
from pathlib import Path

import pytest

from engine import redact
from engine.errors import ConfigError, VaultError
from engine.store import Store
from engine.vault import Vault

SECRET = "postgresql://app_owner:Sup3r-S3cret-" + secrets.token_hex(8) + "@db.example:5432/app"


def make_vault(tmp_path: Path, env_key: str | None = None) -> tuple[Store, Vault]:
    store = Store(tmp_path / "store.duckdb")
    return store, Vault(store, key_file=tmp_path / "vault.key", env_key=env_key)


def test_round_trip_and_no_plaintext_in_the_file_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, vault = make_vault(tmp_path)
    redact.install()
    with caplog.at_level(logging.INFO):
        vault.put("app-1", "DATABASE_URL", SECRET)
        logging.getLogger("launchdeck.test").info("connecting with %s", vault.get("app-1", "DATABASE_URL"))
    assert vault.get("app-1", "DATABASE_URL") == SECRET
    store.checkpoint()
    store.close()
    raw = (tmp_path / "store.duckdb").read_bytes()
    assert SECRET.encode() not in raw
    assert b"Sup3r-S3cret" not in raw
    assert caplog.records, "the log line was not captured"
    assert all("Sup3r-S3cret" not in record.getMessage() for record in caplog.records)
    assert "***" in caplog.records[-1].getMessage()


def test_rotation_reencrypts_everything_and_the_old_key_is_not_needed(tmp_path: Path) -> None:
    store, vault = make_vault(tmp_path)
    for i in range(5):
        vault.put(f"app-{i}", "TOKEN", f"value-{i}-{secrets.token_hex(4)}")
    before = {i: vault.get(f"app-{i}", "TOKEN") for i in range(5)}
    old_key = (tmp_path / "vault.key").read_text()

    result = vault.rotate()

    assert result.secrets == 5
    assert result.old_key_id != result.new_key_id
    assert (tmp_path / "vault.key").read_text() != old_key
    assert not (tmp_path / "vault.key.new").exists()
    store.close()
    # A new process with only the new key file reads every secret.
    store2, reopened = make_vault(tmp_path)
    assert {i: reopened.get(f"app-{i}", "TOKEN") for i in range(5)} == before
    assert {row["key_id"] for row in store2.fetchall("SELECT key_id FROM secrets")} == {result.new_key_id}


def test_interrupted_rotation_is_finished_at_next_start(tmp_path: Path) -> None:
    store, vault = make_vault(tmp_path)
    vault.put("app", "A", "alpha-value")
    vault.put("app", "B", "bravo-value")
    # Simulate a crash after the new key was written but before the rows were resealed.
    (tmp_path / "vault.key.new").write_text("11" * 32)
    store.close()
    _, reopened = make_vault(tmp_path)
    assert reopened.get("app", "A") == "alpha-value"
    assert reopened.get("app", "B") == "bravo-value"
    assert (tmp_path / "vault.key").read_text() == "11" * 32


def test_wrong_key_is_a_clear_error(tmp_path: Path) -> None:
    store, vault = make_vault(tmp_path, env_key="aa" * 32)
    vault.put("app", "STRIPE_SECRET_KEY", "sk_live_abcdef")
    other = Vault(store, key_file=tmp_path / "unused.key", env_key="bb" * 32)
    with pytest.raises(VaultError, match=r"sealed with key .* but the vault holds key"):
        other.get("app", "STRIPE_SECRET_KEY")


def test_tampered_ciphertext_is_detected(tmp_path: Path) -> None:
    store, vault = make_vault(tmp_path)
    vault.put("app", "NEXTAUTH_SECRET", "a-very-secret-value")
    blob = bytearray(store.scalar("SELECT ciphertext FROM secrets"))
    blob[-1] ^= 0x01
    store.execute("UPDATE secrets SET ciphertext = ?", [bytes(blob)])
    with pytest.raises(VaultError, match="failed its integrity check"):
        vault.get("app", "NEXTAUTH_SECRET")


def test_ciphertext_moved_to_another_secret_does_not_open(tmp_path: Path) -> None:
    store, vault = make_vault(tmp_path)
    vault.put("app-a", "TOKEN", "token-of-app-a")
    vault.put("app-b", "TOKEN", "token-of-app-b")
    store.execute(
        "UPDATE secrets SET ciphertext = (SELECT ciphertext FROM secrets WHERE scope = 'app-a') WHERE scope = 'app-b'"
    )
    with pytest.raises(VaultError):
        vault.get("app-b", "TOKEN")


def test_malformed_environment_key_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CREDENTIALS_ENCRYPTION_KEY"):
        make_vault(tmp_path, env_key="too-short")
