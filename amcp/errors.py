"""The amcp exception hierarchy: every error amcp raises on purpose derives from AmcpError.

The whole tree (crdt, consensus and agents root their own errors at AmcpError too):

    Exception
    └── AmcpError                 base of every error raised on purpose
        ├── ConfigError           a setting or argument is invalid
        ├── KeyringError          the keyring file is missing, unreadable or malformed
        │   └── IdentityError     an identity key or roster file is missing or malformed,
        │                         or a roster change is refused
        ├── EncodeError           a value cannot be put on the wire
        ├── FrameRejected         an inbound frame failed a check (counted, never raised
        │                         into handlers)
        ├── ConnectError          no NATS server could be reached
        ├── RequestTimeout        no verified reply before the deadline
        ├── NoResponders          nobody serves the request's subject
        ├── PermissionDenied      the server refused a publish or subscription
        ├── CircuitOpen           the destination's circuit breaker refused the request
        ├── ClaimUnavailable      JetStream cannot tell whether a frame was claimed
        └── ServerError           the embedded nats-server failed to start or stop
"""

from __future__ import annotations

__all__ = [
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
]


class AmcpError(Exception):
    """Base class of every error amcp raises on purpose."""


class ConfigError(AmcpError):
    """A setting or argument is invalid; the message says which and why."""


class KeyringError(AmcpError):
    """The keyring file is missing, unreadable, too permissive or malformed."""


class IdentityError(KeyringError):
    """An identity key file or the roster is missing, too permissive or malformed, or a
    roster change is refused (a KeyringError: key material, so commands exit 2)."""


class EncodeError(AmcpError):
    """A value cannot be put on the wire (unsupported type, too deep, too large)."""


class FrameRejected(AmcpError):
    """An inbound frame failed a check. Never raised into user handlers; counted by reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class ConnectError(AmcpError):
    """No NATS server could be reached at the given URLs."""


class RequestTimeout(AmcpError):
    """A request got no verified reply before its deadline."""


class NoResponders(AmcpError):
    """A request was sent to a subject nobody is subscribed to."""


class PermissionDenied(AmcpError):
    """The NATS server refused an operation for the connection's user: its permissions do
    not allow `operation` ("publish" or "subscribe") on `subject`. Nothing was delivered."""

    def __init__(self, operation: str, subject: str, user: str | None = None) -> None:
        who = f"user {user}" if user else "this connection"
        super().__init__(
            f"permission denied: the NATS server does not let {who} {operation} to {subject}"
        )
        self.operation = operation
        self.subject = subject
        self.user = user


class ServerError(AmcpError):
    """The embedded nats-server failed to start or stop."""


class CircuitOpen(AmcpError):
    """A request was refused without sending: its destination's circuit breaker is open
    after repeated failures (Bus.request_with_retry)."""


class ClaimUnavailable(AmcpError):
    """JetStream could not say whether a frame was claimed before; do not act on it
    (amcp.claims)."""
