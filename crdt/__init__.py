"""Delta-state CRDTs with hybrid logical clock timestamps, a replica container and a
durable store. Pure cores: no network, no asyncio; the replicator moves the bytes."""

from crdt.base import Crdt
from crdt.causal import CausalContext
from crdt.errors import (
    ClockDriftError,
    CorruptStoreError,
    CrdtDecodeError,
    CrdtError,
    CrdtTypeMismatch,
    CrdtValueError,
    PersistenceError,
)
from crdt.gcounter import GCounter
from crdt.hlc import HybridClock, Timestamp
from crdt.lwwmap import LWWMap
from crdt.lwwregister import LWWRegister
from crdt.orset import ORSet
from crdt.persistence import Recovered, ReplicaStore
from crdt.pncounter import PNCounter
from crdt.state import TYPES, Delta, ReplicaState

__all__ = [
    "TYPES",
    "CausalContext",
    "ClockDriftError",
    "CorruptStoreError",
    "Crdt",
    "CrdtDecodeError",
    "CrdtError",
    "CrdtTypeMismatch",
    "CrdtValueError",
    "Delta",
    "GCounter",
    "HybridClock",
    "LWWMap",
    "LWWRegister",
    "ORSet",
    "PNCounter",
    "PersistenceError",
    "Recovered",
    "ReplicaState",
    "ReplicaStore",
    "Timestamp",
]
