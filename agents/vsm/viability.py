"""Viability metrics, derived from the CRDT counters every agent replicates (pure).

The roles count what happens in grow-only counters under `vsm.` (tasks finished and
succeeded, cycle iterations, audits passed and failed, S2 checks and oscillations, S3/S4
conflicts, each S1's successes and failures). The metrics are a function of those values
alone, so every agent whose replica has converged reads exactly the same numbers.

Rates are taken over a sliding window, so a metric can recover: the register `vsm.window`
holds two checkpoints of the counters, and the window is everything since the older one.
The S5 leader moves the checkpoints on every `size` finished tasks (`rotate`), so the
window spans the last `size` to `2 * size` tasks. Totals since the start are kept beside.

A grow-only counter cannot go back to zero, so `amcp reset` writes the counters' values of
that moment to the register `vsm.base`: totals count from it, and no window reaches before
it (a register of its own, so a rotation racing the reset cannot overwrite it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ADAPTATIONS",
    "AUDITS_FAILED",
    "AUDITS_PASSED",
    "BASE",
    "CHECKS",
    "CONFLICTS",
    "FINISHED",
    "ITERATIONS",
    "OSCILLATIONS",
    "PREFIX",
    "S1_FAILED",
    "S1_OK",
    "SUCCEEDED",
    "WINDOW",
    "Viability",
    "counters",
    "measure",
    "render_viability",
    "rotate",
]

PREFIX = "vsm."
FINISHED = "vsm.tasks.finished"
SUCCEEDED = "vsm.tasks.succeeded"
ITERATIONS = "vsm.tasks.iterations"
AUDITS_PASSED = "vsm.audits.passed"
AUDITS_FAILED = "vsm.audits.failed"
CHECKS = "vsm.s2.checks"
OSCILLATIONS = "vsm.s2.oscillations"
CONFLICTS = "vsm.conflicts"
S1_OK = "vsm.s1.ok."  # + agent id
S1_FAILED = "vsm.s1.failed."  # + agent id
WINDOW = "vsm.window"  # LWW register: {"k": n, "cur": {...}, "prev": {...}}
ADAPTATIONS = "vsm.adaptations"  # LWW map: key -> adaptation record
BASE = "vsm.base"  # LWW register: the counters at the last reset ({} or absent: none)


def counters(values: Mapping[str, Any]) -> dict[str, int]:
    """The counter values among a replica's `vsm.` keys."""
    return {
        k: v
        for k, v in values.items()
        if k.startswith(PREFIX) and isinstance(v, int) and not isinstance(v, bool)
    }


def _checkpoint(window: Any, name: str) -> dict[str, int]:
    point = window.get(name) if isinstance(window, Mapping) else None
    return counters(point) if isinstance(point, Mapping) else {}


def rotate(values: Mapping[str, Any], size: int) -> dict[str, Any] | None:
    """The next `vsm.window` value once `size` tasks finished since the last checkpoint,
    else None."""
    now = counters(values)
    window = values.get(WINDOW)
    cur = _checkpoint(window, "cur")
    if now.get(FINISHED, 0) - cur.get(FINISHED, 0) < size:
        return None
    k = window.get("k", 0) if isinstance(window, Mapping) else 0
    return {"k": (k if isinstance(k, int) else 0) + 1, "prev": cur, "cur": now}


def _rate(part: int, whole: int) -> float | None:
    """part / whole in [0, 1] (counters replicate one by one, so a replica may briefly
    hold a part ahead of its whole), None without samples."""
    return None if whole <= 0 else round(min(1.0, part / whole), 4)


@dataclass(frozen=True)
class Viability:
    """The metrics over the window (rates are None without samples) and the totals."""

    completion_rate: float | None
    tasks: int
    error_rates: dict[str, float]
    outcomes: dict[str, int]  # S1 outcomes in the window, per agent
    audit_pass_rate: float | None
    audits: int
    oscillation_rate: float | None
    checks: int
    conflicts: int
    avg_iterations: float | None
    window: int
    totals: dict[str, int] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        return {
            "completion_rate": self.completion_rate,
            "error_rates": dict(self.error_rates),
            "audit_pass_rate": self.audit_pass_rate,
            "oscillation_rate": self.oscillation_rate,
            "conflicts": self.conflicts,
            "avg_iterations": self.avg_iterations,
            "samples": {
                "tasks": self.tasks,
                "audits": self.audits,
                "checks": self.checks,
                "s1": dict(self.outcomes),
            },
            "window": self.window,
            "totals": dict(self.totals),
        }


def measure(values: Mapping[str, Any]) -> Viability:
    """The metrics of one replica's `vsm.` values."""
    reset = values.get(BASE)
    zero = counters(reset) if isinstance(reset, Mapping) else {}
    now = {k: max(0, v - zero.get(k, 0)) for k, v in counters(values).items()}
    window = values.get(WINDOW)
    prev = _checkpoint(window, "prev")
    w = {k: max(0, v - max(0, prev.get(k, 0) - zero.get(k, 0))) for k, v in now.items()}
    finished = w.get(FINISHED, 0)
    audits = w.get(AUDITS_PASSED, 0) + w.get(AUDITS_FAILED, 0)
    checks = w.get(CHECKS, 0)
    agents = sorted(
        {k.removeprefix(S1_OK) for k in now if k.startswith(S1_OK)}
        | {k.removeprefix(S1_FAILED) for k in now if k.startswith(S1_FAILED)}
    )
    outcomes, errors = {}, {}
    for agent in agents:
        failed = w.get(S1_FAILED + agent, 0)
        total = w.get(S1_OK + agent, 0) + failed
        if total:
            outcomes[agent] = total
            errors[agent] = round(failed / total, 4)
    k = window.get("k", 0) if isinstance(window, Mapping) else 0
    return Viability(
        completion_rate=_rate(w.get(SUCCEEDED, 0), finished),
        tasks=finished,
        error_rates=errors,
        outcomes=outcomes,
        audit_pass_rate=_rate(w.get(AUDITS_PASSED, 0), audits),
        audits=audits,
        oscillation_rate=_rate(w.get(OSCILLATIONS, 0), checks),
        checks=checks,
        conflicts=w.get(CONFLICTS, 0),
        avg_iterations=None if not finished else round(w.get(ITERATIONS, 0) / finished, 4),
        window=k if isinstance(k, int) else 0,
        totals={
            "tasks": now.get(FINISHED, 0),
            "succeeded": now.get(SUCCEEDED, 0),
            "audits_passed": now.get(AUDITS_PASSED, 0),
            "audits_failed": now.get(AUDITS_FAILED, 0),
            "oscillations": now.get(OSCILLATIONS, 0),
            "conflicts": now.get(CONFLICTS, 0),
        },
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def render_viability(report: Mapping[str, Any] | None) -> str:
    """The viability section of `amcp status`: the metrics, then the active adaptations."""
    if not report:
        return "viability: not reported yet (no VSM role agent is running)"
    m = report.get("metrics") or {}
    samples = m.get("samples") or {}
    errors = ", ".join(f"{a} {r:g}" for a, r in sorted((m.get("error_rates") or {}).items()))
    lines = [
        f"viability (window {m.get('window', 0)}, {samples.get('tasks', 0)} tasks): "
        f"completion rate {_pct(m.get('completion_rate'))}, "
        f"audit pass rate {_pct(m.get('audit_pass_rate'))}, "
        f"oscillation rate {_pct(m.get('oscillation_rate'))}, "
        f"conflicts {m.get('conflicts', 0)}, "
        f"avg iterations {_pct(m.get('avg_iterations'))}",
        f"  S1 error rates: {errors or '-'}",
    ]
    active = report.get("adaptations") or []
    if not active:
        lines.append("  adaptations: none active")
    for a in active:
        who = f" for {a['target']}" if a.get("target") else ""
        lines.append(
            f"  adaptation {a['kind']}{who}: {a['effect']} "
            f"({a['metric']} {a['value']:g} past {a['threshold']:g})"
        )
    return "\n".join(lines)
