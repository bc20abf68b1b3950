"""S3*: the audit of a cycle's results, by rules and an optional check command (pure).

Normal rules: every step ran, finished in time and exited 0; the task's check command (run
by an S1 agent, a different one from the worker where there is one) exited 0. Strict rules
(the tighten_audits adaptation, reviews and complex tasks) add: no error lines on stderr
and no truncated output, since a result that cannot be read whole cannot be vouched for.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from agents.vsm.tasks import StepOut

__all__ = ["NORMAL_RULES", "STRICT_RULES", "AuditVerdict", "audit"]

NORMAL_RULES = ("ran", "in_time", "exit_zero", "check")
STRICT_RULES = (*NORMAL_RULES, "quiet_stderr", "whole_output")
_ERROR_LINE = re.compile(r"^.*\b(error|exception|traceback|fatal|panic)\b.*$", re.I | re.M)


@dataclass(frozen=True, slots=True)
class AuditVerdict:
    passed: bool
    failures: tuple[str, ...]
    rules: tuple[str, ...]
    strict: bool

    def to_wire(self) -> dict[str, object]:
        return {
            "passed": self.passed,
            "failures": list(self.failures),
            "rules": list(self.rules),
            "strict": self.strict,
        }


def _step_failures(out: StepOut, name: str, strict: bool) -> list[str]:
    where = f"{name} on {out.agent}"
    if out.timed_out:
        return [f"{where}: timed out"]
    if out.error is not None:
        return [f"{where}: could not run: {out.error}"]
    if out.exit_code != 0 or not out.ok:
        return [f"{where}: exit code {out.exit_code}"]
    failures = []
    if strict:
        line = _ERROR_LINE.search(out.stderr)
        if line:
            failures.append(f"{where}: error output: {line.group(0).strip()[:200]!r}")
        if out.truncated:
            failures.append(f"{where}: output truncated, cannot be audited whole")
    return failures


def audit(steps: Sequence[StepOut], check: StepOut | None = None, *, strict: bool) -> AuditVerdict:
    """The verdict on one iteration's step results and check run."""
    failures: list[str] = []
    for out in steps:
        failures += _step_failures(out, f"step {out.step + 1}", strict)
    if check is not None:
        failures += [f"check {f}" for f in _step_failures(check, "command", False)]
    rules = STRICT_RULES if strict else NORMAL_RULES
    return AuditVerdict(not failures, tuple(failures), rules, strict)
