"""`amcp ctx`: run a durable replica, and read or write the shared context from a shell.

Each read or write command opens a short-lived in-memory replica, catches up from a peer,
does its one operation under its concern and closes. Writes default to `--write one`: a
command is reported done only once a durable replica holds the write on disk. A write
that misses its concern exits 3 and says how many replicas acknowledged it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_connection_options,
    connect,
    emit,
    fail,
    jsonable,
    parse_json_arg,
    run_until_stopped,
)
from amcp.errors import ConfigError
from crdt.concern import LEVELS, ConcernError, ReadConcernError
from crdt.errors import CrdtError, CrdtValueError
from crdt.messages import check_replica_id
from crdt.store import ContextStore
from crdt.wire import as_name

__all__ = ["register"]


def _replica_id(text: str) -> str:
    try:
        return check_replica_id(text)
    except CrdtValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _key(text: str) -> str:
    try:
        return as_name(text, "key", CrdtValueError)
    except CrdtValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _amount(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n <= 0:
        raise argparse.ArgumentTypeError(f"amount must be a positive integer, not {text!r}")
    return n


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def _value(text: str) -> Any:
    """JSON when it parses (`12`, `true`, `{"a": 1}`, `"12"`), else the text itself; JSON
    that no frame could carry is refused."""
    try:
        return parse_json_arg(text, "VALUE", or_text=True)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction) -> None:
    ctx = sub.add_parser(
        "ctx",
        help="shared context: replicated counters, registers, maps and sets",
        description="Shared context replicated over the bus (CRDTs). `serve` runs a durable "
        "replica; the other commands read or write through a short-lived replica.",
    )
    cmds = ctx.add_subparsers(dest="ctx_command", required=True, metavar="COMMAND")

    serve = cmds.add_parser(
        "serve",
        help="run a durable replica until SIGTERM",
        description="Run a durable replica on DIR: recover it, catch up from peers, register "
        "as a member, and serve until SIGTERM or Ctrl-C (then snapshot and exit 0).",
    )
    serve.add_argument("--data-dir", required=True, metavar="DIR", help="the replica's directory")
    serve.add_argument(
        "--id", type=_replica_id, help="replica id (default: the one stored in DIR, or a new one)"
    )
    serve.add_argument(
        "--gossip-interval",
        type=_positive,
        default=1.0,
        metavar="S",
        help="seconds between announcements and anti-entropy rounds (default 1)",
    )
    add_connection_options(serve)
    serve.set_defaults(func=cmd_serve)

    def command(name: str, help: str, func: Callable[..., Any]) -> Any:
        parser = cmds.add_parser(name, help=help, description=help)
        parser.set_defaults(func=func)
        return parser

    def concern(parser: argparse.ArgumentParser, write: bool) -> None:
        if write:
            parser.add_argument(
                "--write",
                choices=LEVELS,
                default="one",
                help="acknowledgements to wait for (default one: a durable replica)",
            )
        else:
            parser.add_argument(
                "--read",
                choices=LEVELS,
                default="local",
                help="replicas whose state is merged before answering (default local)",
            )
        parser.add_argument(
            "--timeout", type=_positive, default=2.0, metavar="S", help="seconds (default 2)"
        )
        add_connection_options(parser)

    for name, verb in (("incr", "add N (default 1) to"), ("decr", "subtract N from")):
        p = command(name, f"{verb} a counter", cmd_write)
        p.add_argument("key", type=_key)
        p.add_argument("n", type=_amount, nargs="?", default=1, metavar="N")
        concern(p, True)
    p = command("set", "write a register (or a map field with --field)", cmd_write)
    p.add_argument("key", type=_key)
    p.add_argument("value", type=_value, metavar="VALUE", help="JSON, or else plain text")
    p.add_argument("--field", type=_key, help="write this field of an LWW map instead")
    concern(p, True)
    for name, verb in (("add", "add an item to"), ("remove", "remove an item from")):
        p = command(name, f"{verb} a set", cmd_write)
        p.add_argument("key", type=_key, metavar="SET")
        p.add_argument("item", type=_value, metavar="ITEM", help="JSON, or else plain text")
        concern(p, True)
    p = command("get", "print one key's value", cmd_get)
    p.add_argument("key", type=_key)
    concern(p, False)
    p = command("dump", "print every key and value", cmd_get)
    concern(p, False)
    p = command("replicas", "list the durable members and the replicas announcing", cmd_get)
    concern(p, False)


def _client(args: argparse.Namespace, op: Callable[[ContextStore], Awaitable[int]]) -> int:
    """Open a short-lived replica, run `op`, map errors to exit codes."""

    async def main() -> int:
        bus = await connect(args)
        try:
            store = await ContextStore.open(bus, bootstrap_timeout=args.timeout)
            try:
                return await op(store)
            finally:
                await store.close()
        finally:
            await bus.close()

    try:
        return asyncio.run(main())
    except ConcernError as exc:
        what = "read" if isinstance(exc, ReadConcernError) else "write"
        counts = {"acks": exc.acks, "needed": exc.needed, "members": exc.members}
        emit({"ok": False, **counts, "level": exc.level}, args.json)
        tail = exc.tail  # a write that missed may still spread; a refused remove will not
        return fail(f"{what} missed its concern: {exc}{tail}", EXIT_TIMEOUT)
    except CrdtValueError as exc:
        return fail(str(exc), EXIT_USAGE)
    except CrdtError as exc:
        return fail(str(exc), EXIT_FAILED)


def cmd_write(args: argparse.Namespace) -> int:
    async def op(store: ContextStore) -> int:
        opts = {"write": args.write, "timeout": args.timeout}
        name = args.ctx_command
        if name in ("incr", "decr"):
            result = await getattr(store, name)(args.key, args.n, **opts)
        elif name == "set" and args.field is not None:
            result = await store.map_set(args.key, args.field, args.value, **opts)
        elif name == "set":
            result = await store.set(args.key, args.value, **opts)
        else:
            result = await getattr(store, name)(args.key, args.item, **opts)
        value = store.local(args.key)
        emit(
            {
                "ok": True,
                "key": args.key,
                "value": value,
                "acks": result.acks,
                "needed": result.needed,
                "write": args.write,
            },
            args.json,
            f"{args.key} = {json.dumps(jsonable(value))} "
            f"({result.acks} acks, {result.needed} needed, {args.write})",
        )
        return EXIT_OK

    return _client(args, op)


def cmd_get(args: argparse.Namespace) -> int:
    async def op(store: ContextStore) -> int:
        opts = {"read": args.read, "timeout": args.timeout}
        name = args.ctx_command
        if name == "dump":
            values = await store.dump(**opts)
            human = "\n".join(f"{k} = {json.dumps(jsonable(v))}" for k, v in values.items())
            emit(values, args.json, human or "(empty)")
            return EXIT_OK
        if name == "replicas":
            await store.dump(**opts)
            known = [r for r in store.replicas() if r != store.replica_id]
            doc = {"members": store.members(), "replicas": known}
            emit(
                doc,
                args.json,
                f"members: {' '.join(doc['members']) or '(none)'}\n"
                f"replicas: {' '.join(known) or '(none)'}",
            )
            return EXIT_OK
        missing = object()
        value = await store.get(args.key, default=missing, **opts)
        if value is missing:
            emit({"key": args.key, "value": None, "found": False}, args.json)
            return fail(f"no key {args.key!r}")
        emit(
            {"key": args.key, "value": value, "found": True}, args.json, json.dumps(jsonable(value))
        )
        return EXIT_OK

    return _client(args, op)


def cmd_serve(args: argparse.Namespace) -> int:
    async def main(stop: asyncio.Event) -> int:
        bus = await connect(args, batching="adaptive")  # long-lived: deltas may batch
        try:
            store = await ContextStore.open(
                bus,
                replica_id=args.id,
                data_dir=args.data_dir,
                gossip_interval=args.gossip_interval,
            )
            try:
                emit(
                    {
                        "replica": store.replica_id,
                        "data_dir": args.data_dir,
                        "members": store.members(),
                        "pid": os.getpid(),
                    },
                    args.json,
                    f"replica {store.replica_id} serving {args.data_dir}; "
                    f"members: {' '.join(store.members())}; SIGTERM to stop",
                )
                await stop.wait()
            finally:
                await store.close()
        finally:
            await bus.close()
        if not args.json:
            print(f"replica {store.replica_id} stopped", flush=True)
        return EXIT_OK

    return run_until_stopped(main)
