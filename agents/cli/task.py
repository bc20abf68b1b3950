"""`amcp task "DESCRIPTION"`: submit a task to the cluster's S3 and print the cycle result.

Exit codes: 0 the task succeeded, 1 it failed (an executor, the audit, a refusal),
2 usage error, 3 no S3 answered or a critical action found no quorum, 4 NATS unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from agents.cli.delegate import add_delegation_options, cmd_delegate
from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    add_connection_options,
    command_line,
    connect,
    emit,
    non_blank,
)
from amcp.errors import ConfigError, NoResponders, RequestTimeout

# The task models (pydantic) and S3's task loop are imported when a task is submitted, not
# for `amcp --help`.
if TYPE_CHECKING:
    from agents.vsm.tasks import CycleResult, TaskSpec

__all__ = ["register", "render_result"]


def register(sub: argparse._SubParsersAction) -> None:
    task = sub.add_parser(
        "task",
        help="run a task through the VSM loop (S4, S5, S3, S2, S1, S3*)",
        description="Submit a task to S3: S4 analyses it, S5 decides whether it is critical "
        "(a quorum vote), S3 allocates its steps to S1 agents, S2 coordinates them, S3* "
        "audits the results. By default the description is a shell command run in the "
        "current directory. Exit 0 succeeded, 1 failed, 3 no S3 or no quorum.",
    )
    task.add_argument("description", metavar="DESCRIPTION")
    _task_options(task)
    _executor_options(task)
    _prompt_options(task)
    task.add_argument("--id", default="", metavar="ID", help="task id (default: S3 assigns)")
    add_delegation_options(task)
    add_connection_options(task)
    task.set_defaults(func=cmd_task)


def _task_options(task: argparse.ArgumentParser) -> None:
    """What the task is: its complexity, where and how long its steps run, its steps, its
    audit, what it changes and how urgent it is."""
    level = task.add_mutually_exclusive_group()
    for name in ("simple", "medium", "complex"):
        level.add_argument(
            f"--{name}",
            dest="complexity",
            action="store_const",
            const=name,
            help=f"treat the task as {name} (overrides S4's rules)",
        )
    task.add_argument(
        "--cwd", type=non_blank, metavar="DIR", help="working directory (default: this one)"
    )
    task.add_argument(
        "--timeout", type=float, default=60.0, metavar="S", help="seconds per step (default 60)"
    )
    task.add_argument(
        "--step",
        action="append",
        default=[],
        metavar="CMD",
        help="a step (repeatable); without steps the description is the one step",
    )
    task.add_argument("--check", metavar="CMD", help="S3* audit command: must exit 0")
    task.add_argument("--resource", metavar="NAME", help="what the task changes (for S2)")
    task.add_argument("--urgency", choices=["low", "normal", "high", "critical"], default="normal")


def _executor_options(task: argparse.ArgumentParser) -> None:
    """How S1 runs the steps: a shell (the default), a Python entry point or an external CLI."""
    how = task.add_mutually_exclusive_group()
    how.add_argument(
        "--python",
        type=non_blank,
        metavar="NAME",
        help="run steps with the amcp.executors entry point NAME",
    )
    how.add_argument(
        "--cli",
        type=command_line,
        metavar="TEMPLATE",
        help="run steps with an external CLI, e.g. 'claude -p -- {text}' (no shell; a "
        "step text starting with '-' is refused where no -- before it ends the options)",
    )


def _prompt_options(task: argparse.ArgumentParser) -> None:
    """The prompt a `--cli` template gets in {prompt} (docs/PROMPTS.md)."""
    prompt = task.add_argument_group("prompt ({prompt} in a --cli template)")
    prompt.add_argument(
        "--prompt-template",
        type=non_blank,
        metavar="FILE",
        help="TOML prompt template (default: S1's)",
    )
    prompt.add_argument(
        "--context-budget",
        type=int,
        default=100_000,
        metavar="TOKENS",
        help="tokens a prompt may take; past it the task's context is compacted "
        "(default 100000, ~4 bytes a token)",
    )
    prompt.add_argument(
        "--token-counter",
        default="bytes",
        metavar="NAME",
        help="an amcp.token_counters entry point (default bytes: ~4 bytes a token)",
    )
    prompt.add_argument(
        "--pin", action="append", default=[], metavar="FACT", help="a fact kept in every prompt"
    )
    prompt.add_argument(
        "--summariser",
        type=command_line,
        metavar="TEMPLATE",
        help="command that summarises compacted context, e.g. 'claude -p -- {text}' "
        "(default: an extractive summary)",
    )


def _prompt_fields(args: argparse.Namespace) -> dict[str, Any]:
    from agents.vsm.prompts.tokens import load_counter

    load_counter(args.token_counter)  # an unknown one: one line, exit 2, nothing sent
    fields: dict[str, Any] = {
        "context_budget": args.context_budget,
        "pinned": args.pin,
        "token_counter": args.token_counter,
    }
    if args.prompt_template is not None:
        from agents.vsm.prompts.template import PromptTemplate

        fields["prompt_template"] = PromptTemplate.load(args.prompt_template).source
    if args.summariser is not None:
        fields["summariser"] = args.summariser
    return fields


def spec_from(args: argparse.Namespace) -> TaskSpec:
    from pydantic import ValidationError

    from agents.vsm.tasks import TaskSpec

    cwd = os.path.abspath(args.cwd if args.cwd is not None else os.getcwd())
    if not os.path.isdir(cwd):
        raise ConfigError(f"--cwd {cwd} is not a directory")
    fields: dict[str, Any] = {
        "id": args.id,
        "description": args.description,
        "steps": args.step,
        "complexity": args.complexity,
        "cwd": cwd,
        "timeout": args.timeout,
        "check": args.check,
        "resource": args.resource,
        "urgency": args.urgency,
        **_prompt_fields(args),
    }
    if args.python is not None:
        fields.update(executor="python", entry_point=args.python)
    elif args.cli is not None:
        fields.update(executor="cli", template=args.cli)
    try:
        return TaskSpec(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "task"
        raise ConfigError(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None


def _indent(text: str, prefix: str, lines: int = 8) -> list[str]:
    shown = text.rstrip("\n").splitlines()
    out = [prefix + line for line in shown[:lines]]
    if len(shown) > lines:
        out.append(f"{prefix}... ({len(shown) - lines} more lines)")
    return out


def render_result(r: CycleResult) -> str:
    verb = "succeeded" if r.success else "failed"
    lines = [f"task {r.task_id} {verb}: {r.summary}"]
    if r.analysis is not None:
        a = r.analysis
        lines.append(
            f"  analysis: {a.complexity} (score {a.score:g}), risk {a.risk_level}, approach "
            f"{a.approach.mode}" + (f", domains {', '.join(a.domains)}" if a.domains else "")
        )
        lines += [f"    risk ({x.level}): {x.what}" for x in a.risks]
    lines.append(f"  agents invoked: {', '.join(r.agents)}")
    lines.append("  what happened:")
    lines += [f"    {p}" for p in r.path]
    if r.audit:
        result = "passed" if r.audit["passed"] else "failed"
        rules = "strict" if r.audit["strict"] else "normal"
        lines.append(f"  audit: {result} ({rules} rules: {', '.join(r.audit['rules'])})")
        lines += [f"    {f}" for f in r.audit["failures"]]
    lines.append(
        "  conflicts: "
        + ("; ".join(f"{c['kind']} -> {c['resolution']['reason']}" for c in r.conflicts) or "none")
    )
    lines.append(
        "  adaptations active: "
        + (
            ", ".join(
                f"{a['kind']}{' ' + a['target'] if a['target'] else ''}" for a in r.adaptations
            )
            or "none"
        )
    )
    for s in r.steps:
        lines.append(
            f"  step {s.step + 1} on {s.agent}: "
            + (s.error or f"exit {s.exit_code}")
            + f" in {s.ms:g} ms"
        )
        if s.context:  # the prompt's context: its size, and whether it was compacted
            lines.append(f"    {s.context}")
        lines += _indent(s.stdout, "    | ")
        lines += _indent(s.stderr, "    ! ")
    return "\n".join(lines)


def exit_code(result: CycleResult) -> int:
    if result.success:
        return EXIT_OK
    if result.vote is not None and result.vote.get("outcome") == "no_quorum":
        return EXIT_TIMEOUT
    return EXIT_FAILED


def cmd_task(args: argparse.Namespace) -> int:
    import asyncio

    if args.delegate:  # the same prompt options reach the workers' steps
        return cmd_delegate(args, _prompt_fields(args))
    if not args.timeout > 0:
        raise ConfigError("--timeout must be > 0")
    from agents.runtime.client import AgentClient
    from agents.vsm.s3.taskloop import VOTE_WAIT
    from agents.vsm.tasks import CycleResult

    spec = spec_from(args)
    wait = spec.timeout * len(spec.step_texts()) * 4 + VOTE_WAIT + 30

    async def main() -> int:
        bus = await connect(args)
        try:
            result = await AgentClient(bus).call("s3", "run-task", spec.model_dump(), timeout=wait)
        except NoResponders:
            print(
                f"amcp: no live s3 agent in cluster {bus.cluster} "
                "(start one with `amcp-agent --role s3`)",
                file=sys.stderr,
            )
            return EXIT_TIMEOUT
        except RequestTimeout:
            print(f"amcp: no cycle result within {wait:g}s", file=sys.stderr)
            return EXIT_TIMEOUT
        finally:
            await bus.close()
        cycle = CycleResult.model_validate(result.output)
        emit(cycle.model_dump(mode="json"), args.json, render_result(cycle))
        return exit_code(cycle)

    return asyncio.run(main())
