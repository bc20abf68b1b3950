"""`amcp keys new|rotate|list`: manage the keyring file. Secrets are never printed.
`amcp keys identity ...` (agents' own keys and the roster) lives in amcp.cli.identity."""

from __future__ import annotations

import argparse
from pathlib import Path

from amcp.cli import identity
from amcp.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    add_json_option,
    add_keyring_option,
    emit,
    fail,
    seconds,
    settings_from,
)
from amcp.keyring import Keyring


def register(sub: argparse._SubParsersAction) -> None:
    keys = sub.add_parser(
        "keys",
        help="create, rotate and list signing keys",
        description="Manage the shared HMAC keyring (a 0600 JSON file).",
    )
    actions = keys.add_subparsers(dest="keys_action", required=True, metavar="ACTION")

    new = actions.add_parser("new", help="create a keyring with one fresh key")
    new.add_argument("--out", metavar="PATH", help="where to write it (default: --keyring path)")
    new.add_argument("--force", action="store_true", help="overwrite an existing keyring")
    _options(new)
    new.set_defaults(func=cmd_new)

    rotate = actions.add_parser(
        "rotate",
        help="add a new signing key; old keys keep verifying until they expire",
        description="Add a key that verifies at once and signs after --activate-after seconds "
        "(time for the file to reach every host); older keys expire --grace seconds later.",
    )
    rotate.add_argument(
        "--activate-after",
        type=seconds(above=False),
        default=10.0,
        metavar="S",
        help="seconds before the new key signs, for the file to reach every host (default 10)",
    )
    rotate.add_argument(
        "--grace",
        type=seconds(above=False),
        default=86_400.0,
        metavar="S",
        help="seconds the older keys keep verifying once it signs (default 86400, a day)",
    )
    _options(rotate)
    rotate.set_defaults(func=cmd_rotate)

    lst = actions.add_parser("list", help="list key ids, dates and states (never secrets)")
    _options(lst)
    lst.set_defaults(func=cmd_list)

    identity.register(actions)


def _options(parser: argparse.ArgumentParser) -> None:
    # the keyring is a local file: these commands never connect, so take no NATS options
    add_keyring_option(parser)
    add_json_option(parser)


def _path(args: argparse.Namespace) -> Path:
    return (
        Path(args.out).expanduser()
        if getattr(args, "out", None)
        else settings_from(args).keyring_path
    )


def cmd_new(args: argparse.Namespace) -> int:
    path = _path(args)
    if path.is_dir():
        return fail(f"{path} is a directory; --out names the keyring file", EXIT_USAGE)
    if path.exists() and not args.force:
        return fail(
            f"{path} exists; use --force to replace it (old keys would be lost)", EXIT_USAGE
        )
    ring = Keyring.generate()
    ring.save(path)
    key = ring.keys[0]
    emit({"path": str(path), "kid": key.kid}, args.json, f"created keyring {path} (key {key.kid})")
    return EXIT_OK


def cmd_rotate(args: argparse.Namespace) -> int:
    ring = Keyring.load(settings_from(args).keyring_path)
    key = ring.rotate(activate_after=args.activate_after, grace=args.grace)
    ring.save()
    activates_at = key.public_info()["activates_at"]
    emit(
        {"kid": key.kid, "activates_at": activates_at},
        args.json,
        f"added key {key.kid}; it signs from {activates_at}",
    )
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    ring = Keyring.load(settings_from(args).keyring_path)
    rows = ring.listing()
    if args.json:
        emit({"path": str(ring.path), "keys": rows}, True)
    else:
        print(f"{'KID':10} {'STATE':9} {'CREATED':21} {'EXPIRES':21}")
        for r in rows:
            print(f"{r['kid']:10} {r['state']:9} {r['created_at']:21} {r['expires_at'] or '-':21}")
    return EXIT_OK
