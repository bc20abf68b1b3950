"""S4's analysis rules (pure): complexity from keyword, scope and domain rules that are data,
user extensions, lowered thresholds, risks, approach, and clear errors for bad rule files."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.vsm.ruledata import merge
from agents.vsm.s4.analysis import COMPLEXITIES, AnalysisRules, TrafficPicture, analyse_task
from amcp.errors import ConfigError

RULES = AnalysisRules.load()


def test_a_plain_command_is_simple_and_direct() -> None:
    a = analyse_task(["echo hello"], RULES)
    assert a.complexity == "simple" and a.score == 0 and a.risk_level == "low"
    assert a.approach.mode == "direct" and a.approach.max_iterations == 1
    assert not a.approach.review and not a.approach.parallel


def test_keywords_scope_and_domains_add_up_to_complex() -> None:
    a = analyse_task(["refactor the database schema across the entire codebase"], RULES)
    assert a.complexity == "complex" and a.score >= RULES.complex
    assert "database" in a.domains and a.approach.review and a.approach.max_iterations == 3
    assert a.approach.capabilities == ("database",)
    assert any("structural change" in r for r in a.reasons)
    assert any(r.what.startswith("database:") for r in a.risks)


def test_steps_add_to_the_score_and_may_run_in_parallel_unless_ordered() -> None:
    free = analyse_task(["a", "b", "c"], RULES, steps=3)
    assert free.score == 2 * RULES.per_step and free.approach.parallel
    ordered = analyse_task(["migrate the db", "b"], RULES, steps=2)
    assert not ordered.approach.parallel  # the database domain is sequential


def test_a_destructive_command_is_high_risk_and_never_parallel() -> None:
    a = analyse_task(["clean up", "rm -rf build", "ls"], RULES, steps=2)
    assert a.risk_level == "high" and not a.approach.parallel
    assert [r.what for r in a.risks if r.level == "high"] == ["destructive operation"]


def test_the_user_can_force_a_complexity() -> None:
    a = analyse_task(["echo hi"], RULES, given="complex")
    assert a.complexity == "complex" and a.given == "complex"
    assert "given as complex (the rules say simple)" in a.reasons


def test_lowered_thresholds_make_tasks_more_careful() -> None:
    text = ["implement the feature"]  # score 2: simple normally
    assert analyse_task(text, RULES).complexity == "simple"
    lowered = analyse_task(text, RULES, lowered=True)
    assert lowered.complexity == "medium"
    assert lowered.thresholds == (RULES.medium * RULES.lowered, RULES.complex * RULES.lowered)


def test_a_busy_bus_is_a_risk() -> None:
    busy = TrafficPicture(seconds=10, total_rate=RULES.busy_rate + 1)
    a = analyse_task(["echo"], RULES, traffic=busy)
    assert a.risk_level == "medium" and a.traffic == busy


def test_user_rules_extend_the_packaged_ones(tmp_path, monkeypatch) -> None:
    extra = tmp_path / "mine.toml"
    extra.write_text(
        '[complexity]\nmedium = 1.0\n\n[[domain]]\nname = "ml"\npattern = "\\\\btrain\\\\b"\n'
        'score = 1.5\ncapability = "gpu"\nrequired = true\n'
    )
    monkeypatch.setenv("AMCP_ANALYSIS_RULES", str(extra))
    rules = AnalysisRules.load()
    assert rules.medium == 1.0 and rules.complex == RULES.complex
    assert len(rules.domains) == len(RULES.domains) + 1
    a = analyse_task(["train the model"], rules)
    assert a.complexity == "medium" and a.domains == ("ml",)
    assert a.approach.required == ("gpu",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[complexity]\nmedium = 9.0\ncomplex = 2.0\n", "need 0 < medium <= complex"),
        ('[[keyword]]\npattern = "("\nscore = 1\nwhy = "x"\n', "bad pattern"),
        ('[[keyword]]\npattern = "x"\nscore = -1\nwhy = "x"\n', "score must be a number"),
        ('[[risk]]\npattern = "x"\nlevel = "extreme"\nrisk = "y"\n', "level must be one of"),
        ('[approach.simple]\nmode = "x"\nmax_iterations = 0\n', "max_iterations"),
        ("not toml ===", "not valid TOML"),
    ],
)
def test_bad_rule_files_are_refused_with_a_reason(tmp_path, text, message) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(text)
    with pytest.raises(ConfigError, match=message):
        AnalysisRules.load(bad)


def test_a_missing_rules_file_is_named(tmp_path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules file"):
        AnalysisRules.load(tmp_path / "nope.toml")


def test_merge_appends_lists_and_merges_tables() -> None:
    base = {"a": [1], "t": {"x": 1, "y": 2}, "v": 1}
    assert merge(base, {"a": [2], "t": {"y": 3}, "v": 5}) == {
        "a": [1, 2], "t": {"x": 1, "y": 3}, "v": 5
    }  # fmt: skip


words = st.sampled_from(
    ["refactor", "database", "all", "echo", "deploy", "tests", "rm -rf", "debug", "x", "api"]
)


@given(st.lists(words, max_size=8), st.integers(1, 5))
def test_more_text_never_means_less_complex(extra, steps) -> None:
    base = analyse_task(["start"], RULES, steps=steps)
    more = analyse_task(["start", *extra], RULES, steps=steps)
    assert more.score >= base.score
    assert COMPLEXITIES.index(more.complexity) >= COMPLEXITIES.index(base.complexity)
    lowered = analyse_task(["start", *extra], RULES, steps=steps, lowered=True)
    assert COMPLEXITIES.index(lowered.complexity) >= COMPLEXITIES.index(more.complexity)
