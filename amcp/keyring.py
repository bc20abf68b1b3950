"""Shared HMAC keys: a keyring file, rotation without downtime, and key lookup by id.

Rotation works in two steps so no receiver ever sees a key it does not know yet: a
rotated-in key verifies at once but only starts signing at `activates_at` (after the
file has reached every host and been reloaded); the keys it replaces keep verifying
until their `expires_at`. Secrets never appear in repr, logs or listings.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from amcp.errors import KeyringError
from amcp.files import FileStamp, read_guarded, write_atomic
from amcp.signing import MacKey

__all__ = ["DEFAULT_KEYRING_PATH", "Key", "Keyring"]

DEFAULT_KEYRING_PATH = Path("~/.config/amcp/keyring.json")
SECRET_BYTES = 32
FILE_VERSION = 1


@dataclass(frozen=True)
class Key:
    """One HMAC key. Times are Unix seconds; `expires_at` None means no expiry."""

    kid: str
    secret: bytes = field(repr=False)
    created_at: float
    activates_at: float
    expires_at: float | None = None

    @classmethod
    def generate(cls, now: float | None = None, activate_after: float = 0.0) -> Key:
        now = time.time() if now is None else now
        return cls(
            secrets.token_hex(4), secrets.token_bytes(SECRET_BYTES), now, now + activate_after
        )

    @cached_property
    def mac(self) -> MacKey:
        """The precomputed HMAC state of this key (built once, on first use)."""
        return MacKey(self.secret)

    def verifies_at(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at

    def signs_at(self, now: float) -> bool:
        return self.activates_at <= now and self.verifies_at(now)

    def public_info(self) -> dict[str, object]:
        """The key's id and dates, never the secret (its state needs the whole ring:
        `Keyring.listing`)."""
        return {
            "kid": self.kid,
            "created_at": _iso(self.created_at),
            "activates_at": _iso(self.activates_at),
            "expires_at": _iso(self.expires_at) if self.expires_at is not None else None,
        }


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


class Keyring:
    """The keys one process signs and verifies with; reloadable from its file."""

    def __init__(self, keys: list[Key], path: Path | None = None) -> None:
        if not keys:
            raise KeyringError("a keyring needs at least one key")
        self._stamp = FileStamp(path)
        self._set(keys)

    @property
    def path(self) -> Path | None:
        return self._stamp.path

    def _set(self, keys: list[Key]) -> None:
        ids = [k.kid for k in keys]
        if len(set(ids)) != len(ids):
            raise KeyringError("duplicate key ids in keyring")
        self.keys = sorted(keys, key=lambda k: (k.activates_at, k.created_at))
        self._by_id = {k.kid: k for k in self.keys}
        # Hot-path view for receivers: kid -> (MacKey, expiry or None).
        self._verify = {k.kid: (k.mac, k.expires_at) for k in self.keys}

    @classmethod
    def generate(cls) -> Keyring:
        """A fresh in-memory keyring with one signing key (tests, demos)."""
        return cls([Key.generate()])

    def signing_key(self, now: float | None = None) -> Key:
        """The newest key that may sign now (active and not expired)."""
        now = time.time() if now is None else now
        for key in reversed(self.keys):
            if key.signs_at(now):
                return key
        raise KeyringError("keyring has no key valid for signing (all expired or pending)")

    def listing(self, now: float | None = None) -> list[dict[str, object]]:
        """What `amcp keys list` shows, oldest first: each key's dates and its state. One key
        is "signing" (the newest active one); older active keys are "verifying" until they
        expire, keys not active yet are "pending"."""
        now = time.time() if now is None else now
        try:
            signer = self.signing_key(now).kid
        except KeyringError:
            signer = None
        return [k.public_info() | {"state": self._state(k, now, signer)} for k in self.keys]

    @staticmethod
    def _state(key: Key, now: float, signer: str | None) -> str:
        if not key.verifies_at(now):
            return "expired"
        if key.kid == signer:
            return "signing"
        return "verifying" if key.signs_at(now) else "pending"

    def key(self, kid: str) -> Key | None:
        """The key named `kid`, whatever its state (sealed bodies: amcp.sealing)."""
        return self._by_id.get(kid)

    def verify_key(self, kid: str, now: float) -> MacKey | None:
        """The MAC key for `kid` if that key may verify at `now`, else None."""
        entry = self._verify.get(kid)
        if entry is None or (entry[1] is not None and now >= entry[1]):
            return None
        return entry[0]

    def rotate(
        self, now: float | None = None, activate_after: float = 10.0, grace: float = 86_400.0
    ) -> Key:
        """Add a key that signs after `activate_after` s; older keys expire `grace` s later."""
        now = time.time() if now is None else now
        new = Key.generate(now, activate_after)
        retire_at = new.activates_at + grace
        kept = [
            k
            if k.expires_at is not None and k.expires_at <= retire_at
            else Key(k.kid, k.secret, k.created_at, k.activates_at, retire_at)
            for k in self.keys
            if k.verifies_at(now)
        ]
        self._set([*kept, new])
        return new

    # -- file I/O ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Keyring:
        """Read a keyring file, refusing one that group or others may read or write."""
        p = Path(path).expanduser()
        raw, mtime_ns = read_guarded(
            p,
            "keyring",
            stat.S_IRWXG | stat.S_IRWXO,
            f"chmod 600 {p}",
            f"amcp keys new --out {p}",
            KeyringError,
        )
        ring = cls(_parse(raw, p), p)
        ring._stamp.mtime_ns = mtime_ns
        return ring

    def reload_if_changed(self) -> bool:
        """Re-read the file if it changed on disk (rotation reaching a running process)."""
        if not self._stamp.changed():
            return False
        assert self.path is not None
        fresh = Keyring.load(self.path)
        self._set(fresh.keys)
        self._stamp.mtime_ns = fresh._stamp.mtime_ns
        return True

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write atomically with mode 0600 (the temp file is 0600 from its creation)."""
        target = Path(path or self.path or DEFAULT_KEYRING_PATH).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {"version": FILE_VERSION, "keys": [_key_to_json(k) for k in self.keys]}
        # allow_nan=False: NaN or Infinity is not JSON, and would never expire
        write_atomic(target, json.dumps(doc, indent=2, allow_nan=False), 0o600)
        self._stamp = FileStamp(target, target.stat().st_mtime_ns)
        return target


def _key_to_json(key: Key) -> dict[str, object]:
    return {
        "kid": key.kid,
        "secret": base64.b64encode(key.secret).decode(),
        "created_at": key.created_at,
        "activates_at": key.activates_at,
        "expires_at": key.expires_at,
    }


_LAST_TIME = 253_402_300_799.0  # 9999-12-31T23:59:59Z, the last time a listing can show


def _parse(raw: bytes, path: Path) -> list[Key]:
    try:
        doc = json.loads(raw)
        if doc.get("version") != FILE_VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        keys = []
        for item in doc["keys"]:
            expires = item.get("expires_at")
            keys.append(
                Key(
                    kid=str(item["kid"]),
                    secret=base64.b64decode(item["secret"], validate=True),
                    created_at=float(item["created_at"]),
                    activates_at=float(item.get("activates_at", item["created_at"])),
                    expires_at=None if expires is None else float(expires),
                )
            )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise KeyringError(f"keyring {path} is malformed: {exc}") from None
    for k in keys:
        for name in ("created_at", "activates_at", "expires_at"):
            value = getattr(k, name)
            if value is not None and not 0 <= value <= _LAST_TIME:
                # NaN would make an expired key verify forever; past year 9999, no date
                raise KeyringError(
                    f"keyring {path} is malformed: key {k.kid} has {name} {value}, not a Unix time"
                )
    if any(len(k.secret) < 16 for k in keys):
        raise KeyringError(f"keyring {path} holds a key shorter than 16 bytes")
    return keys
