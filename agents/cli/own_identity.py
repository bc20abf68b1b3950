"""`amcp-agent`'s own identity: the key file it signs with (--identity, $AMCP_IDENTITY, or
the one --new-identity made in its data dir on a first start), and whether the roster in
force lets it count. A key the roster does not hold verifies nothing, so an agent the
roster does not admit (absent, revoked, another key, a role not granted) refuses to start
rather than run unable to count."""

from __future__ import annotations

import base64
import os
import shlex
from collections.abc import Iterable
from pathlib import Path

from amcp.errors import IdentityError
from amcp.identity import IDENTITY_ENV, Identity
from amcp.roster import Roster

__all__ = ["NEW_IDENTITY_FILE", "enroll_command", "own_identity", "standing"]

NEW_IDENTITY_FILE = "identity.json"  # in the agent's --data-dir


def enroll_command(identity: Identity, roles: Iterable[str], roster: Path | None = None) -> str:
    """The `amcp keys identity add` line that puts `identity` into the roster."""
    argv = ["amcp", "keys", "identity", "add", identity.agent_id]
    argv += [base64.b64encode(identity.public_key).decode(), "--roles", ",".join(sorted(roles))]
    if roster is not None:
        argv += ["--roster", str(roster)]
    return shlex.join(argv)


def standing(
    roster: Roster, agent_id: str, identity: Identity | None, roles: Iterable[str]
) -> str | None:
    """Why `agent_id`'s records would not count under `roster` (None: they would). Pure."""
    where = f"roster {roster.path}" if roster.path else "the roster"
    if identity is None:
        return (
            f"{where} checks identity signatures but {agent_id} has no identity: "
            "give --identity PATH (or --new-identity to make one in --data-dir)"
        )
    entry = roster.get(agent_id)
    if entry is None:
        add = enroll_command(identity, roles, roster.path)
        return f"{agent_id} is not in {where}: add it with `{add}`"
    if entry.revoked:
        return f"{agent_id} is revoked in {where}"
    if entry.public_key != identity.public_key:
        return f"{agent_id}'s key file is not the key {where} holds for it"
    missing = sorted(set(roles) - entry.roles)
    if missing:
        return f"{where} does not grant {agent_id} the role {', '.join(missing)} it runs in"
    return None


def own_identity(
    flag: str | None,
    data_dir: Path | None,
    agent_id: str | None,
    *,
    allow_new: bool,
    new_id: str,
) -> tuple[Path | None, Identity | None, bool]:
    """(key file, identity, whether it was created now). The key file is --identity, else
    $AMCP_IDENTITY, else DATA_DIR/identity.json if an earlier --new-identity made it, else
    with `allow_new` a new one there for `agent_id` (or `new_id`); else none. A key file
    of another agent than --id is refused (IdentityError)."""
    named = flag or os.environ.get(IDENTITY_ENV)
    path = Path(named).expanduser() if named else None
    if path is None and data_dir is not None:
        path = data_dir / NEW_IDENTITY_FILE
        if not path.exists():
            if not allow_new:
                return None, None, False
            identity = Identity.generate(agent_id or new_id)
            identity.save(path)
            return path, identity, True
    if path is None:
        if allow_new:
            raise IdentityError("--new-identity needs --data-dir: the key is kept there")
        return None, None, False
    identity = Identity.load(path)
    if agent_id and identity.agent_id != agent_id:
        raise IdentityError(f"{path} is the key of {identity.agent_id}, not of --id {agent_id}")
    return path, identity, False
