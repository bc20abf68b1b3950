"""The decision log: decisions, execution claims and the voter roll, in the shared context.

Everything lives in crdt's ContextStore, so every replica (every agent, every proposer)
reads the same log, and the log is also how the protocol announces: writing a decision
replicates it to every member (and anti-entropy repairs a lost delta), so voters learn the
end of their leases and executors their work from a watch on it; an executor's execution
record is its acknowledgement. (A decision nobody waits on may linger a few ms to share
its frame: `record(linger=)`, chosen by the Coordinator.)

    consensus.decision.<h>   LWW register: the Decided record of proposal id p
    consensus.execution.<h>  LWW register: the Execution (claim, then outcome) of p
    agents.members           LWW map (written by the agent runtime): member id -> record;
                             members with `voter: true` are the voters, and
                             `extra.executes` maps action -> tool for declared executors

where <h> is a hash of the proposal id (ids may be longer than a key or hold any
character). Records are stored as their msgpack bytes: an opaque value costs the replicas
nothing to normalize, and a payload may nest deeper than the CRDT value domain allows. A
record that does not decode is ignored and logged, never trusted.

Retention (DecisionRetention): every record is an expiring register, dropped by every
replica `horizon_s` after it was written, and each replica keeps at most `max_records`
decisions and as many executions (the ones that expire first go). Within that horizon a
repeated proposal id gets its first decision back and a member that was cut off learns
what it missed; after it, the id is free again (docs/CONSENSUS.md, "Retention").

Every reader here sees only records that may be used (consensus.signatures): a decision
whose outcome follows from its ballots; and given a `verifier` (the bus's: identities on)
from those whose identity signatures verify, an execution only if signed by its executor,
a member only if its record is signed by the member it names in a role the roster grants
it, and a voter only if the roster also grants it VOTER_ROLE. The others are skipped and
counted in `refused` as `<kind>_<reason>`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

import msgpack

import consensus._validate as check
from amcp.attest import IdentityVerdict, IdentityVerifier
from consensus.errors import ConsensusDecodeError, ConsensusError
from consensus.messages import Decided, Execution, Executor
from consensus.signatures import (
    VOTER_NOT_GRANTED,
    VOTER_ROLE,
    check_execution,
    check_member,
    refusal,
)
from crdt.concern import Level, WriteResult
from crdt.store import ContextStore, Watch
from crdt.wire import pack

__all__ = [
    "DECISION_PREFIX",
    "EXECUTION_PREFIX",
    "HORIZON_ENV",
    "MAX_RECORDS_ENV",
    "VOTERS_KEY",
    "VOTER_ROLE",
    "DecisionLog",
    "DecisionRetention",
    "Roll",
    "decision_key",
    "default_concern",
    "execution_key",
]

log = logging.getLogger("amcp.consensus")

DECISION_PREFIX = "consensus.decision."
EXECUTION_PREFIX = "consensus.execution."
VOTERS_KEY = "agents.members"
"""The agent runtime's member map (agents.runtime.membership.MEMBERS_KEY; consensus cannot import
agents, so the key is this shared constant, checked equal by a test)."""

R = TypeVar("R", Decided, Execution)

HORIZON_ENV = "AMCP_DECISION_HORIZON"
MAX_RECORDS_ENV = "AMCP_DECISION_MAX"


@dataclass(frozen=True, kw_only=True)
class DecisionRetention:
    """How long (`horizon_s`, from each record's write) and how many (`max_records`
    decisions, and as many executions, per replica) the decision log keeps. Configure
    every member alike; the defaults come from AMCP_DECISION_HORIZON (seconds) and
    AMCP_DECISION_MAX when set (see `from_env`). The horizon should stay well above the
    longest vote timeout plus the execution budget."""

    horizon_s: float = 3600.0
    max_records: int = 10_000

    def __post_init__(self) -> None:
        check.positive("horizon_s", self.horizon_s)
        if self.horizon_s > 10 * 365 * 86400:
            raise ConsensusError("horizon_s must be at most ten years")
        check.integer("max_records", self.max_records, 1, 2**31)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DecisionRetention:
        """The defaults, overridden by AMCP_DECISION_HORIZON and AMCP_DECISION_MAX."""
        env = os.environ if environ is None else environ
        options: dict[str, Any] = {}
        try:
            if env.get(HORIZON_ENV):
                options["horizon_s"] = float(env[HORIZON_ENV])
            if env.get(MAX_RECORDS_ENV):
                options["max_records"] = int(env[MAX_RECORDS_ENV])
        except ValueError as exc:
            raise ConsensusError(f"{HORIZON_ENV} / {MAX_RECORDS_ENV}: {exc}") from None
        return cls(**options)


def _key(prefix: str, proposal_id: str) -> str:
    return prefix + hashlib.sha256(proposal_id.encode()).hexdigest()[:40]


def decision_key(proposal_id: str) -> str:
    """The log key of the decision on `proposal_id`."""
    return _key(DECISION_PREFIX, proposal_id)


def execution_key(proposal_id: str) -> str:
    """The log key of the execution of `proposal_id`."""
    return _key(EXECUTION_PREFIX, proposal_id)


@dataclass(frozen=True)
class Roll:
    """Who votes (sorted ids) and who executes each declared action."""

    voters: tuple[str, ...]
    executors: Mapping[str, Executor]


def default_concern(store: ContextStore) -> Level:
    """Majority of the durable replicas when there are any, else local (a cluster of
    in-memory replicas has nowhere durable to put a record)."""
    return "majority" if store.members() else "local"


class DecisionLog:
    """Reads and writes the consensus records of one ContextStore replica, and sets the
    replica's retention of them (`retention`, default DecisionRetention.from_env()).
    With a `verifier` its readers see only identity-verified records (module docstring)."""

    def __init__(
        self,
        store: ContextStore,
        retention: DecisionRetention | None = None,
        verifier: IdentityVerifier | None = None,
    ) -> None:
        self.store = store
        self.retention = DecisionRetention.from_env() if retention is None else retention
        self.verifier = verifier
        self.refused: Counter[str] = Counter()
        self._refused_members: dict[str, object] = {}  # id -> (reason, record) last counted
        for prefix in (DECISION_PREFIX, EXECUTION_PREFIX):
            store.limit(prefix, self.retention.max_records)

    # -- decisions and executions -------------------------------------------------------

    def decided(self, proposal_id: str) -> Decided | None:
        """The recorded decision on `proposal_id`, if this replica holds one."""
        return self._read(decision_key(proposal_id), Decided, proposal_id)

    def execution(self, proposal_id: str) -> Execution | None:
        """The recorded execution of `proposal_id`, if this replica holds one."""
        return self._read(execution_key(proposal_id), Execution, proposal_id)

    async def record(
        self, decided: Decided, *, write: Level, timeout: float, linger: float = 0.0
    ) -> WriteResult:
        """Keep `decided`; returns once `write` replicas hold it (WriteConcernError if not).
        `linger`: see ContextStore.set (the others may learn it that much later)."""
        key = decision_key(decided.id)
        return await self.store.set(
            key,
            pack(decided.to_wire()),
            write=write,
            timeout=timeout,
            ttl=self.retention.horizon_s,
            linger=linger,
        )

    async def record_execution(
        self, execution: Execution, *, write: Level, timeout: float
    ) -> WriteResult:
        key = execution_key(execution.proposal_id)
        return await self.store.set(
            key,
            pack(execution.to_wire()),
            write=write,
            timeout=timeout,
            ttl=self.retention.horizon_s,
        )

    def watch_decisions(
        self, callback: Callable[[Decided], object], wanted: Callable[[str], bool] | None = None
    ) -> Watch:
        """Call `callback(decided)` for each decision this replica learns or records;
        `wanted(key)` picks the records worth decoding (see decision_key)."""
        return self._watch(DECISION_PREFIX, Decided, callback, wanted)

    def watch_executions(
        self, callback: Callable[[Execution], object], wanted: Callable[[str], bool] | None = None
    ) -> Watch:
        """Call `callback(execution)` for each execution claim or outcome this replica
        learns or records; `wanted(key)` as for watch_decisions (see execution_key)."""
        return self._watch(EXECUTION_PREFIX, Execution, callback, wanted)

    def _watch(
        self,
        prefix: str,
        kind: type[R],
        callback: Callable[[R], object],
        wanted: Callable[[str], bool] | None,
    ) -> Watch:
        def on_change(key: str, value: Any) -> object:
            decoded = _decode(value, kind, key)
            if decoded is None and value is not None:  # counted once a change, not a read
                self.refused[f"{_KIND_NAMES[kind]}_malformed"] += 1
            record = self._checked(decoded)
            return None if record is None else callback(record)

        return self.store.watch(prefix, on_change, wanted=wanted)

    async def all_decided(self) -> list[Decided]:
        """Every decision this replica holds (for an executor catching up after a restart)."""
        values = await self.store.dump()
        found = (_decode(v, Decided, k) for k, v in values.items() if k.startswith(DECISION_PREFIX))
        return [d for d in map(self._checked, found) if d is not None]

    # -- the voter roll -----------------------------------------------------------------

    def roll(self) -> Roll:
        """The voters and declared executors, from one read of the member map."""
        value = self.store.local(VOTERS_KEY)
        members = value if isinstance(value, Mapping) else {}
        voters: list[str] = []
        executors: dict[str, Executor] = {}
        for agent, record in sorted(members.items()):
            if not isinstance(record, Mapping):
                continue
            counts, votes = self._member(agent, record)
            if not counts:
                continue
            if votes:
                voters.append(agent)
            extra = record.get("extra")
            executes = extra.get("executes") if isinstance(extra, Mapping) else None
            for action, tool in executes.items() if isinstance(executes, Mapping) else ():
                if isinstance(tool, str) and tool and isinstance(action, str):
                    executors.setdefault(action, Executor(agent, tool))
        return Roll(tuple(voters), MappingProxyType(executors))

    def watch_roll(self, callback: Callable[[], object]) -> Watch:
        """Call `callback()` whenever the member map changes on this replica."""
        return self.store.watch(VOTERS_KEY, lambda *_: callback())

    def voters(self) -> list[str]:
        """The registered voters, sorted: members whose record says `voter`, crashed ones
        included, until they leave or are removed. Majorities are counted over these."""
        return list(self.roll().voters)

    def executor_for(self, action: str) -> Executor | None:
        """The executor declared for `action`: the member (lowest id first, if several
        declare it) whose `extra.executes` names a tool for it."""
        return self.roll().executors.get(action)

    # -- internals ----------------------------------------------------------------------

    def _member(self, agent: str, record: Mapping[str, Any]) -> tuple[bool, bool]:
        """Whether a member record counts, and as a voter: with identities on, only if
        signed by the member it names in a role the roster grants it, and a voter only if
        the roster also grants VOTER_ROLE. A refusal is counted once per record."""
        reason = check_member(self.verifier, agent, record)
        counts = reason is None or reason == VOTER_NOT_GRANTED
        voter = reason is None and record.get("voter") is True
        if reason is None:
            self._refused_members.pop(agent, None)
        elif self._refused_members.get(agent) != (reason, record):  # not at every read
            self._refused_members[agent] = (reason, record)
            self.refused[f"member_{reason}"] += 1
        return counts, voter

    def _checked(self, record: R | None) -> R | None:
        """`record` if it may be used, else None (counted): a decision that follows from
        its (verified) ballots, an execution its executor signed (when checked)."""
        if record is None:
            return None
        if isinstance(record, Decided):
            reason = refusal(self.verifier, record)
        else:
            verdict = check_execution(self.verifier, record)
            reason = None if verdict is IdentityVerdict.OK else f"identity_{verdict}"
        kind = _KIND_NAMES[type(record)]
        if reason is None:
            return record
        self.refused[f"{kind}_{reason}"] += 1
        log.debug("refused a %s record on %s: %s", kind, _record_id(record), reason)
        return None

    def _read(self, key: str, kind: type[R], proposal_id: str) -> R | None:
        record = self._checked(_decode(self.store.local(key), kind, key))
        if record is None:
            return None
        if _record_id(record) != proposal_id:  # a hash collision, in theory: another's
            return None
        return record


_KIND_NAMES: dict[type, str] = {Decided: "decision", Execution: "execution"}


def _record_id(record: Decided | Execution) -> str:
    return record.id if isinstance(record, Decided) else record.proposal_id


def _decode(value: Any, kind: type[R], key: str) -> R | None:
    if value is None:
        return None
    try:
        if not isinstance(value, bytes):
            raise ConsensusDecodeError(f"expected msgpack bytes, got {type(value).__name__}")
        try:
            data = msgpack.unpackb(value, raw=False, strict_map_key=True)
        except Exception as exc:  # msgpack raises several types on bad input
            raise ConsensusDecodeError(f"not msgpack: {exc}") from None
        return kind.from_wire(data)
    except ConsensusDecodeError as exc:
        log.warning("ignored a bad consensus record at %s: %s", key, exc)
        return None
