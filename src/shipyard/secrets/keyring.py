"""Secret encryption with a key file kept outside the database.

The key file holds one Fernet key per line; the first encrypts, all of them decrypt, so a key can
be rotated (``shipyard secrets rotate-key``) without losing what older keys encrypted.

The ``cryptography`` package is imported on the first encryption or decryption, not at start:
its bindings add about 6 MB to the resident memory of a server that may never need them. Keys are
still checked when the file is read (a Fernet key is 32 bytes in URL-safe base64), so a damaged
key file stops the start-up as before.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shipyard.errors import ShipyardError

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

FERNET_KEY_BYTES = 32


@dataclass
class SecretKeyError(ShipyardError):
    """The key file is missing, unreadable or cannot decrypt a stored secret."""

    code: str = "secret_key_error"


class Keyring:
    """Encrypts and decrypts secret values with the keys in one key file."""

    def __init__(self, keys: list[bytes], path: Path | None = None) -> None:
        if not keys:
            raise SecretKeyError("the secret key file holds no key")
        for key in keys:
            check_key(key)
        self._multi: MultiFernet | None = None
        self.keys = keys
        self.path = path

    @property
    def _fernet(self) -> MultiFernet:
        if self._multi is None:
            from cryptography.fernet import Fernet, MultiFernet

            self._multi = MultiFernet([Fernet(k) for k in self.keys])
        return self._multi

    @classmethod
    def load_or_create(cls, path: Path) -> Keyring:
        """Read the key file, creating it (mode 0600) with a fresh key on first start."""
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(new_key() + b"\n")
        lines = [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip()]
        try:
            return cls(lines, path)
        except ValueError as exc:
            raise SecretKeyError(f"the secret key file {path} is not valid: {exc}") from exc

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            # `shipyard secrets rotate-key` may have run while this process was up.
            if self._reload():
                return self.decrypt(ciphertext)
            raise SecretKeyError(
                "a stored secret cannot be decrypted with the keys in the key file; "
                "restore the key file that encrypted it"
            ) from exc

    def _reload(self) -> bool:
        """Re-read the key file; True when it now holds keys this keyring did not have."""
        if self.path is None or not self.path.exists():
            return False
        keys = [ln.strip() for ln in self.path.read_bytes().splitlines() if ln.strip()]
        if set(keys) <= set(self.keys):
            return False
        for key in keys:
            check_key(key)
        self.keys, self._multi = keys, None
        return True

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt with the primary key."""
        return self._fernet.rotate(ciphertext.encode()).decode()


def new_key() -> bytes:
    """A fresh Fernet key, as ``Fernet.generate_key()`` makes it."""
    return base64.urlsafe_b64encode(os.urandom(FERNET_KEY_BYTES))


def check_key(key: bytes) -> None:
    """Raise ValueError unless ``key`` is a Fernet key (the check ``Fernet(key)`` makes)."""
    try:
        raw = base64.urlsafe_b64decode(key)
    except (binascii.Error, ValueError):
        raise ValueError("a key is not URL-safe base64") from None
    if len(raw) != FERNET_KEY_BYTES:
        raise ValueError(f"a key must be {FERNET_KEY_BYTES} url-safe base64-encoded bytes")


def add_primary_key(path: Path) -> None:
    """Prepend a new primary key to the key file, keeping the old ones for decryption."""
    old = path.read_bytes() if path.exists() else b""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(new_key() + b"\n" + old)
    tmp.replace(path)


def load_or_create_signing_key(path: Path) -> bytes:
    """32 random bytes for signing JWTs, kept in a 0600 file beside the encryption key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
    key = path.read_text().strip()
    if len(key) < 64:
        raise SecretKeyError(
            f"the signing key file {path} is too short; delete it to make a new one"
        )
    return bytes.fromhex(key)
