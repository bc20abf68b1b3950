"""`amcp send` and `amcp listen`: signed publish, verified subscribe."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import TYPE_CHECKING

from amcp.cli.common import (
    EXIT_OK,
    EXIT_TIMEOUT,
    add_connection_options,
    connect,
    emit,
    jsonable,
    parse_json_arg,
    run_until_stopped,
    seconds,
)
from amcp.subjects import validate_subject

if TYPE_CHECKING:  # the message (and with it the envelope's codec) is the bus's to import
    from amcp.message import Message


def register(sub: argparse._SubParsersAction) -> None:
    send = sub.add_parser(
        "send",
        help="publish one signed message",
        description="Publish a JSON body, signed with the keyring's key.",
    )
    send.add_argument("subject")
    send.add_argument("body", metavar="JSON", help="the message body, e.g. '{\"x\": 1}'")
    send.add_argument("--kind", default="msg", help="message kind (default msg)")
    add_connection_options(send)
    send.set_defaults(func=cmd_send)

    listen = sub.add_parser(
        "listen",
        help="print verified messages on a subject",
        description="Print each verified message; rejected frames are "
        "reported on stderr with their reason.",
    )
    listen.add_argument("subject", help="subject, wildcards allowed (e.g. 'tasks.>')")
    listen.add_argument("--count", type=int, metavar="N", help="exit after N messages")
    listen.add_argument(
        "--timeout",
        type=seconds(),
        metavar="S",
        help="exit 3 if fewer than --count messages arrive within S seconds",
    )
    listen.add_argument("--queue", metavar="GROUP", help="join a queue group")
    add_connection_options(listen)
    listen.set_defaults(func=cmd_listen)


def cmd_send(args: argparse.Namespace) -> int:
    import asyncio

    validate_subject(args.subject)
    body = parse_json_arg(args.body, "JSON body")

    async def main() -> int:
        bus = await connect(args)
        try:
            await bus.publish_checked(args.subject, body, kind=args.kind)
            emit(
                {"subject": args.subject, "sender": bus.sender, "seq": bus.sealer.seq},
                args.json,
                f"sent to {args.subject} as {bus.sender} seq {bus.sealer.seq}",
            )
        finally:
            await bus.close()
        return EXIT_OK

    return asyncio.run(main())


def _render(msg: Message, as_json: bool) -> str:
    if as_json:
        return json.dumps(
            jsonable(
                {
                    "subject": msg.subject,
                    "sender": msg.sender,
                    "seq": msg.seq,
                    "kind": msg.kind,
                    "ts_ms": msg.ts_ms,
                    "headers": msg.headers,
                    "body": msg.body,
                }
            )
        )
    return f"[{msg.subject}] {msg.sender}#{msg.seq} {msg.kind}: {json.dumps(jsonable(msg.body))}"


def cmd_listen(args: argparse.Namespace) -> int:
    import asyncio

    validate_subject(args.subject, wildcards=True)
    if args.count is not None and args.count < 1:
        from amcp.errors import ConfigError

        raise ConfigError("--count must be at least 1")

    async def main(stop: asyncio.Event) -> int:
        bus = await connect(args)
        bus.on_reject = lambda reason, subject, detail: print(
            f"rejected {reason} on {subject}: {detail}", file=sys.stderr, flush=True
        )
        seen = 0
        done = asyncio.Event()

        def on_message(msg: Message) -> None:
            nonlocal seen
            if done.is_set():
                return
            print(_render(msg, args.json), flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                done.set()

        try:
            await bus.subscribe(args.subject, on_message, queue=args.queue)
            await bus.flush()
            waiters = [asyncio.ensure_future(done.wait()), asyncio.ensure_future(stop.wait())]
            await asyncio.wait(waiters, timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await w
        finally:
            await bus.close()
        if args.count is not None and seen < args.count and not stop.is_set():
            print(f"amcp: got {seen} of {args.count} messages before the timeout", file=sys.stderr)
            return EXIT_TIMEOUT
        emit(None, False)
        return EXIT_OK

    return run_until_stopped(main)
