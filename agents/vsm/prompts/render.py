"""A prompt from a template, a task's context and the reminders, under a token budget
(pure: the summariser's call and the store live in `agents.vsm.prompts.context`).

The budget covers the whole rendered prompt. The context gets what the rest of the
prompt leaves; if the entries (after any recorded compaction) do not fit, `fit` plans a
new compaction, shrinking the context's share until the whole prompt fits (a template
may print an entry more verbosely than the budget counts it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents.vsm.prompts.compaction import (
    Compaction,
    Entry,
    Plan,
    apply,
    context_tokens,
    extractive_summary,
    finish,
    format_entry,
    merged,
    plan,
)
from agents.vsm.prompts.template import PromptTemplate
from agents.vsm.prompts.tokens import TokenCounter, estimate_tokens

__all__ = ["DEFAULT_BUDGET", "Fit", "Rendered", "fit", "render"]

DEFAULT_BUDGET = 100_000
_ROUNDS = 4  # attempts to fit a template that prints entries beyond their count


@dataclass(frozen=True, slots=True)
class Rendered:
    """A rendered prompt and what it took to fit it."""

    prompt: str
    tokens: int
    budget: int
    entries: int  # context entries shown (a summary counts as one)
    compaction: Compaction | None  # the compaction in effect, if any
    compacted_now: bool  # this render made it (else it was recorded before, or none)

    @property
    def over_budget(self) -> bool:
        """Only when pinned and critical entries alone exceed it: they are never dropped."""
        return self.tokens > self.budget

    def note(self) -> str:
        """One line for the output: whether and how the context was compacted."""
        c = self.compaction
        if c is None:
            noun = "entry" if self.entries == 1 else "entries"
            head = f"context: {self.entries} {noun}, not compacted"
        else:
            when = "now" if self.compacted_now else "earlier"
            head = (
                f"context compacted ({when}, {c.summariser}): {len(c.replaced)} entries "
                f"replaced by a summary, {c.tokens_before} -> {c.tokens_after} tokens"
            )
        over = " OVER BUDGET (pinned entries exceed it)" if self.over_budget else ""
        return f"{head}; prompt {self.tokens} of {self.budget} tokens{over}"


def _fields(
    base: Mapping[str, Any],
    entries: Sequence[Entry],
    compaction: Compaction | None,
    reminders: Sequence[str],
    budget: int,
) -> dict[str, Any]:
    context = [{**e.to_wire(), "line": format_entry(e)} for e in entries]
    return {
        **base,
        "context": context,
        "context_text": "".join(c["line"] for c in context),
        "compaction": None if compaction is None else compaction.to_wire(),
        "reminders": list(reminders),
        "budget": budget,
    }


@dataclass(frozen=True, slots=True)
class Fit:
    """What fitting the context found: the compaction to make (a plan, or None), with the
    record it builds on."""

    plan: Plan | None
    previous: Compaction | None


def fit(
    template: PromptTemplate,
    base: Mapping[str, Any],
    entries: Sequence[Entry],
    recorded: Compaction | None,
    reminders: Sequence[str],
    budget: int,
    count: TokenCounter = estimate_tokens,
) -> Fit:
    """Whether the context (with the recorded compaction applied) fits the budget, and if
    not the compaction plan that makes the whole prompt fit (deterministic)."""
    visible = apply(entries, recorded)
    fixed = count(template.render(_fields(base, [], recorded, reminders, budget)))
    share = budget - fixed
    p = None
    for _ in range(_ROUNDS):
        p = plan(visible, max(0, share), count)
        if p is None:
            c = recorded
            shown = visible
        else:
            c = merged(recorded, _extractive(p, count))
            shown = apply(entries, c)
        tokens = count(template.render(_fields(base, shown, c, reminders, budget)))
        if tokens <= budget:
            break
        # what the template adds around the entries (a header, separators): leave room
        extra = tokens - fixed - context_tokens(shown, count)
        share = min(share - (tokens - budget), budget - fixed - extra)
    return Fit(p, recorded)


def _extractive(p: Plan, count: TokenCounter) -> Compaction:
    overhead = count(format_entry(Entry("summary", "summary", "")))
    text = extractive_summary(p.replace, max(0, p.allowance - overhead), count)
    return finish(p, text, count, "extractive")


def render(
    template: PromptTemplate,
    base: Mapping[str, Any],
    entries: Sequence[Entry],
    compaction: Compaction | None,
    reminders: Sequence[str],
    budget: int,
    count: TokenCounter = estimate_tokens,
    *,
    compacted_now: bool = False,
) -> Rendered:
    """The prompt with `compaction` applied to the entries."""
    shown = apply(entries, compaction)
    text = template.render(_fields(base, shown, compaction, reminders, budget))
    return Rendered(text, count(text), budget, len(shown), compaction, compacted_now)
