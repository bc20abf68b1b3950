"""`amcp demo`: a self-contained tour on an embedded nats-server, in plain words.

It needs nothing but the installed package: it starts its own nats-server on a free port
with a throw-away keyring, shows signed delivery, request/reply and the rejection of
forged, tampered and replayed frames, then stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from amcp.bus import Bus
from amcp.cli.common import EXIT_FAILED, EXIT_OK
from amcp.keyring import Keyring
from amcp.server import NatsServer


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="run a short self-contained tour on an embedded server",
        description="Start an embedded nats-server and show amcp at work; "
        "leaves no process behind.",
    )
    demo.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    demo.set_defaults(func=cmd_demo)


class Story:
    """Collects what happened, printing each step as it goes."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.steps: list[dict[str, object]] = []

    def say(self, step: str, text: str, **facts: object) -> None:
        self.steps.append({"step": step, "text": text, **facts})
        if not self.quiet:
            print(f"- {text}", flush=True)


async def _tour(url: str, keyring: Keyring, story: Story) -> bool:
    alice = await Bus.connect(url, keyring=keyring, sender="alice")
    bob = await Bus.connect(url, keyring=keyring, sender="bob")
    mallory = await Bus.connect(url, keyring=Keyring.generate(), sender="mallory")
    try:
        inbox: list[object] = []
        arrived = asyncio.Event()

        def on_greeting(msg) -> None:
            inbox.append(msg.body)
            if len(inbox) == 3:
                arrived.set()

        async def on_echo(msg) -> None:
            await msg.respond({"echo": msg.body})

        await bob.subscribe("demo.greetings", on_greeting)
        await bob.subscribe("demo.echo", on_echo)
        await bob.flush()

        for i in range(1, 4):
            await alice.publish("demo.greetings", {"hello": "bob", "n": i})
        await asyncio.wait_for(arrived.wait(), 5)
        story.say(
            "signed",
            f"alice sent 3 signed messages; bob verified and received {inbox}",
            received=len(inbox),
        )

        start = time.perf_counter()
        reply = await alice.request("demo.echo", "ping", timeout=5)
        story.say(
            "request",
            f"alice asked bob to echo 'ping' and got {reply.body} from "
            f"{reply.sender} in {(time.perf_counter() - start) * 1000:.1f} ms",
        )

        before = dict(bob.rejections)
        await mallory.publish("demo.greetings", {"hello": "bob", "n": 666})  # wrong key
        replayed = alice.sealer.seal("demo.greetings", {"hello": "bob", "n": 4})
        await alice.publish_frame("demo.greetings", replayed)
        await alice.publish_frame("demo.greetings", replayed)  # the same frame again
        tampered = bytearray(alice.sealer.seal("demo.greetings", {"hello": "bob", "n": 5}))
        tampered[-40] ^= 0x01
        await alice.publish_frame("demo.greetings", bytes(tampered))
        await alice.flush()
        deadline = time.monotonic() + 5
        while sum(bob.rejections.values()) - sum(before.values()) < 3:
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        rejected = {k: v - before[k] for k, v in bob.rejections.items() if v != before[k]}
        story.say(
            "attack",
            "mallory forged a message with its own key, alice's frame was "
            f"replayed and another was tampered with: bob rejected {rejected} and "
            f"delivered only the genuine one ({inbox[-1]})",
            rejected=rejected,
        )
        return rejected == {"unknown_key": 1, "replay": 1, "bad_signature": 1}
    finally:
        for bus in (alice, bob, mallory):
            await bus.close()


def cmd_demo(args: argparse.Namespace) -> int:
    story = Story(quiet=args.json)
    with tempfile.TemporaryDirectory(prefix="amcp-demo-") as tmp:
        keyring = Keyring.generate()
        keyring.save(Path(tmp) / "keyring.json")
        with NatsServer(name="amcp-demo", store_dir=Path(tmp) / "nats") as server:
            story.say(
                "server",
                f"started an embedded nats-server at {server.url} with a fresh keyring (mode 0600)",
                url=server.url,
            )
            ok = asyncio.run(_tour(server.url, keyring, story))
        story.say("stop", "stopped the nats-server; nothing is left running")
    if args.json:
        print(json.dumps({"ok": ok, "steps": story.steps}))
    elif ok:
        print("demo finished: every genuine message arrived, every bad one was rejected")
    return EXIT_OK if ok else EXIT_FAILED
