"""`amcp-agent`: run one agent (or supervise one with --supervise) until SIGTERM or Ctrl-C.

Exit codes: 0 stopped gracefully, 1 failed, 2 bad arguments, an id already in use or a
roster in force that would not count the agent (agents.cli.own_identity), 4 NATS unreachable
(amcp.cli.common's codes).
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import sys
from dataclasses import astuple
from pathlib import Path
from typing import TYPE_CHECKING

from agents.cli.own_identity import NEW_IDENTITY_FILE, enroll_command, own_identity, standing
from agents.cli.restart_options import add_restart_options, restart_policy
from agents.process.mcpspec import parse_mcp_server, parse_mcp_servers
from agents.runtime.config import AgentConfig
from agents.runtime.errors import DuplicateAgent
from agents.runtime.hooks import HookConfig, merge, parse_hook, parse_hooks_file
from agents.runtime.subjects import ROLES
from amcp.cli.common import (
    BATCHING_ENV,
    BATCHING_MODES,
    Parser,
    add_connection_options,
    batching_mode,
    connect,
    identity_from,
    port,
    run_command,
    run_until_stopped,
    seconds,
)
from amcp.errors import ConfigError, IdentityError
from amcp.logs import setup_logging

if TYPE_CHECKING:
    import asyncio

__all__ = ["build_parser", "main"]

HEARTBEAT_ENV = "AMCP_HEARTBEAT"


def _executes(text: str) -> tuple[str, str]:
    action, _, tool = text.partition("=")
    if not action or not tool:
        raise argparse.ArgumentTypeError(f"expected ACTION=TOOL, not {text!r}")
    return action, tool


def _mcp_server(text: str) -> str:
    try:
        parse_mcp_server(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _mcp_servers(texts: list[str]) -> tuple[str, ...]:
    try:
        parse_mcp_servers(texts)  # each checked by argparse; here: each name once
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return tuple(texts)


def build_parser() -> Parser:
    p = Parser(prog="amcp-agent", description="Run one amcp agent in a VSM role.")
    _identity_options(p)
    _key_options(p)
    _runtime_options(p)
    _hook_options(p)
    _observability_options(p)
    add_connection_options(p, json_flag=False)
    add_restart_options(p)
    return p


def _identity_options(p: argparse.ArgumentParser) -> None:
    """Who the agent is: role, id, state directory, what it offers and what it votes on."""
    p.add_argument("--role", required=True, choices=ROLES, help="the agent's VSM role")
    p.add_argument("--id", metavar="ID", help="agent id (default: <role>-<random>)")
    p.add_argument(
        "--data-dir", metavar="DIR", help="keep the CRDT replica and the audit JSONL here (durable)"
    )
    p.add_argument(
        "--capability",
        action="extend",
        nargs="+",
        default=[],
        metavar="NAME",
        help="advertise capabilities; catalogued ones (echo, sleep) become tools",
    )
    p.add_argument("--voter", action="store_true", help="vote on critical actions (S5 always)")
    p.add_argument(
        "--executes",
        type=_executes,
        action="extend",
        nargs="+",
        default=[],
        metavar="ACTION=TOOL",
        help="run TOOL once when a quorum commits ACTION (agents.vsm.voting)",
    )
    p.add_argument(
        "--mcp",
        type=_mcp_server,
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="mount an MCP server's tools as NAME.tool: run COMMAND (stdio) or connect to "
        "NAME=http(s)://... (Streamable HTTP); restarted within the supervision budget below",
    )


def _key_options(p: argparse.ArgumentParser) -> None:
    """Its signing key beyond --identity (a connection option): make one on a first start."""
    p.add_argument(
        "--new-identity",
        action="store_true",
        help=f"without --identity: make a key in --data-dir ({NEW_IDENTITY_FILE}) on the first "
        "start and reuse it later; it prints the `amcp keys identity add` line the operator "
        "must run, as a key not in the roster verifies nothing",
    )


def _runtime_options(p: argparse.ArgumentParser) -> None:
    """How it runs: supervised or not, heartbeat, batching, call pool and queue, drain."""
    p.add_argument(
        "--supervise",
        action="store_true",
        help="run the agent as a child and restart it when it crashes",
    )
    p.add_argument(
        "--heartbeat",
        type=seconds(high=3600),
        metavar="S",
        help=f"heartbeat interval (env {HEARTBEAT_ENV}; default 1.0)",
    )
    p.add_argument(
        "--batching",
        choices=BATCHING_MODES,
        help=f"batch published messages per subject family as the traffic analyser finds best "
        f"(adaptive; ballots and replies never wait), or not at all (off, the default: it did not "
        f"pay for agents in the soak; env {BATCHING_ENV})",
    )
    p.add_argument("--pool", type=int, default=8, metavar="N", help="calls run at once (8)")
    p.add_argument(
        "--queue",
        type=int,
        default=64,
        metavar="N",
        help="calls waiting for the pool before new ones are refused (64)",
    )
    p.add_argument(
        "--drain-timeout",
        type=seconds(above=False),
        default=30.0,
        metavar="S",
        help="how long a stop waits for in-flight calls (30)",
    )


def _hook_options(p: argparse.ArgumentParser) -> None:
    """The user's hooks at the agent's events (docs/HOOKS.md)."""
    p.add_argument(
        "--hook",
        action="append",
        default=[],
        metavar="EVENT=COMMAND",
        help="run COMMAND (no shell; the event's JSON on stdin; exit 2 vetoes a pre_ event) "
        "or python:NAME (an amcp.hooks entry point) at EVENT; repeatable, in order",
    )
    p.add_argument(
        "--hooks-file", metavar="FILE", help="hooks from a TOML file, run before --hook's"
    )
    p.add_argument(
        "--hook-timeout",
        type=seconds(),
        metavar="S",
        help="seconds a hook may take before it is killed and the agent goes on (5)",
    )


def hooks_from(args: argparse.Namespace) -> HookConfig:
    """The agent's hooks: the file's, then each --hook; ConfigError (exit 2) if bad."""
    configs = []
    if args.hooks_file:
        path = Path(args.hooks_file).expanduser()
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read hooks file {path}: {exc.strerror}") from None
        configs.append(parse_hooks_file(text, str(path)))
    configs.append(HookConfig(tuple(parse_hook(h) for h in args.hook)))
    return merge(configs, args.hook_timeout)


def _observability_options(p: argparse.ArgumentParser) -> None:
    """Metrics endpoint and logs."""
    p.add_argument(
        "--metrics-port",
        type=port(low=0),
        metavar="N",
        help="serve Prometheus metrics on this port (0: any free port)",
    )
    p.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="ADDR",
        help="metrics listen address (default 127.0.0.1)",
    )
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")


def config_from(args: argparse.Namespace) -> AgentConfig:
    from agents.process.supervisor import RESTARTS_ENV  # asyncio: not for --help
    from amcp.settings import env_number  # pydantic: not for --help

    heartbeat = args.heartbeat
    if heartbeat is None:
        heartbeat = env_number(HEARTBEAT_ENV, 1.0, minimum=0.001)
    return AgentConfig(
        role=args.role,
        agent_id=args.id or "",
        capabilities=tuple(dict.fromkeys(args.capability)),
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else None,
        heartbeat=heartbeat,
        pool_size=args.pool,
        queue_size=args.queue,
        drain_timeout=args.drain_timeout,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        voter=args.voter,
        restarts=int(os.environ.get(RESTARTS_ENV, "0") or 0),
        extra={"executes": dict(args.executes)} if args.executes else {},
        mcp=_mcp_servers(args.mcp),
        mcp_restarts=astuple(restart_policy(args)) if args.mcp else None,
        hooks=hooks_from(args),
    )


class _AgentFields(logging.Filter):
    """Adds the agent's id and role to every log record (fields of --log-json lines)."""

    def __init__(self, agent_id: str, role: str) -> None:
        super().__init__()
        self.agent_id = agent_id
        self.role = role

    def filter(self, record: logging.LogRecord) -> bool:
        record.agent = self.agent_id
        record.role = self.role
        return True


def _child_argv(argv: list[str], agent_id: str) -> list[str]:
    """The same command line without --supervise, with a fixed id across restarts."""
    child = [a for a in argv if a != "--supervise"]
    if not any(a == "--id" or a.startswith("--id=") for a in child):
        child += ["--id", agent_id]
    return [sys.executable, "-m", "agents.cli.agent", *child]


async def _serve(args: argparse.Namespace, config: AgentConfig, stop: asyncio.Event) -> int:
    # the agent itself (the bus, prometheus, its tools' models): not for --help, nor for a
    # supervising parent, which only starts children
    from agents.runtime.agent import Agent
    from agents.runtime.extension import load_extensions

    bus = await connect(
        args, sender=config.agent_id, batching=batching_mode(args.batching), trace=False
    )
    try:
        agent = Agent(bus, config, extensions=load_extensions(config))
        await agent.start()
        return await agent.run(stop)
    finally:
        await bus.close()


def _adopt_identity(args: argparse.Namespace, config: AgentConfig) -> AgentConfig:
    """The config under the id of the agent's key file, with args.identity naming that
    file for connect(); IdentityError (exit 2) if the roster in force would not count it."""
    from agents.cluster.identities import roles_of  # imports consensus and crdt: not for --help

    path, identity, created = own_identity(
        args.identity, config.data_dir, args.id, allow_new=args.new_identity, new_id=config.agent_id
    )
    if identity is not None:
        args.identity, args.id = str(path), identity.agent_id
        config = config_from(args)
    roles = roles_of(config.role, config.voter)
    if created and identity is not None:
        key = base64.b64encode(identity.public_key).decode()
        print(
            f"made identity {identity.agent_id} in {path}, public key {key}; it verifies "
            f"nothing until the roster holds it: run  {enroll_command(identity, roles)}",
            flush=True,
        )
    _, roster = identity_from(args)
    if roster is not None:
        reason = standing(roster, config.agent_id, identity, roles)
        if reason is not None:
            raise IdentityError(reason)
    return config


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level, args.log_json)

    def run() -> int:
        config = _adopt_identity(args, config_from(args))
        for handler in logging.getLogger().handlers:
            handler.addFilter(_AgentFields(config.agent_id, config.role))
        if args.supervise:
            from agents.process.supervisor import Supervisor

            supervisor = Supervisor(
                _child_argv(argv, config.agent_id), restart_policy(args), name=config.agent_id
            )
            return run_until_stopped(supervisor.run)
        if any(name.startswith("OTEL_") for name in os.environ):  # OpenTelemetry only if asked
            from amcp.telemetry import export_from_env

            export_from_env("amcp-agent", **{"service.instance.id": config.agent_id})
        return run_until_stopped(lambda stop: _serve(args, config, stop))

    return run_command(run, usage_errors=(DuplicateAgent,))


if __name__ == "__main__":
    sys.exit(main())
