"""`amcp keys identity new|list|add|revoke` as a user runs it: files and modes, the roster
it writes, --json, and bad arguments refused in one line with exit 2, changing nothing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from amcp.attest import IdentityVerdict, IdentityVerifier, sign
from amcp.cli.common import EXIT_USAGE
from amcp.identity import Identity
from amcp.roster import Roster
from tests.support.cli import amcp


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    # HOME of the test's own, so the default paths never touch the user's files
    return {**os.environ, "HOME": str(tmp_path), "AMCP_ROSTER": str(tmp_path / "roster.json")}


def _ok(env: dict[str, str], *args: str) -> dict[str, object]:
    done = amcp("keys", "identity", *args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _refused(env: dict[str, str], *args: str) -> str:
    done = amcp("keys", "identity", *args, env=env)
    assert done.returncode == EXIT_USAGE, (done.stdout, done.stderr)
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1, done.stderr
    return done.stderr


def test_new_writes_a_0600_key_and_a_roster_entry_that_verifies(
    tmp_path: Path, env: dict[str, str]
) -> None:
    doc = _ok(env, "new", "s5-a", "--roles", "s5,s1", "--out", str(tmp_path / "k" / "s5-a.json"))
    key = Path(str(doc["path"]))
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
    assert doc["roles"] == ["s1", "s5"] and doc["revoked"] is False
    me = Identity.load(key)
    roster = Roster.load(tmp_path / "roster.json")
    record = {"proposal": "p-1"}
    sig = sign(me, "ballot", record)
    assert (
        IdentityVerifier(roster).verify("ballot", "s5-a", record, sig, role="s5")
        is IdentityVerdict.OK
    )
    assert me.private_key.private_bytes_raw().hex() not in json.dumps(doc)


def test_new_defaults_to_the_identities_folder(tmp_path: Path, env: dict[str, str]) -> None:
    doc = _ok(env, "new", "s1-a")
    assert doc["path"] == str(tmp_path / ".config" / "amcp" / "identities" / "s1-a.json")
    assert stat.S_IMODE(Path(str(doc["path"])).stat().st_mode) == 0o600


def test_add_list_revoke(env: dict[str, str], tmp_path: Path) -> None:
    other = Identity.generate("s3-b")
    public = json.loads(other.save(tmp_path / "o.json").read_text())["public_key"]
    _ok(env, "new", "s5-a", "--roles", "s5")
    added = _ok(env, "add", "s3-b", public, "--roles", "s3")
    assert added["public_key"] == public
    listed = _ok(env, "list")
    assert [(a["id"], a["roles"], a["revoked"]) for a in listed["agents"]] == [  # type: ignore[index, union-attr]
        ("s3-b", ["s3"], False),
        ("s5-a", ["s5"], False),
    ]
    assert _ok(env, "revoke", "s3-b")["changed"] is True
    assert _ok(env, "revoke", "s3-b")["changed"] is False
    assert Roster.load(tmp_path / "roster.json").get("s3-b").revoked  # type: ignore[union-attr]
    human = amcp("keys", "identity", "list", env=env)
    assert human.returncode == 0
    assert "revoked" in human.stdout.splitlines()[1] and "active" in human.stdout.splitlines()[2]


def test_bad_arguments_are_one_line_and_change_nothing(env: dict[str, str], tmp_path: Path) -> None:
    _ok(env, "new", "s5-a", "--roles", "s5")
    roster = tmp_path / "roster.json"
    before = roster.read_bytes()
    assert "unknown role 's9'" in _refused(env, "new", "s9-a", "--roles", "s9")
    assert "already in the roster" in _refused(env, "new", "s5-a", "--out", str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()  # refused before any key file was written
    assert "exists; use --force" in _refused(
        env, "new", "s5-b", "--out", str(tmp_path / ".config/amcp/identities/s5-a.json")
    )
    assert "32 bytes" in _refused(env, "add", "s4-a", "AAAA")
    assert "base64" in _refused(env, "add", "s4-a", "%%%")
    assert "not in the roster" in _refused(env, "revoke", "ghost")
    assert "agent id" in _refused(env, "new", "has space")
    assert "error" in _refused(env, "frobnicate")
    assert roster.read_bytes() == before


def test_a_bad_roster_file_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "roster.json").write_text("{oops")
    assert "malformed" in _refused(env, "list")
    assert "no roster at" in _refused(env, "list", "--roster", str(tmp_path / "none.json"))
