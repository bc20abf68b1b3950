"""System reminders: short facts the cluster injects into every prompt (pure).

They are drawn from the replicated `vsm.` values alone (the active adaptations, the audit
and review state, S5's published vote policy), so every agent whose replica has converged
injects the same lines, in the same order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.vsm.adaptation import Adaptation
from agents.vsm.viability import ADAPTATIONS

__all__ = ["POLICY", "policy_record", "reminders"]

POLICY = "vsm.policy"  # LWW register S5 writes on start: {"quorum", "vote_timeout", "critical"}


def policy_record(quorum: str, vote_timeout: float, critical: list[str]) -> dict[str, Any]:
    return {"quorum": quorum, "vote_timeout": vote_timeout, "critical": sorted(set(critical))}


def _adaptations(values: Mapping[str, Any]) -> list[Adaptation]:
    doc = values.get(ADAPTATIONS)
    found = [Adaptation.from_wire(v) for v in doc.values()] if isinstance(doc, Mapping) else []
    return sorted((a for a in found if a is not None), key=lambda a: a.key)


def reminders(values: Mapping[str, Any]) -> list[str]:
    """The reminder lines for a replica's `vsm.` values."""
    active = _adaptations(values)
    lines = [
        f"Active adaptation {a.key}: {a.effect} ({a.metric} {a.value:.2f}, "
        f"threshold {a.threshold:g})."
        for a in active
        if a.kind != "review"
    ]
    review = [a.target for a in active if a.kind == "review"]
    strict = any(a.kind == "tighten_audits" for a in active)
    # states, not rates: a reminder changes when the cluster does, not with every task
    lines.append(
        "Security: every message is HMAC-signed and replay-checked; "
        f"audits are {'strict' if strict else 'normal'}; "
        f"agents under review: {', '.join(review) if review else 'none'}."
    )
    policy = values.get(POLICY)
    if isinstance(policy, Mapping) and isinstance(policy.get("quorum"), str):
        critical = policy.get("critical")
        actions = ", ".join(str(c) for c in critical) if isinstance(critical, list) else ""
        lines.append(
            f"Quorum: critical actions ({actions or 'none listed'}) need a "
            f"{policy['quorum']} vote of the voters within {policy.get('vote_timeout', '?')} s "
            "before they run."
        )
    else:
        lines.append("Quorum: no S5 policy published yet; critical actions cannot be approved.")
    return lines
