"""A reply that would not fit one frame is cut to fit and flagged, or becomes a clear error
reply: the caller always gets an answer (issue 14, point 7). Pure: replies are measured with
the bus's own encoder, no I/O."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agents.runtime.subjects import error_reply, fit_reply, ok_reply
from amcp.envelope import FrameLimits, encode_envelope

LIMITS = FrameLimits(max_frame_bytes=64 * 1024, max_header_bytes=1024)
ROOM = 64 * 1024 - 1024 - 2048  # what fit_reply leaves for the body


def size(reply: dict[str, Any]) -> int:
    return len(encode_envelope(reply))


def test_a_reply_that_fits_is_sent_as_it_is() -> None:
    reply = ok_reply("s1-a", {"stdout": "x" * 1000, "truncated": False})
    assert fit_reply("s1-a", reply, LIMITS) is reply


def test_binary_output_decoded_to_replacement_characters_is_cut_and_flagged() -> None:
    # 0xff bytes decode to U+FFFD, three bytes each: 256 KiB of them on stdout and on
    # stderr is 1.5 MiB of text (the reply the issue saw never left the agent)
    text = (b"\xff" * (256 * 1024)).decode("utf-8", "replace")
    output = {"stdout": text, "stderr": text, "truncated": False}
    reply = ok_reply("s1-a", output)
    fitted = fit_reply("s1-a", reply, FrameLimits())
    assert fitted["ok"] and fitted["truncated"] is True and fitted["agent"] == "s1-a"
    assert fitted["output"]["truncated"] is True
    assert size(fitted) <= FrameLimits().max_frame_bytes - 4096 - 2048
    assert set(fitted["output"]["stdout"]) == {"\ufffd"}  # cut on a character boundary
    assert output["truncated"] is False  # the tool's own output is not changed


def test_the_longest_strings_are_cut_first_and_short_fields_kept() -> None:
    output = {"big": "a" * 200_000, "small": "keep me", "items": ["b" * 50_000, 7, None]}
    fitted = fit_reply("w1", ok_reply("w1", output), LIMITS)
    assert fitted["truncated"] is True and size(fitted) <= ROOM
    assert fitted["output"]["small"] == "keep me" and fitted["output"]["items"][1:] == [7, None]
    assert len(fitted["output"]["big"]) < 200_000


def test_an_error_message_over_the_limit_is_cut_too() -> None:
    from agents.runtime.errors import ToolFailed

    reply = error_reply("w1", ToolFailed("boom " * 50_000))
    fitted = fit_reply("w1", reply, LIMITS)
    assert not fitted["ok"] and fitted["truncated"] is True and size(fitted) <= ROOM
    assert fitted["error"]["message"].startswith("boom boom")


def test_a_reply_that_cannot_fit_even_cut_is_a_clear_error() -> None:
    many = ok_reply("w1", {"numbers": list(range(40_000))})
    fitted = fit_reply("w1", many, LIMITS)
    assert fitted["ok"] is False and fitted["error"]["code"] == "failed"
    assert "frame limit" in fitted["error"]["message"] and size(fitted) <= ROOM


def test_a_reply_nested_deeper_than_the_wire_allows_is_a_clear_error() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = [deep]
    fitted = fit_reply("w1", ok_reply("w1", {"deep": deep}), LIMITS)
    assert fitted["ok"] is False and "nests deeper" in fitted["error"]["message"]


def test_a_reply_that_cannot_be_encoded_is_a_clear_error() -> None:
    fitted = fit_reply("w1", ok_reply("w1", {"value": object()}), LIMITS)
    assert fitted["ok"] is False and "cannot be encoded" in fitted["error"]["message"]


leaves = st.one_of(
    st.text(max_size=30_000),
    st.binary(max_size=30_000),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.booleans(),
)
outputs = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None)
@given(outputs)
def test_every_answer_fits_and_says_whether_it_was_cut(output: Any) -> None:
    reply = ok_reply("w1", {"data": output})
    fitted = fit_reply("w1", reply, FrameLimits(max_frame_bytes=32 * 1024, max_header_bytes=512))
    assert size(fitted) <= 32 * 1024 - 512 - 2048
    if size(reply) <= 32 * 1024 - 512 - 2048:
        assert fitted is reply
    else:
        assert fitted.get("truncated") is True or fitted["ok"] is False
