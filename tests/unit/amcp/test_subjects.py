"""Subject validation says what exactly is wrong with a subject, in one line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amcp.errors import ConfigError
from amcp.subjects import validate_subject


@pytest.mark.parametrize(
    "subject, wildcards, reason",
    [
        ("bad subject", False, "a space at position 3"),
        ("a.b\tc", True, "a tab at position 3"),
        ("a.b\n", False, "a newline at position 3"),
        ("", False, "is empty"),
        ("a..b", False, "an empty token"),
        (".a", True, "an empty token"),
        ("a.*", False, "wildcards ('*', '>') are for listening, not publishing"),
        ("a.>", False, "wildcards ('*', '>') are for listening, not publishing"),
        ("a.>.b", True, "'>' must be the last token"),
        ("a.b*", True, "'*' and '>' must be whole tokens"),
    ],
)
def test_the_error_says_what_is_wrong(subject: str, wildcards: bool, reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        validate_subject(subject, wildcards=wildcards)
    message = str(raised.value)
    assert reason in message and "\n" not in message, message
    if not wildcards and "wildcard" not in reason:
        assert "wildcard" not in message, message  # a space is not a wildcard problem


TOKEN = st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=8)


@given(st.lists(TOKEN, min_size=1, max_size=5), st.booleans())
def test_plain_dotted_tokens_are_valid_either_way(tokens: list[str], wildcards: bool) -> None:
    subject = ".".join(tokens)
    assert validate_subject(subject, wildcards=wildcards) == subject


@given(st.lists(TOKEN, min_size=1, max_size=5), st.sampled_from(" \t\r\n"), st.data())
def test_any_whitespace_is_named_with_its_position(tokens, space, data) -> None:
    subject = ".".join(tokens)
    at = data.draw(st.integers(0, len(subject)))
    bad = subject[:at] + space + subject[at:]
    with pytest.raises(ConfigError, match=f"at position {at}"):
        validate_subject(bad, wildcards=True)
