"""An S1 step's prompt: the task's template rendered with its context and the reminders,
under the task's token budget; and the step's outcome kept in the context afterwards.

Only steps whose `cli` template asks for `{prompt}` render one (and keep context), so a
shell or Python task writes nothing more to the store. A step's own entry is left out of
its prompt, so rendering the same step again (another S1, `amcp prompt render`) after it
ran gives the same prompt.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from agents.vsm.prompts.compaction import Entry, format_entry
from agents.vsm.prompts.context import Summariser, add_entry, context_key, prepare
from agents.vsm.prompts.reminders import reminders
from agents.vsm.prompts.render import Rendered
from agents.vsm.prompts.template import PromptTemplate, default_template
from agents.vsm.prompts.tokens import load_counter
from agents.vsm.s1.executors import RunOutcome, render_template, run_argv
from agents.vsm.tasks import StepIn

if TYPE_CHECKING:
    from agents.vsm.role import VsmRole

__all__ = ["StepPrompts", "cli_summariser", "pin_entry", "step_entry_id", "step_fields"]

_OUTPUT_CHARS = 4096  # of a step's stdout kept in the context


@functools.lru_cache(maxsize=32)
def _parsed(source: str | None, role: str) -> PromptTemplate:
    return (
        default_template(role) if source is None else PromptTemplate.parse(source, "task template")
    )


def step_entry_id(step: int, iteration: int) -> str:
    return f"step-{step}-{iteration}"


def pin_entry(n: int, text: str) -> Entry:
    return Entry(f"pin-{n}", "fact", text, n, pinned=True)


def step_fields(step: StepIn, role: str = "s1") -> dict[str, Any]:
    """The template's task fields for a step (what `amcp prompt render` passes too)."""
    return {
        "role": role,
        "task_id": step.task_id,
        "step": step.step,
        "iteration": step.iteration,
        "text": step.text,
        "description": step.description or step.text,
        "cwd": step.cwd or "",
    }


def cli_summariser(argv: list[str], cwd: str | None, timeout: float) -> Summariser:
    """A summariser run as a command: {text} is the entries to summarise, {limit} the
    tokens the summary may take; its stdout is the summary (None if it failed)."""

    async def summarise(entries: Sequence[Entry], limit: int) -> str | None:
        text = "".join(format_entry(e) for e in entries)
        filled = render_template(argv, {"text": text, "limit": str(limit)})
        out = await run_argv(filled, cwd=cwd, timeout=timeout, max_output=256 * 1024)
        return out.stdout if out.ok else None

    return summarise


class StepPrompts:
    """Renders the prompts of one S1 agent's steps and keeps their outcomes."""

    def __init__(self, role: VsmRole) -> None:
        self.role = role

    async def render(self, step: StepIn) -> Rendered:
        """The step's prompt; ConfigError (one line) if its template does not render or its
        token counter is unknown."""
        store = self.role.agent.store
        template = _parsed(step.prompt_template, "s1")
        if store is not None:
            await self._pin(step)
        own = step_entry_id(step.step, step.iteration)
        summariser = None
        if step.summariser:
            summariser = cli_summariser(step.summariser, step.cwd, step.timeout)
        rendered = await prepare(
            store,
            template,
            step_fields(step),
            step.task_id,
            reminders(self.role.values),
            step.context_budget,
            count=load_counter(step.token_counter),
            summariser=summariser,
            leave_out=own,
        )
        c = rendered.compaction
        if rendered.compacted_now and c is not None:
            await self.role.log(
                "context_compacted",
                task=step.task_id,
                step=step.step,
                replaced=len(c.replaced),
                tokens_before=c.tokens_before,
                tokens_after=c.tokens_after,
                budget=step.context_budget,
                summariser=c.summariser,
            )
        return rendered

    async def _pin(self, step: StepIn) -> None:
        store = self.role.agent.store
        assert store is not None
        held = store.local(context_key(step.task_id)) or {}
        for n, text in enumerate(step.pinned):
            entry = pin_entry(n, text)
            if held.get(entry.id) != entry.to_wire():
                await add_entry(store, step.task_id, entry)

    async def remember(self, step: StepIn, out: RunOutcome) -> None:
        """Keep the step's input and outcome in the task's context."""
        store = self.role.agent.store
        if store is None or step.step < 0:
            return
        how = "ok" if out.ok else f"failed: {out.error or f'exit {out.exit_code}'}"
        text = f"step {step.step} ({how}): {step.text}\n{out.stdout[:_OUTPUT_CHARS]}".rstrip()
        entry = Entry(step_entry_id(step.step, step.iteration), "step", text, _ms())
        await add_entry(store, step.task_id, entry)


def _ms() -> int:
    return int(time.time() * 1000)
