"""amcp: signed, replay-checked messages over NATS for cooperating agents.

The public API of the protocol core; everything else in this package is an implementation
detail that may change.
"""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from amcp.attest import IdentityVerdict, IdentityVerifier
    from amcp.batching import Batcher, BatchingMode
    from amcp.bus import Bus
    from amcp.envelope import Envelope, FrameLimits, Reason
    from amcp.errors import (
        AmcpError,
        CircuitOpen,
        ClaimUnavailable,
        ConfigError,
        ConnectError,
        EncodeError,
        FrameRejected,
        IdentityError,
        KeyringError,
        NoResponders,
        PermissionDenied,
        RequestTimeout,
        ServerError,
    )
    from amcp.identity import Identity
    from amcp.jetstream import Streams
    from amcp.keyring import Key, Keyring
    from amcp.message import Message
    from amcp.options import BusOptions
    from amcp.protocol import Opener, RejectionStats, Sealer
    from amcp.replay import ReplayGuard
    from amcp.roster import Roster, RosterEntry
    from amcp.security import ConnectionSecurity
    from amcp.server import NatsCluster, NatsServer
    from amcp.subjects import Subjects
    from amcp.subscription import Subscription

__version__ = "0.1.0"

# Each name loads its module on first use (PEP 562), so a command line that needs the
# envelope alone does not pay for nats, pydantic, cryptography and numpy.
__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "attest": ["IdentityVerdict", "IdentityVerifier"],
        "batching": ["Batcher", "BatchingMode"],
        "bus": ["Bus"],
        "envelope": ["Envelope", "FrameLimits", "Reason"],
        "errors": [
            "AmcpError",
            "CircuitOpen",
            "ClaimUnavailable",
            "ConfigError",
            "ConnectError",
            "EncodeError",
            "FrameRejected",
            "IdentityError",
            "KeyringError",
            "NoResponders",
            "PermissionDenied",
            "RequestTimeout",
            "ServerError",
        ],
        "identity": ["Identity"],
        "jetstream": ["Streams"],
        "keyring": ["Key", "Keyring"],
        "message": ["Message"],
        "options": ["BusOptions"],
        "protocol": ["Opener", "RejectionStats", "Sealer"],
        "replay": ["ReplayGuard"],
        "roster": ["Roster", "RosterEntry"],
        "security": ["ConnectionSecurity"],
        "server": ["NatsCluster", "NatsServer"],
        "subjects": ["Subjects"],
        "subscription": ["Subscription"],
    },
)

__all__ = [
    "AmcpError",
    "Batcher",
    "BatchingMode",
    "Bus",
    "BusOptions",
    "CircuitOpen",
    "ClaimUnavailable",
    "ConfigError",
    "ConnectError",
    "ConnectionSecurity",
    "EncodeError",
    "Envelope",
    "FrameLimits",
    "FrameRejected",
    "Identity",
    "IdentityError",
    "IdentityVerdict",
    "IdentityVerifier",
    "Key",
    "Keyring",
    "KeyringError",
    "Message",
    "NatsCluster",
    "NatsServer",
    "NoResponders",
    "Opener",
    "PermissionDenied",
    "Reason",
    "RejectionStats",
    "ReplayGuard",
    "RequestTimeout",
    "Roster",
    "RosterEntry",
    "Sealer",
    "ServerError",
    "Streams",
    "Subjects",
    "Subscription",
]
