"""`amcp supervise -- COMMAND ...`: run a command and restart it after an exponential
backoff when it exits non-zero, within a restart budget (agents.process.supervisor)."""

from __future__ import annotations

import argparse
from typing import Any

from agents.cli.restart_options import add_restart_options, restart_policy
from amcp.cli.common import run_until_stopped
from amcp.errors import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    supervise = sub.add_parser(
        "supervise",
        help="run a command and restart it when it crashes",
        description="Run COMMAND; restart it after an exponential backoff when it exits "
        "non-zero, within a restart budget; give up (exit 1) when the budget is spent.",
    )
    add_restart_options(supervise)
    supervise.add_argument("command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    supervise.set_defaults(func=cmd_supervise)


def cmd_supervise(args: argparse.Namespace) -> int:
    from agents.process.supervisor import Supervisor  # asyncio: not for --help

    command: list[Any] = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise ConfigError(
            "give the command to supervise after --, e.g. amcp supervise -- amcp-agent --role s1"
        )
    supervisor = Supervisor(command, restart_policy(args), name=command[0])
    return run_until_stopped(supervisor.run)
