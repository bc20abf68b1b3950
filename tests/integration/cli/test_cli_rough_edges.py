"""Rough edges a new user hit with the `amcp` CLI (issue 13 point 7): real subprocesses
against a real nats-server."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.agents import Cluster
from tests.support.cli import amcp
from tests.support.cluster import env_of
from tests.support.waiting import wait_until_sync


def run_into_closed_pipe(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run with stdout a pipe whose reader has gone, as `amcp ... | head -1` leaves it."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return amcp(*args, env=env, stdout=writer)
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "args, code",
    [
        (["send", "x.y", "{}"], 0),
        (["send", "x.y", "{}", "--json"], 0),
        (["coordinate", "--action", "restart", "--timeout", "0.3"], 3),
    ],
)
def test_a_closed_stdout_exits_quietly_with_the_commands_own_code(
    args: list[str], code: int, cli_env: dict[str, str]
) -> None:
    env = {**cli_env, "AMCP_CLUSTER": "pipe-test"}
    done = run_into_closed_pipe(args, env)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr


def test_a_one_node_tls_cluster_comes_up_and_commands_against_it_warn_nothing(
    data_dir: Path,
) -> None:
    # one server with a cluster block and no peers waited for them until the deadline
    up = amcp(
        "cluster",
        "up",
        "--data-dir",
        str(data_dir),
        "--nodes",
        "1",
        "--agents",
        "s1=1,s5=1",
        "--tls",
        "--timeout",
        "30",
        timeout=90,
    )
    assert up.returncode == 0, up.stderr
    env = env_of(data_dir)
    sent = amcp("send", "amcp.default.test", "{}", env=env)
    assert sent.returncode == 0 and "sent" in sent.stdout, sent.stderr
    assert sent.stderr == ""  # no asyncio "eof_received" warning from closing TLS
    listed = amcp("members", "--json", env=env)
    assert listed.returncode == 0 and listed.stderr == "", listed.stderr


def test_keys_list_during_a_rotation_shows_one_signing_key_the_newest(tmp_path: Path) -> None:
    env = dict(os.environ, AMCP_KEYRING=str(tmp_path / "ring.json"))
    first = json.loads(amcp("keys", "new", "--json", env=env).stdout)["kid"]
    second = json.loads(amcp("keys", "rotate", "--activate-after", "0", "--json", env=env).stdout)
    third = json.loads(amcp("keys", "rotate", "--activate-after", "3600", "--json", env=env).stdout)
    keys = json.loads(amcp("keys", "list", "--json", env=env).stdout)["keys"]
    states = {k["kid"]: k["state"] for k in keys}
    assert states == {first: "verifying", second["kid"]: "signing", third["kid"]: "pending"}
    human = amcp("keys", "list", env=env).stdout
    assert human.count("signing") == 1 and human.count("verifying") == 1, human


@pytest.mark.parametrize("action", ["new", "rotate", "list"])
def test_keys_help_shows_defaults_and_no_connection_options(action: str) -> None:
    shown = amcp("keys", action, "--help")
    assert shown.returncode == 0, shown.stderr
    assert "--keyring" in shown.stdout
    for unused in ("--nats", "--cluster", "--tls-ca", "--nats-user"):
        assert unused not in shown.stdout, shown.stdout
    if action == "rotate":
        flat = " ".join(shown.stdout.split())
        assert "(default 10)" in flat and "(default 86400" in flat, shown.stdout


def test_amcp_tools_prints_whole_descriptions_and_examples(
    agent_cluster: Cluster, cli_env: dict[str, str]
) -> None:
    agent_cluster.spawn("s1", "tools-s1")
    env = agent_cluster.env(cli_env)
    shown: list[subprocess.CompletedProcess] = []

    def described() -> bool:
        shown.append(amcp("tools", "tools-s1", env=env))
        return shown[-1].returncode == 0

    wait_until_sync(described, 20, 0.2, what="the S1 agent to describe its tools")
    flat = " ".join(shown[-1].stdout.split())
    # the docstring's line break fell mid-sentence: the rest was cut
    assert "stdin closed, a timeout, output captured and capped." in flat, shown[-1].stdout
    assert flat.count("e.g.") >= 6, shown[-1].stdout  # every tool shows an example
