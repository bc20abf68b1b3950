"""Prompt templates: a TOML file of sections, each rendered by Jinja2 in its sandbox.

    role = "s1"                        # informative
    order = ["system", "examples", "context", "task", "reminders"]   # the default
    system = "You are an S1 operations agent ..."
    task = "Task {{ task_id }}, step {{ step }}: {{ text }}"
    context = "{% for e in context %}{{ e.line }}{% endfor %}"
    examples = "{% for x in examples %}Input: {{ x.input }}\\nOutput: {{ x.output }}\\n{% endfor %}"
    reminders = "{% for r in reminders %}<system-reminder>{{ r }}</system-reminder>\\n{% endfor %}"
    [[example]]
    input = "..."
    output = "..."

Why Jinja2's SandboxedEnvironment and not str.format: a template is data a user passes
to the cluster, and `str.format` follows attributes (`{x.__class__.__mro__}`), while the
sandbox refuses unsafe attributes and calls, bounds `range`, and gives loops and
conditionals (a list of context entries, an optional section) without any code of ours.
Jinja2 is widely used and maintained. StrictUndefined makes a misspelt name an error, not
an empty string. Sections render in `order`; an empty one is left out; they are joined
by a blank line.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from amcp.errors import ConfigError

__all__ = [
    "ROLES",
    "SECTIONS",
    "PromptTemplate",
    "TemplateError",
    "default_template",
]

SECTIONS = ("system", "examples", "context", "task", "reminders")
ROLES = {"s1": "S1 steps", "s3": "S3* audit", "s4": "S4 analysis", "s5": "S5 rulings"}
MAX_TEMPLATE = 64 * 1024  # bytes of a template file
MAX_OUTPUT = 16 * 1024 * 1024  # characters a section may render (a loop cannot fill memory)
_KEYS = {*SECTIONS, "role", "order", "example"}


class TemplateError(ConfigError):
    """A template that cannot be read, parsed or rendered (one line, where and why)."""


def _environment() -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def _capped(chunks: Iterator[str], limit: int) -> str:
    out: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise ValueError(f"renders more than {limit} characters")
        out.append(chunk)
    return "".join(out)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    line = getattr(exc, "lineno", None)
    return f"line {line}: {text}" if line else text


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed template: its sections compiled, its examples as data."""

    source: str  # the TOML text: what a task carries to the S1 that renders it
    name: str = "template"
    role: str = ""
    order: tuple[str, ...] = SECTIONS
    examples: tuple[Mapping[str, Any], ...] = ()
    _compiled: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str, name: str = "template") -> PromptTemplate:
        """Check and compile a template; TemplateError names the file, section and fault."""
        if len(text.encode()) > MAX_TEMPLATE:
            raise TemplateError(f"{name}: larger than {MAX_TEMPLATE} bytes")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise TemplateError(f"{name}: not TOML: {_one_line(exc)}") from None
        unknown = sorted(set(doc) - _KEYS)
        if unknown:
            raise TemplateError(
                f"{name}: unknown key {unknown[0]!r}; use {', '.join(sorted(_KEYS))}"
            )
        order = doc.get("order", list(SECTIONS))
        if not isinstance(order, list) or not all(s in SECTIONS for s in order):
            raise TemplateError(f"{name}: order must list sections among {', '.join(SECTIONS)}")
        examples = doc.get("example", [])
        if not isinstance(examples, list) or not all(isinstance(x, dict) for x in examples):
            raise TemplateError(f"{name}: [[example]] must be tables")
        env = _environment()
        compiled = {}
        for section in SECTIONS:
            body = doc.get(section)
            if body is None:
                continue
            if not isinstance(body, str):
                raise TemplateError(f"{name}: section {section!r} must be a string")
            try:
                compiled[section] = env.from_string(body)
            except Exception as exc:  # jinja2.TemplateSyntaxError, and what else a parse raises
                raise TemplateError(f"{name}: section {section!r} {_one_line(exc)}") from None
        if not compiled:
            raise TemplateError(f"{name}: no section; give one of {', '.join(SECTIONS)}")
        return cls(text, name, str(doc.get("role", "")), tuple(order), tuple(examples), compiled)

    @classmethod
    def load(cls, path: str | Path) -> PromptTemplate:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise TemplateError(f"cannot read template {path}: {exc}") from None
        return cls.parse(text, str(path))

    def sections(self, fields: Mapping[str, Any]) -> dict[str, str]:
        """Each section's text (stripped), in order, empty ones left out."""
        values = {**fields, "examples": list(self.examples)}
        out = {}
        for section in self.order:
            compiled = self._compiled.get(section)
            if compiled is None:
                continue
            try:
                text = _capped(compiled.generate(values), MAX_OUTPUT).strip()
            except Exception as exc:  # undefined names, sandbox refusals, bad filters
                raise TemplateError(f"{self.name}: section {section!r}: {_one_line(exc)}") from None
            if text:
                out[section] = text
        return out

    def render(self, fields: Mapping[str, Any]) -> str:
        return "\n\n".join(self.sections(fields).values())


def default_template(role: str) -> PromptTemplate:
    """The template shipped for a role (agents/data/prompt_<role>.toml)."""
    if role not in ROLES:
        raise TemplateError(f"no default template for role {role!r}; roles: {', '.join(ROLES)}")
    name = f"prompt_{role}.toml"
    return PromptTemplate.parse(files("agents").joinpath("data", name).read_text(), name)
