"""The README's first command: `amcp demo` exits 0 and leaves no process behind."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import amcp_bin


def _demo_servers() -> set[str]:
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if "amcp-demo" in line
            and "nats-server" in line}


def test_demo_runs_and_cleans_up() -> None:
    before = _demo_servers()
    result = subprocess.run([amcp_bin(), "demo", "--json"], capture_output=True, text=True,
                            timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert summary["ok"] is True
    steps = {step["step"]: step for step in summary["steps"]}
    assert steps["signed"]["received"] == 3
    assert steps["attack"]["rejected"] == {"unknown_key": 1, "replay": 1, "bad_signature": 1}
    assert _demo_servers() <= before
