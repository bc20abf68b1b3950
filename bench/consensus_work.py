"""The consensus work of one decision with no messaging at all, timed in one process:
what a decision must add to the scatter-gather floor even if amcp's frames, nats-py and
asyncio cost nothing beyond the floor's own.

    python bench/consensus_work.py [--voters 5] [--blocks 9] [--per-block 300] [--no-identities]

The proposer's part of one decision: the proposal built and encoded; three ballots (a
majority of five) decoded, their identity signatures verified (each ballot new, so no
verifier cache helps) and counted until the outcome is fixed; the decision built, signed
and encoded for the log. A voter's part of one ballot: the proposal decoded, scored, judged,
the ballot signed and encoded. bench_consensus.py prints the bound these give beside the
floor measured in the same run (see `bounds`).

Both are also timed as they run with many proposals in flight (`*_batched_us`): a voter's
ballots made unsigned and signed together in groups of MAX_BATCH (one Ed25519 signature a
group, as VoterService sends them), the proposer's checks of a group's ballots costing one
verify and then a hash each (the verifier's cache). Those give the most decisions a second
the consensus work alone allows with every message free (`rate_bounds`).
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from amcp.attest import IdentityVerifier
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry
from consensus import Decided, Round, VoterContext, VoterState
from consensus.messages import Ballot, Propose
from consensus.model import MAX_BATCH, Proposal
from consensus.signatures import sign_decided, sign_votes
from crdt.wire import pack

PROPOSER = "proposer"
REPLY = "amcp.bench.vote.ballot.proposer"


class Cluster:
    """Keys, roster, voters' states and a proposer's verifier, made once (with
    `identities` off: no keys, nothing signed or verified, as `--no-identities` runs)."""

    def __init__(self, voters: int, identities: bool = True) -> None:
        self.names = [f"v{i}" for i in range(voters)]
        self.keys: dict[str, Identity | None] = {
            name: Identity.generate(name) if identities else None
            for name in (*self.names, PROPOSER)
        }
        self.verifier = (
            IdentityVerifier(
                Roster(
                    RosterEntry(
                        name, key.public_key, frozenset({"s3" if name == PROPOSER else "s5"})
                    )
                    for name, key in self.keys.items()
                    if key is not None
                )
            )
            if identities
            else None
        )
        self.states = {name: VoterState(name, identity=self.keys[name]) for name in self.names}
        self.majority = voters // 2 + 1
        self._view: VoterContext | None = None

    def proposal(self, now_ms: int) -> Proposal:
        return Proposal(
            id=uuid.uuid4().hex,
            action="restart",
            proposer=PROPOSER,
            created_ms=now_ms,
            deadline_ms=now_ms + 10_000,
            payload={"targets": ["w1"]},
        )

    def context(self, now_ms: int) -> VoterContext:
        """The voter's view of the cluster: made once and reused, as a voter reuses its view
        for 0.1 s (VotingExtension)."""
        if self._view is None or self._view.now_ms != now_ms:
            n = len(self.names)
            self._view = VoterContext(role="s5", members=n, live=n, now_ms=now_ms)
        return self._view

    def voter_part(self, voter: str, wire: dict[str, Any], now_ms: int) -> dict[str, Any]:
        """A voter's work on a proposal: decoded, voted on (scored, judged, signed), the
        ballot encoded."""
        proposal = Propose.from_wire(wire).proposal
        vote = self.states[voter].vote(proposal, self.context(now_ms))
        return Ballot(vote=vote).to_wire()

    def voter_group(self, voter: str, wires: list[dict[str, Any]], now_ms: int) -> list[Any]:
        """A voter's work on a group of proposals read together: each decoded and voted on
        unsigned, the ballots signed together and kept, each encoded (VoterService)."""
        state = self.states[voter]
        votes = [
            state.vote(Propose.from_wire(wire).proposal, self.context(now_ms), sign=False)
            for wire in wires
        ]
        signed = sign_votes(self.keys[voter], votes)
        for vote in signed:
            state.keep_signed(vote)
        return [Ballot(vote=vote).to_wire() for vote in signed]

    def proposer_part(self, proposal: Proposal, ballots: list[tuple[str, Any]], now_ms: int) -> Any:
        """The proposer's work once ballots are in: each decoded, verified and counted
        until the outcome is fixed; the decision signed and encoded for the log."""
        round_ = Round(proposal, self.names, now_ms=now_ms, verifier=self.verifier)
        decision = None
        for sender, wire in ballots:
            vote = Ballot.from_wire(wire).vote
            assert vote is not None
            decision = round_.offer(vote, sender, now_ms=now_ms)
            if decision is not None:
                break
        assert decision is not None, "the majority's ballots did not fix the outcome"
        decided = sign_decided(
            self.keys[PROPOSER],
            Decided(proposal=proposal, decision=decision, executor=None, decided_ms=now_ms),
        )
        return pack(decided.to_wire())


def per_op_us(block: Callable[[int], None], blocks: int, per_block: int) -> float:
    """The least time an operation took over `blocks` blocks of `per_block`, in us (the
    least is the work itself; more is the shared host)."""
    best = float("inf")
    for _ in range(blocks):
        start = time.perf_counter()
        block(per_block)
        best = min(best, (time.perf_counter() - start) / per_block)
    return best * 1e6


def measure(
    voters: int = 5, blocks: int = 9, per_block: int = 300, *, identities: bool = True
) -> dict[str, float]:
    """{"proposer_us": a decision's proposer work, "voter_us": a ballot's voter work, the
    same with ballots signed in groups ("proposer_batched_us", "voter_batched_us"), and
    "ed25519_path_us": the signatures on the critical path (0 without identities)}."""
    cluster = Cluster(voters, identities)
    now_ms = int(time.time() * 1000)
    lone = _timed(cluster, now_ms, blocks, per_block, group=1)
    # blocks of whole groups: per_block rounded up to a multiple of MAX_BATCH
    batched = _timed(cluster, now_ms, blocks, -(-per_block // MAX_BATCH) * MAX_BATCH, MAX_BATCH)
    return {
        "proposer_us": lone[0],
        "voter_us": lone[1],
        "proposer_batched_us": batched[0],
        "voter_batched_us": batched[1],
        "ed25519_path_us": ed25519_path_us(cluster.majority, blocks, per_block)
        if identities
        else 0.0,
    }


def _timed(
    cluster: Cluster, now_ms: int, blocks: int, per_block: int, group: int
) -> tuple[float, float]:
    """(the proposer's us a decision, a voter's us a ballot), each voter voting on
    `group` proposals at a time (1: each ballot signed alone, as it is made)."""
    # Ballots made ahead for the proposer's blocks: new proposals, so nothing is cached
    # but what a group shares.
    ballots_ahead: list[tuple[Proposal, list[tuple[str, Any]]]] = []
    voters = cluster.names[: cluster.majority]

    def voters_block(count: int) -> None:
        for _ in range(count // group):
            proposals = [cluster.proposal(now_ms) for _ in range(group)]
            wires = [Propose(proposal=p, reply=REPLY).to_wire() for p in proposals]
            if group == 1:
                ballots = {name: [cluster.voter_part(name, wires[0], now_ms)] for name in voters}
            else:
                ballots = {name: cluster.voter_group(name, wires, now_ms) for name in voters}
            # popped from the end: the group's proposals in reverse, so its first ballot
            # (the one verified) is checked first, as it arrives first
            ballots_ahead.extend(
                (proposals[i], [(name, ballots[name][i]) for name in voters])
                for i in reversed(range(group))
            )

    # the voters' block timed per ballot: `majority` ballots a proposal
    voter_us = per_op_us(voters_block, blocks, per_block) / cluster.majority

    def proposer_block(count: int) -> None:
        for _ in range(count):
            proposal, ballots = ballots_ahead.pop()
            Propose(proposal=cluster.proposal(now_ms), reply=REPLY).to_wire()  # its sending
            cluster.proposer_part(proposal, ballots, now_ms)

    return per_op_us(proposer_block, blocks, per_block), voter_us


def ed25519_path_us(majority: int, blocks: int, per_block: int) -> float:
    """The identity signatures on a decision's critical path alone (issue 16's design):
    a voter signs its ballot, the proposer verifies the `majority` that fix the outcome
    and signs the decision. Ed25519 on 32 bytes, as the records' digests are."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = bytes(32)
    signature = key.sign(message)

    def signs(count: int) -> None:
        for _ in range(count):
            key.sign(message)

    def verifies(count: int) -> None:
        for _ in range(count):
            public.verify(signature, message)

    sign_us = per_op_us(signs, blocks, per_block)
    return 2 * sign_us + majority * per_op_us(verifies, blocks, per_block)


def bounds(
    work: dict[str, float],
    floor_p50_us: float,
    floor_cpu_ms: float,
    voters: int,
    signed: tuple[float, float] | None = None,
) -> dict[str, float]:
    """What the consensus work alone makes of the targets' ratios: the p50 at best is the
    floor's p50 plus the proposer's work and one voter's (the critical path: the voters work
    in parallel); the CPU at best is the floor's plus the proposer's and every voter's work.
    Both assume amcp's messaging costs no more than the floor's and leave out the decision's
    delta to every replica, so the real ratios can only be higher. With `signed` (the p50
    in us and CPU in ms of the same pattern over amcp's signed Bus), also the ratios with
    the messaging costing what the signed bus costs (`*_signed_at_best`)."""
    path_us = work["proposer_us"] + work["voter_us"]
    cpu_us = work["proposer_us"] + voters * work["voter_us"]
    ratios = {
        "p50_ratio_at_best": (floor_p50_us + path_us) / floor_p50_us,
        "p50_ratio_signatures_only": (floor_p50_us + work["ed25519_path_us"]) / floor_p50_us,
        "cpu_ratio_at_best": (floor_cpu_ms * 1e3 + cpu_us) / (floor_cpu_ms * 1e3),
    }
    if signed is not None:
        ratios["p50_ratio_signed_at_best"] = (signed[0] + path_us) / floor_p50_us
        ratios["cpu_ratio_signed_at_best"] = (signed[1] * 1e3 + cpu_us) / (floor_cpu_ms * 1e3)
    return ratios


def rate_bounds(work: dict[str, float], voters: int, cpus: int) -> dict[str, float]:
    """The most decisions a second the consensus work alone allows, ballots signed in
    groups and every message free: `cpus` CPUs shared by the proposer and the voters
    ("shared_per_s"), and one core for each process ("core_each_per_s": the busier of
    the proposer and a voter bounds it)."""
    proposer, voter = work["proposer_batched_us"], work["voter_batched_us"]
    return {
        "shared_per_s": cpus * 1e6 / (proposer + voters * voter),
        "core_each_per_s": 1e6 / max(proposer, voter),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voters", type=int, default=5)
    parser.add_argument("--blocks", type=int, default=9)
    parser.add_argument("--per-block", type=int, default=300)
    parser.add_argument("--no-identities", action="store_true")
    args = parser.parse_args()
    work = measure(args.voters, args.blocks, args.per_block, identities=not args.no_identities)
    print(
        f"consensus work without messaging, {args.voters} voters (least of {args.blocks} blocks "
        f"of {args.per_block}): proposer {work['proposer_us']:.0f} us a decision, a voter "
        f"{work['voter_us']:.0f} us a ballot; of which on the critical path the Ed25519 "
        f"signatures alone (a ballot's, the majority's checks, the decision's) "
        f"{work['ed25519_path_us']:.0f} us"
    )
    cpus = os.cpu_count() or 1
    rates = rate_bounds(work, args.voters, cpus)
    print(
        f"with ballots signed in groups of {MAX_BATCH} (many in flight): proposer "
        f"{work['proposer_batched_us']:.0f} us a decision, a voter "
        f"{work['voter_batched_us']:.0f} us a ballot; at most "
        f"{rates['shared_per_s']:,.0f} decisions/s on {cpus} CPUs and "
        f"{rates['core_each_per_s']:,.0f} with a core per process, every message free"
    )


if __name__ == "__main__":
    main()
