"""The restart budget's command-line options, shared by `amcp-agent --supervise` and `amcp
supervise`. Apart from the supervisor itself (agents.process.supervisor), so that
registering these options imports no asyncio."""

from __future__ import annotations

import argparse

from agents.process.restarts import RestartPolicy
from amcp.errors import ConfigError

__all__ = ["add_restart_options", "restart_policy"]


def add_restart_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("supervision")
    group.add_argument(
        "--max-restarts",
        type=int,
        default=5,
        metavar="N",
        help="restart budget: at most N restarts ... (default 5)",
    )
    group.add_argument(
        "--restart-window",
        type=float,
        default=60.0,
        metavar="S",
        help="... within S seconds, then give up (default 60)",
    )
    group.add_argument(
        "--backoff-base",
        type=float,
        default=0.5,
        metavar="S",
        help="first restart delay, doubled per restart in the window (0.5)",
    )
    group.add_argument(
        "--backoff-max",
        type=float,
        default=30.0,
        metavar="S",
        help="longest restart delay (default 30)",
    )


def restart_policy(args: argparse.Namespace) -> RestartPolicy:
    try:
        return RestartPolicy(
            args.max_restarts, args.restart_window, args.backoff_base, args.backoff_max
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
