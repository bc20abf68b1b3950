"""The roster file: round trip, atomic 0644 writes, reload on change (revocation without
restart), clear errors for bad files, and the last good copy kept when a reload fails."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from amcp.errors import IdentityError
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry, parse_roles


def _entry(agent_id: str, roles: str = "s5") -> RosterEntry:
    return RosterEntry(agent_id, Identity.generate(agent_id).public_key, parse_roles(roles))


def _touch_later(path: Path, roster: Roster) -> None:
    # as the keyring tests do: a write within the same mtime tick still counts as a change
    ns = roster._stamp.mtime_ns + 10**9
    os.utime(path, ns=(ns, ns))


def test_save_load_round_trip(tmp_path: Path) -> None:
    roster = Roster([_entry("s5-a"), _entry("s1-a", "s1,s3")])
    path = roster.save(tmp_path / "roster.json")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    back = Roster.load(path)
    assert back.entries == roster.entries
    assert back.get("s1-a").roles == frozenset({"s1", "s3"})  # type: ignore[union-attr]
    assert [p.name for p in tmp_path.iterdir()] == ["roster.json"]  # no temp file left


def test_reload_picks_up_a_revocation_written_by_another_process(tmp_path: Path) -> None:
    path = Roster([_entry("s5-a"), _entry("s5-b")]).save(tmp_path / "roster.json")
    running = Roster.load(path)
    assert not running.reload_if_changed()
    operator = Roster.load(path)
    assert operator.revoke("s5-b")
    operator.save()
    _touch_later(path, running)
    assert running.reload_if_changed()
    assert running.get("s5-b").revoked  # type: ignore[union-attr]
    assert not running.get("s5-a").revoked  # type: ignore[union-attr]


def test_a_broken_reload_raises_and_keeps_the_entries_in_force(tmp_path: Path) -> None:
    path = Roster([_entry("s5-a")]).save(tmp_path / "roster.json")
    running = Roster.load(path)
    path.write_text("{broken")
    _touch_later(path, running)
    with pytest.raises(IdentityError, match="malformed"):
        running.reload_if_changed()
    assert running.get("s5-a") is not None


def test_add_refuses_a_known_id_even_revoked() -> None:
    roster = Roster([_entry("a")])
    roster.revoke("a")
    with pytest.raises(IdentityError, match="already in the roster"):
        roster.add(_entry("a"))
    assert not roster.revoke("a")  # already revoked: no change
    with pytest.raises(IdentityError, match="not in the roster"):
        roster.revoke("ghost")


def test_refuses_a_file_others_can_write(tmp_path: Path) -> None:
    path = Roster([_entry("a")]).save(tmp_path / "roster.json")
    os.chmod(path, 0o666)
    with pytest.raises(IdentityError, match="chmod 644"):
        Roster.load(path)


KEY = "A" * 43 + "="  # 32 zero bytes


@pytest.mark.parametrize(
    "doc",
    [
        "nope",
        {"version": 9, "agents": []},
        {"version": 1},
        {"version": 1, "agents": [{"id": "a", "public_key": "AAAA"}]},
        {"version": 1, "agents": [{"id": "a", "public_key": "%%"}]},
        {"version": 1, "agents": [{"id": "a", "public_key": KEY, "roles": ["s9"]}]},
        {"version": 1, "agents": [{"id": "a", "public_key": KEY, "roles": "s1"}]},
        {"version": 1, "agents": [{"id": "a", "public_key": KEY, "revoked": "no"}]},
        {"version": 1, "agents": [{"id": "a b", "public_key": KEY}]},
        {"version": 1, "agents": [{"id": "a", "public_key": KEY}] * 2},
    ],
)
def test_malformed_rosters_are_one_clear_error(tmp_path: Path, doc: object) -> None:
    path = tmp_path / "roster.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(IdentityError, match="malformed") as info:
        Roster.load(path)
    assert "\n" not in str(info.value)


def test_parse_roles() -> None:
    assert parse_roles("S1, s5,") == frozenset({"s1", "s5"})
    assert parse_roles("") == frozenset()
    with pytest.raises(IdentityError, match="unknown role 'admin'"):
        parse_roles("s1,admin")


def test_generation_counts_every_change_of_the_entries(tmp_path: Path) -> None:
    one = Identity.from_seed("s5-g", bytes(32))
    roster = Roster()
    start = roster.generation
    roster.add(RosterEntry(one.agent_id, one.public_key, frozenset({"s5"})))
    assert roster.generation == start + 1
    assert roster.revoke(one.agent_id) and roster.generation == start + 2
    assert not roster.revoke(one.agent_id) and roster.generation == start + 2  # no change
    path = roster.save(tmp_path / "roster.json")
    reader = Roster.load(path)
    before = reader.generation
    assert not reader.reload_if_changed() and reader.generation == before
