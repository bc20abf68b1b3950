"""The README's first command: `amcp demo` runs a viable system (an embedded nats-server,
two S1s and S2 to S5 as processes), shows each part, exits 0 and leaves no process behind."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.cli import amcp, start
from tests.support.waiting import wait_until_sync


def _processes(*needles: str) -> set[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if all(n in line for n in needles)}


def test_demo_runs_and_cleans_up() -> None:
    before = _processes("amcp-demo", "nats-server")
    result = amcp("demo", "--json", timeout=120)
    summary = json.loads(result.stdout.splitlines()[-1])
    story = "\n".join(f"{s['step']}: {s['text']}" for s in summary["steps"])
    assert result.returncode == 0 and summary["ok"] is True, f"{story}\n{result.stderr}"
    steps = {step["step"]: step for step in summary["steps"]}
    agents = steps["agents"]["agents"]
    assert sorted(agents) == ["s1-a", "s1-b", "s2-a", "s3-a", "s4-a", "s5-a"]
    assert steps["task"]["success"] is True
    assert [a for a in ("s3-a", "s4-a", "s5-a", "s2-a") if a in steps["task"]["agents"]] == [
        "s3-a",
        "s4-a",
        "s5-a",
        "s2-a",
    ]
    assert sorted(steps["parallel"]["workers"]) == ["s1-a", "s1-b"]
    vote = steps["vote"]
    assert vote["outcome"] == "committed" and vote["voters"] == 3 and vote["yes"] >= 2
    assert vote["executed"] is True
    assert steps["context"]["agents"] == 6 and steps["context"]["totals"]["tasks"] == 3
    assert steps["attack"]["rejected"] == {"unknown_key": 1, "replay": 1, "bad_signature": 1}
    assert steps["attack"]["pwned"] is False
    assert any(f["class"] for f in steps["traffic"]["families"])
    assert steps["stop"]["exit_codes"] == dict.fromkeys(agents, 0)
    cluster = steps["agents"]["cluster"]
    assert _processes("amcp-demo", "nats-server") <= before
    assert not _processes("agents.cli.agent", cluster)


@pytest.mark.parametrize(
    "stop, after",
    [
        (signal.SIGTERM, "started an embedded nats-server"),  # while the agents start
        (signal.SIGHUP, "six agents joined"),  # in the scenario
        (signal.SIGTERM, "six agents joined"),
    ],
)
def test_demo_stopped_by_a_signal_stops_everything_it_started(
    tmp_path: Path, stop: signal.Signals, after: str
) -> None:
    # SIGTERM and SIGHUP killed the demo at once, leaving its nats-server, six agents and
    # temporary folder behind; they now stop it as Ctrl-C does
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        demo = start("demo", stdout=sink, stderr=subprocess.PIPE)
    try:
        wait_until_sync(lambda: after in out.read_text(), timeout=60, what=after)
        found = (re.match(r".*/amcp-demo-[^/]+", word) for word in _children_args(demo.pid))
        folders = {m.group(0) for m in found if m}
        assert len(folders) == 1, folders  # the nats-server's config, the agents' keyring
        (folder,) = folders
        demo.send_signal(stop)
        assert demo.wait(timeout=60) == 130, demo.stderr.read()
    finally:
        demo.kill()
    assert "Traceback" not in demo.stderr.read()
    assert not _processes(folder)
    assert not Path(folder).exists()


def _children_args(pid: int) -> list[str]:
    """Every word of the command lines of `pid`'s children."""
    out = subprocess.run(["ps", "-eo", "ppid,args"], capture_output=True, text=True).stdout
    rows = (line.split() for line in out.splitlines()[1:])
    return [word for row in rows if row and row[0] == str(pid) for word in row[1:]]
