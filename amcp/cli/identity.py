"""`amcp keys identity new|list|add|revoke`: agents' Ed25519 key files and the roster of
their public keys. Private keys are never printed; the roster is written atomically so a
running verifier re-reads a whole file."""

from __future__ import annotations

import argparse
import base64
import binascii
from pathlib import Path

from amcp.cli.common import EXIT_OK, EXIT_USAGE, add_json_option, emit, fail
from amcp.errors import IdentityError
from amcp.identity import DEFAULT_IDENTITY_DIR, Identity
from amcp.roster import (
    DEFAULT_ROSTER_PATH,
    ROSTER_ENV,
    Roster,
    RosterEntry,
    parse_roles,
    roster_path,
)

__all__ = ["register"]


def register(actions: argparse._SubParsersAction) -> None:
    """Add `identity` under `amcp keys`."""
    ident = actions.add_parser(
        "identity",
        help="agents' own signing keys and the roster of their public keys",
        description="Ed25519 identities: a 0600 key file per agent, and a roster (JSON) "
        "binding each agent id to its public key, allowed roles and revocation.",
    )
    sub = ident.add_subparsers(dest="identity_action", required=True, metavar="ACTION")

    new = sub.add_parser("new", help="create an agent's key file and add it to the roster")
    new.add_argument("agent_id", metavar="ID")
    new.add_argument(
        "--out", metavar="PATH", help=f"key file (default {DEFAULT_IDENTITY_DIR}/ID.json)"
    )
    _roles_option(new)
    new.add_argument("--force", action="store_true", help="overwrite an existing key file")
    _options(new)
    new.set_defaults(func=cmd_new)

    lst = sub.add_parser("list", help="list the roster: ids, roles, fingerprints, revocation")
    _options(lst)
    lst.set_defaults(func=cmd_list)

    add = sub.add_parser("add", help="add another host's agent by its public key")
    add.add_argument("agent_id", metavar="ID")
    add.add_argument("public_key", metavar="KEY", help="the 32-byte public key, base64")
    _roles_option(add)
    _options(add)
    add.set_defaults(func=cmd_add)

    revoke = sub.add_parser(
        "revoke", help="revoke an agent: its signatures stop counting at the next reload"
    )
    revoke.add_argument("agent_id", metavar="ID")
    _options(revoke)
    revoke.set_defaults(func=cmd_revoke)


def _roles_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--roles", default="", metavar="S1,S5", help="roles it may sign as (s1..s5)"
    )


def _options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--roster",
        metavar="PATH",
        help=f"roster file (env {ROSTER_ENV}; default {DEFAULT_ROSTER_PATH})",
    )
    add_json_option(parser)


def _roster_path(args: argparse.Namespace) -> Path:
    return roster_path(args.roster)


def _open_roster(path: Path) -> Roster:
    """The roster at `path`, or an empty one there if the file does not exist yet."""
    return Roster.load(path) if path.exists() else Roster(path=path)


def cmd_new(args: argparse.Namespace) -> int:
    roles = parse_roles(args.roles)
    identity = Identity.generate(args.agent_id)
    out = Path(args.out or DEFAULT_IDENTITY_DIR / f"{args.agent_id}.json").expanduser()
    if out.exists() and not args.force:
        return fail(f"{out} exists; use --force to replace it (the old key is lost)", EXIT_USAGE)
    path = _roster_path(args)
    roster = _open_roster(path)
    roster.add(RosterEntry(identity.agent_id, identity.public_key, roles))  # refuses a known id
    identity.save(out)
    roster.save(path)
    entry = roster.get(identity.agent_id)
    assert entry is not None
    emit(
        {"path": str(out), "roster": str(path)} | entry.public_info(),
        args.json,
        f"created identity {identity.agent_id} in {out} (key {entry.public_info()['fingerprint']})"
        f"; added to roster {path}",
    )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    roster = Roster.load(_roster_path(args))
    rows = [e.public_info() for e in roster.entries]
    if args.json:
        emit({"path": str(roster.path), "agents": rows}, True)
        return EXIT_OK
    print(f"{'ID':24} {'ROLES':15} {'FINGERPRINT':17} STATE")
    for r in rows:
        roles = ",".join(r["roles"]) or "-"  # type: ignore[arg-type]
        state = "revoked" if r["revoked"] else "active"
        print(f"{r['id']:24} {roles:15} {r['fingerprint']:17} {state}")
    return EXIT_OK


def cmd_add(args: argparse.Namespace) -> int:
    roles = parse_roles(args.roles)
    try:
        key = base64.b64decode(args.public_key, validate=True)
    except (ValueError, binascii.Error):
        raise IdentityError(f"KEY must be base64, not {args.public_key!r}") from None
    path = _roster_path(args)
    roster = _open_roster(path)
    entry = RosterEntry(args.agent_id, key, roles)
    roster.add(entry)
    roster.save(path)
    emit(
        {"roster": str(path)} | entry.public_info(),
        args.json,
        f"added {entry.agent_id} (key {entry.public_info()['fingerprint']}) to roster {path}",
    )
    return EXIT_OK


def cmd_revoke(args: argparse.Namespace) -> int:
    path = _roster_path(args)
    roster = Roster.load(path)
    changed = roster.revoke(args.agent_id)
    if changed:
        roster.save(path)
    emit(
        {"roster": str(path), "id": args.agent_id, "revoked": True, "changed": changed},
        args.json,
        f"revoked {args.agent_id} in roster {path}"
        if changed
        else f"{args.agent_id} was already revoked",
    )
    return EXIT_OK
