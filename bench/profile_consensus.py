"""Where a decision's CPU goes, per process and per step, from bench_consensus.py --profile.

    python bench/bench_consensus.py --decisions 200 --trials 2 --no-syncobj --profile DIR
    python bench/profile_consensus.py DIR

Each step is the cumulative CPU time of the functions that do it (cProfile by CPU time),
as a share of the process's profiled CPU and in ms per decision (under the profiler, whose
overhead inflates small Python functions: compare shares, or runs of the same build).
The proposer's figures cover all its decisions (3, 5 and 7 voters); a voter's, its cluster.
"""

from __future__ import annotations

import pstats
import sys
from collections import defaultdict
from pathlib import Path

# step -> (file suffix, function name) pairs whose cumulative times add up (not nested)
PROPOSER = {
    "decode+validate ballots": [("consensus/messages.py", "from_wire")],
    "verify ballots": [("consensus/signatures.py", "check_vote")],
    "canonical-form checks (all)": [("amcp/attest.py", "_check_plain")],
    "Ed25519 verifies": [("amcp/identity.py", "verify_signature")],
    "tally": [("consensus/tally.py", "decide"), ("consensus/round.py", "_may_fix")],
    "sign decision": [("consensus/signatures.py", "sign_decided")],
    "record (log write)": [("consensus/coordinator.py", "_record")],
}
VOTER = {
    "decode+validate proposal": [("consensus/messages.py", "from_wire")],
    "cluster view": [("agents/vsm/voting.py", "_context")],
    "score": [("consensus/scorer.py", "score"), ("consensus/scorer.py", "combine")],
    "policy": [("consensus/policy.py", "decide")],
    "sign ballot": [("consensus/signatures.py", "sign_vote")],
    "canonical-form checks (all)": [("amcp/attest.py", "_check_plain")],
    "leases": [("consensus/locks.py", "acquire"), ("consensus/voterstate.py", "holds")],
    "decision lookup": [("consensus/record.py", "decided")],
    "ballot encode+publish": [("amcp/bus.py", "publish")],
    "audit": [("agents/vsm/voting.py", "_audit_vote"), ("agents/runtime/audit.py", "_write_loop")],
    "replicated records": [("crdt/replicator.py", "_on_shared")],
}
COUNT = {  # one call per decision
    "proposer": ("consensus/round.py", "__init__"),
    "voter": ("consensus/voterstate.py", "vote"),
}


def sums(
    paths: list[Path], table: dict[str, list[tuple[str, str]]], count: tuple[str, str]
) -> None:
    """The steps of `table`, summed over the profiles in `paths` (one cluster's voters)."""
    cum: dict[tuple[str, str], float] = defaultdict(float)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    total = 0.0
    wanted = {pair for pairs in table.values() for pair in pairs} | {count}
    for path in paths:
        stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
        for (file, _, name), (_, ncalls, tottime, cumtime, _) in stats.items():
            total += tottime
            for suffix, fn in wanted:
                if file.endswith(suffix) and name == fn:
                    cum[suffix, fn] += cumtime
                    calls[suffix, fn] += ncalls
    n = max(1, calls[count])  # decisions (the proposer) or ballots (all the voters)
    print(f"  {total:.2f} s CPU profiled over {n} {'ballots' if len(paths) > 1 else 'decisions'}")
    print(f"  {'all':34} {1:6.1%} {total / n * 1e3:7.3f} ms")
    for step, pairs in table.items():
        spent = sum(cum[p] for p in pairs)
        print(f"  {step:34} {spent / total:6.1%} {spent / n * 1e3:7.3f} ms")


def main() -> None:
    folder = Path(sys.argv[1])
    print("proposer (all its decisions), per decision:")
    sums(sorted(folder.glob("proposer-*.prof")), PROPOSER, COUNT["proposer"])
    clusters: dict[str, list[Path]] = defaultdict(list)
    for path in folder.glob("v*.prof"):  # v<i>-<cluster>-<pid>.prof
        clusters[path.name.split("-")[1]].append(path)
    for paths in sorted(clusters.values(), key=len):
        print(f"voters of a {len(paths)}-voter cluster, per ballot (one voter's):")
        sums(paths, VOTER, COUNT["voter"])


if __name__ == "__main__":
    main()
