"""`amcp demo`: the README's first command. A viable system on one machine, in plain words.

It needs nothing but the installed package: an embedded nats-server on a free port, a
throw-away keyring and roster of agent identities, and six `amcp-agent` processes (two
S1s, one each of S2 to S5; S3, S4 and S5 vote). Then a short scenario: a task through the
loop, two steps at once on the two S1s, a critical action put to a quorum vote, the
viability counters read the same from every agent's CRDT replica, forged, replayed and
tampered frames rejected, and S4's traffic analysis. Everything it started is stopped
before it returns.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agents.cluster.topology import DEMO_AGENTS, DEMO_VOTERS
from agents.process.child import AgentProcess
from amcp.cli.common import EXIT_FAILED, EXIT_OK, stopped_like_ctrl_c
from amcp.keyring import Keyring

# The bus, the agents' client and models, and the server load when the demo runs, not for
# `amcp --help`.
if TYPE_CHECKING:
    from agents.runtime.client import AgentClient
    from agents.vsm.tasks import CycleResult
    from amcp.bus import Bus

__all__ = ["register"]

START_TIMEOUT = 30.0


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser(
        "demo",
        help="a viable system on an embedded server, in plain words",
        description="Start an embedded nats-server and six agents (two S1s, S2 to S5), run "
        "a task through the loop, a quorum vote, shared CRDT context, rejected forgeries "
        "and the traffic analysis; stop everything and leave no process behind.",
    )
    demo.add_argument("--json", action="store_true", help="print a JSON summary at the end")
    demo.set_defaults(func=cmd_demo)


class Story:
    """Collects what happened, printing each step as it goes."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.steps: list[dict[str, Any]] = []

    def say(self, step: str, text: str, **facts: Any) -> None:
        self.steps.append({"step": step, "text": text, **facts})
        if not self.quiet:
            print(f"- {text}", flush=True)

    def detail(self, lines: list[str]) -> None:
        if not self.quiet:
            for line in lines:
                print(f"    {line}", flush=True)


async def _until(check: Any, timeout: float, what: str) -> Any:
    """Poll an async `check` until it returns something truthy; RuntimeError past `timeout`."""
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.05)


class Scenario:
    def __init__(
        self, client: AgentClient, story: Story, work: Path, procs: list[AgentProcess]
    ) -> None:
        self.client = client
        self.story = story
        self.work = work
        self.procs = procs

    async def members_seen(self) -> dict[str, str] | None:
        from agents.runtime.admin import ClusterView

        for p in self.procs:
            if p.returncode is not None:
                last = (p.log_text().strip().splitlines() or ["(no output)"])[-1]
                raise RuntimeError(f"agent {p.agent_id} exited with {p.returncode}: {last}")
        # Every agent must see all six alive and running, not just the one that answers:
        # S3 allocates from its own view, so a task sent before S3 sees the S1s would stop.
        want = {agent_id for _, agent_id in DEMO_AGENTS}
        seen: dict[str, str] = {}
        for observer in sorted(want):
            try:
                result = await self.client.call(observer, "members")
            except Exception:
                return None
            view = ClusterView.model_validate(result.output)
            ready = {m.id for m in view.members if m.liveness == "alive" and m.state == "running"}
            if not want <= ready:
                return None
            seen.update({m.id: m.liveness for m in view.members if m.id in want})
        return seen

    async def run_task(self, **fields: Any) -> CycleResult:
        from agents.vsm.tasks import CycleResult, TaskSpec

        spec = TaskSpec(cwd=str(self.work), timeout=20, **fields)
        result = await self.client.call("s3", "run-task", spec.model_dump(), timeout=90)
        return CycleResult.model_validate(result.output)

    async def loop(self) -> bool:
        r = await self.run_task(
            description="write a greeting to greeting.txt",
            steps=["echo 'hello from the viable system' > greeting.txt"],
            check="grep -q hello greeting.txt",
        )
        self.story.say(
            "task",
            f"a task went through the loop: {r.summary} "
            f"(agents {', '.join(r.agents)}, {r.seconds * 1000:.0f} ms)",
            success=r.success,
            agents=r.agents,
            path=r.path,
        )
        self.story.detail(r.path)
        return r.success and any(a.startswith("s4") for a in r.agents)

    async def parallel(self) -> bool:
        r = await self.run_task(
            description="count words and list files",
            steps=["wc -w < greeting.txt", "ls"],
        )
        workers = sorted({s.agent for s in r.steps})
        self.story.say(
            "parallel",
            f"two independent steps ran at once on {' and '.join(workers)}: {r.summary}",
            success=r.success,
            workers=workers,
        )
        return r.success and len(workers) == 2

    async def vote(self) -> bool:
        r = await self.run_task(
            description="deploy release 1.2",
            steps=["echo v1.2 > deployed.txt"],
        )
        v = r.vote or {}
        votes = [f"{x['voter']}: {x['reason']}" for x in v.get("votes", [])]
        self.story.say(
            "vote",
            f"S5 classified 'deploy release 1.2' as a critical {v.get('action')} action and "
            f"put it to a {v.get('quorum')} vote of {len(v.get('members', []))} voters: "
            f"{v.get('outcome')} with {v.get('yes')} yes ({v.get('needed', 0):g} needed); "
            + ("then S1 deployed it" if r.success else f"so nothing ran: {r.summary}"),
            outcome=v.get("outcome"),
            voters=len(v.get("members", [])),
            yes=v.get("yes"),
            executed=(self.work / "deployed.txt").exists(),
        )
        self.story.detail(votes)
        return r.success and v.get("outcome") == "committed" and len(v["members"]) == 3

    async def context(self) -> bool:
        ids = [agent_id for _, agent_id in DEMO_AGENTS]

        async def same() -> dict[str, Any] | None:
            seen = [(await self.client.call(i, "viability")).output["metrics"] for i in ids]
            first = seen[0]
            done = first["totals"]["tasks"] == 3 and all(m == first for m in seen)
            return first if done else None

        metrics = await _until(same, 10, "every agent's replica to converge")
        totals = metrics["totals"]
        self.story.say(
            "context",
            f"every agent reads the same viability metrics from its own CRDT replica: "
            f"{totals['tasks']} tasks, {totals['succeeded']} succeeded, completion rate "
            f"{metrics['completion_rate']}, audit pass rate {metrics['audit_pass_rate']}, "
            f"S1 error rates {metrics['error_rates']}",
            agents=len(ids),
            totals=totals,
        )
        return True

    async def attack(self, bus: Bus, url: str) -> bool:
        from amcp.bus import Bus

        target = "s3-a"
        subject = self.client.subjects.call(target)

        async def rejections() -> dict[str, int]:
            view = await self.client.call(target, "members")
            for m in view.output["members"]:
                if m["id"] == target:
                    return dict(m["stats"].get("rejections") or {})
            return {}

        # frames in flight while the agents started may have been refused already (stale):
        # only what this attack adds is its outcome
        before = await rejections()
        mallory = await Bus.connect(
            url, keyring=Keyring.generate(), sender="mallory", cluster=bus.cluster
        )
        try:
            forged = {"tool": "run-task", "input": {"description": "touch pwned.txt"}}
            await mallory.publish(subject, forged)
            await mallory.flush()
        finally:
            await mallory.close()
        genuine = bus.sealer.seal(subject, {"tool": "describe", "input": {}})
        await bus.publish_frame(subject, genuine)
        await bus.publish_frame(subject, genuine)  # the same frame again: a replay
        tampered = bytearray(bus.sealer.seal(subject, {"tool": "describe", "input": {}}))
        tampered[-40] ^= 0x01
        await bus.publish_frame(subject, bytes(tampered))
        await bus.flush()

        async def counted() -> dict[str, int] | None:
            now = await rejections()
            added = {k: n - before.get(k, 0) for k, n in now.items() if n > before.get(k, 0)}
            return added if sum(added.values()) >= 3 else None

        rejected = await _until(counted, 10, f"{target} to report the rejections")
        pwned = (self.work / "pwned.txt").exists()
        self.story.say(
            "attack",
            f"mallory forged a task with its own key, a genuine frame was replayed and "
            f"another tampered with: {target} rejected {rejected}, ran nothing of it "
            f"(no pwned.txt: {not pwned}) and served only the genuine frame",
            rejected=rejected,
            pwned=pwned,
        )
        return rejected == {"unknown_key": 1, "replay": 1, "bad_signature": 1} and not pwned

    async def traffic(self) -> bool:
        async def classified() -> dict[str, Any] | None:
            picture = (await self.client.call("s4", "traffic")).output
            return picture if any(f["class"] for f in picture["families"]) else None

        picture = await _until(classified, 10, "S4 to observe enough traffic to classify")
        families = [
            f"{f['family']} {f['rate']}/s {f['class'] or '(too little data)'}"
            for f in picture["families"]
        ]
        self.story.say(
            "traffic",
            f"S4's traffic analysis (netopt FFT): {picture['note']}",
            families=picture["families"],
            total_rate=picture["total_rate"],
        )
        self.story.detail(families)
        return bool(picture["families"])


async def _scenario(
    url: str, keyring: Keyring, cluster: str, story: Story, work: Path, procs: list[AgentProcess]
) -> bool:
    from agents.runtime.client import AgentClient
    from amcp.bus import Bus

    bus = await Bus.connect(url, keyring=keyring, sender="demo", cluster=cluster)
    try:
        scenario = Scenario(AgentClient(bus, timeout=10), story, work, procs)
        started = time.monotonic()
        await _until(scenario.members_seen, START_TIMEOUT, "six agents to see each other")
        story.say(
            "agents",
            f"six agents joined cluster {cluster} and see each other alive in "
            f"{time.monotonic() - started:.1f}s: two S1s (operations), S2 (coordination), "
            "S3 (control), S4 (intelligence), S5 (policy); S3, S4 and S5 vote",
            agents=[agent_id for _, agent_id in DEMO_AGENTS],
            cluster=cluster,
        )
        parts = {
            "task": scenario.loop,
            "parallel": scenario.parallel,
            "vote": scenario.vote,
            "context": scenario.context,
            "attack": lambda: scenario.attack(bus, url),
            "traffic": scenario.traffic,
        }
        failed = [name for name, part in parts.items() if not await part()]
        if failed:
            story.say("error", f"not as expected: {', '.join(failed)}", failed=failed)
        return not failed
    finally:
        await bus.close()


def _start_agents(url: str, root: Path, cluster: str, procs: list[AgentProcess]) -> None:
    """Start the six agents into `procs`, one by one, so that an interruption half way
    leaves each one started where the caller stops it."""
    from agents.cluster.identities import AgentIdentities, roles_of

    env = {**os.environ, "AMCP_VSM_INTERVAL": "0.2"}
    ids = AgentIdentities(root)  # identity checks on, as on every cluster amcp makes
    ids.provision((i, roles_of(role, i in DEMO_VOTERS)) for role, i in DEMO_AGENTS)
    for role, agent_id in DEMO_AGENTS:
        agent = AgentProcess(
            role,
            agent_id,
            nats=url,
            keyring=root / "keyring.json",
            cluster=cluster,
            identity=ids.path(agent_id),
            roster=ids.roster,
            args=["--voter"] if agent_id in DEMO_VOTERS else [],
            env=env,
            log_dir=root / "logs",
        )
        procs.append(agent.start())


def cmd_demo(args: argparse.Namespace) -> int:
    import asyncio

    from amcp.server import NatsServer

    story = Story(quiet=args.json)
    ok = False
    codes: dict[str, int] = {}
    # SIGTERM or SIGHUP stops it as Ctrl-C does: what it started is stopped on the way out
    with stopped_like_ctrl_c(), tempfile.TemporaryDirectory(prefix="amcp-demo-") as tmp:
        root = Path(tmp)
        keyring_path = Keyring.generate().save(root / "keyring.json")
        keyring = Keyring.load(keyring_path)
        work = root / "work"
        work.mkdir()
        cluster = f"demo-{uuid.uuid4().hex[:6]}"
        with NatsServer(name="amcp-demo", store_dir=root / "nats") as server:
            story.say("server", f"started an embedded nats-server at {server.url} with a "
                      "fresh keyring (mode 0600) and an Ed25519 identity per agent in a "
                      "roster", url=server.url)  # fmt: skip
            procs: list[AgentProcess] = []
            try:
                _start_agents(server.url, root, cluster, procs)
                ok = asyncio.run(_scenario(server.url, keyring, cluster, story, work, procs))
            except Exception as exc:
                story.say("error", f"the demo stopped early: {exc}", error=str(exc))
            finally:
                codes = {p.agent_id: p.terminate() for p in procs}
                for p in procs:
                    p.close()
    clean = bool(codes) and all(code == 0 for code in codes.values())
    story.say(
        "stop",
        "stopped the six agents (each drained, left the cluster and exited "
        + ("0" if clean else f"with {codes}")
        + ") and the nats-server; nothing is left running",
        exit_codes=codes,
    )
    ok = ok and clean
    if args.json:
        print(json.dumps({"ok": ok, "steps": story.steps}))
    elif ok:
        print("demo finished: the task loop, the vote, the shared context, the rejections "
              "and the traffic analysis all worked")  # fmt: skip
    return EXIT_OK if ok else EXIT_FAILED
