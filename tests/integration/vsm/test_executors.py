"""S1's executors on real processes: output captured and capped, stdin closed, the working
directory, timeouts that end the whole process group, CLI templates without a shell,
Python callables by entry point."""

from __future__ import annotations

import time
from pathlib import Path

from agents.vsm.s1.executors import execute
from agents.vsm.tasks import StepIn
from tests.support.waiting import wait_until


def step(text: str, **kw) -> StepIn:
    return StepIn(task_id="t1", step=0, text=text, **kw)


async def test_shell_output_exit_code_and_cwd(tmp_path) -> None:
    out = await execute(step("pwd; echo oops >&2; exit 4", cwd=str(tmp_path)))
    assert not out.ok and out.exit_code == 4 and not out.timed_out
    assert out.stdout == f"{tmp_path}\n" and out.stderr == "oops\n" and out.error is None


async def test_stdin_is_closed() -> None:
    started = time.monotonic()
    out = await execute(step("cat; echo read-eof", timeout=5))
    assert out.ok and out.stdout == "read-eof\n" and time.monotonic() - started < 2


async def test_output_is_capped_and_the_rest_drained() -> None:
    out = await execute(step("head -c 1000000 /dev/zero | tr '\\0' x", max_output=1000))
    assert out.ok and len(out.stdout) == 1000 and out.truncated


async def test_a_timeout_ends_the_whole_process_group(tmp_path) -> None:
    pidfile = tmp_path / "pids"
    started = time.monotonic()
    out = await execute(step(f"sleep 30 & echo $! > {pidfile}; sleep 30", timeout=0.5))
    assert out.timed_out and not out.ok and "timed out after 0.5s" in (out.error or "")
    assert time.monotonic() - started < 5
    background = Path(f"/proc/{pidfile.read_text().strip()}/stat")

    def gone() -> bool:  # reaped, or a zombie waiting for init
        try:
            return background.read_text().split()[2] == "Z"
        except FileNotFoundError:
            return True

    await wait_until(gone, 5, what="the background sleep to be killed")


async def test_a_background_child_holding_the_pipes_does_not_hold_the_step() -> None:
    started = time.monotonic()
    out = await execute(step("sleep 20 & echo started", timeout=30))
    assert out.ok and out.stdout == "started\n" and time.monotonic() - started < 3


async def test_a_missing_working_directory_is_an_error(tmp_path) -> None:
    out = await execute(step("true", cwd=str(tmp_path / "nope")))
    assert not out.ok and "does not exist" in (out.error or "")


async def test_cli_template_runs_without_a_shell(tmp_path) -> None:
    injected = tmp_path / "injected"
    text = f"hello; touch {injected}"
    out = await execute(
        step(text, executor="cli", template=["printf", "%s|%s|%s", "{text}", "{task_id}", "{step}"])
    )
    assert out.ok and out.stdout == f"{text}|t1|0"
    assert not injected.exists()
    bad = await execute(step("x", executor="cli", template=["echo", "{nope}"]))
    assert not bad.ok and "unknown placeholder {nope}" in (bad.error or "")
    missing = await execute(step("x", executor="cli", template=["no-such-program-amcp"]))
    assert not missing.ok and "cannot run 'no-such-program-amcp'" in (missing.error or "")


async def test_python_callables_by_entry_point() -> None:
    out = await execute(step("anything", executor="python", entry_point="noop"))
    assert out.ok and out.exit_code == 0 and out.stdout == ""
    unknown = await execute(step("x", executor="python", entry_point="no-such"))
    assert not unknown.ok and "no executor 'no-such'" in (unknown.error or "")
    assert "noop" in (unknown.error or "")
