"""A whole prompt under its token budget: the context compacted to what the rest of the
template leaves, the same prompt from the replicated record, the output says so; and
the reminders drawn from the replicated `vsm.` values."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.vsm.prompts.compaction import Compaction, Entry, finish, merged
from agents.vsm.prompts.context import Loaded, parse
from agents.vsm.prompts.reminders import POLICY, policy_record, reminders
from agents.vsm.prompts.render import fit, render
from agents.vsm.prompts.template import default_template
from agents.vsm.prompts.tokens import estimate_tokens
from agents.vsm.viability import ADAPTATIONS

BASE = {
    "role": "s1",
    "task_id": "t-1",
    "step": 2,
    "iteration": 1,
    "text": "write the report",
    "description": "a report",
    "cwd": "/srv",
}


def _entries(n: int, size: int) -> list[Entry]:
    steps = [Entry(f"s{i:03d}", "step", f"step {i}: " + "x" * size, 10 + i) for i in range(n)]
    return [Entry("goal", "fact", "the report is for the board", 0, pinned=True), *steps]


def _rendered(entries, budget, recorded=None):
    t = default_template("s1")
    found = fit(t, BASE, entries, recorded, ["be brief"], budget)
    if found.plan is None:
        return render(t, BASE, entries, recorded, ["be brief"], budget)
    summary = "the earlier steps wrote drafts"
    done = merged(recorded, finish(found.plan, summary, estimate_tokens, "executor"))
    return render(t, BASE, entries, done, ["be brief"], budget, compacted_now=True)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 80), st.integers(0, 600), st.integers(400, 6000))
def test_the_whole_prompt_fits_and_the_pinned_fact_stays(n, size, budget):
    r = _rendered(_entries(n, size), budget)
    assert r.tokens <= budget
    assert "[fact pinned] the report is for the board" in r.prompt
    assert "write the report" in r.prompt and "be brief" in r.prompt


def test_every_agent_renders_the_same_prompt_from_the_record():
    entries = _entries(60, 300)
    first = _rendered(entries, 3000)
    assert first.compacted_now and first.compaction is not None
    assert first.compaction.summariser == "executor"
    assert "the earlier steps wrote drafts" in first.prompt
    record = Compaction.from_wire(first.compaction.to_wire())  # as replicated
    other = _rendered(list(reversed(entries)), 3000, record)
    assert other.prompt == first.prompt and not other.compacted_now
    assert other.note().startswith("context compacted (earlier, executor): ")
    assert "not compacted" in _rendered(_entries(2, 10), 3000).note()


def test_pinned_entries_beyond_the_budget_are_kept_and_reported():
    pins = [Entry(f"p{i}", "fact", "y" * 400, i, pinned=True) for i in range(10)]
    r = _rendered(pins, 500)
    assert r.over_budget and "OVER BUDGET" in r.note() and r.prompt.count("[fact pinned]") == 10


def test_reminders_come_from_the_replicated_values():
    values = {
        ADAPTATIONS: {
            "tighten_audits": {
                "kind": "tighten_audits",
                "target": "",
                "metric": "audit_pass_rate",
                "value": 0.5,
                "threshold": 0.8,
                "effect": "strict audits",
            },
            "review:s1-b": {
                "kind": "review",
                "target": "s1-b",
                "metric": "error_rates",
                "value": 0.6,
                "threshold": 0.3,
                "effect": "review",
            },
            "junk": "not a record",
        },
        "vsm.audits.passed": 3,
        "vsm.audits.failed": 1,
        POLICY: policy_record("majority", 5.0, ["deploy", "shutdown", "deploy"]),
    }
    lines = reminders(values)
    assert lines[0].startswith("Active adaptation tighten_audits: strict audits")
    assert "audits are strict; agents under review: s1-b." in lines[1]
    assert lines[2].startswith("Quorum: critical actions (deploy, shutdown) need a majority vote")
    assert reminders({})[-1].startswith("Quorum: no S5 policy published yet")


def test_records_that_are_not_entries_are_left_out_and_counted():
    good = Entry("a", "step", "fine", 1).to_wire()
    loaded = parse(
        {"a": good, "b": {"id": "b", "kind": "poem", "text": "", "seq": 0}, "c": good, "d": 7},
        {"replaced": "all"},
    )
    assert [e.id for e in loaded.entries] == ["a"] and loaded.compaction is None
    assert loaded.rejected == {
        "entry: kind 'poem' is not one of step, fact, decision, summary, note": 1,
        "entry: id differs from its field": 1,
        "entry: not a map": 1,
        "compaction: replaced is not a list of ids": 1,
    }
    assert parse(None, None) == Loaded([], None)
