"""`amcp task --delegate`: run a task as subtasks on ephemeral S1 workers spawned here
(agents.vsm.delegation), instead of submitting it to S3's loop.

Exit codes: 0 the synthesis holds at least one subtask's output (degraded subtasks are
reported, not fatal), 1 none succeeded or the plan could not be made, 2 usage error,
4 NATS unreachable.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from amcp.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    SECURITY_FLAGS,
    command_line,
    connect,
    emit,
)
from amcp.errors import ConfigError
from amcp.identity import IDENTITY_ENV

if TYPE_CHECKING:
    from agents.vsm.delegation import DelegationReport, DelegationSpec

__all__ = ["add_delegation_options", "cmd_delegate", "render_report"]

POLICIES = ("retry", "skip", "alternative")


def add_delegation_options(task: argparse.ArgumentParser) -> None:
    group = task.add_argument_group(
        "delegation",
        "--delegate runs the task here as subtasks (the --steps, or a --planner's JSON), "
        "each on an ephemeral `amcp-agent --role s1` worker spawned for it and stopped after",
    )
    group.add_argument("--delegate", action="store_true", help="run the task as delegated")
    group.add_argument(
        "--max-workers",
        type=int,
        metavar="N",
        help="workers at once (default 4, or one per --worker-identity)",
    )
    group.add_argument(
        "--planner",
        type=command_line,
        metavar="CMD",
        help="a CLI template that answers {text} (the description) with the subtasks as JSON: "
        '{"subtasks": ["...", {"text": "...", "context": "...", "alternative": "..."}]}',
    )
    group.add_argument(
        "--synthesiser",
        type=command_line,
        metavar="CMD",
        help="a CLI template given every result in {text}; default: the results concatenated",
    )
    group.add_argument(
        "--subtask-timeout", type=float, metavar="S", help="seconds per subtask (default --timeout)"
    )
    group.add_argument(
        "--task-timeout", type=float, metavar="S", help="seconds for the whole task (no limit)"
    )
    group.add_argument(
        "--on-failure",
        choices=POLICIES,
        default="retry",
        help="a failed subtask: retry with backoff then skip (default), skip at once, or run "
        "its alternative (from the planner) then skip",
    )
    group.add_argument(
        "--retries", type=int, default=2, metavar="N", help="retries under --on-failure retry (2)"
    )
    group.add_argument(
        "--backoff",
        type=float,
        default=0.2,
        metavar="S",
        help="the first retry's delay bound, doubling up to 5 s (full jitter)",
    )
    group.add_argument(
        "--worker-hook",
        action="append",
        default=[],
        metavar="EVENT=COMMAND",
        help="a hook of every worker (amcp-agent --hook, docs/HOOKS.md): pre_agent_spawn may "
        "refuse a worker's start (the attempt fails with its reason), post_agent_complete "
        "runs as it stops; repeatable",
    )
    group.add_argument(
        "--worker-hooks-file", metavar="FILE", help="hooks of every worker from a TOML file"
    )
    group.add_argument(
        "--worker-identity",
        action="append",
        default=[],
        metavar="PATH",
        help="a key file a worker signs with (repeatable, one per worker at once): where a "
        "roster is in force, each worker must be an agent it holds in role s1",
    )


def _hooks(args: argparse.Namespace) -> list[str]:
    """The workers' hook flags, checked here first (a bad one is exit 2, nothing spawned)."""
    from agents.cli.agent import hooks_from  # the agent's parsing: not for --help

    hooks_file = args.worker_hooks_file and os.path.abspath(args.worker_hooks_file)
    hooks_from(argparse.Namespace(hook=args.worker_hook, hooks_file=hooks_file, hook_timeout=None))
    out = ["--hooks-file", hooks_file] if hooks_file else []
    for hook in args.worker_hook:
        out += ["--hook", hook]
    return out


def _identities(paths: list[str]) -> tuple[tuple[str, str], ...]:
    """(agent id, key file) of each --worker-identity; ConfigError if one cannot be read
    or two name the same agent."""
    from amcp.identity import Identity

    out: list[tuple[str, str]] = []
    for path in paths:
        full = os.path.abspath(os.path.expanduser(path))
        try:
            agent = Identity.load(full).agent_id
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--worker-identity {path}: {exc}") from None
        if any(agent == seen for seen, _ in out):
            raise ConfigError(f"--worker-identity: two files are agent {agent}")
        out.append((agent, full))
    return tuple(out)


def _connection(args: argparse.Namespace) -> list[str]:
    """The connection flags given here, for the workers (the environment they inherit)."""
    out: list[str] = []
    for flag in ("nats", "keyring", "cluster", "roster"):
        if getattr(args, flag, None):
            out += [f"--{flag}", str(getattr(args, flag))]
    for pattern in getattr(args, "seal", None) or []:
        out += ["--seal", pattern]
    for flag, name, _, _ in SECURITY_FLAGS:
        value = getattr(args, f"security_{name}", None)
        if value:
            out += [flag, str(value)]
    return out


def spec_from(args: argparse.Namespace, step_fields: Mapping[str, Any]) -> DelegationSpec:
    from agents.vsm.delegation import DelegationSpec, FailurePolicy, new_task_id
    from netopt.retry import Backoff

    if args.max_workers is None:
        args.max_workers = len(args.worker_identity) or 4
    if args.max_workers < 1:
        raise ConfigError("--max-workers must be at least 1")
    if args.worker_identity and len(args.worker_identity) < args.max_workers:
        raise ConfigError(
            f"--max-workers {args.max_workers} needs as many --worker-identity files, "
            f"not {len(args.worker_identity)}"
        )
    for name in ("subtask_timeout", "task_timeout", "timeout"):
        value = getattr(args, name)
        if value is not None and not value > 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be > 0")
    if args.retries < 0 or args.backoff < 0:
        raise ConfigError("--retries and --backoff must be >= 0")
    if args.id and not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", args.id):
        raise ConfigError("--id: 1-40 letters, digits, _ or - (it names the workers)")
    if not args.step and args.planner is None:
        raise ConfigError("--delegate needs --step subtasks or a --planner")
    cwd = os.path.abspath(args.cwd if args.cwd is not None else os.getcwd())
    if not os.path.isdir(cwd):
        raise ConfigError(f"--cwd {cwd} is not a directory")
    executor: dict[str, Any] = {}
    if args.python is not None:
        executor = {"executor": "python", "entry_point": args.python}
    elif args.cli is not None:
        executor = {"executor": "cli", "template": tuple(args.cli)}
    return DelegationSpec(
        description=args.description,
        steps=tuple(args.step),
        planner=tuple(args.planner) if args.planner is not None else None,
        synthesiser=tuple(args.synthesiser) if args.synthesiser is not None else None,
        task_id=args.id or new_task_id(),
        cwd=cwd,
        max_workers=args.max_workers,
        subtask_timeout=args.subtask_timeout or args.timeout,
        task_timeout=args.task_timeout,
        on_failure=FailurePolicy(args.on_failure),
        backoff=Backoff(args.backoff, max(5.0, args.backoff), args.retries),
        step_fields=dict(step_fields),
        **executor,
    )


def _check_steps(spec: DelegationSpec) -> None:
    """The fields every subtask's step shares, checked once here: a bad one is a usage
    error before anything runs, not a failure of each worker."""
    from agents.vsm.delegation import PlanError, check_steps

    try:
        check_steps(spec)
    except PlanError as exc:
        raise ConfigError(str(exc)) from None


def render_report(report: DelegationReport) -> str:
    runs = report.subtasks
    verb = "succeeded" if report.success else "failed"
    lines = [
        f"task {report.task_id} {verb}: {len(runs) - len(report.degraded)}/{len(runs)} subtasks "
        f"done, planned by {report.planned_by}, synthesised by {report.synthesised_by}, "
        f"at most {report.peak_workers} of {report.max_workers} workers at once, "
        f"{report.seconds:.2f}s" + (" (the task's deadline passed)" if report.timed_out else "")
    ]
    for run in runs:
        tries = len(run.attempts)
        lines.append(
            f"  subtask {run.subtask.id} {run.status} after {tries} attempt{'s' * (tries != 1)}: "
            f"{run.subtask.text[:80]}"
        )
        if run.limitation:
            lines.append(f"    limitation: {run.limitation}")
    if report.synthesis_error:
        lines.append(f"  synthesiser: {report.synthesis_error} (the concatenation stands)")
    if not report.audited:
        lines.append("  not audited: the cluster's audit stream could not be opened")
    lines.append("synthesis:")
    lines += ["  " + line for line in report.synthesis.rstrip("\n").splitlines()]
    return "\n".join(lines)


def cmd_delegate(args: argparse.Namespace, step_fields: Mapping[str, Any]) -> int:
    """`step_fields`: more of each step's fields (StepIn), e.g. the prompt's options."""
    import asyncio

    from agents.vsm.delegation import PlanError, WorkerTemplate, delegate, orchestrator_id

    spec = spec_from(args, step_fields)
    _check_steps(spec)
    env = {k: v for k, v in os.environ.items() if k != IDENTITY_ENV}  # each worker is itself
    own = args.identity or os.environ.get(IDENTITY_ENV)  # else it audits as orchestrator-ID
    template = WorkerTemplate.s1(spec.executor, [*_connection(args), *_hooks(args)])
    template = WorkerTemplate(template.argv, env, _identities(args.worker_identity))

    async def main() -> int:
        bus = await connect(args, sender=None if own else orchestrator_id(spec.task_id))
        try:
            report = await delegate(bus, spec, template)
        except PlanError as exc:
            print(f"amcp: {exc}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            await bus.close()
        emit(report.report(), args.json, render_report(report))
        return EXIT_OK if report.success else EXIT_FAILED

    return asyncio.run(main())
