"""The README's first command: `amcp demo` runs a viable system (an embedded nats-server,
two S1s and S2 to S5 as processes), shows each part, exits 0 and leaves no process behind."""

from __future__ import annotations

import json
import subprocess

from tests.support.cli import amcp


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
