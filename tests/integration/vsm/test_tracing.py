"""One trace across the cluster, on a real nats-server with the role agents as processes:

- `amcp task` started with TRACEPARENT continues that trace through S3, S4, S5 (and its
  vote: each voter's ballot under S5's span), S2 and S1; `amcp trace TASK_ID` prints the
  tree from the audit log, parented, from at least five agents, the slowest path marked;
- without TRACEPARENT a command starts a trace of its own;
- `amcp log --trace` and `--task` filter; an unknown id is one line and exit 1;
- a forged audit entry naming the trace (signed with the cluster key, not an identity)
  and a replayed stored frame never join it.
"""

from __future__ import annotations

import json

from agents.runtime.subjects import AgentSubjects
from amcp.tracing import new_trace
from tests.support.cli import amcp_async, amcp_json
from tests.support.vsm import start_vsm, vsm_env
from tests.support.waiting import wait_until

AGENTS = (("s1", "s1-a"), ("s2", "s2-a"), ("s2", "s2-b"), ("s3", "s3-a"), ("s4", "s4-a"),
          ("s5", "s5-a"))  # fmt: skip
VOTERS = ("s2-a", "s2-b", "s5-a")


async def test_a_task_is_one_trace_across_the_agents(agent_cluster, make_bus, cli_env, tmp_path):
    bus = await make_bus("tester", cluster=agent_cluster.name)
    await start_vsm(agent_cluster, bus, AGENTS, env=vsm_env(), voters=("s2-a", "s2-b"))
    env = agent_cluster.env(cli_env)
    outer = new_trace()  # as a CI system or the MCP bridge would pass it on
    done = await amcp_async(
        "task",
        "deploy version 1",
        "--step",
        "echo 1 > deployed.txt",
        "--cwd",
        str(tmp_path),
        "--json",
        env={**env, "TRACEPARENT": outer.traceparent},
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    task = result["task_id"]
    assert result["critical"] and result["vote"]["outcome"] == "committed"

    async def traced() -> dict | None:
        docs = await amcp_json("trace", task, env=env)
        names = [s["name"] for s in docs["spans"]]
        return docs if names.count("vote") == len(VOTERS) and "vote.coordinate" in names else None

    await wait_until(traced, 20, interval=0.2, what="the trace with the voters' ballots")
    doc = await amcp_json("trace", task, env=env)
    assert doc["trace_id"] == outer.trace_id  # the command continued TRACEPARENT's trace
    spans = doc["spans"]
    by_id = {s["span_id"]: s for s in spans}
    assert len(by_id) == len(spans)
    assert all(s["trace_id"] == outer.trace_id for s in spans)
    assert {"s1-a", "s3-a", "s4-a", "s5-a"} <= {s["agent"] for s in spans}
    assert len({s["agent"] for s in spans}) >= 5
    # one root: S3's run-task, called by the command (whose own span is TRACEPARENT's child)
    roots = [s for s in spans if s["parent_id"] not in by_id]
    assert [(r["agent"], r["name"]) for r in roots] == [("s3-a", "tool.run-task")]
    assert roots[0]["parent_id"] != outer.span_id
    # the loop's stages are S3's spans; each role's work lies under the stage that asked
    stages = {s["name"]: s for s in spans if s["name"].startswith("loop.")}
    assert set(stages) == {"loop.analyse", "loop.authorise", "loop.allocate", "loop.step",
                           "loop.audit"}  # fmt: skip
    assert all(s["parent_id"] == roots[0]["span_id"] for s in stages.values())
    for name, agent, stage in [("tool.analyse", "s4-a", "loop.analyse"),
                               ("tool.classify", "s5-a", "loop.authorise"),
                               ("tool.authorise", "s5-a", "loop.authorise"),
                               ("tool.claim", None, "loop.step"),
                               ("tool.execute", "s1-a", "loop.step")]:  # fmt: skip
        found = [s for s in spans if s["name"] == name]
        assert found, name
        for s in found:
            assert by_id[s["parent_id"]]["name"] == stage, s
            assert agent is None or s["agent"] == agent
            assert s["start_ns"] >= roots[0]["start_ns"] and s["end_ns"] <= roots[0]["end_ns"]
    # the vote is S5's span under its authorise; each voter's ballot and the decision under it
    authorise = next(s for s in spans if s["name"] == "tool.authorise")
    (vote,) = [s for s in spans if s["name"] == "vote.coordinate"]
    assert (vote["agent"], vote["parent_id"], vote["outcome"]) == (
        "s5-a",
        authorise["span_id"],
        "committed",
    )
    assert vote["attributes"]["proposal"] == result["vote"]["proposal"]
    ballots = [s for s in spans if s["name"] == "vote"]
    assert sorted(b["agent"] for b in ballots) == sorted(VOTERS)
    (decided,) = [s for s in spans if s["name"] == "decision"]
    assert all(s["parent_id"] == vote["span_id"] for s in [*ballots, decided])
    # named by the subject family they work on, as exporters name messaging spans
    proposals = f"amcp.{agent_cluster.name}.vote.propose"
    assert {s["attributes"].get("family") for s in [vote, *ballots, decided]} == {proposals}
    # the proposal's id names the same trace
    assert (await amcp_json("trace", vote["attributes"]["proposal"], env=env)) == doc
    assert roots[0]["slowest"] and any(s["slowest"] for s in spans if s is not roots[0])

    human = await amcp_async("trace", task, env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout.startswith(f"trace {outer.trace_id}: ")
    lines = human.stdout.splitlines()
    assert any(line.startswith("*") and "tool.run-task" in line for line in lines)
    assert any("s4-a" in line and "tool.analyse" in line for line in lines)

    # the log filters: by trace (every entry of it) and by task (S2's, which name no task)
    by_trace = await amcp_async("log", "--trace", outer.trace_id, "--json", env=env)
    entries = [json.loads(line) for line in by_trace.stdout.splitlines()]
    assert entries and {e["trace_id"] for e in entries} == {outer.trace_id}
    assert {e["span_id"] for e in entries} == set(by_id)
    by_task = await amcp_async("log", "--task", task, "--json", env=env, timeout=30)
    task_entries = [json.loads(line) for line in by_task.stdout.splitlines()]
    assert {e["span_id"] for e in task_entries} == set(by_id)
    assert any(e["agent"] in ("s2-a", "s2-b") and e.get("task") is None for e in task_entries)

    # a forged entry naming the trace (cluster key, no identity) and a replayed stored
    # frame: still in the stream, never in the trace
    subjects = AgentSubjects(bus.subjects)
    forged = {
        "ts": 1, "agent": "s1-a", "role": "s1", "event": "span", "n": 1, "trace_id":
        outer.trace_id, "span_id": "00f067aa0ba902b7", "parent_id": roots[0]["span_id"],
        "op": "forged", "start_us": 1, "duration_us": 1, "outcome": "ok",
    }  # fmt: skip
    # the frame's sender must be the entry's agent for it to be read at all
    forger = await make_bus("s1-a", cluster=agent_cluster.name)
    await forger.streams.publish(subjects.audit("s1-a"), [forged], kind="audit")
    _, subject, frame = (await bus.streams.read(subjects.audit_stream, last=1))[0]
    await forger.nc.publish(subject, frame)  # the same frame again
    await forger.flush()
    shown = await amcp_async("log", "--trace", outer.trace_id, env=env)
    assert "forged" in shown.stdout and "UNVERIFIED" in shown.stdout  # it is in the log
    again = await amcp_json("trace", task, env=env)
    assert "forged" not in {s["name"] for s in again["spans"]}
    assert len(again["spans"]) == len(spans)

    # another command without TRACEPARENT starts a trace of its own
    plain = await amcp_async("task", "echo plain", "--cwd", str(tmp_path), "--json", env=env)
    assert plain.returncode == 0, plain.stderr
    other = json.loads(plain.stdout)["task_id"]
    assert (await amcp_json("trace", other, env=env))["trace_id"] != outer.trace_id

    unknown = await amcp_async("trace", "t-nothing-like-it", env=env)
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert len(unknown.stderr.strip().splitlines()) == 1 and "t-nothing-like-it" in unknown.stderr
