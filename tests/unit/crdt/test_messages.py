"""Replicator messages: every kind round-trips, and anything else is CrdtDecodeError only;
concern arithmetic: two majorities of the same members always share a member."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crdt import CrdtDecodeError, CrdtValueError, WriteConcernError
from crdt.concern import LEVELS, check_level, needed
from crdt.messages import (
    Ack,
    BucketSummary,
    Deltas,
    Hello,
    Pull,
    PullReply,
    SumRequest,
    check_replica_id,
    parse,
)
from crdt.sync import BUCKETS
from tests.support.crdt_garbage import garbage, mutate

H = b"\x01" * 8
EXAMPLES = [
    Deltas("r1", 7, [["k", "gcounter", {"r1": 2}]], 3),
    Deltas("r1", 0, [["k", "gcounter", {"r1": 2}]]),
    Hello("r-2", 1, True, H, 10, False),
    SumRequest("a_b"),
    BucketSummary("r1", 5, False, [H] * BUCKETS),
    Pull("r1", [0, 63], None, {"k": H}),
    Pull("r1", None, ["k", "j"], {}),
    PullReply("r1", True, [["k", "gcounter", {"r1": 2}]], ["j"], True),
    Ack("r1", 9, 4, ["bad"]),
]


@pytest.mark.parametrize("msg", EXAMPLES, ids=lambda m: type(m).__name__)
def test_every_message_round_trips(msg: Any) -> None:
    assert parse(msg.to_wire()) == msg


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_damaged_messages_parse_or_raise_decode_error_only(data: Any) -> None:
    wire = mutate(EXAMPLES[data.draw(st.integers(0, len(EXAMPLES) - 1))].to_wire(), data)
    with contextlib.suppress(CrdtDecodeError):
        parse(wire)


@settings(max_examples=200, deadline=None)
@given(body=garbage)
def test_garbage_raises_decode_error_only(body: Any) -> None:
    with pytest.raises(CrdtDecodeError):
        parse(body)


@pytest.mark.parametrize(
    "body",
    [
        {"op": "pull", "r": "a", "b": [0], "k": ["x"], "g": {}},  # both scopes
        {"op": "pull", "r": "a", "b": None, "k": None, "g": {}},  # neither
        {"op": "pull", "r": "a", "b": [BUCKETS], "k": None, "g": {}},
        {"op": "hello", "r": "a.b", "i": 1, "d": True, "h": H, "n": 1, "bye": False},
        {"op": "hello", "r": "a", "i": 1, "d": 1, "h": H, "n": 1, "bye": False},
        {"op": "summary", "r": "a", "i": 1, "d": True, "s": H},
        {"op": "delta", "r": "a", "i": -1, "d": [], "w": 1},
        {"op": "delta", "r": "a", "i": 1, "d": [], "w": 0, "extra": 1},
        {"op": "delta", "r": "a", "i": 1, "d": [], "w": 0},  # no ack: i and w left off
        {"op": "delta", "r": "a", "i": 1, "d": []},
        {"op": ["delta"], "r": "a"},
    ],
)
def test_specific_malformations_are_refused(body: dict[str, Any]) -> None:
    with pytest.raises(CrdtDecodeError):
        parse(body)


def test_replica_ids_are_subject_tokens() -> None:
    assert check_replica_id("node-1_a") == "node-1_a"
    for bad in ["", "a.b", "a b", "x" * 65, 5, "a*"]:
        with pytest.raises(CrdtValueError):
            check_replica_id(bad)


def test_needed_acks_per_level() -> None:
    table = {n: [needed(level, n) for level in LEVELS] for n in (0, 1, 2, 3, 4, 5)}
    assert table == {
        0: [1, 1, 1, 1],
        1: [1, 1, 1, 1],
        2: [1, 1, 2, 2],
        3: [1, 1, 2, 3],
        4: [1, 1, 3, 4],
        5: [1, 1, 3, 5],
    }
    with pytest.raises(CrdtValueError):
        check_level("quorum")


@given(st.integers(1, 9), st.data())
def test_a_majority_write_and_a_majority_read_always_share_a_member(n: int, data: Any) -> None:
    members = list(range(n))
    k = needed("majority", n)
    writers = data.draw(st.permutations(members))[:k]
    readers = data.draw(st.permutations(members))[:k]
    assert set(writers) & set(readers)


def test_concern_error_carries_acks_and_needed() -> None:
    err = WriteConcernError(1, 2, "majority", 2.0, members=3)
    assert (err.acks, err.needed, err.level, err.members) == (1, 2, "majority", 3)
    # acknowledged, needed and members: "1 of 2" read as if there were two members
    assert str(err) == "1 replica acknowledged, 2 needed (majority of 3 members) within 2s"
