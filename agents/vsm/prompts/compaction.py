"""A task's context and its compaction under a token budget (pure: no I/O).

A task's context is a set of entries (a step's input and output, a decision, a fact),
each with a sequence number that orders them. When they cost more tokens than the budget,
`plan` keeps every pinned and critical entry and the most recent others that fit, and
marks the older ones to be replaced by one summary entry, with the tokens the summary may
use. The summary comes from a summariser executor (I/O, outside this module) or from
`extractive_summary`; `finish` trims it to its allowance and returns the `Compaction`
record. Replicated as it is, that record lets every agent render the same context
(`apply`), whichever agent compacted and whatever its summariser said.

A pinned entry is never replaced, even by a foreign record that names it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agents.vsm.prompts.tokens import TokenCounter, estimate_tokens, trim_to_tokens

__all__ = [
    "SUMMARY_CAP",
    "SUMMARY_ID",
    "Compaction",
    "Entry",
    "Plan",
    "apply",
    "compact",
    "context_tokens",
    "extractive_summary",
    "finish",
    "format_entry",
    "merged",
    "ordered",
    "plan",
]

SUMMARY_ID = "summary"
SUMMARY_CAP = 2000  # tokens a summary is given at most (a quarter of what is left, if less)
_LINE_CHARS = 160  # of each replaced entry's first line, in the extractive summary
_KINDS = ("step", "fact", "decision", "summary", "note")


@dataclass(frozen=True, slots=True)
class Entry:
    """One item of a task's context."""

    id: str
    kind: str
    text: str
    seq: int = 0
    pinned: bool = False
    critical: bool = False

    @property
    def kept(self) -> bool:
        """Never replaced by a summary."""
        return self.pinned or self.critical

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "text": self.text,
            "seq": self.seq,
            "pinned": self.pinned,
            "critical": self.critical,
        }

    @classmethod
    def from_wire(cls, doc: Any) -> Entry:
        """The entry, or ValueError saying why `doc` is not one."""
        if not isinstance(doc, Mapping):
            raise ValueError("not a map")
        ident, kind, text, seq = doc.get("id"), doc.get("kind"), doc.get("text"), doc.get("seq")
        if not isinstance(ident, str) or not ident:
            raise ValueError("no id")
        if kind not in _KINDS:
            raise ValueError(f"kind {kind!r} is not one of {', '.join(_KINDS)}")
        if not isinstance(text, str):
            raise ValueError("text is not a string")
        if not isinstance(seq, int) or isinstance(seq, bool):
            raise ValueError("seq is not an integer")
        flags = doc.get("pinned", False), doc.get("critical", False)
        if not all(isinstance(f, bool) for f in flags):
            raise ValueError("pinned and critical must be booleans")
        return cls(ident, kind, text, seq, *flags)


def format_entry(entry: Entry) -> str:
    """The line block an entry takes in a prompt's context (what the budget counts)."""
    tags = [entry.kind] + ["pinned"] * entry.pinned + ["critical"] * entry.critical
    return f"[{' '.join(tags)}] {entry.text}\n"


def ordered(entries: Iterable[Entry]) -> list[Entry]:
    """The context's order: by sequence number, then id (the same on every agent)."""
    return sorted(entries, key=lambda e: (e.seq, e.id))


def context_tokens(entries: Iterable[Entry], count: TokenCounter = estimate_tokens) -> int:
    return sum(count(format_entry(e)) for e in entries)


@dataclass(frozen=True, slots=True)
class Compaction:
    """What a compaction replaced and with what: replicated so every agent applies it."""

    replaced: tuple[str, ...]  # entry ids, sorted
    summary: str
    seq: int  # where the summary sits: the last replaced entry's place
    budget: int
    tokens_before: int
    tokens_after: int
    summariser: str = "extractive"

    def to_wire(self) -> dict[str, Any]:
        return {
            "replaced": list(self.replaced),
            "summary": self.summary,
            "seq": self.seq,
            "budget": self.budget,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "summariser": self.summariser,
        }

    @classmethod
    def from_wire(cls, doc: Any) -> Compaction:
        """The record, or ValueError saying why `doc` is not one."""
        try:
            replaced = doc["replaced"]
            if not isinstance(replaced, list) or not all(isinstance(r, str) for r in replaced):
                raise ValueError("replaced is not a list of ids")
            fields = [doc[k] for k in ("seq", "budget", "tokens_before", "tokens_after")]
            if not all(isinstance(f, int) and not isinstance(f, bool) for f in fields):
                raise ValueError("seq, budget and token counts must be integers")
            if not isinstance(doc["summary"], str):
                raise ValueError("summary is not a string")
            return cls(
                tuple(sorted(replaced)), doc["summary"], *fields, str(doc.get("summariser", ""))
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a compaction record ({exc})") from None

    def entry(self) -> Entry:
        return Entry(SUMMARY_ID, "summary", self.summary, self.seq)


def apply(entries: Iterable[Entry], compaction: Compaction | None) -> list[Entry]:
    """The context as rendered: the replaced entries (never a pinned one) give way to the
    summary. An entry added after the compaction stays, wherever its seq puts it."""
    items = [e for e in entries if e.id != SUMMARY_ID]
    if compaction is None:
        return ordered(items)
    gone = set(compaction.replaced)
    kept = [e for e in items if e.id not in gone or e.pinned]
    if compaction.summary:
        kept.append(compaction.entry())
    return ordered(kept)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a compaction keeps, what it replaces, and the tokens its summary may use."""

    keep: tuple[Entry, ...]
    replace: tuple[Entry, ...]
    allowance: int  # tokens for the summary entry, format included (0: none fits)
    budget: int
    tokens_before: int


def _empty_summary_cost(count: TokenCounter) -> int:
    return count(format_entry(Entry(SUMMARY_ID, "summary", "")))


def plan(
    entries: Sequence[Entry], budget: int, count: TokenCounter = estimate_tokens
) -> Plan | None:
    """None when the entries fit the budget (or all are pinned or critical: nothing may
    go); else the compaction to make. Kept: every pinned and critical entry, then the
    most recent others that fit while leaving the summary its reserve; replaced: the
    older others."""
    items = ordered(entries)
    cost = {e.id: count(format_entry(e)) for e in items}
    before = sum(cost.values())
    if before <= budget or all(e.kept for e in items):
        return None
    must = [e for e in items if e.kept]
    left = budget - sum(cost[e.id] for e in must)
    reserve = max(_empty_summary_cost(count), min(SUMMARY_CAP, left // 4))
    recent: list[Entry] = []
    used = 0
    # an earlier summary is summarised again with the rest: it is older than what is kept
    for e in reversed([e for e in items if not e.kept and e.id != SUMMARY_ID]):
        if used + cost[e.id] > left - reserve:
            break
        recent.append(e)
        used += cost[e.id]
    keep_ids = {e.id for e in must} | {e.id for e in recent}
    allowance = max(0, left - used)
    if allowance < _empty_summary_cost(count):
        allowance = 0
    return Plan(
        keep=tuple(e for e in items if e.id in keep_ids),
        replace=tuple(e for e in items if e.id not in keep_ids),
        allowance=allowance,
        budget=budget,
        tokens_before=before,
    )


def extractive_summary(entries: Sequence[Entry], limit: int, count: TokenCounter) -> str:
    """Deterministic summary when there is no summariser: each replaced entry's first line
    (cut to 160 characters), in order, as many as `limit` tokens hold, then how many more
    there were."""
    head = f"{len(entries)} earlier entries compacted:"
    lines = [head]
    for n, e in enumerate(entries):
        first = (e.text.strip().splitlines() or [""])[0][:_LINE_CHARS]
        line = f"- {e.id}: {first}"
        rest = len(entries) - n - 1
        tail = f"(+{rest} more)" if rest else ""
        if count("\n".join([*lines, line, tail])) > limit:
            lines.append(f"(+{rest + 1} more)")
            break
        lines.append(line)
    return "\n".join(lines)


def finish(p: Plan, summary: str, count: TokenCounter, summariser: str) -> Compaction:
    """The record of plan `p` with `summary` trimmed to its allowance (no summary at all
    when none fits: the pinned and critical entries alone fill the budget)."""
    overhead = _empty_summary_cost(count)
    text = trim_to_tokens(summary, p.allowance - overhead, count) if p.allowance else ""
    # the counter need not be additive: trim further until the formatted entry fits
    while text and count(format_entry(Entry(SUMMARY_ID, "summary", text))) > p.allowance:
        text = trim_to_tokens(text, max(0, count(text) - 1), count)
    ids = sorted({e.id for e in p.replace if e.id != SUMMARY_ID})
    seq = max(e.seq for e in p.replace)
    done = Compaction(tuple(ids), text, seq, p.budget, p.tokens_before, 0, summariser)
    after = context_tokens(apply([*p.keep, *p.replace], done), count)
    return replace(done, tokens_after=after)


def merged(previous: Compaction | None, new: Compaction) -> Compaction:
    """A later compaction also replaces what the earlier one did (whose summary it
    summarised along with the rest)."""
    if previous is None:
        return new
    ids = tuple(sorted(set(previous.replaced) | set(new.replaced)))
    return replace(new, replaced=ids, seq=max(previous.seq, new.seq))


def compact(
    entries: Sequence[Entry],
    budget: int,
    count: TokenCounter = estimate_tokens,
    summarise: Callable[[Sequence[Entry], int, TokenCounter], str] = extractive_summary,
) -> Compaction | None:
    """`plan` then `finish` with a pure summariser (the extractive one by default); None
    when the entries already fit."""
    p = plan(entries, budget, count)
    if p is None:
        return None
    overhead = _empty_summary_cost(count)
    text = summarise(p.replace, max(0, p.allowance - overhead), count) if p.allowance else ""
    return finish(p, text, count, "extractive")
