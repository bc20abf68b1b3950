"""The hook model: parsing a hook and a hooks file, the payload, reading an answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.runtime.hooks import (
    DEFAULT_TIMEOUT,
    EVENTS,
    HookConfig,
    HookSpec,
    Verdict,
    encode_payload,
    merge,
    parse_hook,
    parse_hooks_file,
    read_command,
    read_result,
)
from amcp.errors import ConfigError


def test_a_command_is_split_as_a_shell_would_but_kept_as_argv() -> None:
    spec = parse_hook("pre_step=./policy --reason 'no rm' x")
    assert spec == HookSpec("pre_step", "command", ("./policy", "--reason", "no rm", "x"))
    assert spec.name == "./policy --reason 'no rm' x"


def test_a_python_hook_names_an_entry_point() -> None:
    assert parse_hook("post_task=python:notify") == HookSpec("post_task", "python", ("notify",))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("pre_stp=true", "unknown hook event 'pre_stp'"),
        ("pre_step", "expected EVENT=COMMAND"),
        ("pre_step=  ", "expected EVENT=COMMAND"),
        ("pre_step=echo 'open", "cannot split"),
        ("pre_step=python:", "has no command"),
    ],
)
def test_a_bad_hook_says_why_in_one_line(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says) as info:
        parse_hook(text)
    assert "\n" not in str(info.value)


def test_a_hooks_file_gives_each_event_its_hooks_in_order() -> None:
    config = parse_hooks_file(
        """
        timeout = 2.5
        [[hooks.pre_step]]
        command = ["./a", "x y"]
        timeout = 1
        [[hooks.pre_step]]
        command = "./b --flag"
        [[hooks.post_task]]
        python = "notify"
        """
    )
    assert config.timeout == 2.5
    first, second = config.at("pre_step")
    assert first.target == ("./a", "x y") and config.timeout_of(first) == 1
    assert second.target == ("./b", "--flag") and config.timeout_of(second) == 2.5
    assert config.at("post_task")[0].kind == "python"
    assert config.at("pre_vote") == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("timeout = [", "not TOML"),
        ("colour = 1", "unknown keys colour"),
        ("timeout = 'soon'", "timeout must be a number"),
        ("timeout = 0", r"in \(0, 3600\]"),
        ("[hooks]\npre_step = 'x'", "array of tables"),
        ("[[hooks.pre_step]]\ncommand = 'a'\npython = 'b'", "needs one of command and python"),
        ("[[hooks.pre_step]]\nshell = 'a'", "takes command or python"),
        ("[[hooks.pre_step]]\ncommand = 3", "must be a string or a list"),
        ("[[hooks.nope]]\ncommand = 'a'", "unknown hook event"),
    ],
)
def test_a_bad_hooks_file_says_why(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        parse_hooks_file(text)


def test_merge_keeps_the_file_then_the_command_line() -> None:
    a = parse_hooks_file("timeout = 3\n[[hooks.pre_step]]\ncommand = 'a'")
    b = HookConfig((parse_hook("pre_step=b"),))
    merged = merge([a, b])
    assert [s.target for s in merged.at("pre_step")] == [("a",), ("b",)]
    assert merged.timeout == 3
    assert merge([a, b], timeout=7).timeout == 7
    assert merge([]).timeout == DEFAULT_TIMEOUT


@pytest.mark.parametrize(
    ("code", "out", "err", "allowed", "reason"),
    [
        (0, b"", b"", True, ""),
        (0, b"fine\n", b"", True, ""),
        (2, b"", b"no rm -rf here\n", False, "no rm -rf here"),
        (2, b"from stdout", b"", False, "from stdout"),
        (2, b"", b"", False, "vetoed by a hook"),
        (2, b'{"decision": "block", "reason": "json says"}', b"err", False, "json says"),
        (0, b'{"decision": "block", "reason": "policy"}', b"", False, "policy"),
        (0, b'{"decision": "allow"}', b"", True, ""),
        (0, b"{not json", b"", True, ""),
    ],
)
def test_a_command_answers_by_exit_code_or_json(
    code: int, out: bytes, err: bytes, allowed: bool, reason: str
) -> None:
    verdict = read_command(code, out, err, "h")
    assert (verdict.allowed, verdict.reason, verdict.failure) == (allowed, reason, "")


def test_any_other_exit_is_a_failure_that_allows() -> None:
    verdict = read_command(1, b"", b"Traceback\nKeyError: x\n", "h")
    assert verdict.allowed and verdict.failure == "exited 1: KeyError: x"
    odd = read_command(0, b'{"decision": "maybe"}', b"", "h")
    assert odd.allowed and "unknown decision" in odd.failure


@pytest.mark.parametrize(
    ("result", "allowed", "reason"),
    [
        (None, True, ""),
        (True, True, ""),
        (False, False, "vetoed by a hook"),
        ("not on Fridays", False, "not on Fridays"),
        ({"decision": "block", "reason": "r"}, False, "r"),
        ({"decision": "allow"}, True, ""),
    ],
)
def test_a_callable_answers_by_its_return_value(result: object, allowed: bool, reason: str) -> None:
    verdict = read_result(result, "h")
    assert (verdict.allowed, verdict.reason) == (allowed, reason)
    assert read_result(3, "h").failure == "returned int, not a decision"


def test_a_long_reason_is_cut() -> None:
    assert len(Verdict.veto("x" * 5000).reason) == 1000


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(
    event=st.sampled_from(EVENTS),
    fields=st.dictionaries(
        st.text(min_size=1).filter(lambda k: k not in {"event", "agent", "role"}),
        json_values,
        max_size=6,
    ),
)
def test_the_payload_round_trips_through_json(event: str, fields: dict[str, object]) -> None:
    doc = json.loads(encode_payload(event, "s1-a", "s1", fields))
    assert doc == {"event": event, "agent": "s1-a", "role": "s1", **fields}


def test_what_json_cannot_say_is_given_as_text() -> None:
    doc = json.loads(encode_payload("pre_step", "a", "s1", {"path": {1, 2} and b"x"}))
    assert doc["path"] == "b'x'"


@given(
    argv=st.lists(
        st.text(alphabet=st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1),
        min_size=1,
        max_size=5,
    ),
    event=st.sampled_from(EVENTS),
)
def test_a_hook_line_round_trips_its_argv(argv: list[str], event: str) -> None:
    import shlex

    if argv[0].startswith("python:"):
        return
    assert parse_hook(f"{event}={shlex.join(argv)}").target == tuple(argv)
