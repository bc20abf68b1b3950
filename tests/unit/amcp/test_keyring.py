"""The keyring file: 0600, refused when others can read it, rotation, reload, no secrets."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from amcp import Keyring, KeyringError

NOW = 1_800_000_000.0


def test_saved_with_mode_0600_and_loaded_back(tmp_path: Path) -> None:
    ring = Keyring.generate()
    path = ring.save(tmp_path / "sub" / "ring.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = Keyring.load(path)
    assert [k.kid for k in loaded.keys] == [k.kid for k in ring.keys]
    assert loaded.keys[0].secret == ring.keys[0].secret


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_refuses_a_keyring_others_can_access(tmp_path: Path, mode: int) -> None:
    path = Keyring.generate().save(tmp_path / "ring.json")
    os.chmod(path, mode)
    with pytest.raises(KeyringError, match="chmod 600"):
        Keyring.load(path)


def test_missing_and_malformed_files_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KeyringError, match="amcp keys new"):
        Keyring.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    os.chmod(bad, 0o600)
    with pytest.raises(KeyringError, match="malformed"):
        Keyring.load(bad)
    bad.write_text(
        json.dumps({"version": 1, "keys": [{"kid": "a", "secret": "c2hvcnQ=", "created_at": 1}]})
    )
    with pytest.raises(KeyringError, match="shorter than 16 bytes"):
        Keyring.load(bad)


def test_secrets_never_appear_in_repr_or_listing() -> None:
    ring = Keyring.generate()
    key = ring.keys[0]
    assert key.secret.hex() not in repr(key)
    info = json.dumps(ring.listing(NOW))
    assert key.secret.hex() not in info and "secret" not in info


def test_rotation_overlaps_old_and_new_keys(tmp_path: Path) -> None:
    ring = Keyring.generate()
    old = ring.keys[0]
    new = ring.rotate(now=old.created_at + 1, activate_after=10, grace=100)
    t = old.created_at + 1
    assert ring.signing_key(t).kid == old.kid  # the new one is still pending
    assert ring.verify_key(new.kid, t) is not None  # but receivers already accept it
    assert ring.signing_key(t + 10).kid == new.kid
    assert ring.verify_key(old.kid, t + 109) is not None
    assert ring.verify_key(old.kid, t + 111) is None
    # one key signs at a time: the newest active one; the older one only verifies
    assert [k["state"] for k in ring.listing(t)] == ["signing", "pending"]
    assert [k["state"] for k in ring.listing(t + 10)] == ["verifying", "signing"]
    assert [k["state"] for k in ring.listing(t + 111)] == ["expired", "signing"]


def test_reload_picks_up_a_rotation_written_by_another_process(tmp_path: Path) -> None:
    path = Keyring.generate().save(tmp_path / "ring.json")
    running = Keyring.load(path)
    assert not running.reload_if_changed()
    other = Keyring.load(path)
    new = other.rotate(activate_after=0)
    other.save()
    later = running._stamp.mtime_ns + 10**9
    os.utime(path, ns=(later, later))
    assert running.reload_if_changed()
    assert new.kid in [k.kid for k in running.keys]
