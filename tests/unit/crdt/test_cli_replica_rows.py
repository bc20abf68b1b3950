"""`amcp ctx replicas` rows: live when announcing, stopped when the record says so, else
silent, with the seconds since the stop or the last sign of life on record."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from crdt.cli import replica_rows

NOW = 1_800_000_000_000


def test_live_stopped_silent_and_announcing_non_members() -> None:
    records = {
        "a": {"joined_ms": NOW - 50_000},
        "b": {"joined_ms": NOW - 90_000, "stopped_ms": NOW - 12_000},
        "c": {"joined_ms": NOW - 900_000, "seen_ms": NOW - 75_000},
        "d": "not a record",
    }
    rows = {r["id"]: r for r in replica_rows(records, ["a", "ctx-1"], NOW)}
    assert rows["a"] == {"id": "a", "member": True, "state": "live", "seconds": None}
    assert rows["b"]["state"] == "stopped" and rows["b"]["seconds"] == 12
    assert rows["c"]["state"] == "silent" and rows["c"]["seconds"] == 75  # the renewal, not join
    assert rows["d"]["state"] == "silent" and rows["d"]["seconds"] is None
    assert rows["ctx-1"] == {"id": "ctx-1", "member": False, "state": "live", "seconds": None}


@given(
    st.dictionaries(
        st.sampled_from("abcdef"), st.fixed_dictionaries({"joined_ms": st.integers(0, NOW)})
    ),
    st.lists(st.sampled_from("abcdefgh"), unique=True),
)
def test_every_member_and_announcer_has_one_row(records, announcing) -> None:
    rows = replica_rows(records, sorted(announcing), NOW)
    assert [r["id"] for r in rows] == sorted(set(records) | set(announcing))
    for r in rows:
        assert (r["state"] == "live") == (r["id"] in announcing)
        assert r["seconds"] is None or r["seconds"] >= 0
