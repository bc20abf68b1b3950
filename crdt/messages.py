"""The replicator's messages: msgpack bodies on `amcp.<cluster>.ctx.*`, built and strictly
parsed here, with no I/O. Every body is a map with an `op`; `parse` raises CrdtDecodeError
(only) on anything else, and the replicator counts it. Records (`[key, type_tag, wire]`)
are checked one by one when applied, so one bad record does not spoil a batch.
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

from crdt.errors import CrdtDecodeError, CrdtError, CrdtValueError
from crdt.sync import BUCKETS, HASH_BYTES
from crdt.wire import as_array, as_map, as_name

__all__ = [
    "Ack",
    "BucketSummary",
    "CtxMessage",
    "Deltas",
    "Hello",
    "Pull",
    "PullReply",
    "SumRequest",
    "check_replica_id",
    "parse",
]

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MAX_ID = (1 << 63) - 1


def check_replica_id(value: Any, error: type[CrdtError] = CrdtValueError) -> str:
    """A replica id: 1-64 letters, digits, '-' or '_' (it names the replica's subject)."""
    if type(value) is not str or not _TOKEN.fullmatch(value):
        raise error(f"replica id must be 1-64 letters, digits, '-' or '_', not {value!r}")
    return value


def _uint(value: Any, what: str) -> int:
    if type(value) is not int or not 0 <= value <= _MAX_ID:
        raise CrdtDecodeError(f"{what} must be an integer in [0, 2**63)")
    return value


def _flag(value: Any, what: str) -> bool:
    if type(value) is not bool:
        raise CrdtDecodeError(f"{what} must be a boolean")
    return value


def _hash(value: Any, what: str) -> bytes:
    if type(value) is not bytes or len(value) != HASH_BYTES:
        raise CrdtDecodeError(f"{what} must be {HASH_BYTES} bytes")
    return value


def _names(value: Any, what: str) -> list[str]:
    return [as_name(item, what) for item in as_array(value, what)]


def _records(value: Any) -> list[Any]:
    return list(as_array(value, "records"))


class Deltas(NamedTuple):
    """Delta records from a replica: a batch on the shared subject, a retry or an
    anti-entropy push on a replica's own subject. `wid` > 0 asks durable replicas to
    acknowledge once the records are on disk, quoting `instance`; without it both are
    left off the wire (read back as 0), since a lone small delta is mostly overhead."""

    sender: str
    instance: int
    records: list[Any]
    wid: int = 0

    def to_wire(self) -> dict[str, Any]:
        if not self.wid:
            return {"op": "delta", "r": self.sender, "d": self.records}
        return {
            "op": "delta",
            "r": self.sender,
            "i": self.instance,
            "d": self.records,
            "w": self.wid,
        }


class Hello(NamedTuple):
    """A replica's periodic announcement: who it is, whether it is durable, and the top
    hash of its state (a peer with another top starts anti-entropy). `bye` on close."""

    sender: str
    instance: int
    durable: bool
    top: bytes
    keys: int
    bye: bool = False

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "hello",
            "r": self.sender,
            "i": self.instance,
            "d": self.durable,
            "h": self.top,
            "n": self.keys,
            "bye": self.bye,
        }


class SumRequest(NamedTuple):
    """Ask a replica (or any replica of a boot queue group) for its bucket hashes."""

    sender: str

    def to_wire(self) -> dict[str, Any]:
        return {"op": "sum", "r": self.sender}


class BucketSummary(NamedTuple):
    """A replica's BUCKETS bucket hashes."""

    sender: str
    instance: int
    durable: bool
    buckets: list[bytes]

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "summary",
            "r": self.sender,
            "i": self.instance,
            "d": self.durable,
            "s": b"".join(self.buckets),
        }


class Pull(NamedTuple):
    """Ask for the states of keys held differently, over whole buckets or named keys;
    `digests` are the puller's digests of the keys it holds in that scope."""

    sender: str
    buckets: list[int] | None
    keys: list[str] | None
    digests: dict[str, bytes]

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "pull",
            "r": self.sender,
            "b": self.buckets,
            "k": self.keys,
            "g": self.digests,
        }


class PullReply(NamedTuple):
    """Full states of the keys held differently, keys wanted back, and `more` when the
    byte budget cut the answer short."""

    sender: str
    durable: bool
    records: list[Any]
    want: list[str]
    more: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "op": "pulled",
            "r": self.sender,
            "d": self.durable,
            "s": self.records,
            "w": self.want,
            "m": self.more,
        }


class Ack(NamedTuple):
    """A durable replica holds the records of write `wid` on disk; `bad` are keys it
    refused (wrong type, malformed), which it does not hold."""

    sender: str
    instance: int  # the writer's instance, so a restarted writer ignores old acks
    wid: int
    bad: list[str]

    def to_wire(self) -> dict[str, Any]:
        return {"op": "ack", "r": self.sender, "i": self.instance, "w": self.wid, "bad": self.bad}


CtxMessage = Deltas | Hello | SumRequest | BucketSummary | Pull | PullReply | Ack


def _deltas(b: dict[Any, Any], r: str) -> Deltas:
    wid = _uint(b["w"], "write id")
    if not wid:
        raise CrdtDecodeError("a delta without an ack request leaves out `i` and `w`")
    return Deltas(r, _uint(b["i"], "instance"), _records(b["d"]), wid)


def _unacked(b: dict[Any, Any], r: str) -> Deltas:
    return Deltas(r, 0, _records(b["d"]))


def _hello(b: dict[Any, Any], r: str) -> Hello:
    return Hello(
        r,
        _uint(b["i"], "instance"),
        _flag(b["d"], "durable"),
        _hash(b["h"], "top hash"),
        _uint(b["n"], "key count"),
        _flag(b["bye"], "bye"),
    )


def _summary(b: dict[Any, Any], r: str) -> BucketSummary:
    packed = b["s"]
    if type(packed) is not bytes or len(packed) != BUCKETS * HASH_BYTES:
        raise CrdtDecodeError(f"summary must be {BUCKETS * HASH_BYTES} bytes")
    buckets = [packed[i : i + HASH_BYTES] for i in range(0, len(packed), HASH_BYTES)]
    return BucketSummary(r, _uint(b["i"], "instance"), _flag(b["d"], "durable"), buckets)


def _pull(b: dict[Any, Any], r: str) -> Pull:
    buckets = b["b"]
    keys = b["k"]
    if (buckets is None) == (keys is None):
        raise CrdtDecodeError("a pull names buckets or keys, exactly one of them")
    if buckets is not None:
        buckets = list(as_array(buckets, "buckets"))
        if not all(type(x) is int and 0 <= x < BUCKETS for x in buckets):
            raise CrdtDecodeError(f"buckets must be integers in [0, {BUCKETS})")
    if keys is not None:
        keys = _names(keys, "pull key")
    digests = {
        as_name(key, "digest key"): _hash(value, "digest")
        for key, value in as_map(b["g"], "digests").items()
    }
    return Pull(r, buckets, keys, digests)


def _pulled(b: dict[Any, Any], r: str) -> PullReply:
    return PullReply(
        r,
        _flag(b["d"], "durable"),
        _records(b["s"]),
        _names(b["w"], "wanted key"),
        _flag(b["m"], "more"),
    )


def _ack(b: dict[Any, Any], r: str) -> Ack:
    return Ack(r, _uint(b["i"], "instance"), _uint(b["w"], "write id"), _names(b["bad"], "key"))


_UNACKED = frozenset({"op", "r", "d"})
_PARSERS = {
    "delta": (frozenset({"op", "r", "i", "d", "w"}), _deltas),
    "hello": (frozenset({"op", "r", "i", "d", "h", "n", "bye"}), _hello),
    "sum": (frozenset({"op", "r"}), lambda b, r: SumRequest(r)),
    "summary": (frozenset({"op", "r", "i", "d", "s"}), _summary),
    "pull": (frozenset({"op", "r", "b", "k", "g"}), _pull),
    "pulled": (frozenset({"op", "r", "d", "s", "w", "m"}), _pulled),
    "ack": (frozenset({"op", "r", "i", "w", "bad"}), _ack),
}


def parse(body: Any) -> CtxMessage:
    """The message `body` encodes; CrdtDecodeError if it is not exactly one of them."""
    if type(body) is not dict:
        raise CrdtDecodeError("a ctx message must be a map")
    op = body.get("op")
    entry = _PARSERS.get(op) if type(op) is str else None
    if entry is None:
        raise CrdtDecodeError(f"unknown ctx op {op!r}")
    keys, parser = entry
    if op == "delta" and body.keys() == _UNACKED:
        keys, parser = _UNACKED, _unacked
    if body.keys() != keys:
        raise CrdtDecodeError(f"a {body['op']} message must have exactly the keys {sorted(keys)}")
    return parser(body, check_replica_id(body["r"], CrdtDecodeError))
