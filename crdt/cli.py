"""`amcp ctx`: run a durable replica, and read or write the shared context from a shell.

Each read or write command opens a short-lived in-memory replica, catches up from a peer,
does its one operation under its concern and closes. Writes default to `--write one`: a
command is reported done only once a durable replica holds the write on disk. A write
that misses its concern exits 3 and says how many replicas acknowledged it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    add_connection_options,
    batching_mode,
    connect,
    emit,
    fail,
    jsonable,
    parse_json_arg,
    run_until_stopped,
)
from amcp.errors import ConfigError
from crdt.concern import LEVELS, WriteResult
from crdt.errors import ConcernError, CrdtError, CrdtValueError, ReadConcernError
from crdt.hlc import epoch_ms
from crdt.messages import check_replica_id
from crdt.peers import MEMBERS_KEY
from crdt.wire import as_name

if TYPE_CHECKING:  # the store (the bus, the journal) is imported by the commands that open one
    import asyncio

    from crdt.store import ContextStore

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
    _add_serve(cmds)
    _add_counter(cmds, "incr", "add N (default 1) to")
    _add_counter(cmds, "decr", "subtract N from")
    _add_set(cmds)
    _add_delete(cmds)
    _add_forget(cmds)
    _add_set_item(cmds, "add", "add an item to")
    _add_set_item(cmds, "remove", "remove an item from")
    _add_get(cmds)
    _add_dump(cmds)
    _add_replicas(cmds)


def _add_serve(cmds: argparse._SubParsersAction) -> None:
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


def _command(
    cmds: argparse._SubParsersAction, name: str, help: str, func: Callable[..., int]
) -> argparse.ArgumentParser:
    """A read or write command: its help is its description too."""
    parser = cmds.add_parser(name, help=help, description=help)
    parser.set_defaults(func=func)
    return parser


def _write_concern(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--write",
        choices=LEVELS,
        default="one",
        help="acknowledgements to wait for (default one: a durable replica)",
    )
    _timeout_and_connection(parser)


def _read_concern(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--read",
        choices=LEVELS,
        default="local",
        help="replicas whose state is merged before answering (default local)",
    )
    _timeout_and_connection(parser)


def _timeout_and_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=_positive, default=2.0, metavar="S", help="seconds (default 2)"
    )
    add_connection_options(parser)


def _add_counter(cmds: argparse._SubParsersAction, name: str, verb: str) -> None:
    p = _command(cmds, name, f"{verb} a counter", cmd_write)
    p.add_argument("key", type=_key)
    p.add_argument("n", type=_amount, nargs="?", default=1, metavar="N")
    _write_concern(p)


def _add_set(cmds: argparse._SubParsersAction) -> None:
    p = _command(cmds, "set", "write a register (or a map field with --field)", cmd_write)
    p.add_argument("key", type=_key)
    p.add_argument("value", type=_value, metavar="VALUE", help="JSON, or else plain text")
    p.add_argument("--field", type=_key, help="write this field of an LWW map instead")
    _write_concern(p)


def _add_delete(cmds: argparse._SubParsersAction) -> None:
    p = _command(
        cmds,
        "delete",
        "delete a register (a tombstone write: it reads as null) or a map field with --field",
        cmd_write,
    )
    p.add_argument("key", type=_key)
    p.add_argument("--field", type=_key, help="delete this field of an LWW map")
    _write_concern(p)


def _add_forget(cmds: argparse._SubParsersAction) -> None:
    p = _command(
        cmds,
        "forget",
        "remove a decommissioned durable replica from the members (it stops counting)",
        cmd_forget,
    )
    p.add_argument("replica", type=_replica_id, metavar="ID")
    _write_concern(p)


def _add_set_item(cmds: argparse._SubParsersAction, name: str, verb: str) -> None:
    p = _command(cmds, name, f"{verb} a set", cmd_write)
    p.add_argument("key", type=_key, metavar="SET")
    p.add_argument("item", type=_value, metavar="ITEM", help="JSON, or else plain text")
    _write_concern(p)


def _add_get(cmds: argparse._SubParsersAction) -> None:
    p = _command(cmds, "get", "print one key's value", cmd_get)
    p.add_argument("key", type=_key)
    _read_concern(p)


def _add_dump(cmds: argparse._SubParsersAction) -> None:
    _read_concern(_command(cmds, "dump", "print every key and value", cmd_get))


def _add_replicas(cmds: argparse._SubParsersAction) -> None:
    p = _command(
        cmds,
        "replicas",
        "list the durable members (live, stopped, or silent for how long) and the replicas "
        "announcing; waits up to --listen S for their announcements",
        cmd_get,
    )
    p.add_argument(
        "--listen",
        type=_positive,
        default=1.5,
        metavar="S",
        help="seconds to listen for announcements (default 1.5: over a 1 s gossip interval)",
    )
    _read_concern(p)


def _client(args: argparse.Namespace, op: Callable[[ContextStore], Awaitable[int]]) -> int:
    """Open a short-lived replica, run `op`, map errors to exit codes."""
    import asyncio

    from crdt.store import ContextStore

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
        elif name == "delete":
            result = await _delete(store, args, opts)
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


async def _delete(store: ContextStore, args: argparse.Namespace, opts: dict) -> WriteResult:
    """A tombstone write with a newer HLC timestamp, as the LWW CRDTs allow: a map field's
    tombstone, or a register's never-written value (None). Counters and sets have none."""
    await store.get(args.key, read="local" if args.write == "local" else "one")
    kind = store.type_of(args.key)
    if kind is None:
        raise CrdtError(f"no key {args.key!r}")
    if args.field is not None:
        if kind != "lwwmap":
            raise CrdtError(f"{args.key} is a {kind}, not a map: drop --field")
        return await store.map_delete(args.key, args.field, **opts)
    if kind == "lwwmap":
        raise CrdtError(f"{args.key} is a map: name the field to delete with --field")
    if kind == "orset":
        raise CrdtError(f"{args.key} is a set: remove its items with `amcp ctx remove`")
    if kind != "lwwreg":
        raise CrdtError(f"{args.key}: a {kind} cannot be deleted (a CRDT counter has no tombstone)")
    return await store.set(args.key, None, **opts)


def replica_rows(records: Any, announcing: list[str], now_ms: int) -> list[dict[str, Any]]:
    """Each member and each replica heard: "live" if announcing, else "stopped" (its record
    says it stopped gracefully) or "silent" (crashed or cut off); `seconds` since it
    stopped, or since its last sign of life on record."""
    records = records if isinstance(records, dict) else {}
    rows = []
    for rid in sorted(set(records) | set(announcing)):
        record = records.get(rid)
        record = record if isinstance(record, dict) else {}
        if rid in announcing:
            state, since = "live", None
        elif "stopped_ms" in record:
            state, since = "stopped", record["stopped_ms"]
        else:
            state = "silent"
            since = max(record.get("joined_ms", 0), record.get("seen_ms", 0)) or None
        seconds = None if since is None else max(0, round((now_ms - since) / 1000))
        rows.append({"id": rid, "member": rid in records, "state": state, "seconds": seconds})
    return rows


def _render_row(row: dict[str, Any]) -> str:
    ago = "?" if row["seconds"] is None else f"{row['seconds']}s"
    if row["state"] == "live":
        return f"  {row['id']}  live"
    if row["state"] == "stopped":
        return f"  {row['id']}  stopped {ago} ago (`amcp ctx forget {row['id']}` if it is gone)"
    return f"  {row['id']}  not seen for {ago} (last sign of life on record): crashed or cut off"


async def _listen(store: ContextStore, wanted: set[str], seconds: float) -> list[str]:
    """The replicas heard announcing within `seconds` (stop early once all of `wanted` are):
    announcements come once per gossip interval, and this replica has just started."""
    import asyncio

    wanted = wanted - {store.replica_id}
    for _ in range(max(1, round(seconds / 0.05))):
        if wanted <= set(store.announcing()):
            break
        await asyncio.sleep(0.05)
    return store.announcing()


async def _replicas(store: ContextStore, args: argparse.Namespace) -> int:
    await store.dump(read=args.read, timeout=args.timeout)
    records = store.local(MEMBERS_KEY) or {}
    heard = await _listen(store, set(records), args.listen)
    rows = replica_rows(records, heard, epoch_ms())
    doc = {"members": sorted(records), "replicas": heard, "status": rows}
    members = [_render_row(r) for r in rows if r["member"]]
    others = [r["id"] for r in rows if not r["member"]]
    human = "\n".join(
        [
            "members (write and read concerns count them):",
            *(members or ["  (none)"]),
            f"other replicas announcing: {' '.join(others) or '(none)'}",
        ]
    )
    emit(doc, args.json, human)
    return EXIT_OK


def cmd_forget(args: argparse.Namespace) -> int:
    async def op(store: ContextStore) -> int:
        await store.get(MEMBERS_KEY, read="local" if args.write == "local" else "one")
        if args.replica not in (store.local(MEMBERS_KEY) or {}):
            raise CrdtError(f"{args.replica} is not a member")
        if args.replica in await _listen(store, {args.replica}, min(args.timeout, 1.5)):
            raise CrdtError(f"{args.replica} is running: stop it first (it stays a member)")
        result = await store.forget(args.replica, write=args.write, timeout=args.timeout)
        emit(
            {"ok": True, "forgot": args.replica, "acks": result.acks, "needed": result.needed},
            args.json,
            f"forgot {args.replica} ({result.acks} acks, {result.needed} needed, {args.write})",
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
            return await _replicas(store, args)
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
    from crdt.store import ContextStore

    async def main(stop: asyncio.Event) -> int:
        # $AMCP_BATCHING, off by default; it serves, so it starts no trace of its own
        bus = await connect(args, batching=batching_mode(), trace=False)
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
