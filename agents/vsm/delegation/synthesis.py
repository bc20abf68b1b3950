"""How a delegated task's results become one answer. Pure.

The synthesiser (an executor the user names) is given `synthesis_input`: the task, then
each subtask's text and output, or the limitation that replaced it. Without one, the
answer is `concatenate`: the outputs in the plan's order, each under its subtask, and a
line per degraded subtask, so a reader sees what is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MAX_INPUT", "Result", "concatenate", "synthesis_input"]

MAX_INPUT = 100_000  # characters: one argument of a command line stays under Linux's 128 KiB


@dataclass(frozen=True, slots=True)
class Result:
    id: str
    text: str
    output: str | None  # None: the subtask degraded to `limitation`
    limitation: str | None = None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + f" [... {len(text) - limit} more]"


def _sections(results: Sequence[Result], limit: int) -> list[str]:
    share = max(200, limit // max(1, len(results)))
    parts = []
    for r in results:
        if r.output is None:
            parts.append(f"## subtask {r.id}: {r.text}\n(missing: {r.limitation})")
        else:
            parts.append(f"## subtask {r.id}: {r.text}\n{_cut(r.output.strip(), share)}")
    return parts


def synthesis_input(description: str, results: Sequence[Result], limit: int = MAX_INPUT) -> str:
    head = f"TASK: {_cut(description, 2000)}"
    return "\n\n".join([head, *_sections(results, limit - len(head))])


def concatenate(results: Sequence[Result]) -> str:
    return "\n\n".join(_sections(results, 1 << 62))
