"""Hand-run micro-benchmark of the local hot path: `python -m crdt._bench` (not a test)."""

from __future__ import annotations

import time

from crdt.state import ReplicaState


def incr_rate(ops: int = 500_000, keys: int = 100) -> float:
    """Local GCounter increments per second through ReplicaState.incr, deltas included."""
    state = ReplicaState("bench")
    names = [f"counter.{i}" for i in range(keys)]
    start = time.perf_counter()
    for i in range(ops):
        state.incr(names[i % keys])
    return ops / (time.perf_counter() - start)


if __name__ == "__main__":
    rate = incr_rate()
    print(f"ReplicaState.incr: {rate:,.0f} ops/s ({'ok' if rate > 100_000 else 'SLOW'}: >100,000)")
