"""Delta-state CRDTs with hybrid logical clock timestamps, a replica container and a
durable store (pure cores), and ContextStore: those CRDTs replicated over the Bus, durable,
with write and read concerns."""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from crdt.base import Crdt
    from crdt.causal import CausalContext
    from crdt.concern import LEVELS, Level, WriteResult
    from crdt.errors import (
        ClockDriftError,
        ConcernError,
        CorruptStoreError,
        CrdtDecodeError,
        CrdtError,
        CrdtTypeMismatch,
        CrdtValueError,
        PersistenceError,
        ReadConcernError,
        WriteConcernError,
    )
    from crdt.gcounter import GCounter
    from crdt.hlc import HybridClock, Timestamp
    from crdt.lwwmap import LWWMap
    from crdt.lwwregister import LWWRegister
    from crdt.orset import ORSet
    from crdt.persistence import Recovered, ReplicaStore
    from crdt.pncounter import PNCounter
    from crdt.state import TYPES, Delta, ReplicaState
    from crdt.store import ContextStore, Watch

# Each name loads its module on first use (PEP 562): a command line that imports one
# module of this package does not pay for all the others.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "base": ["Crdt"],
        "causal": ["CausalContext"],
        "concern": ["LEVELS", "Level", "WriteResult"],
        "errors": [
            "ClockDriftError",
            "ConcernError",
            "CorruptStoreError",
            "CrdtDecodeError",
            "CrdtError",
            "CrdtTypeMismatch",
            "CrdtValueError",
            "PersistenceError",
            "ReadConcernError",
            "WriteConcernError",
        ],
        "gcounter": ["GCounter"],
        "hlc": ["HybridClock", "Timestamp"],
        "lwwmap": ["LWWMap"],
        "lwwregister": ["LWWRegister"],
        "orset": ["ORSet"],
        "persistence": ["Recovered", "ReplicaStore"],
        "pncounter": ["PNCounter"],
        "state": ["TYPES", "Delta", "ReplicaState"],
        "store": ["ContextStore", "Watch"],
    },
)

__all__ = [
    "LEVELS",
    "TYPES",
    "CausalContext",
    "ClockDriftError",
    "ConcernError",
    "ContextStore",
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
    "Level",
    "ORSet",
    "PNCounter",
    "PersistenceError",
    "ReadConcernError",
    "Recovered",
    "ReplicaState",
    "ReplicaStore",
    "Timestamp",
    "Watch",
    "WriteConcernError",
    "WriteResult",
]
