"""Running hooks: real commands (a veto, a timeout that kills the group, a crash) and
callables, counted; no bus needed."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from agents.runtime.hookrunner import VETOED, HookRunner
from agents.runtime.hooks import HookConfig, HookSpec, parse_hook
from tests.support.waiting import wait_until

PY = sys.executable


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def _runner(*specs: HookSpec, timeout: float = 5.0, **kw: Any) -> HookRunner:
    return HookRunner(HookConfig(specs, timeout), "s1-a", "s1", **kw)


async def test_a_command_reads_the_payload_and_vetoes_with_its_reason(tmp_path: Path) -> None:
    seen = tmp_path / "seen.json"
    script = _script(
        tmp_path,
        "veto.py",
        "import json, sys\n"
        "doc = json.load(sys.stdin)\n"
        f"open({str(seen)!r}, 'w').write(json.dumps(doc))\n"
        "print('no ' + doc['text'], file=sys.stderr)\n"
        "sys.exit(2)\n",
    )
    audited: list[tuple[str, dict[str, Any]]] = []

    async def audit(event: str, **fields: Any) -> None:
        audited.append((event, fields))

    runner = _runner(HookSpec("pre_step", "command", (PY, script)), audit=audit)
    verdict = await runner.gate("pre_step", task="t-1", text="rm -rf /")
    assert not verdict.allowed and verdict.reason == "no rm -rf /"
    assert json.loads(seen.read_text()) == {
        "event": "pre_step",
        "agent": "s1-a",
        "role": "s1",
        "task": "t-1",
        "text": "rm -rf /",
    }
    assert audited == [
        (VETOED, {"at": "pre_step", "hook": f"{PY} {script}", "reason": "no rm -rf /"})
    ]
    assert runner.status()["events"]["pre_step"] == {"ran": 1, "vetoed": 1}


async def test_the_first_veto_stops_the_hooks_after_it(tmp_path: Path) -> None:
    marker = tmp_path / "second-ran"
    runner = _runner(
        parse_hook(f"pre_task={PY} -c 'import sys; sys.exit(2)'"),
        HookSpec("pre_task", "command", (PY, "-c", f"open({str(marker)!r}, 'w')")),
    )
    assert not (await runner.gate("pre_task")).allowed
    assert not marker.exists()


async def test_a_hanging_command_and_its_children_are_killed_at_the_deadline(
    tmp_path: Path,
) -> None:
    pids = tmp_path / "pids"
    script = _script(
        tmp_path,
        "hang.py",
        "import os, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
        "time.sleep(60)\n",
    )
    runner = _runner(HookSpec("pre_step", "command", (PY, script)), timeout=1.0)
    started = time.monotonic()
    verdict = await runner.gate("pre_step")
    assert verdict.allowed  # a broken hook never stops the agent
    assert time.monotonic() - started < 4
    for pid in map(int, pids.read_text().split()):
        await wait_until(lambda p=pid: not _alive(p), what=f"pid {pid} to die with its hook")
    assert runner.status()["events"]["pre_step"] == {"ran": 1, "timed_out": 1, "failed": 1}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


async def test_a_crashing_or_missing_command_allows_and_is_counted(tmp_path: Path) -> None:
    runner = _runner(
        HookSpec("pre_step", "command", (PY, "-c", "raise SystemExit(3)")),
        HookSpec("pre_step", "command", (str(tmp_path / "absent"),)),
    )
    verdict = await runner.gate("pre_step")
    assert verdict.allowed
    assert runner.status()["totals"] == {"ran": 2, "failed": 2}


async def test_a_command_that_ignores_stdin_and_prints_much_is_fine() -> None:
    runner = _runner(
        HookSpec("pre_step", "command", (PY, "-c", "print('x' * 300000)")),
    )
    assert (await runner.gate("pre_step", big="y" * 200000)).allowed
    assert runner.status()["totals"] == {"ran": 1}


async def test_callables_veto_allow_fail_and_time_out() -> None:
    async def slow(doc: dict[str, Any]) -> None:
        await asyncio.sleep(30)

    hooks = {
        "friday": lambda doc: "not on Fridays" if doc["day"] == "fri" else None,
        "boom": lambda doc: 1 / 0,
        "slow": slow,
    }
    runner = _runner(
        parse_hook("pre_tool_call=python:boom"),
        parse_hook("pre_tool_call=python:slow"),
        parse_hook("pre_tool_call=python:friday"),
        timeout=0.5,
        load=hooks.__getitem__,
    )
    assert (await runner.gate("pre_tool_call", day="mon")).allowed
    verdict = await runner.gate("pre_tool_call", day="fri")
    assert (verdict.allowed, verdict.reason, verdict.hook) == (
        False,
        "not on Fridays",
        "python:friday",
    )
    counts = runner.status()["events"]["pre_tool_call"]
    assert counts == {"ran": 6, "failed": 4, "timed_out": 2, "vetoed": 1}


async def test_a_veto_at_an_observing_event_does_not_stop_anything() -> None:
    runner = _runner(parse_hook(f"post_step={PY} -c 'import sys; sys.exit(2)'"))
    assert (await runner.gate("post_step")).allowed


async def test_notify_runs_in_the_background_and_close_waits_for_it(tmp_path: Path) -> None:
    out = tmp_path / "out"
    runner = _runner(
        HookSpec(
            "post_task",
            "command",
            (PY, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"),
        )
    )
    runner.notify("post_task", task="t-9", success=True)
    runner.notify("post_step")  # no hook: nothing
    await runner.close()
    assert json.loads(out.read_text())["task"] == "t-9"


def test_an_agent_without_hooks_reports_nothing() -> None:
    assert _runner().status() == {}
    assert not _runner().wants("pre_step") and not _runner().active
    assert _runner(parse_hook("post_vote=true")).active
