"""Consensus work timed where it runs: the thread CPU time of a decision's consensus steps
inside the voters and the proposer of a benchmark run, beside the same steps timed hot in
one process (bench/consensus_work.py).

On a host where seven busy processes share two CPUs, each message wakes a process whose
caches the others have since filled: the same Python runs slower there than back to back
in a loop. `bench_consensus.py --in-place` installs these clocks (bench code only: the
steps are wrapped in the benchmark's own processes) and reads them over the sequential
5-voter decisions.

The steps (what consensus_work.py times, less the proposal's construction and the
record's encoding): a voter's `Propose.from_wire`, `VoterState.vote` (score, policy,
signature) and `Ballot.to_wire`; the proposer's `Propose.to_wire`, `Ballot.from_wire`,
`Round.offer` (identity check and tally) and `sign_decided`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import consensus.coordinator as coordinator_module
from consensus.messages import Ballot, Propose
from consensus.round import Round
from consensus.voterstate import VoterState

ENV = "AMCP_BENCH_IN_PLACE"  # a folder: voters write their clocks there on SIGUSR1


class StepClock:
    """Thread CPU ns and calls per step, summed since the process started."""

    def __init__(self) -> None:
        self.ns: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def wrap(self, step: str, call: Callable[..., Any]) -> Callable[..., Any]:
        clock, ns, calls = time.thread_time_ns, self.ns, self.calls

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = clock()
            try:
                return call(*args, **kwargs)
            finally:
                ns[step] += clock() - start
                calls[step] += 1

        return timed

    def snapshot(self) -> dict[str, dict[str, int]]:
        return {"ns": dict(self.ns), "calls": dict(self.calls)}


def _clock(clock: StepClock, owner: Any, name: str, step: str) -> None:
    """Time `owner.name` (a method, a classmethod or a module's function) as `step`."""
    timed = clock.wrap(step, getattr(owner, name))  # a classmethod comes bound to its class
    if isinstance(vars(owner).get(name), classmethod):
        timed = staticmethod(timed)
    setattr(owner, name, timed)


def install_voter() -> StepClock:
    """Clock a voter's steps in this process."""
    clock = StepClock()
    _clock(clock, Propose, "from_wire", "decode")
    _clock(clock, VoterState, "vote", "vote")
    _clock(clock, Ballot, "to_wire", "encode")
    return clock


def install_proposer() -> StepClock:
    """Clock the proposer's steps in this process."""
    clock = StepClock()
    _clock(clock, Propose, "to_wire", "propose")
    _clock(clock, Ballot, "from_wire", "decode")
    _clock(clock, Round, "offer", "offer")
    _clock(clock, coordinator_module, "sign_decided", "sign")
    return clock


def serve_snapshots(clock: StepClock, folder: str) -> None:
    """On each SIGUSR1, write the clock to `folder`/<pid>.json (whole, then renamed)."""
    path = Path(folder) / f"{os.getpid()}.json"

    def write(*_: Any) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"at": time.monotonic_ns(), **clock.snapshot()}))
        tmp.replace(path)

    signal.signal(signal.SIGUSR1, write)


async def read_snapshots(
    pids: list[int], folder: str, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Ask each voter for its clock and wait (bounded) until all have written a new one."""
    asked = time.monotonic_ns()
    for pid in pids:
        os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    found: dict[int, dict[str, Any]] = {}
    while True:
        for pid in pids:
            path = Path(folder) / f"{pid}.json"
            if pid not in found and path.exists():
                doc = json.loads(path.read_text())
                if doc["at"] >= asked:
                    found[pid] = doc
        if len(found) == len(pids):
            return [found[pid] for pid in pids]
        if time.monotonic() > deadline:
            missing = sorted(set(pids) - set(found))
            raise RuntimeError(f"voters {missing} wrote no step clock in {timeout} s")
        await asyncio.sleep(0.01)  # a poll of files other processes write: no event to await


def per_op_us(
    before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], per: str
) -> dict[str, float]:
    """Each step's us per `per` call (a voter: per vote; the proposer: per proposal sent),
    and their sum under "total", between two snapshots."""
    ops = after["calls"].get(per, 0) - before["calls"].get(per, 0)
    steps = {
        step: (ns - before["ns"].get(step, 0)) / max(1, ops) / 1e3
        for step, ns in after["ns"].items()
    }
    return steps | {"total": sum(steps.values()), "ops": ops}


def voters_per_ballot_us(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> dict[str, float]:
    """The voters' steps per ballot, the mean over the voters."""
    each = [per_op_us(b, a, "vote") for b, a in zip(before, after, strict=True)]
    return {key: sum(e[key] for e in each) / len(each) for key in each[0]}
