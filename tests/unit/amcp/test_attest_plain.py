"""The canonical-form check before an identity signature (amcp.attest): the compiled
`check_plain` and the Python reference give the same answer, the first fault's message
included, for plain records and for every kind of value that has no single msgpack form."""

from __future__ import annotations

import datetime
import importlib.util
import math
from collections import OrderedDict
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amcp import attest
from amcp.attest import MAX_DEPTH, py_check_plain

if importlib.util.find_spec("amcp._speedups") is not None:
    from amcp._speedups import check_plain  # the compiled check, even under AMCP_NO_SPEEDUPS
else:
    check_plain = py_check_plain


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


class Text(str):
    pass


class Items(list):  # type: ignore[type-arg]
    pass


# Values with one msgpack form, and values that have none, mixed at any depth.
plain_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(1 << 63), (1 << 64) - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.sampled_from([Colour.RED, Level.HIGH, Text("t")]),
)
faulty_scalars = st.one_of(
    st.integers(1 << 64, 1 << 70),
    st.integers(-(1 << 70), -(1 << 63) - 1),
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.sampled_from([set(), frozenset({1}), Decimal("1.5"), datetime.date(2026, 1, 1), object()]),
)
values = st.recursive(
    st.one_of(plain_scalars, plain_scalars, faulty_scalars),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.lists(inner, max_size=3).map(Items),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
        st.dictionaries(st.one_of(st.text(max_size=2), st.integers(0, 3)), inner, max_size=3),
        st.dictionaries(st.text(max_size=2), inner, max_size=3).map(OrderedDict),
    ),
    max_leaves=24,
)


@settings(max_examples=800)
@given(values, st.integers(0, 6))
def test_compiled_and_reference_checks_agree(value: Any, max_depth: int) -> None:
    assert check_plain(value, max_depth) == py_check_plain(value, max_depth)


def nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "fault"),
    [
        ({"a": [1, 2.5, "x", b"y", None, True, (3,)]}, None),
        (nested(MAX_DEPTH), None),
        (nested(MAX_DEPTH + 1), "record nested too deep"),
        ([(1 << 64) - 1, -(1 << 63)], None),
        ([1 << 64], "integer outside msgpack's 64-bit range"),
        ([-(1 << 63) - 1], "integer outside msgpack's 64-bit range"),
        ({"x": math.nan}, "non-finite float"),
        ({1: "a"}, "map keys must be str"),
        ([{"a": set()}], "set has no canonical form"),
        (datetime.datetime(2026, 1, 1), "datetime has no canonical form"),
        ({"m": {"k": "v"}.items()}, "dict_items has no canonical form"),
        ([math.inf, {2: 1}], "non-finite float"),  # the first fault, in order
    ],
)
def test_each_fault_is_named_and_signing_refuses_it(value: Any, fault: str | None) -> None:
    assert check_plain(value, MAX_DEPTH) == fault
    assert py_check_plain(value, MAX_DEPTH) == fault
    if fault is None:
        assert attest.signing_input("audit", "a1", value)
    else:
        with pytest.raises(ValueError, match=fault):
            attest.signing_input("audit", "a1", value)


def test_a_record_that_holds_itself_is_refused_not_followed_forever() -> None:
    loop: list[Any] = []
    loop.append(loop)
    assert check_plain(loop, MAX_DEPTH) == "record nested too deep"
    with pytest.raises(RecursionError):
        check_plain(loop, 1 << 30)  # no depth bound: the interpreter's own limit holds
