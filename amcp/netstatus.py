"""What a bus reports of its network tuning: the batching policy in force per subject family
and the adaptive request timeout (RFC 6298) per destination family. Agents put it in their
heartbeats, so `amcp status` shows it for every member; bounded to the busiest families."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from amcp.bus import Bus

__all__ = ["MAX_FAMILIES", "network_status"]

MAX_FAMILIES = 8
"""Families listed at most, each for batching and for timeouts: a heartbeat stays small."""


def network_status(bus: Bus) -> dict[str, Any]:
    """{"batching": mode, "families": [policy per family, busiest first], "immediate":
    {family: messages sent past the batches}, "rto": {family: {rto_ms, srtt_ms}}}."""
    batcher = bus.batcher
    families: list[dict[str, Any]] = []
    immediate: dict[str, int] = {}
    if batcher is None:
        mode = "off"
    else:
        mode = "adaptive" if batcher.sampler is not None else "fixed"
        ranked = sorted(batcher.policies(), key=lambda t: t.rate, reverse=True)
        for t in ranked[:MAX_FAMILIES]:
            families.append(
                {
                    "family": t.family,
                    # None: too slow for any class to linger, so not analysed
                    "class": None if t.traffic_class is None else str(t.traffic_class),
                    "rate": round(t.rate, 1),
                    "max_messages": t.policy.max_messages,
                    "linger_ms": round(t.policy.linger_seconds * 1000, 3),
                }
            )
        immediate = dict(batcher.immediate.most_common(MAX_FAMILIES))
    rto: dict[str, dict[str, float | None]] = {}
    for family in list(bus.rtos)[-MAX_FAMILIES:]:  # the most recently used last
        est = bus.rtos.peek(family)
        if est is not None:
            srtt = None if est.srtt is None else round(est.srtt * 1000, 3)
            rto[family] = {"rto_ms": round(est.rto * 1000, 3), "srtt_ms": srtt}
    return {"batching": mode, "families": families, "immediate": immediate, "rto": rto}
