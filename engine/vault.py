"""The vault: every secret is sealed with AES-256-GCM before it reaches the store.

Each ciphertext is ``nonce (12 bytes) || AES-GCM(ciphertext + tag)``, with the secret's scope and name as
associated data (a ciphertext copied onto another secret does not open), and the store keeps the
fingerprint of the key that sealed it, so a wrong key is reported as such instead of as garbage.

Key source: ``CREDENTIALS_ENCRYPTION_KEY`` (64 hex digits or base64 of 32 bytes) or, when unset, the file
``vault.key`` in the workspace, created on first start with mode 0600. Rotation writes the new key to
``vault.key.new`` first, re-encrypts every secret in one transaction, then renames the file, so a crash
at any point leaves every secret readable by a key on disk.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import os
import secrets as random
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from engine import redact
from engine.errors import ConfigError, NotFound, VaultError
from engine.files import write_private
from engine.store import Store

NONCE_BYTES = 12
# Variables of a deployment's environment that are addresses, not secrets (the app's own URL would
# otherwise be starred out of every log line and status detail).
PUBLIC_ENV = frozenset({"NEXTAUTH_URL", "AUTH_TRUST_HOST", "NODE_ENV"})


def key_fingerprint(key: bytes) -> str:
    return hashlib.sha256(b"launchdeck-vault:" + key).hexdigest()[:16]


def parse_key(text: str, *, source: str) -> bytes:
    text = text.strip()
    key: bytes | None = None
    if len(text) == 64:
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(
                text + "=" * (-len(text) % 4),
                altchars=b"-_" if "-" in text or "_" in text else None,
                validate=True,
            )
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise ConfigError(
            f"{source}: must be a 32-byte key as 64 hex digits or base64 "
            "(make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


@dataclass(frozen=True)
class RotationResult:
    secrets: int
    old_key_id: str
    new_key_id: str
    new_key_path: Path | None  # set when the key came from the environment and must be replaced there


class Vault:
    def __init__(self, store: Store, *, key_file: Path, env_key: str | None = None) -> None:
        self._store = store
        self._key_file = key_file
        self._from_env = env_key is not None
        self._keys: dict[str, bytes] = {}
        # Held across sealing and writing a secret, and across a whole rotation: a put that sealed with
        # the old key can never commit after the rotation re-sealed everything and dropped that key.
        self._lock = threading.RLock()
        if env_key is not None:
            self._current = parse_key(env_key, source="CREDENTIALS_ENCRYPTION_KEY")
        elif key_file.exists():
            self._current = parse_key(key_file.read_text(), source=str(key_file))
        else:
            self._current = AESGCM.generate_key(bit_length=256)
            write_private(key_file, self._current.hex())
        self._keys[key_fingerprint(self._current)] = self._current
        pending = self._pending_path
        if pending.exists():  # an interrupted rotation: the new key may already seal some rows
            new_key = parse_key(pending.read_text(), source=str(pending))
            env_has_it = self._from_env and key_fingerprint(new_key) == key_fingerprint(self._current)
            self._keys[key_fingerprint(new_key)] = new_key
            self._finish_interrupted_rotation(new_key)
            if env_has_it:  # the operator set the new key: its plaintext copy is not needed any more
                pending.unlink(missing_ok=True)

    @property
    def _pending_path(self) -> Path:
        return self._key_file.with_name(self._key_file.name + ".new")

    @property
    def key_id(self) -> str:
        return key_fingerprint(self._current)

    # -- sealing ----------------------------------------------------------------------------------

    @staticmethod
    def _aad(scope: str, name: str) -> bytes:
        return f"{scope}\x00{name}".encode()

    def seal(self, scope: str, name: str, plaintext: str, key: bytes | None = None) -> bytes:
        nonce = random.token_bytes(NONCE_BYTES)
        return nonce + AESGCM(key or self._current).encrypt(nonce, plaintext.encode(), self._aad(scope, name))

    def open(self, scope: str, name: str, blob: bytes, key_id: str) -> str:
        key = self._keys.get(key_id)
        if key is None:
            raise VaultError(
                f"secret {scope}/{name} was sealed with key {key_id}, but the vault holds key "
                f"{self.key_id}: set CREDENTIALS_ENCRYPTION_KEY (or {self._key_file}) to the key in use "
                "when it was stored"
            )
        try:
            plaintext = AESGCM(key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], self._aad(scope, name))
        except InvalidTag:
            raise VaultError(
                f"secret {scope}/{name} failed its integrity check: the stored ciphertext was altered "
                "or belongs to another secret; set it again"
            ) from None
        value = plaintext.decode()
        redact.register(value)
        if name.startswith("env@") and value.startswith("{"):  # a deployment's environment: each value too
            with contextlib.suppress(ValueError):
                for key, item in json.loads(value).items():
                    if isinstance(item, str) and key not in PUBLIC_ENV:
                        redact.register(item)
        return value

    # -- secrets ----------------------------------------------------------------------------------

    def put(self, scope: str, name: str, plaintext: str) -> None:
        redact.register(plaintext)
        with self._lock:
            blob = self.seal(scope, name, plaintext)
            self._store.execute(
                "INSERT INTO secrets (scope, name, ciphertext, key_id) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET ciphertext = excluded.ciphertext, "
                "key_id = excluded.key_id, updated_at = now()",
                [scope, name, blob, self.key_id],
            )

    def get(self, scope: str, name: str) -> str:
        row = self._store.fetchone(
            "SELECT ciphertext, key_id FROM secrets WHERE scope = ? AND name = ?", [scope, name]
        )
        if row is None:
            raise NotFound(f"no secret named {name!r} for {scope}")
        return self.open(scope, name, row["ciphertext"], row["key_id"])

    def get_optional(self, scope: str, name: str) -> str | None:
        try:
            return self.get(scope, name)
        except NotFound:
            return None

    def names(self, scope: str) -> list[str]:
        rows = self._store.fetchall("SELECT name FROM secrets WHERE scope = ? ORDER BY name", [scope])
        return [row["name"] for row in rows]

    def delete(self, scope: str, name: str | None = None) -> int:
        """Delete one secret, or every secret of ``scope`` when ``name`` is None. Returns how many."""
        if name is None:
            count = self._store.scalar("SELECT count(*) FROM secrets WHERE scope = ?", [scope])
            self._store.execute("DELETE FROM secrets WHERE scope = ?", [scope])
        else:
            count = self._store.scalar(
                "SELECT count(*) FROM secrets WHERE scope = ? AND name = ?", [scope, name]
            )
            self._store.execute("DELETE FROM secrets WHERE scope = ? AND name = ?", [scope, name])
        return int(count or 0)

    # -- rotation ---------------------------------------------------------------------------------

    def _reseal_all(self, new_key: bytes) -> int:
        new_id = key_fingerprint(new_key)
        with self._store.transaction() as connection:
            rows = connection.execute("SELECT scope, name, ciphertext, key_id FROM secrets").fetchall()
            for scope, name, blob, key_id in rows:
                if key_id == new_id:
                    continue
                plaintext = self.open(scope, name, blob, key_id)
                connection.execute(
                    "UPDATE secrets SET ciphertext = ?, key_id = ?, updated_at = now() "
                    "WHERE scope = ? AND name = ?",
                    [self.seal(scope, name, plaintext, new_key), new_id, scope, name],
                )
        return len(rows)

    def _finish_interrupted_rotation(self, new_key: bytes) -> None:
        self._reseal_all(new_key)
        self._adopt(new_key)

    def _adopt(self, new_key: bytes) -> None:
        self._keys = {key_fingerprint(new_key): new_key}
        self._current = new_key
        if not self._from_env:
            os.replace(self._pending_path, self._key_file)

    def rotate(self) -> RotationResult:
        """Re-encrypt every secret under a new key; afterwards the old key is not needed."""
        with self._lock:
            old_id = self.key_id
            new_key = AESGCM.generate_key(bit_length=256)
            self._keys[key_fingerprint(new_key)] = new_key
            write_private(self._pending_path, new_key.hex())
            count = self._reseal_all(new_key)
            self._adopt(new_key)
        return RotationResult(
            secrets=count,
            old_key_id=old_id,
            new_key_id=self.key_id,
            new_key_path=self._pending_path if self._from_env else None,
        )
