"""`amcp cluster up/status/env/down` as a user runs them, each command its own process:
three authenticated nats-servers and an agent of every role (two S1s, three S5 voters),
each with an identity in the roster `up` made, visible as members from another shell, the
audit stream replicated on the three servers, and after `down` nothing left running.
Usage errors exit 2 with one line.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from agents.cluster.local import STATE_FILE, _agent_marker, _alive
from tests.support.cli import amcp
from tests.support.cluster import env_of


def test_up_status_members_down(data_dir: Path) -> None:
    up = amcp("cluster", "up", "--data-dir", str(data_dir), "--name", "cli", "--json", timeout=90)
    assert up.returncode == 0, up.stderr
    started = json.loads(up.stdout)
    assert started["up"] and len(started["nodes"]) == 3
    roles = sorted(a["role"] for a in started["agents"])
    assert roles == ["s1", "s1", "s2", "s3", "s4", "s5", "s5", "s5"]  # three voters
    assert {a["node"] for a in started["agents"]} == {n["name"] for n in started["nodes"]}

    again = amcp("cluster", "up", "--data-dir", str(data_dir), timeout=90)
    assert again.returncode == 2 and "already running" in again.stderr

    status = amcp("cluster", "status", "--data-dir", str(data_dir), "--json")
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert all(n["running"] and n["healthy"] for n in doc["nodes"])
    assert all(a["state"] == "running" and a["liveness"] == "alive" for a in doc["agents"])

    members = amcp("members", "--json", env=env_of(data_dir))
    assert members.returncode == 0, members.stderr
    assert {m["id"] for m in json.loads(members.stdout)["members"]} == {
        a["id"] for a in doc["agents"]
    }
    # identities on: `cluster env` names the roster `up` made, one key per agent in its role
    roster = amcp("keys", "identity", "list", "--json", env=env_of(data_dir))
    assert roster.returncode == 0, roster.stderr
    granted = {(r["id"], tuple(r["roles"])) for r in json.loads(roster.stdout)["agents"]}
    assert granted == {(a["id"], (a["role"],)) for a in doc["agents"]}

    state = json.loads((data_dir / STATE_FILE).read_text())
    jsz = f"{state['nodes'][0]['http']}/jsz?streams=true&config=true"
    with urllib.request.urlopen(jsz, timeout=5) as resp:
        streams = {
            s["name"]: s
            for account in json.load(resp)["account_details"]
            for s in account.get("stream_detail", [])
        }
    assert streams["AUDIT_cli"]["config"]["num_replicas"] == 3
    assert streams["KV_AMCP_CLAIMS_cli"]["config"]["num_replicas"] == 3  # claims survive a node

    down = amcp("cluster", "down", "--data-dir", str(data_dir), "--json", timeout=90)
    assert down.returncode == 0, down.stderr
    assert json.loads(down.stdout) == {"stopped": 11, "killed": 0}
    assert not any(_alive(n["pid"], n["conf"]) for n in state["nodes"])
    assert not any(_alive(a["pid"], _agent_marker(a["id"])) for a in state["agents"])
    assert not (data_dir / STATE_FILE).exists()
    gone = amcp("cluster", "status", "--data-dir", str(data_dir))
    assert gone.returncode == 2 and "no cluster" in gone.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["up", "--agents", "s9=1"], "--agents takes ROLE=N"),
        (["up", "--agents", "s1=x"], "is not a number"),
        (["up", "--agents", "s1=0"], "starts no agent"),
        (["up", "--nodes", "0"], "--nodes must be 1-9"),
        (["up", "--voters", "0"], "--voters must be 1-64"),
        (["up", "--voters", "three"], "--voters takes a number"),
        (["up", "--agents", "s5=1", "--voters", "3"], "--agents starts 1 s5 but --voters says 3"),
        (["down"], "no cluster in"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    out = amcp("cluster", *args, "--data-dir", str(tmp_path / "none"))
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "none").exists()
