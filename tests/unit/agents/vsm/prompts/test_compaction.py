"""Compaction of a task's context (pure): pinned entries always kept, the budget met when
a summary fits, the most recent entries kept, deterministic, and the record replicated
as data gives every agent the same context."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.vsm.prompts.compaction import (
    SUMMARY_ID,
    Compaction,
    Entry,
    apply,
    compact,
    context_tokens,
    format_entry,
    merged,
    plan,
)
from agents.vsm.prompts.tokens import estimate_tokens, load_counter, trim_to_tokens
from amcp.errors import ConfigError

texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)


@st.composite
def contexts(draw) -> list[Entry]:
    n = draw(st.integers(0, 40))
    seqs = draw(st.lists(st.integers(0, 10_000), min_size=n, max_size=n))
    return [
        Entry(
            f"e{i}",
            draw(st.sampled_from(["step", "fact", "decision"])),
            draw(texts),
            seqs[i],
            pinned=draw(st.booleans()) and draw(st.booleans()),
            critical=draw(st.integers(0, 9)) == 0,
        )
        for i in range(n)
    ]


def _cost(entries) -> int:
    return context_tokens(entries, estimate_tokens)


def _summary_overhead() -> int:
    return estimate_tokens(format_entry(Entry(SUMMARY_ID, "summary", "")))


@settings(max_examples=300, deadline=None)
@given(contexts(), st.integers(0, 5000))
def test_pinned_entries_are_kept_and_the_budget_met_when_a_summary_fits(entries, budget):
    done = compact(entries, budget)
    if done is None:
        assert _cost(entries) <= budget or all(e.pinned or e.critical for e in entries)
        return
    shown = apply(entries, done)
    shown_ids = {e.id for e in shown}
    assert all(e.id in shown_ids for e in entries if e.pinned or e.critical)
    assert not {e.id for e in entries if e.pinned} & set(done.replaced)
    must = _cost([e for e in entries if e.pinned or e.critical])
    if must + _summary_overhead() <= budget:
        assert _cost(shown) <= budget
        assert done.tokens_after == _cost(shown)
    # the kept unpinned entries are the most recent ones: none replaced is newer
    kept = [e for e in shown if e.id != SUMMARY_ID and not (e.pinned or e.critical)]
    gone = [e for e in entries if e.id in done.replaced]
    if kept and gone:
        assert max((e.seq, e.id) for e in gone) < min((e.seq, e.id) for e in kept)


@settings(max_examples=100, deadline=None)
@given(contexts(), st.integers(0, 3000))
def test_compaction_is_deterministic_and_order_free(entries, budget):
    again = compact(list(reversed(entries)), budget)
    assert compact(entries, budget) == again
    if again is not None:  # what another agent applies from the replicated record
        record = Compaction.from_wire(again.to_wire())
        assert apply(reversed(entries), record) == apply(entries, again)


def test_a_foreign_record_cannot_drop_a_pinned_entry():
    pinned = Entry("p", "fact", "never lose me", 1, pinned=True)
    other = Entry("o", "step", "old", 2)
    record = Compaction(("o", "p"), "summary text", 2, 10, 100, 5)
    assert [e.id for e in apply([pinned, other], record)] == ["p", SUMMARY_ID]


def test_nothing_happens_within_the_budget():
    entries = [Entry("a", "step", "x" * 40, 1), Entry("b", "step", "y" * 40, 2)]
    assert plan(entries, _cost(entries)) is None
    assert plan(entries, _cost(entries) - 1) is not None


def test_older_entries_give_way_to_an_extractive_summary():
    entries = [
        Entry(f"s{i:02d}", "step", f"output of step {i}\n" + "z" * 400, i) for i in range(20)
    ]
    entries.append(Entry("goal", "fact", "the goal is X", 0, pinned=True))
    done = compact(entries, 800)
    assert done is not None and done.summariser == "extractive"
    shown = apply(entries, done)
    assert shown[0].id == "goal" and shown[-1].id == "s19"  # pinned first (seq 0), newest last
    assert done.summary.startswith(f"{len(done.replaced)} earlier entries compacted:")
    assert "- s00: output of step 0" in done.summary
    assert _cost(shown) <= 800 < _cost(entries)


def test_a_second_compaction_replaces_the_first_summary_and_keeps_its_entries_gone():
    entries = [Entry(f"s{i:02d}", "step", "w" * 400, i) for i in range(10)]
    first = compact(entries, 500)
    assert first is not None
    entries += [Entry(f"t{i:02d}", "step", "v" * 400, 100 + i) for i in range(10)]
    second = compact(apply(entries, first), 500)
    assert second is not None
    both = merged(first, second)
    assert set(first.replaced) <= set(both.replaced) and SUMMARY_ID not in both.replaced
    shown = apply(entries, both)
    assert [e.id for e in shown].count(SUMMARY_ID) == 1 and _cost(shown) <= 500


def test_records_off_the_wire_are_checked():
    for bad in (None, 3, {"replaced": "x"}, {"replaced": [], "summary": 1}):
        try:
            Compaction.from_wire(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")
    for bad in ({"id": "", "kind": "step", "text": "", "seq": 0}, {"id": "a", "kind": "x"}):
        try:
            Entry.from_wire(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad!r}")


@given(texts, st.integers(0, 100))
def test_trim_fits_the_limit_and_keeps_a_prefix(text, limit):
    cut = trim_to_tokens(text, limit)
    assert estimate_tokens(cut) <= limit
    assert text.startswith(cut.removesuffix("…")) or cut == text


def test_counters_are_chosen_by_name():
    assert load_counter("bytes") is estimate_tokens
    assert estimate_tokens("abcd") == 1 and estimate_tokens("abcde") == 2
    assert estimate_tokens("é" * 2) == 1  # bytes, not characters
    try:
        load_counter("no-such-counter")
    except ConfigError as exc:
        assert "no token counter 'no-such-counter'" in str(exc) and "known: bytes" in str(exc)
    else:
        raise AssertionError("an unknown counter was accepted")
