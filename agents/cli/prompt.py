"""`amcp prompt render`: the prompt an LLM executor would get, as the cluster renders it.

It opens a short-lived replica of the cluster's context, reads the task's context and the
reminders from it, and renders the role's template (or --template FILE) under the token
budget, exactly as an S1 agent does for `{prompt}`: a compaction the cluster recorded is
applied as it is, so the prompt is the agent's. A compaction this command has to make
itself is shown, not recorded (the agents record theirs). The prompt goes to stdout, the
line saying whether the context was compacted to stderr (both in --json).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from amcp.cli.common import EXIT_OK, add_connection_options, connect, emit
from amcp.errors import ConfigError

if TYPE_CHECKING:  # loaded when the command runs, not for --help
    from agents.vsm.prompts.render import Rendered
    from agents.vsm.prompts.template import PromptTemplate

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    prompt = sub.add_parser(
        "prompt",
        help="prompt templates: render the prompt an LLM executor gets",
        description="Prompt templates for LLM executors (docs/PROMPTS.md).",
    )
    cmds = prompt.add_subparsers(dest="prompt_command", metavar="COMMAND", required=True)
    render = cmds.add_parser(
        "render",
        help="render a role's prompt for a task, with its context and the reminders",
        description="Render the prompt of a task step as the cluster does: the role's "
        "template (or --template), the task's context from the replicated store, compacted "
        "to the token budget if needed, and the cluster's reminders.",
    )
    render.add_argument("--role", choices=["s1", "s3", "s4", "s5"], default="s1")
    render.add_argument("--task", required=True, metavar="TEXT", help="the step's text")
    render.add_argument("--id", default="", metavar="ID", help="the task id (its context)")
    render.add_argument("--description", metavar="TEXT", help="the task (default: --task)")
    render.add_argument("--step", type=int, default=0, metavar="N", help="0-based step")
    render.add_argument("--iteration", type=int, default=1, metavar="N")
    render.add_argument("--cwd", metavar="DIR", help="working directory (default: this one)")
    render.add_argument("--template", metavar="FILE", help="TOML template (default: the role's)")
    render.add_argument(
        "--context-budget",
        type=int,
        default=100_000,
        metavar="TOKENS",
        help="tokens the prompt may take (default 100000; ~4 bytes a token)",
    )
    render.add_argument(
        "--token-counter",
        default="bytes",
        metavar="NAME",
        help="an amcp.token_counters entry point (default bytes: ~4 bytes a token)",
    )
    render.add_argument(
        "--offline", action="store_true", help="no cluster: no context and no reminders"
    )
    render.add_argument(
        "--timeout", type=float, default=2.0, metavar="S", help="seconds to catch up (default 2)"
    )
    add_connection_options(render)
    render.set_defaults(func=cmd_render)


def cmd_render(args: argparse.Namespace) -> int:
    import asyncio

    from agents.vsm.prompts.template import PromptTemplate, default_template

    if args.context_budget < 1:
        raise ConfigError("--context-budget must be at least 1 token")
    if args.step < -1 or args.iteration < 1:
        raise ConfigError("--step must be >= -1 and --iteration >= 1")
    template = PromptTemplate.load(args.template) if args.template else default_template(args.role)
    base = {
        "role": args.role,
        "task_id": args.id,
        "step": args.step,
        "iteration": args.iteration,
        "text": args.task,
        "description": args.description or args.task,
        "cwd": os.path.abspath(args.cwd or os.getcwd()),
    }
    rendered = asyncio.run(_render(args, template, base))
    doc = {
        "prompt": rendered.prompt,
        "tokens": rendered.tokens,
        "budget": rendered.budget,
        "entries": rendered.entries,
        "compacted": rendered.compaction is not None,
        "compacted_now": rendered.compacted_now,
        "compaction": None if rendered.compaction is None else rendered.compaction.to_wire(),
        "note": rendered.note(),
    }
    if not args.json:
        print(rendered.note(), file=sys.stderr)
    emit(doc, args.json, rendered.prompt)
    return EXIT_OK


async def _render(
    args: argparse.Namespace, template: PromptTemplate, base: dict[str, Any]
) -> Rendered:
    from agents.vsm.prompts.context import prepare
    from agents.vsm.prompts.reminders import reminders
    from agents.vsm.prompts.tokens import load_counter
    from agents.vsm.s1.prompting import step_entry_id
    from agents.vsm.viability import PREFIX

    count = load_counter(args.token_counter)
    if args.offline:
        return await prepare(None, template, base, args.id, [], args.context_budget, count=count)
    from crdt.store import ContextStore

    bus = await connect(args)
    try:
        store = await ContextStore.open(bus, bootstrap_timeout=args.timeout)
        try:
            values = {k: v for k, v in (await store.dump()).items() if k.startswith(PREFIX)}
            return await prepare(
                store if args.id else None,
                template,
                base,
                args.id,
                reminders(values),
                args.context_budget,
                count=count,
                record=False,
                leave_out=step_entry_id(args.step, args.iteration),
            )
        finally:
            await store.close()
    finally:
        await bus.close()
