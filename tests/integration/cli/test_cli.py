"""The `amcp` CLI as a user runs it: subprocesses against a real nats-server."""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from amcp import NatsServer
from tests.support.cli import amcp, start
from tests.support.waiting import wait_until_sync


@pytest.mark.parametrize(
    "args, message",
    [
        (["bogus"], "invalid choice"),
        (["send"], "required"),
        (["send", "a b", "{}"], "invalid publish subject"),
        (["send", "x.y", "{oops"], "invalid JSON body"),
        (["send", "x.y", "1", "--nats", "http://nope"], "is not a NATS URL"),
        (["listen", "x", "--count", "0"], "--count must be at least 1"),
        (["server", "--port", "70000"], "--port: must be at least 1 and at most 65535"),
        (["keys", "rotate", "--grace", "-1"], "must be at least 0"),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    args: list[str], message: str, cli_env: dict[str, str]
) -> None:
    result = amcp(*args, env=cli_env)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_unreachable_nats_exits_4_naming_the_url(cli_env: dict[str, str]) -> None:
    result = amcp("send", "x.y", "{}", "--nats", "nats://127.0.0.1:1", env=cli_env)
    assert result.returncode == 4
    assert "nats://127.0.0.1:1" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_keys_new_rotate_list_never_print_secrets(tmp_path: Path) -> None:
    env = dict(os.environ, AMCP_KEYRING=str(tmp_path / "ring.json"))
    created = json.loads(amcp("keys", "new", "--json", env=env).stdout)
    path = Path(created["path"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert amcp("keys", "new", env=env).returncode == 2  # refuses to overwrite
    rotated = json.loads(amcp("keys", "rotate", "--activate-after", "0", "--json", env=env).stdout)
    listing = amcp("keys", "list", "--json", env=env)
    keys = json.loads(listing.stdout)["keys"]
    assert [k["kid"] for k in keys] == [created["kid"], rotated["kid"]]
    secrets = [k["secret"] for k in json.loads(path.read_text())["keys"]]
    human = amcp("keys", "list", env=env).stdout
    for secret in secrets:
        assert secret not in listing.stdout and secret not in human
    os.chmod(path, 0o644)
    refused = amcp("keys", "list", env=env)
    assert refused.returncode == 2 and "chmod 600" in refused.stderr


def test_send_and_listen_json_and_rejections_on_stderr(
    cli_env: dict[str, str], nats_server: NatsServer, tmp_path: Path
) -> None:
    listener = start("listen", "cli.>", "--count", "2", "--json", "--timeout", "20", env=cli_env)
    try:
        # The listener is ready once the server reports its subscription.
        wait_until_sync(
            lambda: _subscriptions(nats_server) >= 1, timeout=10, what="the listener's subscription"
        )
        other_ring = dict(cli_env, AMCP_KEYRING=str(tmp_path / "other.json"))
        assert amcp("keys", "new", env=other_ring).returncode == 0
        assert amcp("send", "cli.a", '{"n": 1}', env=other_ring).returncode == 0  # forged
        assert amcp("send", "cli.a", '{"n": 1}', env=cli_env).returncode == 0
        sent = amcp("send", "cli.b", "[1, 2]", "--json", env=cli_env)
        assert json.loads(sent.stdout)["seq"] == 1
        out, err = listener.communicate(timeout=20)
    finally:
        listener.kill()
    assert listener.returncode == 0, err
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(m["subject"], m["body"]) for m in lines] == [("cli.a", {"n": 1}), ("cli.b", [1, 2])]
    assert "rejected unknown_key on cli.a" in err


def test_listen_times_out_with_exit_3(cli_env: dict[str, str]) -> None:
    result = amcp("listen", "cli.quiet", "--count", "1", "--timeout", "0.5", env=cli_env)
    assert result.returncode == 3
    assert "got 0 of 1" in result.stderr


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_server_runs_until_sigterm_and_leaves_nothing_behind(
    tmp_path: Path, stop: signal.Signals
) -> None:
    # SIGHUP (the terminal gone) too: the nats-server has a session of its own, so the
    # hangup does not reach it, and it held the port after amcp died
    from amcp.server import free_port

    port = free_port()
    proc = start("server", "--port", str(port), "--json", "--store-dir", str(tmp_path / "js"))
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["url"] == f"nats://127.0.0.1:{port}"
        nats_pid = ready["pid"]
        conf = next((tmp_path / "js").glob("*.conf")).read_text()
        assert "sync_interval: always" in conf  # every JetStream write synced to disk
        proc.send_signal(stop)
        assert proc.wait(timeout=15) == 0, proc.stderr.read()
    finally:
        proc.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(nats_pid, 0)


def _subscriptions(server: NatsServer) -> int:
    import urllib.request

    url = f"http://{server.host}:{server.http_port}/subsz"
    with urllib.request.urlopen(url, timeout=2) as resp:
        return json.load(resp)["num_subscriptions"]


def test_help_lists_every_core_command() -> None:
    out = amcp("--help").stdout
    for command in ("keys", "send", "listen", "server"):
        assert command in out
    module = [sys.executable, "-m", "amcp.cli.main"]
    assert amcp("--version", program=module, timeout=30).stdout.startswith("amcp ")


def test_server_whose_nats_server_dies_says_why_in_one_line(tmp_path: Path) -> None:
    # it said "nats-server exited unexpectedly: " and nothing, or 15 lines of its log
    from amcp.server import free_port

    proc = start("server", "--port", str(free_port()), "--json")
    try:
        nats_pid = json.loads(proc.stdout.readline())["pid"]
        os.kill(nats_pid, signal.SIGKILL)
        assert proc.wait(timeout=15) == 1
    finally:
        proc.kill()
    stderr = proc.stderr.read()
    assert stderr == "amcp: nats-server amcp-nats was killed by signal 9\n", stderr
