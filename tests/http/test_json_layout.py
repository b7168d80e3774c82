"""httpbin's JSON layout: byte for byte what ``json.dumps(indent=2, ensure_ascii=False)`` writes."""

from __future__ import annotations

import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from servers.http.json_layout import dumps_indented


def reference(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),  # any code point: quotes, backslashes, control characters, surrogates, emoji
)
KEYS = st.one_of(st.text(max_size=8), st.integers(), st.floats(), st.booleans(), st.none())
JSON: Any = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_same_text_as_the_standard_library(value: Any) -> None:
    assert dumps_indented(value) == reference(value)


class Level(enum.IntEnum):
    HIGH = 7


class Name(str):
    pass


@pytest.mark.parametrize(
    "value",
    [
        {},
        [],
        {"args": {}, "headers": {"Host": "h"}, "list": [], "nested": [[], {}, [1, [2, {"a": None}]]]},
        {"level": Level.HIGH, Level.HIGH: "key", Name("sub"): Name("class")},
        {"é": "ünïcode ✓", "ctl": "\x00\x1f\x7f\u2028", "quote": '"\\/'},
        [float("nan"), float("inf"), -float("inf"), 1e16, -0.0, 1.5, True, False, None],
    ],
)
def test_edge_cases(value: Any) -> None:
    assert dumps_indented(value) == reference(value)


@pytest.mark.parametrize("value", [{"x": object()}, {(1, 2): "tuple key"}, [b"bytes"], {1j}])
def test_refuses_what_json_refuses(value: Any) -> None:
    with pytest.raises(TypeError):
        reference(value)
    with pytest.raises(TypeError):
        dumps_indented(value)
