"""The command lines start at once: `--help` and the parsing of a command import none of
the heavy libraries that only some commands use when they run (issue 19 point 5). Each
test runs the real entry module in a fresh interpreter under `python -X importtime`."""

from __future__ import annotations

import pytest

from tests.support.importtime import imports_of

# numpy and scipy serve the traffic analyser, matplotlib `amcp traffic --plot`; nats (the
# bus), pydantic (settings, tool and task models), prometheus_client (an agent's metrics),
# asyncio, cryptography (identities, sealing) and msgspec (the envelope's codec) serve
# commands that run. Registering a command needs none of them.
NUMERIC = ("numpy", "scipy", "matplotlib")
NOT_FOR_HELP = (
    *NUMERIC,
    "nats",
    "pydantic",
    "prometheus_client",
    "asyncio",
    "cryptography",
    "msgspec",
)


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("--help",), id="amcp --help"),
        pytest.param(("send", "--help"), id="amcp send --help"),
        pytest.param(("call", "--help"), id="amcp call --help"),
    ],
)
def test_amcp_help_imports_no_heavy_library(args: tuple[str, ...]) -> None:
    found = imports_of(*args)
    assert found.run.returncode == 0, found.run.stderr[-2000:]
    assert "usage: amcp" in found.run.stdout
    assert "amcp.cli.common" in found.names  # the report was read
    heavy = found.packages(*NOT_FOR_HELP)
    assert heavy == [], found.explain(*heavy)


def test_amcp_agent_help_imports_no_heavy_library() -> None:
    found = imports_of("--help", run=("-m", "agents.cli.agent"))
    assert found.run.returncode == 0, found.run.stderr[-2000:]
    assert "--role" in found.run.stdout
    assert "amcp.cli.common" in found.names
    heavy = found.packages(*NOT_FOR_HELP)
    assert heavy == [], found.explain(*heavy)


def test_a_bad_option_fails_before_anything_heavy_is_imported() -> None:
    found = imports_of("send", "a.subject", "{}", "--no-such-option")
    assert found.run.returncode == 2
    assert "--no-such-option" in found.run.stderr
    heavy = found.packages(*NOT_FOR_HELP)
    assert heavy == [], found.explain(*heavy)


def test_the_report_names_what_was_imported_and_by_whom() -> None:
    # the guard of the tests above: a run that does import numpy is seen to, with its chain
    found = imports_of(run=("-c", "import netopt.analyser, netopt.sampler, numpy"))
    assert found.run.returncode == 0, found.run.stderr[-2000:]
    assert found.packages(*NUMERIC) == ["numpy"]
    assert found.chain("numpy")[0].startswith("numpy")
    assert "numpy via numpy" in found.explain("numpy")


@pytest.mark.parametrize("command", ["send", "listen", "keys", "server", "traffic"])
def test_amcp_own_commands_skip_the_higher_layers(command: str) -> None:
    # `amcp send ...` in a script's loop: no entry-point scan, no agents/consensus/crdt
    found = imports_of(command, "--help")
    assert found.run.returncode == 0, found.run.stderr[-2000:]
    assert f"usage: amcp {command}" in found.run.stdout
    assert "importlib.metadata" not in found.names
    assert found.packages("agents", "consensus", "crdt") == []


def test_help_still_lists_every_command() -> None:
    found = imports_of("--help")
    listed = found.run.stdout
    for command in ("send", "keys", "call", "coordinate", "ctx", "task", "cluster", "demo"):
        assert f"    {command} " in listed or f"    {command}\n" in listed, command
