"""An agent's key file: 0600, refused when others can read it, clear errors, no seed in repr."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from amcp.errors import IdentityError, KeyringError
from amcp.identity import Identity, check_agent_id, verify_signature


def test_save_load_round_trip_keeps_the_key(tmp_path: Path) -> None:
    me = Identity.generate("s5-a")
    path = me.save(tmp_path / "ids" / "s5-a.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    back = Identity.load(path)
    assert back.agent_id == "s5-a"
    assert back.public_key == me.public_key
    assert verify_signature(me.public_key, back.sign(b"x"), b"x")


def test_the_seed_never_shows_in_repr() -> None:
    me = Identity.generate("s1-a")
    seed = me.private_key.private_bytes_raw()
    assert seed.hex() not in repr(me) and "private_key" not in repr(me)


def test_refuses_a_file_others_can_read(tmp_path: Path) -> None:
    path = Identity.generate("a").save(tmp_path / "a.json")
    os.chmod(path, 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        Identity.load(path)


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(IdentityError, match="amcp keys identity new"):
        Identity.load(tmp_path / "none.json")


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b'{"version": 2, "id": "a", "seed": "AA=="}',
        b'{"version": 1, "id": "a"}',
        b'{"version": 1, "id": "a", "seed": "!!"}',
        b'{"version": 1, "id": "a", "seed": "AAAA"}',  # 3 bytes, not 32
        b'{"version": 1, "id": "", "seed": "' + b"A" * 43 + b'="}',
        b"[1, 2]",
    ],
)
def test_malformed_files_are_one_clear_error(tmp_path: Path, doc: bytes) -> None:
    path = tmp_path / "bad.json"
    path.write_bytes(doc)
    os.chmod(path, 0o600)
    with pytest.raises(IdentityError) as info:
        Identity.load(path)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, KeyringError)  # the CLI's exit 2 for key material


def test_a_public_key_that_disagrees_with_the_seed_is_refused(tmp_path: Path) -> None:
    path = Identity.generate("a").save(tmp_path / "a.json")
    doc = json.loads(path.read_text())
    doc["public_key"] = json.loads(Identity.generate("b").save(tmp_path / "b.json").read_text())[
        "public_key"
    ]
    path.write_text(json.dumps(doc))
    with pytest.raises(IdentityError, match="does not match"):
        Identity.load(path)


@pytest.mark.parametrize("bad", ["", "a b", "x" * 129, "tab\there", "nl\n"])
def test_agent_ids_print_on_one_line(bad: str) -> None:
    with pytest.raises(IdentityError):
        check_agent_id(bad)


def test_verify_signature_never_raises_on_junk() -> None:
    me = Identity.generate("a")
    assert not verify_signature(me.public_key, b"\x00" * 64, b"x")
    assert not verify_signature(b"short", me.sign(b"x"), b"x")
    assert not verify_signature(me.public_key, b"short", b"x")
