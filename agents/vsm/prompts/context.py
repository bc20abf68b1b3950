"""A task's context in the CRDT store, and a prompt prepared from it (the I/O edge).

Layout, replicated to every agent like any context key:

    task.<id>.context     LWW map: entry id -> entry (`Entry.to_wire`)
    task.<id>.compaction  LWW register: the compaction in effect (`Compaction.to_wire`)

`prepare` reads both from the local replica, fits the prompt to the budget (pure,
`render.fit`), asks the summariser for the summary of a new compaction (the extractive
one when there is none, or it fails), records the compaction so every agent applies the
same one, and renders. An entry or record that is not one is left out and counted by
reason, never raised.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from agents.vsm.prompts.compaction import (
    Compaction,
    Entry,
    extractive_summary,
    finish,
    format_entry,
    merged,
)
from agents.vsm.prompts.render import Rendered, fit, render
from agents.vsm.prompts.template import PromptTemplate
from agents.vsm.prompts.tokens import TokenCounter, estimate_tokens

if TYPE_CHECKING:
    from crdt.store import ContextStore

__all__ = [
    "MAX_ENTRY_TEXT",
    "Loaded",
    "Summariser",
    "add_entry",
    "compaction_key",
    "context_key",
    "load",
    "parse",
    "prepare",
]

log = logging.getLogger(__name__)

MAX_ENTRY_TEXT = 8 * 1024  # characters of an entry's text kept in the store

# (entries to summarise, tokens the summary may use) -> the summary, or None to fall back
Summariser = Callable[[Sequence[Entry], int], Awaitable[str | None]]


def context_key(task_id: str) -> str:
    return f"task.{task_id}.context"


def compaction_key(task_id: str) -> str:
    return f"task.{task_id}.compaction"


@dataclass(frozen=True, slots=True)
class Loaded:
    entries: list[Entry]
    compaction: Compaction | None
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count


def parse(entries_doc: Any, compaction_doc: Any) -> Loaded:
    """The entries and compaction held in the store's values; bad ones counted by reason."""
    rejected: Counter[str] = Counter()
    entries = []
    if isinstance(entries_doc, Mapping):
        for key, doc in entries_doc.items():
            try:
                entry = Entry.from_wire(doc)
                if entry.id != key:
                    raise ValueError("id differs from its field")
                entries.append(entry)
            except ValueError as exc:
                rejected[f"entry: {exc}"] += 1
    elif entries_doc is not None:
        rejected["context: not a map"] += 1
    compaction = None
    if compaction_doc is not None:
        try:
            compaction = Compaction.from_wire(compaction_doc)
        except ValueError as exc:
            rejected[f"compaction: {exc}"] += 1
    for reason, n in rejected.items():
        log.warning("task context: %d record(s) left out: %s", n, reason)
    return Loaded(entries, compaction, rejected)


def load(store: ContextStore, task_id: str) -> Loaded:
    """The task's context as this replica holds it now."""
    return parse(store.local(context_key(task_id)), store.local(compaction_key(task_id)))


async def add_entry(store: ContextStore, task_id: str, entry: Entry) -> None:
    """Write one entry (its text capped) to the task's replicated context."""
    if len(entry.text) > MAX_ENTRY_TEXT:
        entry = replace(entry, text=entry.text[:MAX_ENTRY_TEXT] + "…")
    await store.map_set(context_key(task_id), entry.id, entry.to_wire())


async def prepare(
    store: ContextStore | None,
    template: PromptTemplate,
    base: Mapping[str, Any],
    task_id: str,
    reminders: Sequence[str],
    budget: int,
    *,
    count: TokenCounter = estimate_tokens,
    summariser: Summariser | None = None,
    record: bool = True,
    leave_out: str | None = None,
) -> Rendered:
    """Render the prompt of `task_id` under `budget`, compacting its context if needed
    (and recording the compaction in the store when `record`). `leave_out`: an entry id
    not shown (a step's own outcome, when its prompt is rendered again)."""
    loaded = load(store, task_id) if store is not None else Loaded([], None)
    entries = [e for e in loaded.entries if e.id != leave_out]
    # rendering runs the user's template: in a thread, so a slow one never stalls the agent
    found = await asyncio.to_thread(
        fit, template, base, entries, loaded.compaction, reminders, budget, count
    )
    if found.plan is None:
        return await asyncio.to_thread(
            render, template, base, entries, loaded.compaction, reminders, budget, count
        )
    p = found.plan
    overhead = count(format_entry(Entry("summary", "summary", "")))
    limit = max(0, p.allowance - overhead)
    text, how = None, "extractive"
    if summariser is not None and p.allowance:
        try:
            text = await summariser(p.replace, limit)
        except Exception:  # a summariser is the user's code or command: fall back
            log.exception("the summariser failed; using the extractive summary")
        if text and text.strip():
            how = "executor"
        else:
            text = None
    if text is None:
        text = extractive_summary(p.replace, limit, count)
    done = merged(found.previous, finish(p, text.strip(), count, how))
    if record and store is not None:
        await store.set(compaction_key(task_id), done.to_wire())
    return await asyncio.to_thread(
        functools.partial(render, compacted_now=True),
        template,
        base,
        entries,
        done,
        reminders,
        budget,
        count,
    )
