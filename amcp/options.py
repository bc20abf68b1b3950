"""How a Bus is configured: one frozen options object for the constructor and
`Bus.connect` alike (which also takes each option as a keyword)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from amcp.batching import BatchingMode
from amcp.envelope import FrameLimits
from amcp.identity import Identity
from amcp.roster import Roster

__all__ = ["BusOptions"]


@dataclass(frozen=True, slots=True)
class BusOptions:
    """A bus's cluster namespace, frame limits, replay checks, batching, compression and
    sealed subjects."""

    cluster: str = "default"
    limits: FrameLimits | None = None
    """Bounds on inbound frames (None: the FrameLimits defaults)."""
    replay_window: int = 1024
    """Sequence numbers per sender the replay window remembers."""
    skew_seconds: float = 30.0
    """How far a frame's timestamp may be from the receiver's clock."""
    max_senders: int = 4096
    """Senders the replay guard tracks at most."""
    batching: BatchingMode = "off"
    """"off" (one frame per message), "adaptive" (per subject family, from the traffic
    analyser; the setting to use for streams), a fixed `netopt.BatchPolicy`, or any
    `netopt.BatchingStrategy`. A batch is one NATS message, so a queue group hands a whole
    batch to one member: publish work items meant to spread over a queue group with
    `immediate=True`, or leave batching off."""
    compress_threshold: int | None = None
    """Bodies of at least this many bytes go zlib-compressed when that shrinks the frame.
    Off by default: the attempt costs more CPU than a LAN saves on small frames
    (docs/PROTOCOL.md, "Batches and compression")."""
    attention_threshold: float = 0.8
    """`publish(..., attention=a)` with a >= it bypasses batching."""
    seal: Sequence[str] = ()
    """Subject patterns (NATS wildcards) whose bodies are sealed, AES-256-GCM under a key
    derived from the keyring (amcp.sealing): sent sealed, and a plain frame on one is
    refused as `bad_seal`. A sealed frame on any other subject is opened all the same."""

    identity: Identity | None = None
    """This process's own Ed25519 key (amcp.identity): it signs the records that must say
    which agent made them (ballots, decisions, audit entries, ...). Its id must be the
    bus's sender."""
    roster: Roster | None = None
    """The public keys records are verified against (`Bus.verifier`); re-read when its
    file changes. None: identity signatures are neither required nor checked, and any
    holder of the cluster key can speak for any agent (docs/PROTOCOL.md, threat model)."""

    def updated(self, keywords: dict[str, Any]) -> tuple[BusOptions, dict[str, Any]]:
        """These options with the keywords that name one of them, and the other keywords
        (left for nats-py's connect)."""
        ours = {k: v for k, v in keywords.items() if k in _NAMES}
        rest = {k: v for k, v in keywords.items() if k not in _NAMES}
        return replace(self, **ours), rest


_NAMES = frozenset(f.name for f in fields(BusOptions))
