"""Prompt templates for LLM executors, system reminders, and a task's context kept under a
token budget (compacted into a replicated summary when it would not fit)."""

import typing

import lazy_loader

if typing.TYPE_CHECKING:
    from agents.vsm.prompts.compaction import Compaction, Entry, compact
    from agents.vsm.prompts.context import prepare
    from agents.vsm.prompts.reminders import reminders
    from agents.vsm.prompts.render import DEFAULT_BUDGET, Rendered
    from agents.vsm.prompts.template import PromptTemplate, TemplateError, default_template
    from agents.vsm.prompts.tokens import TokenCounter, estimate_tokens

__getattr__, __dir__, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "compaction": ["Compaction", "Entry", "compact"],
        "context": ["prepare"],
        "reminders": ["reminders"],
        "render": ["DEFAULT_BUDGET", "Rendered"],
        "template": ["PromptTemplate", "TemplateError", "default_template"],
        "tokens": ["TokenCounter", "estimate_tokens"],
    },
)

__all__ = [
    "DEFAULT_BUDGET",
    "Compaction",
    "Entry",
    "PromptTemplate",
    "Rendered",
    "TemplateError",
    "TokenCounter",
    "compact",
    "default_template",
    "estimate_tokens",
    "prepare",
    "reminders",
]
