"""Entry point of `amcp`: builds the command tree and maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from pkgutil import resolve_name

from amcp import __version__
from amcp.cli import keys, messaging, server, traffic
from amcp.cli.commandspan import CommandSpan, running_command
from amcp.cli.common import Parser, run_command
from amcp.cli.plugins import command_entry_points

COMMANDS = [keys, messaging, server, traffic]
# Higher layers (crdt, consensus, agents) add their own commands through the entry-point
# group amcp.commands (amcp.cli.plugins), so the protocol core never imports them (the
# arrows of DESIGN.md point one way). They are registered by name, so `amcp --help` lists
# them in the same order wherever they are installed from.


def build_parser(argv: list[str] | None = None) -> Parser:
    """The command tree. When `argv` starts with one of amcp's own commands (`amcp send ...`,
    the form scripts run in loops), the higher layers' commands are left out: finding them
    costs their modules' imports, and argparse would only read the chosen command's
    options anyway."""
    parser = Parser(prog="amcp", description="amcp: a secure message bus for cooperating agents.")
    parser.add_argument("--version", action="version", version=f"amcp {__version__}")
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-json", action="store_true", help="log JSON lines to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    if argv and argv[0] in sub.choices:
        return parser
    for _, register in command_entry_points():
        resolve_name(register)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)  # --help and bad usage end here
    from amcp.logs import setup_logging  # logging: for a command that runs

    setup_logging(args.log_level, args.log_json)

    def command() -> int:
        if any(name.startswith("OTEL_") for name in os.environ):  # OpenTelemetry only if asked
            from amcp.telemetry import export_from_env

            export_from_env("amcp")
        return args.func(args)

    span = CommandSpan(command_name(parser, args))
    token = running_command.set(span)
    try:
        code = run_command(command)
    finally:
        running_command.reset(token)
    span.end(code)
    return code


def command_name(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """`cli.<command>[.<action>]`, e.g. `cli.call` or `cli.ctx.set`: the command span's name,
    the subcommands chosen at each level of the tree."""
    names = ["cli"]
    while True:
        subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen = getattr(args, subparsers[0].dest, None) if subparsers else None
        if not isinstance(chosen, str) or chosen not in subparsers[0].choices:
            return ".".join(names)
        names.append(chosen)
        parser = subparsers[0].choices[chosen]


if __name__ == "__main__":
    sys.exit(main())
