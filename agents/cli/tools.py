"""`amcp tools AGENT_OR_ROLE`: an agent's tools (description, input fields, examples)."""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from typing import TYPE_CHECKING

from agents.cli.session import with_client
from amcp.cli.common import EXIT_OK, add_connection_options, emit

if TYPE_CHECKING:
    from agents.runtime.client import AgentClient

__all__ = ["hint_words", "register", "tool_summary"]


def register(sub: argparse._SubParsersAction) -> None:
    tools = sub.add_parser(
        "tools",
        help="describe an agent's tools",
        description="Print the tools of an agent (or of one agent of a role): description, "
        "input and output JSON schemas, examples.",
    )
    tools.add_argument("target", metavar="AGENT_OR_ROLE")
    add_connection_options(tools)
    tools.set_defaults(func=cmd_tools)


def tool_summary(description: str, width: int = 76) -> list[str]:
    """A tool's description as `amcp tools` shows it: its first paragraph, whole sentences
    wrapped to `width` (a docstring's own line breaks fall mid-sentence)."""
    first = re.split(r"\n\s*\n", description.strip(), maxsplit=1)[0]
    return textwrap.wrap(" ".join(first.split()), width)


def hint_words(spec: dict) -> str:
    """`read-only, idempotent` or `destructive`: the hints a described tool has set (an
    agent of an older version publishes none: only its read_only flag)."""
    hints = spec.get("hints") or {"read_only": bool(spec.get("read_only"))}
    words = [name.replace("_", "-") for name, on in hints.items() if on]
    return ", ".join(words) or "none (may change state, not destructive)"


def cmd_tools(args: argparse.Namespace) -> int:
    async def tools(client: AgentClient) -> int:
        described = await client.describe(args.target)
        lines = [f"{described.agent} ({described.role}):"]
        for spec in described.tools:
            summary = tool_summary(spec["description"] or "", 72)
            lines.append(f"  {spec['name']}: {summary[0] if summary else ''}".rstrip())
            lines.extend(f"    {line}" for line in summary[1:])
            fields = spec["input_schema"].get("properties", {})
            lines.append(f"    input: {', '.join(fields) or '(none)'}")
            lines.append(f"    hints: {hint_words(spec)}")
            for ex in spec["examples"]:
                lines.append(f"    e.g. {json.dumps(ex['input'])}")
        emit(described.model_dump(), args.json, "\n".join(lines))
        return EXIT_OK

    return with_client(args, tools)
