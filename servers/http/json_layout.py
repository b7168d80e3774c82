"""httpbin's JSON layout (``json.dumps(value, indent=2, ensure_ascii=False)``), made faster.

Rule: the bytes are exactly the standard library's for every JSON-able value (str, int,
float, bool, None, list, tuple, dict with str/int/float/bool/None keys); tests check
that against ``json.dumps`` itself.

Why not ``json.dumps``: with ``indent`` set, the standard library (CPython before 3.14)
leaves its C encoder for the pure-Python generator chain, which cost about a fifth of
the CPU of an HTTP ``/get``. Here strings go through the C ``encode_basestring`` the
standard library uses too, and the nesting is one plain recursive function.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

__all__ = ["dumps_indented"]

INDENT = "  "
_INFINITY = float("inf")


def dumps_indented(value: Any) -> str:
    """``json.dumps(value, indent=2, ensure_ascii=False)``; TypeError on what it refuses."""
    parts: list[str] = []
    _encode(value, "\n", parts)
    return "".join(parts)


def _float(value: float) -> str:
    # json's floatstr with allow_nan=True
    if value != value:
        return "NaN"
    if value == _INFINITY:
        return "Infinity"
    if value == -_INFINITY:
        return "-Infinity"
    return float.__repr__(value)


def _key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, float):
        return _float(key)
    if key is True:
        return "true"
    if key is False:
        return "false"
    if key is None:
        return "null"
    if isinstance(key, int):
        return int.__repr__(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


def _encode(value: Any, newline: str, parts: list[str]) -> None:
    """Append ``value``'s text; ``newline`` is a line break plus the current indentation."""
    # The order of the checks is json's (a bool is an int, an IntEnum an int, ...).
    if isinstance(value, str):
        parts.append(encode_basestring(value))
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif isinstance(value, int):
        parts.append(int.__repr__(value))
    elif isinstance(value, float):
        parts.append(_float(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            parts.append("[]")
            return
        inner = newline + INDENT
        separator = "[" + inner
        for item in value:
            parts.append(separator)
            separator = "," + inner
            _encode(item, inner, parts)
        parts.append(newline + "]")
    elif isinstance(value, dict):
        if not value:
            parts.append("{}")
            return
        inner = newline + INDENT
        separator = "{" + inner
        for key, item in value.items():
            parts.append(separator)
            separator = "," + inner
            parts.append(encode_basestring(_key(key)))
            parts.append(": ")
            _encode(item, inner, parts)
        parts.append(newline + "}")
    else:
        raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")
