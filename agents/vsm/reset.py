"""What `amcp reset` clears in a cluster's shared context, planned from one replica (pure).

Cleared, as the seed orchestrator's `--reset` does:

- the viability counters (`vsm.` grow-only counters): they cannot go back to zero, so
  their values now become the baseline `vsm.base` (agents.vsm.viability), from which the
  totals and every window count again;
- the active adaptations: each field of the `vsm.adaptations` map is deleted;
- task state: every key under `task.` (a task's context and compaction, agents.vsm.prompts
  .context): a map's fields are deleted, a register set to nothing, a set's items removed.
  A counter there cannot be cleared and is named as kept.

Never touched: the keyring and identities (files, not context), the member records
(`agents.members`, the replicas' `_ctx.` keys) and the audit log (a JetStream stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.vsm.viability import ADAPTATIONS, FINISHED, counters

__all__ = ["TASK_PREFIX", "ResetPlan", "plan_reset"]

TASK_PREFIX = "task."
_COUNTERS = ("gcounter", "pncounter")


@dataclass(frozen=True)
class ResetPlan:
    """The writes of one reset and what it leaves alone."""

    baseline: dict[str, int]  # the `vsm.` counters now: the new `vsm.base`
    adaptations: list[str]  # fields of vsm.adaptations to delete
    task_maps: dict[str, list[str]] = field(default_factory=dict)  # key -> fields
    task_registers: list[str] = field(default_factory=list)
    task_sets: dict[str, list[Any]] = field(default_factory=dict)  # key -> items
    kept: list[str] = field(default_factory=list)  # task keys that cannot be cleared

    @property
    def task_keys(self) -> list[str]:
        return sorted([*self.task_maps, *self.task_registers, *self.task_sets])

    def to_wire(self) -> dict[str, Any]:
        return {
            "viability": {"baseline": dict(self.baseline), "tasks": self.baseline.get(FINISHED, 0)},
            "adaptations": list(self.adaptations),
            "task_state": self.task_keys,
            "kept_counters": list(self.kept),
        }

    def describe(self) -> list[str]:
        """One line per part, as `amcp reset` prints them."""
        counted = self.baseline.get(FINISHED, 0)
        adaptations = ", ".join(self.adaptations) or "none active"
        keys = self.task_keys
        lines = [
            f"viability counters: {len(self.baseline)} counted from now on "
            f"({counted} finished tasks before the reset)",
            f"adaptations: {len(self.adaptations)} cleared ({adaptations})",
            f"task state: {len(keys)} keys cleared" + (f" ({_names(keys)})" if keys else ""),
        ]
        if self.kept:
            lines.append(f"kept (counters only grow): {_names(self.kept)}")
        return lines


def _names(keys: list[str], most: int = 5) -> str:
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(keys[:most]) + more


def plan_reset(values: Mapping[str, Any], types: Mapping[str, str | None]) -> ResetPlan:
    """The plan for a replica whose keys hold `values`, of CRDT `types` (ContextStore's
    `dump` and `type_of`). Keys that are already empty need no write."""
    doc = values.get(ADAPTATIONS)
    adaptations = sorted(doc) if isinstance(doc, Mapping) else []
    plan = ResetPlan(baseline=counters(values), adaptations=adaptations)
    for key in sorted(values):
        if not key.startswith(TASK_PREFIX):
            continue
        value, kind = values[key], types.get(key)
        if kind in _COUNTERS:
            plan.kept.append(key)
        elif kind == "lwwmap" and isinstance(value, Mapping) and value:
            plan.task_maps[key] = sorted(value)
        elif kind == "orset" and value:
            plan.task_sets[key] = list(value)
        elif kind == "lwwreg" and value is not None:
            plan.task_registers.append(key)
    return plan
