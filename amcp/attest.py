"""Identity signatures on records (pure, no I/O): an agent's Ed25519 signature over the
canonical bytes of a record, bound to the signer's id and to the record's type, so a
ballot's signature never verifies as a decision's, nor one agent's as another's. Checked
against the roster; a failure is a reason, counted, never an exception.

Signing input (docs/PROTOCOL.md, "Identity signatures"):
    canonical msgpack of ["amcp-id1", record_type, signer_id, record]
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Literal, get_args

import msgspec

from amcp.identity import Identity, verify_signature
from amcp.roster import Roster
from amcp.speedups import compiled

__all__ = [
    "BATCH",
    "DOMAIN",
    "PROPOSAL",
    "RECORD_TYPES",
    "SIG",
    "IdentityVerdict",
    "IdentityVerifier",
    "RecordType",
    "sign",
    "sign_batch",
    "sign_record",
    "signing_input",
    "unsigned",
]

DOMAIN = "amcp-id1"
RecordType = Literal["ballot", "decision", "execution", "audit", "member", "result"]
RECORD_TYPES: tuple[str, ...] = get_args(RecordType)
BATCH = "batch"  # the record type of one signature over several records of one signer
# The record type of a proposal's digest, which each ballot on it carries (so a ballot
# counts only for the proposal its voter judged); a digest, never signed on its own.
PROPOSAL = "proposal"
MAX_DEPTH = 32  # as a frame body's
SIG = "sig"  # the key of a map-shaped record that holds its signature

# Sorted map keys and shortest headers make the bytes a function of the value alone, so
# a verifier re-encodes the record it received and gets the signer's bytes back.
_canonical = msgspec.msgpack.Encoder(order="sorted").encode


class IdentityVerdict(StrEnum):
    """The outcome of a verification: `ok`, or why the record does not count."""

    OK = "ok"
    UNKNOWN_SIGNER = "unknown_signer"
    REVOKED = "revoked"
    ROLE_NOT_ALLOWED = "role_not_allowed"
    BAD_SIGNATURE = "bad_signature"
    BAD_RECORD_TYPE = "bad_record_type"
    MALFORMED = "malformed"


def py_check_plain(value: Any, max_depth: int = MAX_DEPTH, depth: int = 0) -> str | None:
    """None if `value` has one msgpack form: nil, bool, int (64-bit), finite float, str,
    bytes, lists and str-keyed maps, nested at most `max_depth` deep; else what is wrong
    (sets, datetimes, NaN ...). The compiled `check_plain` gives the same answers (tests
    compare them): this walk, one Python call per value, was most of the cost of signing
    a frame of audit entries."""
    if depth > max_depth:
        return "record nested too deep"
    if value is None or isinstance(value, (bool, str, bytes)):
        return None
    if isinstance(value, int):
        return None if -(1 << 63) <= value < (1 << 64) else "integer outside msgpack's 64-bit range"
    if isinstance(value, float):  # NaN has many bit patterns
        return None if math.isfinite(value) else "non-finite float"
    if isinstance(value, (list, tuple)):
        for item in value:
            if (fault := py_check_plain(item, max_depth, depth + 1)) is not None:
                return fault
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return "map keys must be str"
            if (fault := py_check_plain(item, max_depth, depth + 1)) is not None:
                return fault
        return None
    return f"{type(value).__name__} has no canonical form"


check_plain: Any = compiled("check_plain") or py_check_plain


def _check_plain(value: Any) -> None:
    fault = check_plain(value, MAX_DEPTH)
    if fault is not None:
        raise ValueError(fault)


def signing_input(record_type: str, signer: str, record: Any, *, plain: bool = False) -> bytes:
    """The exact bytes an identity signature covers. ValueError for a record that has no
    canonical encoding or a record type that is not one of RECORD_TYPES (or BATCH).
    `plain`: the caller vouches that `record` holds only plain values, being the wire form
    of records validated on construction, so the canonical-form check (a Python walk of
    the whole record, most of a small record's cost) is not done twice. `record_type`
    PROPOSAL gives the bytes of a proposal's digest (consensus.model.Proposal.digest)."""
    if record_type not in RECORD_TYPES and record_type not in (BATCH, PROPOSAL):
        raise ValueError(f"unknown record type {record_type!r}")
    if not plain:
        _check_plain(record)
    return _canonical([DOMAIN, record_type, signer, record])


def sign(identity: Identity, record_type: RecordType, record: Any, *, plain: bool = False) -> bytes:
    """`identity`'s 64-byte signature of `record` as a `record_type` (not BATCH:
    `sign_batch` builds that record); `plain` as for signing_input."""
    if record_type not in RECORD_TYPES:
        raise ValueError(f"unknown record type {record_type!r}")
    return identity.sign(signing_input(record_type, identity.agent_id, record, plain=plain))


def unsigned(record: Mapping[str, Any]) -> dict[str, Any]:
    """A map-shaped record without its signature: what the signature covers."""
    return {k: v for k, v in record.items() if k != SIG}


def sign_record(
    identity: Identity, record_type: RecordType, record: Mapping[str, Any]
) -> dict[str, Any]:
    """`record` (a str-keyed map) with `identity`'s signature of the rest under SIG; a
    signature already there is replaced. The record names its signer in its own fields
    (a member record's `id`, an audit entry's `agent`): the verifier checks that name."""
    body = unsigned(record)
    return {**body, SIG: sign(identity, record_type, body)}


def _batch_record(items: Sequence[tuple[str, Any]]) -> list[list[Any]]:
    if not items:
        raise ValueError("a batch holds at least one record")
    for record_type, _ in items:
        if record_type not in RECORD_TYPES:  # no batch inside a batch
            raise ValueError(f"unknown record type {record_type!r} in batch")
    return [[t, r] for t, r in items]


def sign_batch(identity: Identity, items: Sequence[tuple[RecordType, Any]]) -> bytes:
    """One signature over several records of one signer, in order: the record type
    BATCH, whose record is the list of [record_type, record] pairs."""
    return identity.sign(signing_input(BATCH, identity.agent_id, _batch_record(items)))


class IdentityVerifier:
    """Checks identity signatures against a roster, remembering each Ed25519 result so a
    record seen again (a ballot at the proposer, then at the executor) costs a hash, not
    a verify. The roster's verdicts (unknown, revoked, role) are re-checked every time,
    so a revocation counts at once; the cache key includes the public key, so a roster
    entry's new key never inherits an old result. `refused` counts failures by reason."""

    def __init__(self, roster: Roster, cache_size: int = 4096) -> None:
        self.roster = roster
        self.cache_size = cache_size
        self._cache: OrderedDict[bytes, bool] = OrderedDict()
        self.refused: Counter[str] = Counter()
        self.cache_hits = 0

    def verify(
        self,
        record_type: str,
        signer: str,
        record: Any,
        signature: bytes,
        role: str | None = None,
        *,
        plain: bool = False,
    ) -> IdentityVerdict:
        """Whether `signature` is `signer`'s, from the roster, over `record` as a
        `record_type`, and (given `role`) whether the roster allows `signer` that role.
        `plain` as for signing_input: only for the wire form of a record validated when
        it was decoded (the signature is checked all the same)."""
        if record_type not in RECORD_TYPES:
            return self._refuse(IdentityVerdict.BAD_RECORD_TYPE)
        return self._verify(record_type, signer, record, signature, role, plain)

    def verify_record(
        self, record_type: str, signer: str, record: Any, role: str | None = None
    ) -> IdentityVerdict:
        """`verify` for a `sign_record` map: its SIG entry over the rest (MALFORMED when
        it is not a map or has no signature)."""
        if not isinstance(record, Mapping) or not isinstance(record.get(SIG), bytes):
            return self._refuse(IdentityVerdict.MALFORMED)
        return self.verify(record_type, signer, unsigned(record), record[SIG], role)

    def verify_batch(
        self,
        signer: str,
        items: Sequence[tuple[str, Any]],
        signature: bytes,
        role: str | None = None,
        *,
        plain: bool = False,
    ) -> IdentityVerdict:
        """`verify` for a `sign_batch` signature: all the records count or none does.
        `plain` as for `verify`: the records are plain data by construction."""
        try:
            record = _batch_record(items)
        except (ValueError, TypeError):
            return self._refuse(IdentityVerdict.BAD_RECORD_TYPE)
        return self._verify(BATCH, signer, record, signature, role, plain)

    def _verify(
        self,
        record_type: str,
        signer: str,
        record: Any,
        signature: Any,
        role: str | None,
        plain: bool = False,
    ) -> IdentityVerdict:
        if not isinstance(signer, str) or not isinstance(signature, bytes):
            return self._refuse(IdentityVerdict.MALFORMED)
        if len(signature) != 64:  # fixed length keeps the cache key below unambiguous
            return self._refuse(IdentityVerdict.BAD_SIGNATURE)
        try:
            data = signing_input(record_type, signer, record, plain=plain)
        except (ValueError, TypeError, OverflowError, msgspec.EncodeError):
            return self._refuse(IdentityVerdict.MALFORMED)
        entry = self.roster.get(signer)
        if entry is None:
            return self._refuse(IdentityVerdict.UNKNOWN_SIGNER)
        if entry.revoked:
            return self._refuse(IdentityVerdict.REVOKED)
        if role is not None and role not in entry.roles:
            return self._refuse(IdentityVerdict.ROLE_NOT_ALLOWED)
        key = hashlib.sha256(entry.public_key + signature + data).digest()
        good = self._cache.get(key)
        if good is None:
            good = verify_signature(entry.public_key, signature, data)
            self._cache[key] = good
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        else:
            self.cache_hits += 1
            self._cache.move_to_end(key)
        return IdentityVerdict.OK if good else self._refuse(IdentityVerdict.BAD_SIGNATURE)

    def _refuse(self, verdict: IdentityVerdict) -> IdentityVerdict:
        self.refused[verdict.value] += 1
        return verdict
