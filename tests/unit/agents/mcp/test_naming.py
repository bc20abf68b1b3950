"""MCP names of agent tools: valid for every client, distinct for distinct tools, stable."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agents.mcp.naming import MAX_NAME, NAME_PATTERN, base_name, mcp_names

roles = st.sampled_from(["s1", "s2", "s3", "s4", "s5"]) | st.text(min_size=1, max_size=80)
tools = st.from_regex(r"[a-z][a-z0-9_.-]{0,63}", fullmatch=True) | st.text(max_size=90)
pairs = st.lists(st.tuples(roles, tools), max_size=40)


@given(pairs)
def test_every_name_is_valid_and_distinct_inputs_stay_distinct(given_pairs) -> None:
    names = mcp_names(given_pairs)
    assert set(names) == set(given_pairs)
    for name in names.values():
        assert NAME_PATTERN.match(name), name
        assert len(name) <= MAX_NAME
    assert len(set(names.values())) == len(names)


@given(pairs, st.randoms())
def test_the_same_tools_get_the_same_names_in_any_order(given_pairs, rnd) -> None:
    shuffled = list(given_pairs)
    rnd.shuffle(shuffled)
    assert mcp_names(shuffled) == mcp_names(given_pairs)


def test_plain_names_and_the_mapping() -> None:
    assert base_name("s1", "echo") == "s1__echo"
    assert base_name("s4", "fs.read_text_file") == "s4__fs_read_text_file"
    assert base_name("s5", "approve-allocation") == "s5__approve_allocation"
    long = base_name("s1", "x" * 63)
    assert len(long) == MAX_NAME and long.startswith("s1__xxx")
    assert base_name("s1", "x" * 63) != base_name("s1", "x" * 62 + "y")


def test_a_collision_leaves_the_unmapped_name_plain_and_suffixes_the_other() -> None:
    names = mcp_names([("s1", "a.b"), ("s1", "a_b"), ("s1", "a-b")])
    assert names[("s1", "a_b")] == "s1__a_b"
    assert names[("s1", "a.b")].startswith("s1__a_b_") and names[("s1", "a-b")].startswith(
        "s1__a_b_"
    )
    assert len(set(names.values())) == 3
    # a name does not change when the tool it collided with goes away... unless it was plain
    assert mcp_names([("s1", "a.b"), ("s1", "a_b")])[("s1", "a.b")] == names[("s1", "a.b")]


def test_a_suffixed_name_never_takes_another_tools_plain_name() -> None:
    first = mcp_names([("s1", "a.b"), ("s1", "a_b")])[("s1", "a.b")]
    suffix_as_tool = first.removeprefix("s1__")
    names = mcp_names([("s1", "a.b"), ("s1", "a_b"), ("s1", suffix_as_tool)])
    assert names[("s1", suffix_as_tool)] == first  # plain names are reserved first
    assert len(set(names.values())) == 3
