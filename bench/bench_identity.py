"""Identity signature costs: Ed25519 sign, a first verify, a cached verify (the IdentityVerifier's
hash lookup) and, for scale, one HMAC-SHA256 of the same signing input with the frame
layer's precomputed key, all in one run.

    python bench/bench_identity.py [--rounds 2000] [--trials 5] [--json]

Each figure is the median over --trials of the mean time per operation over --rounds
operations, in microseconds. The record is a ballot-sized map (five scores, a reason);
first verifies use a fresh record each (a new ballot), cached ones repeat one record.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

from amcp.attest import IdentityVerifier, sign, signing_input
from amcp.identity import Identity
from amcp.roster import Roster, RosterEntry
from amcp.signing import MacKey


def _per_op_us(fn: Callable[[int], object], rounds: int, trials: int) -> float:
    runs = []
    for _ in range(trials):
        start = time.perf_counter()
        for i in range(rounds):
            fn(i)
        runs.append((time.perf_counter() - start) / rounds * 1e6)
    return statistics.median(runs)


def run(rounds: int, trials: int) -> dict[str, float]:
    me = Identity.generate("s5-a")
    roster = Roster([RosterEntry(me.agent_id, me.public_key, frozenset({"s5"}))])

    def ballot(i: int) -> dict[str, object]:
        return {
            "proposal": f"p-{i}",
            "voter": me.agent_id,
            "vote": "yes",
            "scores": [0.5, 0.25, 0.125, 1.0, 0.75],
            "reason": "within policy",
        }

    records = [ballot(i) for i in range(rounds)]
    sigs = [sign(me, "ballot", r) for r in records]
    fresh: dict[str, IdentityVerifier] = {}

    def first_verify(i: int) -> object:
        # a IdentityVerifier per trial and a new record each time: every call is a real verify
        return fresh["v"].verify("ballot", me.agent_id, records[i], sigs[i], role="s5")

    def cached_verify(_: int) -> object:
        return fresh["c"].verify("ballot", me.agent_id, records[0], sigs[0], role="s5")

    mac = MacKey(b"k" * 32)
    data = signing_input("ballot", me.agent_id, records[0])
    figures = {
        "sign_us": _per_op_us(lambda i: sign(me, "ballot", records[i]), rounds, trials),
        "encode_us": _per_op_us(
            lambda i: signing_input("ballot", "s5-a", records[i]), rounds, trials
        ),
        "hmac_us": _per_op_us(lambda _: mac.digest(data), rounds, trials),
    }
    verify_runs, cached_runs = [], []
    for _ in range(trials):
        fresh["v"] = IdentityVerifier(roster, cache_size=rounds + 1)
        verify_runs.append(_per_op_us(first_verify, rounds, 1))
        fresh["c"] = IdentityVerifier(roster)
        cached_runs.append(_per_op_us(cached_verify, rounds, 1))
    figures["verify_us"] = statistics.median(verify_runs)
    figures["cached_verify_us"] = statistics.median(cached_runs)
    figures["signing_input_bytes"] = float(len(data))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = run(args.rounds, args.trials)
    if args.json:
        print(json.dumps(figures))
        return
    print(f"signing input: {figures['signing_input_bytes']:.0f} bytes (a ballot)")
    for name in ("sign_us", "verify_us", "cached_verify_us", "encode_us", "hmac_us"):
        print(f"{name:18} {figures[name]:8.2f} us")


if __name__ == "__main__":
    main()
