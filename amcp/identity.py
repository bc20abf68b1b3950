"""An agent's own Ed25519 key pair: what proves *which* agent signed a record, where the
cluster's shared HMAC key only proves "a member of the cluster". The private key lives in
a 0600 JSON file; its public half goes into the roster (amcp.roster)."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from amcp.errors import IdentityError
from amcp.files import private_folder, read_guarded, write_private

# cryptography loads when a key is made, read or checked, not with this module: the
# command lines import it for its paths and names, and --help should not pay ~10 ms.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "DEFAULT_IDENTITY_DIR",
    "IDENTITY_ENV",
    "Identity",
    "check_agent_id",
    "fingerprint",
    "verify_signature",
]

DEFAULT_IDENTITY_DIR = Path("~/.config/amcp/identities")
IDENTITY_ENV = "AMCP_IDENTITY"  # the key file a process signs with, when no flag names one
FILE_VERSION = 1
MAX_ID_CHARS = 128  # the same bound as a frame's sender id


def check_agent_id(agent_id: str) -> str:
    """`agent_id` if usable as a signer id (1 to 128 characters, no whitespace or control
    characters, so it prints on one line), else IdentityError."""
    if not isinstance(agent_id, str) or not 1 <= len(agent_id) <= MAX_ID_CHARS:
        raise IdentityError(f"an agent id is 1 to {MAX_ID_CHARS} characters, not {agent_id!r}")
    if any(c.isspace() or not c.isprintable() for c in agent_id):
        raise IdentityError(f"an agent id has no spaces or control characters: {agent_id!r}")
    return agent_id


def fingerprint(public_key: bytes) -> str:
    """A short printable name of a public key (first 8 bytes of its SHA-256, hex)."""
    return hashlib.sha256(public_key).hexdigest()[:16]


@functools.lru_cache(maxsize=4096)  # a roster's keys: parsing one is ~3 us a verify
def _public_key(public_key: bytes) -> Ed25519PublicKey | None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        return None


def verify_signature(public_key: bytes, signature: bytes, data: bytes) -> bool:
    """Whether `signature` is `public_key`'s Ed25519 signature of `data` (never raises)."""
    from cryptography.exceptions import InvalidSignature

    if len(public_key) != 32 or len(signature) != 64:
        return False
    key = _public_key(bytes(public_key))
    if key is None:
        return False
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


@dataclass(frozen=True)
class Identity:
    """One agent's signing key. The seed (private key) never appears in repr or listings."""

    agent_id: str
    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls, agent_id: str) -> Identity:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(check_agent_id(agent_id), Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, agent_id: str, seed: bytes) -> Identity:
        """The identity of a fixed 32-byte seed (RFC 8032's private key): test vectors."""
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if len(seed) != 32:
            raise IdentityError(f"an Ed25519 seed is 32 bytes, not {len(seed)}")
        return cls(check_agent_id(agent_id), Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> bytes:
        """The raw 32-byte public key, as the roster holds it."""
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        return self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `data` (amcp.attest builds `data`)."""
        return self.private_key.sign(data)

    # -- file I/O ---------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the key file with mode 0600 in a 0700 folder."""
        target = Path(path).expanduser()
        private_folder(target.parent)
        seed = self.private_key.private_bytes_raw()
        doc = {
            "version": FILE_VERSION,
            "id": self.agent_id,
            "seed": base64.b64encode(seed).decode(),
            "public_key": base64.b64encode(self.public_key).decode(),
        }
        return write_private(target, json.dumps(doc, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Identity:
        """Read a key file, refusing one that group or others may access."""
        p = Path(path).expanduser()
        raw, _ = read_guarded(
            p,
            "identity",
            stat.S_IRWXG | stat.S_IRWXO,
            f"chmod 600 {p}",
            f"amcp keys identity new ID --out {p}",
            IdentityError,
        )
        try:
            doc = json.loads(raw)
            if doc.get("version") != FILE_VERSION:
                raise ValueError(f"unsupported version {doc.get('version')!r}")
            seed = base64.b64decode(doc["seed"], validate=True)
            agent_id = doc["id"]
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise IdentityError(f"identity {p} is malformed: {exc}") from None
        identity = cls.from_seed(agent_id, seed)
        stated = doc.get("public_key")
        if stated is not None and stated != base64.b64encode(identity.public_key).decode():
            # a hand-edited file: the seed and its stated public half disagree
            raise IdentityError(f"identity {p} is malformed: public_key does not match seed")
        return identity
