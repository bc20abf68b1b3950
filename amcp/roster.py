"""The roster: which public key speaks for which agent id, in which roles, and whether it
was revoked. The operator distributes the file (it holds no secrets, but whoever can
write it can make anyone an S5), and running verifiers re-read it when it changes, so a
revocation takes effect without a restart."""

from __future__ import annotations

import base64
import binascii
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from amcp.errors import IdentityError
from amcp.files import FileStamp, read_guarded, write_atomic
from amcp.identity import check_agent_id, fingerprint

__all__ = [
    "DEFAULT_ROSTER_PATH",
    "ROLES",
    "ROSTER_ENV",
    "Roster",
    "RosterEntry",
    "parse_roles",
    "roster_path",
]

DEFAULT_ROSTER_PATH = Path("~/.config/amcp/roster.json")
ROSTER_ENV = "AMCP_ROSTER"
ROLES = ("s1", "s2", "s3", "s4", "s5")  # the five VSM roles of DESIGN.md
FILE_VERSION = 1


def roster_path(flag: str | os.PathLike[str] | None = None) -> Path:
    """The roster file a command uses: `flag`, else $AMCP_ROSTER, else the default path."""
    return Path(flag or os.environ.get(ROSTER_ENV) or DEFAULT_ROSTER_PATH).expanduser()


def parse_roles(text: str | Iterable[str]) -> frozenset[str]:
    """Roles from "s1,s5" (or an iterable of names), lower-cased; unknown names refused."""
    names = text.split(",") if isinstance(text, str) else list(text)
    roles = frozenset(n.strip().lower() for n in names if n.strip())
    unknown = sorted(roles - set(ROLES))
    if unknown:
        raise IdentityError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    return roles


@dataclass(frozen=True)
class RosterEntry:
    """One agent's public key (raw 32 bytes) and what it may sign as."""

    agent_id: str
    public_key: bytes
    roles: frozenset[str] = frozenset()
    revoked: bool = False

    def __post_init__(self) -> None:
        check_agent_id(self.agent_id)
        if len(self.public_key) != 32:
            raise IdentityError(
                f"{self.agent_id}: an Ed25519 public key is 32 bytes, not {len(self.public_key)}"
            )
        parse_roles(self.roles)

    def public_info(self) -> dict[str, object]:
        return {
            "id": self.agent_id,
            "public_key": base64.b64encode(self.public_key).decode(),
            "fingerprint": fingerprint(self.public_key),
            "roles": sorted(self.roles),
            "revoked": self.revoked,
        }


class Roster:
    """The entries one process verifies against; reloadable from its file."""

    def __init__(self, entries: Iterable[RosterEntry] = (), path: Path | None = None) -> None:
        self._stamp = FileStamp(path)
        self._generation = 0
        self._set(list(entries))

    @property
    def path(self) -> Path | None:
        return self._stamp.path

    @property
    def generation(self) -> int:
        """Counts the changes of the entries (add, revoke, reload): what a reader that
        caches a view of the roster compares to know it is stale."""
        return self._generation

    def _set(self, entries: list[RosterEntry]) -> None:
        by_id: dict[str, RosterEntry] = {}
        for entry in entries:
            if entry.agent_id in by_id:
                raise IdentityError(f"duplicate agent id {entry.agent_id!r} in roster")
            by_id[entry.agent_id] = entry
        self._by_id = by_id
        self._generation += 1

    @property
    def entries(self) -> list[RosterEntry]:
        """Every entry, revoked ones included, by agent id."""
        return [self._by_id[k] for k in sorted(self._by_id)]

    def get(self, agent_id: str) -> RosterEntry | None:
        return self._by_id.get(agent_id)

    def add(self, entry: RosterEntry) -> None:
        """Add an agent; an id already present (even revoked) is refused: a revoked id's
        records must not start verifying again under a new key by accident."""
        if entry.agent_id in self._by_id:
            raise IdentityError(f"{entry.agent_id} is already in the roster")
        self._by_id[entry.agent_id] = entry
        self._generation += 1

    def revoke(self, agent_id: str) -> bool:
        """Mark `agent_id` revoked; False if it already was. Unknown ids are refused."""
        entry = self._by_id.get(agent_id)
        if entry is None:
            raise IdentityError(f"{agent_id} is not in the roster")
        if entry.revoked:
            return False
        self._by_id[agent_id] = replace(entry, revoked=True)
        self._generation += 1
        return True

    # -- file I/O ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Roster:
        """Read a roster file, refusing one that group or others may write."""
        p = Path(path).expanduser()
        raw, mtime_ns = read_guarded(
            p,
            "roster",
            stat.S_IWGRP | stat.S_IWOTH,
            f"chmod 644 {p}",
            f"amcp keys identity new ID --roster {p}",
            IdentityError,
        )
        roster = cls(_parse(raw, p), p)
        roster._stamp.mtime_ns = mtime_ns
        return roster

    def reload_if_changed(self) -> bool:
        """Re-read the file if another process replaced it (a revocation reaching a running
        verifier). A file that has become unreadable or malformed raises and the entries
        in force stay as they were."""
        if not self._stamp.changed():
            return False
        assert self.path is not None
        fresh = Roster.load(self.path)
        self._by_id = fresh._by_id
        self._generation += 1
        self._stamp.mtime_ns = fresh._stamp.mtime_ns
        return True

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write atomically, mode 0644 (public keys; only the owner may change them)."""
        target = Path(path or self.path or DEFAULT_ROSTER_PATH).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        doc = {"version": FILE_VERSION, "agents": [_entry_to_json(e) for e in self.entries]}
        write_atomic(target, json.dumps(doc, indent=2) + "\n", 0o644)
        self._stamp = FileStamp(target, target.stat().st_mtime_ns)
        return target


def _entry_to_json(entry: RosterEntry) -> dict[str, object]:
    return {
        "id": entry.agent_id,
        "public_key": base64.b64encode(entry.public_key).decode(),
        "roles": sorted(entry.roles),
        "revoked": entry.revoked,
    }


def _parse(raw: bytes, path: Path) -> list[RosterEntry]:
    try:
        doc = json.loads(raw)
        if doc.get("version") != FILE_VERSION:
            raise ValueError(f"unsupported version {doc.get('version')!r}")
        entries = []
        for item in doc["agents"]:
            revoked = item.get("revoked", False)
            if not isinstance(revoked, bool):
                raise ValueError(f"revoked must be true or false, not {revoked!r}")
            roles = item.get("roles", [])
            if not isinstance(roles, list):
                raise ValueError(f"roles must be a list, not {roles!r}")
            entries.append(
                RosterEntry(
                    agent_id=item["id"],
                    public_key=base64.b64decode(item["public_key"], validate=True),
                    roles=parse_roles(roles),
                    revoked=revoked,
                )
            )
    except IdentityError as exc:
        raise IdentityError(f"roster {path} is malformed: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise IdentityError(f"roster {path} is malformed: {exc}") from None
    ids = [e.agent_id for e in entries]
    if len(set(ids)) != len(ids):
        raise IdentityError(f"roster {path} is malformed: duplicate agent ids")
    return entries
