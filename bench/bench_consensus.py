"""Consensus benchmark: quorum decisions beside raw nats-py request/reply and PySyncObj.

In one run, on one embedded nats-server, for 3, 5 and 7 voters (majority), in alternating
trials (so that the load of a shared machine falls on every figure alike):
- raw nats-py request/reply latency (a responder in its own process);
- raw nats-py scatter-gather: one request to N responder processes, done at the first
  majority of replies. It is the floor of the vote's message pattern (N processes woken,
  a majority heard) with nothing of amcp: no signing, scoring, tally or record;
- signed scatter-gather: the same pattern over amcp's Bus (HMAC-signed, nonce-checked
  frames; responders in their own processes answer on the subject the request names, as
  voters do), still with nothing of consensus: what the signed bus itself adds to the floor;
- amcp decision latency: each voter is an Agent (runtime, replicated member list, the
  voting extension) in its own process; the proposer's Coordinator measures `coordinate()`
  from proposing to the decision being recorded.
Each figure is the median of the trials' p50s (p99 over all samples), with the CPU per
operation of the nats-server, each voter or responder and the caller (from /proc; Linux).
Then decisions per
second with many proposals in flight (5 voters; median and lowest of the trials), and
PySyncObj (Raft): 3 nodes on this machine, each its own process, committing a replicated
counter increment: latency of one synchronous commit, and commits per second with many
in flight, at its defaults and tuned to a 1 ms tick.

    python bench/bench_consensus.py [--decisions 400] [--trials 4] [--commits 100]
                                    [--seconds 5] [--inflight 64 512] [--durable]
                                    [--no-identities] [--linger S] [--compare-linger]
                                    [--no-syncobj] [--json]
                                    [--profile DIR] [--in-place]

Identities are on by default (issue 16): each voter and the proposer sign with their own
Ed25519 identity and check against one shared roster file (ballots, decisions, member
records); `--no-identities` gives the figures without them (HMAC frames only).

`--profile DIR` runs the proposer and each voter under cProfile, timed by CPU time (not
wall: the machine is shared), and writes DIR/<process>-<pid>.prof (read with pstats).
`--in-place` also times the consensus steps inside the proposer and the 5 voters, over
the sequential decisions, beside their hot figures (bench/inplace.py).

`--durable` gives the voters data directories: each is then a durable replica and the
decision log is written with a majority of them (fsync on each). PySyncObj needs the
`bench` extra (`pip install -e .[bench]`).

Targets (issue 18, 5 voters): p50 <= 1.5x the scatter-gather floor, p99 <= 2x its p99, CPU
per decision <= 2x the floor's, decisions/s with many in flight >= PySyncObj's commits/s at
a 1 ms tick. With many in flight it also prints the CPU per decision per process and the
rate one core per process would allow (1 / the busiest process's CPU per decision).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import inplace  # bench/ is on sys.path when run as a script
import nats
from consensus_work import bounds, measure, rate_bounds

from agents import Agent, AgentConfig
from agents.vsm.voting import VotingExtension
from amcp import Bus, Identity, Keyring, Message, NatsServer, Roster, RosterEntry
from amcp.cli.common import run_until_stopped
from amcp.server import free_port
from consensus import Coordinator, Outcome

RAW_SUBJECT = "bench.raw.echo"
FAN_SUBJECT = "bench.raw.fan.{}"  # served by the first N responders
SIGNED_CLUSTER = "benchsigned"  # the signed responders' namespace: amcp.benchsigned.*
SIZES = (3, 5, 7)
HERE = Path(__file__).resolve()
PROFILE_ENV = "AMCP_BENCH_PROFILE"  # --profile's folder, inherited by the children


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def profiled(name: str, call: Callable[[], Any]) -> Any:
    """`call()`, under cProfile by CPU time when PROFILE_ENV names a folder."""
    folder = os.environ.get(PROFILE_ENV)
    if not folder:
        return call()
    import cProfile

    profile = cProfile.Profile(time.process_time)
    try:
        return profile.runcall(call)
    finally:
        profile.dump_stats(Path(folder) / f"{name}-{os.getpid()}.prof")


# -- child processes ------------------------------------------------------------------


def child_raw_echo(url: str, *subjects: str) -> int:
    """A nats-py responder echoing requests on `subjects`."""

    async def main(stop: asyncio.Event) -> int:
        nc = await nats.connect(url)

        async def echo(msg: Any) -> None:
            await msg.respond(msg.data)

        for subject in subjects:
            await nc.subscribe(subject, cb=echo)
        await nc.flush()
        print("ready", flush=True)
        await stop.wait()
        await nc.close()
        return 0

    return run_until_stopped(main)


def child_bus_echo(url: str, keyring: str, sender: str, *sizes: str) -> int:
    """An amcp Bus responder: each request's body names the subject to answer on (as a
    proposal names its ballots'), answered with a signed frame of the same size."""

    async def main(stop: asyncio.Event) -> int:
        bus = await Bus.connect(
            url, keyring=Keyring.load(keyring), sender=sender, cluster=SIGNED_CLUSTER
        )

        async def echo(msg: Message) -> None:
            await bus.publish(msg.body["reply"], msg.body, kind="rep")

        for n in sizes:
            await bus.subscribe(bus.subjects.area("fan", n), echo)
        await bus.flush()
        print("ready", flush=True)
        await stop.wait()
        await bus.close()
        return 0

    return run_until_stopped(main)


def child_voter(
    url: str,
    keyring: str,
    cluster: str,
    agent_id: str,
    data_dir: str,
    batching: str,
    identity: str = "",
    roster: str = "",
) -> int:
    async def main(stop: asyncio.Event) -> int:
        ring = Keyring.load(keyring)
        bus = await Bus.connect(
            url, keyring=ring, sender=agent_id, cluster=cluster, batching=batching,
            **identity_options(identity, roster),
        )  # fmt: skip
        config = AgentConfig(  # a bare runtime: voting is asked for, not implied by "s5"
            role="s5",
            agent_id=agent_id,
            voter=True,
            data_dir=Path(data_dir) if data_dir else None,
        )
        agent = Agent(bus, config, extensions=[VotingExtension(config)])
        if folder := os.environ.get(inplace.ENV):  # --in-place: clock the consensus steps
            inplace.serve_snapshots(inplace.install_voter(), folder)
        try:
            await agent.start()
            print("ready", flush=True)
            return await agent.run(stop)
        finally:
            await bus.close()

    return run_until_stopped(main)


def identity_options(identity: str, roster: str) -> dict[str, Any]:
    """Bus.connect's identity and roster from their files ("": identities off)."""
    if not identity:
        return {}
    return {"identity": Identity.load(identity), "roster": Roster.load(roster)}


def identities_up(workdir: Path, agents: list[str]) -> dict[str, str]:
    """A key file per agent (voters get the roster's voter role s5, the proposer s3) and
    the roster of all of them: paths by agent id, the roster under "roster"."""
    folder = workdir / "identities"
    paths: dict[str, str] = {}
    roster = Roster()
    for agent in agents:
        identity = Identity.generate(agent)
        paths[agent] = str(identity.save(folder / f"{agent}.json"))
        roles = frozenset({"s3"} if agent == "proposer" else {"s5"})
        roster.add(RosterEntry(agent, identity.public_key, roles))
    paths["roster"] = str(roster.save(folder / "roster.json"))
    return paths


def syncobj_counter(port: int, peers: list[int], period: float | None, lead: bool) -> Any:
    """A PySyncObj (Raft) node holding a replicated counter.

    `period` None keeps PySyncObj's defaults (a 50 ms tick, append-entries every 100 ms:
    a commit waits for the next round); a number sets both, for low latency. `lead` gives
    the node shorter election timeouts so it becomes the leader (commands sent to a
    follower take a forwarding round more); the others wait 2 to 3 s before they stand,
    since they start before it. Election timeouts do not change a commit's path.
    """
    from pysyncobj import SyncObj, SyncObjConf, replicated

    options: dict[str, Any] = {"commandsWaitLeader": True}
    if period is not None:
        options.update(autoTickPeriod=period, appendEntriesPeriod=period)
    if lead:  # time out first, and so be elected
        shortest = max(0.05, 3.5 * (period or 0.1))  # PySyncObj wants > 3 append periods
        options.update(raftMinTimeout=shortest, raftMaxTimeout=shortest * 1.1)
    else:
        options.update(raftMinTimeout=2.0, raftMaxTimeout=3.0)

    class Counter(SyncObj):
        def __init__(self) -> None:
            conf = SyncObjConf(**options)
            super().__init__(f"127.0.0.1:{port}", [f"127.0.0.1:{p}" for p in peers], conf)
            self.value = 0

        @replicated
        def incr(self) -> int:
            self.value += 1
            return self.value

    return Counter()


def child_syncobj(period: str, port: str, *peers: str) -> int:
    """A PySyncObj node of the benchmark (a follower); serves until its stdin closes."""
    syncobj_counter(int(port), [int(p) for p in peers], float(period) or None, lead=False)
    print("ready", flush=True)
    sys.stdin.read()
    return 0


def spawn(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise RuntimeError(f"child {args[:2]} did not start: {line!r}")
    return proc


def stop(procs: list[subprocess.Popen[str]]) -> None:
    for proc in procs:
        with contextlib.suppress(Exception):
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- measurements ---------------------------------------------------------------------


async def timed(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        start = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - start)
    return samples


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time per operation of the nats-server, the peers (voters or responders) and
    this process (the caller), summed over the blocks it times."""

    def __init__(self, server: int, peers: list[int]) -> None:
        self.groups = {"server": [server], "peer": peers}
        self.used: dict[str, float] = dict.fromkeys([*self.groups, "caller"], 0.0)
        self.ops = 0

    def _now(self) -> dict[str, float]:
        now = {name: sum(map(cpu_seconds, pids)) for name, pids in self.groups.items()}
        return {**now, "caller": time.process_time()}

    async def timed(self, call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
        before = self._now()
        samples = await timed(call, count)
        self.add(before, count)
        return samples

    async def rate(
        self, call: Callable[[], Awaitable[Any]], seconds: float, inflight: int
    ) -> float:
        """`rate`, with the CPU its operations used."""
        before = self._now()
        per_s, done = await rate(call, seconds, inflight)
        self.add(before, done)
        return per_s

    def add(self, before: dict[str, float], ops: int) -> None:
        for name, value in self._now().items():
            self.used[name] += value - before[name]
        self.ops += ops

    def per_op_ms(self) -> dict[str, float]:
        """ms per operation: server, each peer (the mean), caller, and the total of all."""
        per = {name: used / max(1, self.ops) * 1e3 for name, used in self.used.items()}
        total = sum(per.values())
        sizes = {name: len(pids) for name, pids in self.groups.items()}
        return {name: v / sizes.get(name, 1) for name, v in per.items()} | {"total": total}


async def rate(
    call: Callable[[], Awaitable[Any]], seconds: float, inflight: int
) -> tuple[float, int]:
    """Operations per second with `inflight` of them in flight, and how many were done."""
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(inflight)))
    return done / (time.perf_counter() - start), done


class Scatter:
    """Responder processes, and one scatter-gather at a time per key: done at the first
    majority (n // 2 + 1) of answers."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []
        self._waiting: dict[Any, list[Any]] = {}  # key -> [answers still needed, future]
        self._next = 0

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _answered(self, key: Any) -> None:
        waiting = self._waiting.get(key)
        if waiting is not None:
            waiting[0] -= 1
            if waiting[0] == 0:
                waiting[1].set_result(None)

    async def _gather(self, key: Any, n: int, send: Callable[[], Awaitable[None]]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting[key] = [n // 2 + 1, done]
        try:
            await send()
            await asyncio.wait_for(done, 5)
        finally:
            del self._waiting[key]


class Raw(Scatter):
    """The nats-py references: request/reply to one responder, and scatter-gather to the
    first N responders (done at the first majority of replies), each in its own process."""

    def __init__(self, url: str, server_pid: int) -> None:
        super().__init__()
        self.url = url
        self.server_pid = server_pid
        self.nc: Any = None
        self._inbox = ""

    async def start(self) -> None:
        for i in range(max(SIZES)):
            subjects = [FAN_SUBJECT.format(n) for n in SIZES if i < n]
            if i == 0:
                subjects.append(RAW_SUBJECT)
            self.procs.append(spawn("--child-raw-echo", self.url, *subjects))
        self.nc = await nats.connect(self.url)
        self._inbox = self.nc.new_inbox()
        await self.nc.subscribe(self._inbox + ".*", cb=self._on_reply)

    async def close(self) -> None:
        if self.nc is not None:
            await self.nc.close()
        stop(self.procs)

    async def request(self) -> None:
        await self.nc.request(RAW_SUBJECT, b"x" * 64, timeout=5)

    async def _on_reply(self, msg: Any) -> None:
        self._answered(msg.subject)

    async def scatter(self, n: int) -> None:
        """One request to n responders; returns at the first n // 2 + 1 replies."""
        self._next += 1
        reply = f"{self._inbox}.{self._next}"
        await self._gather(
            reply, n, lambda: self.nc.publish(FAN_SUBJECT.format(n), b"x" * 64, reply=reply)
        )


class Signed(Scatter):
    """Scatter-gather over amcp's Bus: one signed request to the first N bus responders
    (each in its own process), done at the first majority of signed answers."""

    def __init__(self, url: str, ring: Keyring, ring_path: str) -> None:
        super().__init__()
        self.url, self.ring, self.ring_path = url, ring, ring_path
        self.bus: Bus | None = None
        self._reply = ""

    async def start(self) -> None:
        for i in range(max(SIZES)):
            sizes = [str(n) for n in SIZES if i < n]
            self.procs.append(spawn("--child-bus-echo", self.url, self.ring_path, f"r{i}", *sizes))
        self.bus = await Bus.connect(
            self.url, keyring=self.ring, sender="caller", cluster=SIGNED_CLUSTER
        )
        self._reply = self.bus.subjects.area("answers", uuid.uuid4().hex[:8])
        await self.bus.subscribe(self._reply, lambda msg: self._answered(msg.body["id"]))
        await self.bus.flush()

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.close()
        stop(self.procs)

    async def scatter(self, n: int) -> None:
        """One signed request to n responders; returns at the first n // 2 + 1 answers."""
        bus = self.bus
        assert bus is not None
        self._next += 1
        body = {"id": self._next, "reply": self._reply, "pad": b"x" * 32}
        await self._gather(
            self._next, n, lambda: bus.publish(bus.subjects.area("fan", str(n)), body, kind="req")
        )


async def voters_up(
    url: str, ring_path: str, n: int, args: argparse.Namespace, workdir: Path,
    ids: dict[str, str],
) -> tuple[str, list[subprocess.Popen[str]]]:  # fmt: skip
    cluster = f"b{uuid.uuid4().hex[:8]}"
    procs = []
    for i in range(n):
        data = str(workdir / cluster / f"v{i}") if args.durable else ""
        procs.append(spawn("--child-voter", url, ring_path, cluster, f"v{i}", data, args.batching,
                           ids.get(f"v{i}", ""), ids.get("roster", "")))  # fmt: skip
    return cluster, procs


async def decision_figures(
    raw: Raw,
    signed: Signed,
    url: str,
    ring: Keyring,
    ring_path: str,
    n: int,
    args: argparse.Namespace,
    workdir: Path,
    ids: dict[str, str],
) -> dict[str, Any]:
    cluster, procs = await voters_up(url, ring_path, n, args, workdir, ids)
    bus = await Bus.connect(
        url, keyring=ring, sender="proposer", cluster=cluster, batching=args.batching,
        **identity_options(ids.get("proposer", ""), ids.get("roster", "")),
    )  # fmt: skip
    try:
        options = {} if args.linger is None else {"linger": args.linger}
        coordinator = await Coordinator.open(bus, **options)
        deadline = time.monotonic() + 20
        while len(coordinator.voters()) < n and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

        linger = coordinator.linger

        async def one(announce_after: float = linger) -> None:
            coordinator.linger = announce_after
            result = await coordinator.coordinate("restart", {"targets": ["w1"]}, timeout=10)
            if result.outcome is not Outcome.COMMITTED:
                raise RuntimeError(f"a benchmark decision did not commit: {result.outcome}")

        kinds: dict[str, Callable[[], Awaitable[Any]]] = {
            "raw": raw.request,
            "floor": lambda: raw.scatter(n),
            "signed": lambda: signed.scatter(n),
            "decision": one,
        }
        if args.compare_linger:  # the same decisions, each announced in a frame of its own
            kinds["unlingered"] = lambda: one(0.0)
        for call in kinds.values():  # warm-up
            await timed(call, 100)
        peers = {"raw": raw.pids[:1], "floor": raw.pids[:n], "signed": signed.pids[:n]}
        voters = [p.pid for p in procs]
        meters = {kind: CpuMeter(raw.server_pid, peers.get(kind, voters)) for kind in kinds}
        block = max(1, args.decisions // args.trials)
        trials: dict[str, list[list[float]]] = {kind: [] for kind in kinds}
        clock: inplace.StepClock | None = args.clock if n == 5 else None
        if clock is not None:
            voters_before = await inplace.read_snapshots(voters, os.environ[inplace.ENV])
            proposer_before = clock.snapshot()
        for _ in range(args.trials):  # alternating: each trial measures every kind
            for kind, call in kinds.items():
                trials[kind].append(await meters[kind].timed(call, block))
        figures: dict[str, Any] = {
            "voters": n,
            "recorded": coordinator.record or ("majority" if args.durable else "local"),
            "cpu_ms": {kind: meter.per_op_ms() for kind, meter in meters.items()},
        }
        if clock is not None:  # the sequential decisions' consensus steps, where they ran
            voters_after = await inplace.read_snapshots(voters, os.environ[inplace.ENV])
            figures["in_place_us"] = {
                "proposer": inplace.per_op_us(proposer_before, clock.snapshot(), "propose"),
                "voter": inplace.voters_per_ballot_us(voters_before, voters_after),
            }
        for kind, samples in trials.items():
            pooled = [x for trial in samples for x in trial]
            figures[f"{kind}_p50_us"] = statistics.median(percentile(t, 0.5) for t in samples) * 1e6
            figures[f"{kind}_p99_us"] = percentile(pooled, 0.99) * 1e6
        if n == 5:  # many in flight: decisions/s, and the CPU per decision per process
            figures["inflight"] = {}
            for inflight in args.inflight:
                meter = CpuMeter(raw.server_pid, [p.pid for p in procs])
                floor_meter = CpuMeter(raw.server_pid, raw.pids[:n])
                rates, floor_rates = [], []
                for _ in range(args.trials):  # alternating, as above
                    rates.append(await meter.rate(one, args.seconds, inflight))
                    floor_rates.append(
                        await floor_meter.rate(kinds["floor"], args.seconds, inflight)
                    )
                figures["inflight"][str(inflight)] = {
                    "per_s": statistics.median(rates),
                    "per_s_trials": rates,
                    "cpu_ms": meter.per_op_ms(),
                    "floor_per_s": statistics.median(floor_rates),
                    "floor_cpu_ms": floor_meter.per_op_ms(),
                }
            first = figures["inflight"][str(args.inflight[0])]
            figures["per_s"], figures["per_s_trials"] = first["per_s"], first["per_s_trials"]
        await coordinator.close()
        return figures
    finally:
        await bus.close()
        stop(procs)


def syncobj_figures(
    count: int, seconds: float, inflights: list[int], period: float | None
) -> dict[str, Any]:
    """Commits of a counter increment on 3 PySyncObj nodes, submitted at the leader."""
    ports = [free_port() for _ in range(3)]
    nodes = [spawn("--child-syncobj", str(period or 0), str(p), *(str(q) for q in ports if q != p))
             for p in ports[1:]]  # fmt: skip
    driver = syncobj_counter(ports[0], ports[1:], period, lead=True)
    try:
        deadline = time.monotonic() + 20
        while not driver._isLeader() and time.monotonic() < deadline:
            time.sleep(0.05)
        led = bool(driver._isLeader())
        for _ in range(10):
            driver.incr(sync=True, timeout=5)  # warm-up
        samples = []
        for _ in range(count):
            start = time.perf_counter()
            driver.incr(sync=True, timeout=5)
            samples.append(time.perf_counter() - start)
        per_s = {str(inflight): _commits(driver, seconds, inflight) for inflight in inflights}
        return {
            "p50_us": percentile(samples, 0.5) * 1e6,
            "p99_us": percentile(samples, 0.99) * 1e6,
            "per_s": per_s[str(inflights[0])],
            "per_s_at": per_s,
            "period_s": period,
            "at_leader": led,
            "still_leader": bool(driver._isLeader()),
        }
    finally:
        driver.destroy()
        for node in nodes:
            with contextlib.suppress(Exception):
                assert node.stdin is not None
                node.stdin.close()
        stop(nodes)


def _commits(driver: Any, seconds: float, inflight: int) -> float:
    """Commits/s with `inflight` increments kept pending at the leader."""
    from pysyncobj import FAIL_REASON

    done = 0
    slots = threading.Semaphore(inflight)
    end = time.perf_counter() + seconds

    def committed(result: Any, error: Any) -> None:
        nonlocal done
        if error == FAIL_REASON.SUCCESS:
            done += 1
        slots.release()

    start = time.perf_counter()
    while time.perf_counter() < end:
        slots.acquire()
        driver.incr(callback=committed)
    for _ in range(inflight):
        slots.acquire()
    return done / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    work = measure(5, identities=not args.no_identities)  # before any process is started
    # after the hot measurement: the clocks wrap the same steps
    args.clock = inplace.install_proposer() if args.in_place else None
    ring = Keyring.generate()
    with tempfile.TemporaryDirectory(prefix="amcp-bench-") as tmp, NatsServer(name="bench") as srv:
        workdir = Path(tmp)
        ring_path = str(ring.save(workdir / "keyring.json"))
        assert srv.pid is not None
        raw = Raw(srv.url, srv.pid)
        signed = Signed(srv.url, ring, ring_path)
        agents = ["proposer", *(f"v{i}" for i in range(max(SIZES)))]
        ids = {} if args.no_identities else identities_up(workdir, agents)
        try:
            await raw.start()
            await signed.start()
            decisions = [
                await decision_figures(raw, signed, srv.url, ring, ring_path, n, args, workdir, ids)
                for n in SIZES
            ]
        finally:
            await signed.close()
            await raw.close()
    syncobj = [
        await asyncio.to_thread(syncobj_figures, args.commits, args.seconds, args.inflight, t)
        for t in ((None, 0.001) if not args.no_syncobj else ())
    ]
    return {"decisions": decisions, "pysyncobj": syncobj,
            "durable": args.durable, "batching": args.batching, "cpus": os.cpu_count(),
            "identities": not args.no_identities, "linger": args.linger,
            "inflight": args.inflight, "consensus_work_us": work,
            "load": os.getloadavg()}  # fmt: skip


def report(doc: dict[str, Any]) -> str:
    lines = [
        f"amcp consensus benchmark ({doc['cpus']} CPUs, load {doc['load'][0]:.1f}; voters "
        f"are agent processes; decisions recorded {doc['decisions'][0]['recorded']}; "
        f"batching {doc['batching']}; identities {'on' if doc['identities'] else 'off'}; "
        f"announcement linger {_linger(doc.get('linger'))}; "
        "median of the trials' p50s, p99 over all samples)",
        "",
        f"{'voters':>6}  {'raw req/reply':>17}  {'raw scatter-gather':>24}  "
        f"{'amcp decision':>30}  {'decision/floor':>14}",
    ]
    for d in doc["decisions"]:
        raw, floor, dec = d["raw_p50_us"], d["floor_p50_us"], d["decision_p50_us"]
        lines.append(
            f"{d['voters']:>6}  p50 {raw:5.0f} p99 {d['raw_p99_us']:5.0f}  "
            f"p50 {floor:5.0f} ({floor / raw:4.2f}x raw)  "
            f"p50 {dec:5.0f} p99 {d['decision_p99_us']:6.0f} ({dec / raw:5.2f}x raw)  "
            f"{dec / floor:13.2f}x"
        )
    lines.append("(us; scatter-gather: one request to N nats-py responders, done at a majority)")
    for d in doc["decisions"]:
        floor, sig = d["floor_p50_us"], d["signed_p50_us"]
        lines.append(
            f"signed scatter-gather (amcp Bus, nothing of consensus), {d['voters']} voters: "
            f"p50 {sig:5.0f} ({sig / floor:4.2f}x the floor) p99 {d['signed_p99_us']:5.0f} "
            f"({d['signed_p99_us'] / d['floor_p99_us']:4.2f}x); decision p50 "
            f"{d['decision_p50_us'] / sig:4.2f}x this"
        )
    for d in doc["decisions"]:
        cpu = d["cpu_ms"]
        parts = [
            f"{kind} {c['total']:.2f} (server {c['server']:.2f}, each peer {c['peer']:.2f}, "
            f"caller {c['caller']:.2f})"
            for kind, c in cpu.items()
        ]
        lines.append(f"CPU ms per op, {d['voters']} voters: " + "; ".join(parts))
    for d in doc["decisions"]:
        if "unlingered_p50_us" in d:
            ours, each = d["cpu_ms"]["decision"], d["cpu_ms"]["unlingered"]
            lines.append(
                f"announcement linger vs none, {d['voters']} voters, same trials: p50 "
                f"{d['decision_p50_us']:.0f} vs {d['unlingered_p50_us']:.0f} us, p99 "
                f"{d['decision_p99_us']:.0f} vs {d['unlingered_p99_us']:.0f} us; CPU ms a "
                f"decision {ours['total']:.2f} vs {each['total']:.2f} (each voter "
                f"{ours['peer']:.2f} vs {each['peer']:.2f}, proposer {ours['caller']:.2f} vs "
                f"{each['caller']:.2f}, server {ours['server']:.2f} vs {each['server']:.2f})"
            )
    three, five = (next(d for d in doc["decisions"] if d["voters"] == n) for n in (3, 5))
    tick = next((t for t in doc["pysyncobj"] if t["period_s"] == 0.001), None)
    for inflight, fig in five.get("inflight", {}).items():
        cpu = fig["cpu_ms"]
        busiest = max(cpu["server"], cpu["peer"], cpu["caller"])
        line = (
            f"decisions/s, 5 voters, {inflight} in flight: {fig['per_s']:6.0f} "
            f"(lowest trial {min(fig['per_s_trials']):.0f}); CPU ms a decision {cpu['total']:.2f} "
            f"(server {cpu['server']:.2f}, each voter {cpu['peer']:.2f}, proposer "
            f"{cpu['caller']:.2f}); one core per process: {1e3 / busiest:6.0f}/s"
        )
        if tick is not None and inflight in tick.get("per_s_at", {}):
            theirs = tick["per_s_at"][inflight]
            line += f"; vs PySyncObj 1 ms tick {theirs:.0f}/s: {fig['per_s'] / theirs:.2f}x"
        lines.append(line)
        if "floor_per_s" in fig:  # the message pattern alone, as many in flight
            fcpu = fig["floor_cpu_ms"]
            fbusiest = max(fcpu["server"], fcpu["peer"], fcpu["caller"])
            lines.append(
                f"  scatter-gather floor, {inflight} in flight: {fig['floor_per_s']:6.0f}/s; "
                f"CPU ms an op {fcpu['total']:.2f} (server {fcpu['server']:.2f}, each responder "
                f"{fcpu['peer']:.2f}, caller {fcpu['caller']:.2f}); one core per process: "
                f"{1e3 / fbusiest:6.0f}/s"
            )
    for sync in doc["pysyncobj"]:
        tuning = "defaults" if sync["period_s"] is None else f"{sync['period_s'] * 1000:g} ms tick"
        where = "at the leader" if sync["at_leader"] else "at a follower"
        where += "" if sync["still_leader"] == sync["at_leader"] else ", leader changed"
        name = f"PySyncObj 3 nodes ({tuning}, {where})"
        rates = ", ".join(f"{k} in flight {v:.0f}" for k, v in sync.get("per_s_at", {}).items())
        lines.append(
            f"{name}, counter commit  p50 {sync['p50_us']:8.0f} us   p99 {sync['p99_us']:8.0f} us"
            f"   commits/s: {rates or round(sync['per_s'])}"
        )
        for d in (three, five):  # 3 voters: as many processes as its 3 nodes
            versus = _faster(sync["p50_us"], d["decision_p50_us"])
            lines.append(f"  amcp {d['voters']} voters vs this: p50 {versus}")
    lines += _targets(five, tick, doc["consensus_work_us"], doc["cpus"])
    return "\n".join(lines)


def _targets(
    five: dict[str, Any], tick: dict[str, Any] | None, work: dict[str, float], cpus: int
) -> list[str]:
    """Issue 18's targets, 5 voters, against this run's floor and PySyncObj, and what the
    consensus work alone (no messaging) leaves of the first and third at best."""
    floor, dec = five["floor_p50_us"], five["decision_p50_us"]
    cpu = five["cpu_ms"]
    checks = [
        ("p50 <= 1.5x the floor", dec / floor, 1.5),
        ("p99 <= 2x the floor's p99", five["decision_p99_us"] / five["floor_p99_us"], 2.0),
        ("CPU <= 2x the floor's", cpu["decision"]["total"] / cpu["floor"]["total"], 2.0),
    ]
    lines = ["targets (issue 18, 5 voters):"]
    lines += [
        f"  {name}: {ratio:.2f}x  {'ok' if ratio <= limit else 'MISSED'}"
        for name, ratio, limit in checks
    ]
    if tick is not None:
        for inflight, fig in five.get("inflight", {}).items():
            theirs = tick.get("per_s_at", {}).get(inflight)
            if theirs:
                ratio = fig["per_s"] / theirs
                lines.append(
                    f"  decisions/s >= PySyncObj 1 ms tick, {inflight} in flight: {ratio:.2f}x  "
                    f"{'ok' if ratio >= 1 else 'MISSED'}"
                )
    if five.get("inflight"):  # what the rates above could reach with every message free
        rates = rate_bounds(work, 5, cpus)
        lines.append(
            f"  consensus work alone, ballots signed in groups (proposer "
            f"{work['proposer_batched_us']:.0f} us a decision, a voter "
            f"{work['voter_batched_us']:.0f} us a ballot), every message free: at most "
            f"{rates['shared_per_s']:,.0f} decisions/s on {cpus} CPUs, "
            f"{rates['core_each_per_s']:,.0f} with a core per process"
        )
    signed = (five["signed_p50_us"], cpu["signed"]["total"])
    best = bounds(work, floor, cpu["floor"]["total"], 5, signed)
    lines.append(
        f"  consensus work without messaging (bench/consensus_work.py): proposer "
        f"{work['proposer_us']:.0f} us a decision, a voter {work['voter_us']:.0f} us a ballot; "
        f"added to this run's floor with every message free, p50 {best['p50_ratio_at_best']:.2f}x"
        f" and CPU {best['cpu_ratio_at_best']:.2f}x the floor at best; the critical path's "
        f"Ed25519 alone ({work['ed25519_path_us']:.0f} us) makes the p50 "
        f"{best['p50_ratio_signatures_only']:.2f}x the floor"
    )
    lines.append(
        f"  the same work on the signed bus's pattern (p50 {signed[0]:.0f} us, CPU "
        f"{signed[1]:.2f} ms an op: {signed[0] / floor:.2f}x and "
        f"{signed[1] / cpu['floor']['total']:.2f}x the floor): p50 "
        f"{best['p50_ratio_signed_at_best']:.2f}x and CPU {best['cpu_ratio_signed_at_best']:.2f}x "
        f"the floor at best"
    )
    here = five.get("in_place_us")
    if here is not None:
        proposer, voter = here["proposer"]["total"], here["voter"]["total"]
        at = bounds({**work, "proposer_us": proposer, "voter_us": voter},
                    floor, cpu["floor"]["total"], 5, signed)  # fmt: skip
        lines.append(
            f"  the same steps where they ran (--in-place: thread CPU in the processes, "
            f"{here['proposer']['ops']:.0f} decisions): proposer {proposer:.0f} us "
            f"({proposer / work['proposer_us']:.1f}x the hot figure; {_steps(here['proposer'])}),"
            f" a voter {voter:.0f} us ({voter / work['voter_us']:.1f}x; {_steps(here['voter'])}):"
            f" on the signed bus's pattern, p50 {at['p50_ratio_signed_at_best']:.2f}x and CPU "
            f"{at['cpu_ratio_signed_at_best']:.2f}x the floor at best"
        )
    return lines


def _steps(clocked: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in clocked.items() if k not in ("total", "ops"))


def _seconds(text: str) -> float:
    """A number of seconds in [0, 60] (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 60:
        raise argparse.ArgumentTypeError(f"expected seconds in [0, 60], got {text!r}")
    return value


def _linger(linger: float | None) -> str:
    return "the coordinator's default" if linger is None else f"{linger * 1000:g} ms"


def _faster(theirs: float, ours: float) -> str:
    """Our time against theirs, in words."""
    ratio = theirs / ours
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child-"):
        kind, rest = sys.argv[1], sys.argv[2:]
        if kind == "--child-raw-echo":
            sys.exit(child_raw_echo(*rest))
        if kind == "--child-bus-echo":
            sys.exit(child_bus_echo(*rest))
        if kind == "--child-voter":  # url, keyring, cluster, agent id, ...
            sys.exit(profiled(f"{rest[3]}-{rest[2]}", lambda: child_voter(*rest)))
        sys.exit(child_syncobj(*rest))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--decisions", type=int, default=400, help="sequential samples per figure")
    p.add_argument("--trials", type=int, default=4, help="alternating trials per figure")
    p.add_argument("--commits", type=int, default=100, help="sequential PySyncObj samples")
    p.add_argument("--seconds", type=float, default=5.0, help="throughput run length")
    p.add_argument(
        "--inflight", type=int, nargs="+", default=[64, 512], help="proposals in flight (each)"
    )
    p.add_argument("--durable", action="store_true", help="voters keep durable replicas")
    p.add_argument(
        "--batching",
        choices=["off", "adaptive"],
        default="off",
        help="the buses' batching (amcp-agent's default is off)",
    )
    p.add_argument(
        "--no-identities",
        action="store_true",
        help="no agent identities: ballots, decisions and member records unsigned, unchecked",
    )
    p.add_argument(
        "--linger",
        type=_seconds,
        metavar="SECONDS",
        help="how long a decision nobody waits on may wait to share its announcement "
        "(Coordinator linger; default its own, 0.01; 0: each decision its own frame)",
    )
    p.add_argument(
        "--compare-linger",
        action="store_true",
        help="also time, in the same trials, the decisions announced each in a frame of "
        "their own (linger 0)",
    )
    p.add_argument(
        "--in-place",
        action="store_true",
        help="also time the consensus steps where they run (thread CPU inside the proposer "
        "and the 5 voters, over the sequential decisions; see bench/inplace.py)",
    )
    p.add_argument("--no-syncobj", action="store_true", help="skip PySyncObj")
    p.add_argument("--json", action="store_true")
    p.add_argument("--profile", metavar="DIR", help="cProfile each process into DIR")
    args = p.parse_args()
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        os.environ[PROFILE_ENV] = str(Path(args.profile).resolve())
    if not args.in_place:
        doc = profiled("proposer", lambda: asyncio.run(run(args)))
    else:
        with tempfile.TemporaryDirectory(prefix="amcp-in-place-") as clocks:
            os.environ[inplace.ENV] = clocks  # inherited by the voters
            doc = profiled("proposer", lambda: asyncio.run(run(args)))
    print(json.dumps(doc) if args.json else report(doc))


if __name__ == "__main__":
    main()
