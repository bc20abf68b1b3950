"""`amcp task --delegate` on a real nats-server: subtasks run by ephemeral S1 workers
(real `amcp-agent` processes) whose executor is the scripted LLM stand-in. Concurrency is
measured from the executors' own start/stop records and the workers' spawn and exit
times, and "nothing left running" from /proc."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from agents.cluster.identities import AgentIdentities, roles_of
from tests.support.cli import amcp, start
from tests.support.waiting import wait_until_sync

SCRIPT = Path(__file__).resolve().parents[2] / "support" / "scripted_llm.py"


@pytest.fixture
def env(cli_env: dict[str, str], cluster_name: str) -> dict[str, str]:
    return {**cli_env, "AMCP_CLUSTER": cluster_name}


class Llm:
    """The scripted stand-in with its rules and its record of calls."""

    def __init__(self, folder: Path, rules: list[dict[str, Any]]) -> None:
        self.rules = folder / "rules.json"
        self.rules.write_text(json.dumps({"rules": rules}))
        self.record = folder / "calls.jsonl"

    def template(self) -> str:
        return f"{sys.executable} {SCRIPT} --rules {self.rules} --record {self.record} {{text}}"

    def calls(self) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]

    def intervals(self) -> dict[int, tuple[float, float | None]]:
        """Each call's (start, stop) by its pid."""
        spans: dict[int, tuple[float, float | None]] = {}
        for c in self.calls():
            begun, _ = spans.get(c["pid"], (c["t"], None))
            spans[c["pid"]] = (begun, c["t"] if c["event"] == "stop" else None)
        return spans


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])  # stop first
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def running_with(text: str) -> list[int]:
    """The live processes whose command line holds `text` (the workers of a task)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and alive(int(entry.name)):
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(int(entry.name))
    return found


def delegate(env: dict[str, str], *args: str, timeout: float = 120) -> Any:
    return amcp("task", "--delegate", *args, env=env, timeout=timeout)


def test_five_subtasks_on_two_workers(env: dict[str, str], tmp_path: Path) -> None:
    llm = Llm(
        tmp_path,
        [
            {"match": "^TASK:", "synthesise": "concat"},
            # long enough that two workers' steps overlap even if one starts late
            {"match": r"^part (\d)$", "sleep": 1.0, "answer": "done {1}"},
        ],
    )
    steps = [a for i in range(1, 6) for a in ("--step", f"part {i}")]
    out = delegate(
        env,
        "five parts",
        *steps,
        "--max-workers",
        "2",
        "--cli",
        llm.template(),
        "--synthesiser",
        llm.template(),
        "--json",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [s["status"] for s in report["subtasks"]] == ["ok"] * 5
    assert report["degraded"] == [] and report["synthesised_by"] == "synthesiser"
    assert report["synthesis"].startswith("SYNTHESIS: TASK: five parts")
    for i in range(1, 6):
        assert f"done {i}" in report["synthesis"]
    # the executors' own records: never more than two at once, and two did run together
    calls = [c for c in llm.calls() if c["prompt"].startswith("part")]
    spans = llm.intervals()
    executed = [spans[c["pid"]] for c in calls if c["event"] == "start"]
    assert len(executed) == 5 and all(stop is not None for _, stop in executed)
    assert most_at_once(executed) == 2  # type: ignore[arg-type]
    # the workers: one per subtask, each ran its executor, two alive at most at once
    attempts = [a for s in report["subtasks"] for a in s["attempts"]]
    workers = {a["pid"] for a in attempts}
    assert len(workers) == 5
    assert {c["ppid"] for c in calls} == workers
    assert most_at_once([(a["spawned"], a["exited"]) for a in attempts]) <= 2
    assert report["peak_workers"] == 2
    assert all(a["worker_exit"] == 0 for a in attempts)  # each left gracefully
    # nothing left running: neither a worker nor an executor it started
    assert not [pid for pid in workers | set(spans) if alive(pid)]


def test_a_failing_subtask_is_retried_then_skipped(env: dict[str, str], tmp_path: Path) -> None:
    llm = Llm(
        tmp_path,
        [
            {"match": "^broken", "exit": 1, "stderr": "the model refused"},
            {"match": "^flaky", "fail_times": 1, "counter": "flaky", "answer": "flaky done"},
            {"match": "^part", "answer": "part done"},
        ],
    )
    out = delegate(
        env,
        "with failures",
        *("--step", "part one", "--step", "broken part", "--step", "flaky part"),
        *("--cli", llm.template(), "--retries", "2", "--backoff", "0.05", "--json"),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    one, broken, flaky = report["subtasks"]
    assert (one["status"], len(one["attempts"])) == ("ok", 1)
    assert (flaky["status"], len(flaky["attempts"])) == ("ok", 2)  # retried, then done
    assert broken["status"] == "skipped" and len(broken["attempts"]) == 3
    assert "skipped after 3 attempts" in broken["limitation"]
    assert "the model refused" in broken["limitation"]
    assert report["degraded"] == [broken["id"]]
    assert f"(missing: {broken['limitation']})" in report["synthesis"]
    assert "part done" in report["synthesis"] and "flaky done" in report["synthesis"]
    starts = [c["prompt"] for c in llm.calls() if c["event"] == "start"]
    assert starts.count("broken part") == 3
    # the human report names the limitation too
    human = delegate(
        env, "again", "--step", "broken", "--cli", llm.template(), "--on-failure", "skip"
    )
    assert human.returncode == 1  # nothing succeeded
    assert "subtask 1 skipped after 1 attempt" in human.stdout


def test_a_planner_plans_and_an_alternative_stands_in(env: dict[str, str], tmp_path: Path) -> None:
    plan = {
        "subtasks": [
            "part a",
            {"text": "broken b", "alternative": "part b-alt", "context": "only b's facts"},
        ]
    }
    llm = Llm(
        tmp_path,
        [
            {"match": "^make a plan", "plan": plan["subtasks"]},
            {"match": "^broken", "exit": 1},
            {"match": "^part (.*)", "answer": "did {1}"},
        ],
    )
    out = delegate(
        env,
        "make a plan",
        *("--planner", llm.template(), "--cli", llm.template()),
        *("--on-failure", "alternative", "--json", "--id", "planned"),
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["planned_by"] == "planner"
    a, b = report["subtasks"]
    assert a["status"] == "ok" and a["output"].strip() == "did a"
    assert b["status"] == "alternative" and b["output"].strip() == "did b-alt"
    assert report["degraded"] == ["2"]
    # audited: the plan, each subtask's outcome and the end, under the task's id
    log = amcp("log", "--task", "planned", "--json", "--count", "200", env=env)
    events = [json.loads(line)["event"] for line in log.stdout.splitlines()]
    assert events.count("delegation_planned") == 1
    assert events.count("subtask_completed") == 1 and events.count("subtask_degraded") == 1
    assert events.count("delegation_completed") == 1
    assert events.count("executed") == 3  # the workers' own: a, b, b's alternative


def test_each_worker_gets_its_slice_in_the_prompt(env: dict[str, str], tmp_path: Path) -> None:
    plan = [
        {"text": "part a", "context": "slice-for-a"},
        {"text": "part b", "context": "slice-for-b"},
    ]
    llm = Llm(tmp_path, [{"match": "^make a plan", "plan": plan}, {"match": "", "answer": "ok"}])
    out = delegate(
        env,
        "make a plan",
        *("--planner", llm.template(), "--cli", llm.template().replace("{text}", "{prompt}")),
        *("--pin", "FACT-PINNED", "--json"),
    )
    assert out.returncode == 0, out.stderr
    prompts = {
        c["prompt"].split("Step ")[-1]: c["prompt"]
        for c in llm.calls()
        if c["event"] == "start" and "Step " in c["prompt"]
    }
    a = next(p for step, p in prompts.items() if "part a" in step)
    b = next(p for step, p in prompts.items() if "part b" in step)
    assert "slice-for-a" in a and "slice-for-b" not in a
    assert "slice-for-b" in b and "slice-for-a" not in b
    assert "FACT-PINNED" in a and "FACT-PINNED" in b


def test_worker_hooks_run_in_each_worker(env: dict[str, str], tmp_path: Path) -> None:
    llm = Llm(tmp_path, [{"match": "", "answer": "ok"}])
    done = tmp_path / "completed.txt"
    refuse = (  # vetoes the start of subtask 2's workers, with a reason
        "import json, sys; d = json.load(sys.stdin); "
        "sys.exit(sys.stderr.write('no workers for 2') and 2 if '-2-' in d['agent'] else 0)"
    )
    note = (
        f"import json, sys; open({str(done)!r}, 'a').write(json.load(sys.stdin)['agent'] + '\\n')"
    )
    out = delegate(
        env,
        "hooked",
        *("--step", "a", "--step", "b", "--cli", llm.template(), "--on-failure", "skip"),
        *("--worker-hook", f"pre_agent_spawn={sys.executable} -c {json.dumps(refuse)}"),
        *("--worker-hook", f"post_agent_complete={sys.executable} -c {json.dumps(note)}"),
        *("--json", "--id", "hooked"),
    )
    assert out.returncode == 0, out.stderr
    one, two = json.loads(out.stdout)["subtasks"]
    assert one["status"] == "ok"
    assert two["status"] == "skipped" and "no workers for 2" in two["limitation"]
    assert [c["prompt"] for c in llm.calls() if c["event"] == "start"] == ["a"]
    assert "w-hooked-1-1" in done.read_text().split()


def test_under_a_roster_workers_sign_as_the_slots_agents(
    env: dict[str, str], tmp_path: Path
) -> None:
    ids = AgentIdentities(tmp_path / "ids")
    ids.provision([("wk-0", roles_of("s1")), ("wk-1", roles_of("s1"))])
    keys = [a for i in range(2) for a in ("--worker-identity", str(ids.path(f"wk-{i}")))]
    llm = Llm(tmp_path, [{"match": "", "answer": "fine"}])
    checked = {**env, "AMCP_ROSTER": str(ids.roster)}
    steps = [a for i in range(3) for a in ("--step", f"part {i}")]
    args = ("roster", *steps, "--cli", llm.template(), "--json")
    # without identities, no worker may start: each attempt fails with the roster's reason
    refused = delegate(checked, *args, "--on-failure", "skip")
    assert refused.returncode == 1
    first = json.loads(refused.stdout)["subtasks"][0]
    assert "has no identity" in first["limitation"]
    out = delegate(checked, *args, *keys, "--id", "rostered")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["degraded"] == [] and report["max_workers"] == 2
    workers = [a["worker"] for s in report["subtasks"] for a in s["attempts"]]
    assert set(workers) <= {"wk-0", "wk-1"} and len(workers) == 3
    log = amcp("log", "--task", "rostered", "--verified-only", "--json", env=checked)
    executed = [json.loads(line) for line in log.stdout.splitlines()]
    executed = [e for e in executed if e["event"] == "executed"]
    assert len(executed) == 3 and {e["agent"] for e in executed} <= {"wk-0", "wk-1"}
    # one identity for two workers at once is refused before anything runs
    short = delegate(checked, *args, *keys[:2], "--max-workers", "2")
    assert short.returncode == 2 and "needs as many --worker-identity" in short.stderr


@pytest.mark.parametrize(
    ("answer", "says"),
    [
        ("this is not JSON", "planner answer is not JSON"),
        ('{"subtasks": [{"txt": "a"}]}', "unknown key 'txt'"),
    ],
)
def test_a_bad_plan_is_a_clear_error(
    env: dict[str, str], tmp_path: Path, answer: str, says: str
) -> None:
    llm = Llm(tmp_path, [{"match": "plan", "plan": answer}])
    out = delegate(env, "plan it", "--planner", llm.template(), "--cli", llm.template())
    assert out.returncode == 1
    assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1
    assert [c["prompt"] for c in llm.calls() if c["event"] == "start"] == ["plan it"]


def test_killing_the_orchestrator_stops_its_workers(env: dict[str, str], tmp_path: Path) -> None:
    llm = Llm(tmp_path, [{"match": "^slow", "sleep": 120, "answer": "late"}])
    steps = [a for i in range(3) for a in ("--step", f"slow {i}")]
    proc = start(
        "task", "--delegate", "long", *steps, "--max-workers", "2", "--cli", llm.template(), env=env
    )
    try:
        wait_until_sync(
            lambda: len([c for c in llm.calls() if c["event"] == "start"]) == 2,
            timeout=30,
            what="two subtasks running",
        )
        running = [c for c in llm.calls() if c["event"] == "start"]
        pids = {c["pid"] for c in running} | {c["ppid"] for c in running}
        assert all(alive(pid) for pid in pids)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        wait_until_sync(
            lambda: not any(alive(pid) for pid in pids), timeout=15, what="the workers to stop"
        )
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
    assert not [c for c in llm.calls() if c["event"] == "stop"]  # none ran to its end


def test_an_interrupted_orchestrator_stops_its_workers_gracefully(
    env: dict[str, str], tmp_path: Path
) -> None:
    llm = Llm(tmp_path, [{"match": "^slow", "sleep": 120, "answer": "late"}])
    proc = start(
        "task",
        "--delegate",
        "interrupted",
        *("--step", "slow 1", "--step", "slow 2", "--max-workers", "2", "--id", "intr"),
        *("--cli", llm.template()),
        env=env,
    )
    try:  # Ctrl-C while one subtask runs and the other's worker may still be starting
        wait_until_sync(lambda: llm.calls(), timeout=30, what="a subtask running")
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130
    assert "Traceback" not in stderr and "never retrieved" not in stderr
    assert not running_with("w-intr-")  # every worker had exited before amcp did
    log = amcp("log", "--json", "--count", "1000", env=env)
    entries = [json.loads(line) for line in log.stdout.splitlines()]
    events = {(e["agent"], e["event"]) for e in entries if e["agent"].startswith("w-intr-")}
    started = {agent for agent, event in events if event == "started"}
    assert started and all((agent, "stopped") in events for agent in started)  # gracefully
    pids = set(llm.intervals())
    wait_until_sync(lambda: not any(alive(p) for p in pids), timeout=10, what="no executor left")


def test_a_killed_worker_fails_its_attempt_and_frees_its_permit(
    env: dict[str, str], tmp_path: Path
) -> None:
    llm = Llm(
        tmp_path,
        [{"match": "^slow", "sleep": 120, "answer": "late"}, {"match": "^quick", "answer": "ok"}],
    )
    proc = start(
        "task",
        "--delegate",
        "kills",
        *("--step", "slow", "--step", "quick", "--max-workers", "1"),
        *("--cli", llm.template(), "--retries", "1", "--backoff", "0", "--json"),
        env=env,
    )
    try:
        for attempt in (1, 2):  # kill the slow subtask's worker under each attempt
            wait_until_sync(
                lambda n=attempt: len([c for c in llm.calls() if c["prompt"] == "slow"]) == n,
                timeout=30,
                what=f"attempt {attempt} of the slow subtask running",
            )
            worker = [c for c in llm.calls() if c["prompt"] == "slow"][-1]["ppid"]
            os.kill(worker, signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=60)  # well before the 120 s sleep
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    slow, quick = json.loads(stdout)["subtasks"]
    assert slow["status"] == "skipped" and "exited with -9" in slow["limitation"]
    assert [a["worker_exit"] for a in slow["attempts"]] == [-9, -9]
    assert quick["status"] == "ok"  # the one permit came back after each kill
    pids = set(llm.intervals())  # the killed workers' executors died with them
    wait_until_sync(lambda: not any(alive(p) for p in pids), timeout=10, what="no executor left")


def test_the_task_deadline_cancels_what_is_left(env: dict[str, str], tmp_path: Path) -> None:
    llm = Llm(
        tmp_path,
        [{"match": "^slow", "sleep": 120, "answer": "late"}, {"match": "^quick", "answer": "ok"}],
    )
    out = delegate(
        env,
        "deadline",
        *("--step", "quick", "--step", "slow"),
        *("--cli", llm.template(), "--task-timeout", "4", "--json"),
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["timed_out"] is True
    quick, slow = report["subtasks"]
    assert quick["status"] == "ok" and slow["status"] == "cancelled"
    assert "deadline" in slow["limitation"]
    assert report["seconds"] < 30
    pids = {a["pid"] for a in slow["attempts"]} | set(llm.intervals())
    wait_until_sync(lambda: not any(alive(p) for p in pids), timeout=10, what="no process left")


def test_bad_options_are_refused_before_anything_runs(env: dict[str, str]) -> None:
    for args, says in [
        (["x"], "needs --step subtasks or a --planner"),
        (["x", "--step", "a", "--max-workers", "0"], "--max-workers must be at least 1"),
        (["x", "--step", "a", "--subtask-timeout", "0"], "--subtask-timeout must be > 0"),
        (["x", "--planner", "'unclosed"], "--planner"),
        (["x", "--step", "a", "--id", "a.b"], "--id"),
        (["x", "--step", "a", "--context-budget", "0"], "context_budget"),
        (["x", "--step", "a", "--worker-hook", "nonsense"], "expected EVENT=COMMAND"),
    ]:
        out = delegate(env, *args, timeout=30)
        assert out.returncode == 2, (args, out.stderr)
        assert says in out.stderr and len(out.stderr.strip().splitlines()) == 1
