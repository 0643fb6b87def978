"""The key file: created 0600 on first start, rotation keeps old secrets readable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from shipyard.secrets.keyring import Keyring, SecretKeyError, add_primary_key


def test_key_file_is_created_private(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    Keyring.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_round_trip_and_ciphertext_hides_the_value(tmp_path: Path) -> None:
    ring = Keyring.load_or_create(tmp_path / "secret.key")
    sealed = ring.encrypt("hunter2")
    assert "hunter2" not in sealed and ring.decrypt(sealed) == "hunter2"


def test_rotation_keeps_old_secrets_readable_and_reencrypts(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    old = Keyring.load_or_create(path)
    sealed = old.encrypt("value")
    add_primary_key(path)
    new = Keyring.load_or_create(path)
    assert len(new.keys) == 2 and new.decrypt(sealed) == "value"
    rotated = new.rotate(sealed)
    only_new = Keyring([new.keys[0]])
    assert only_new.decrypt(rotated) == "value"


def test_a_running_keyring_reads_secrets_sealed_after_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    running = Keyring.load_or_create(path)
    add_primary_key(path)
    sealed_by_new_key = Keyring.load_or_create(path).encrypt("value")
    assert running.decrypt(sealed_by_new_key) == "value"


def test_a_different_key_cannot_decrypt(tmp_path: Path) -> None:
    sealed = Keyring.load_or_create(tmp_path / "a.key").encrypt("value")
    with pytest.raises(SecretKeyError, match="restore the key file"):
        Keyring.load_or_create(tmp_path / "b.key").decrypt(sealed)


def test_a_corrupt_key_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    path.write_text("not a key\n")
    with pytest.raises(SecretKeyError, match="not valid"):
        Keyring.load_or_create(path)
