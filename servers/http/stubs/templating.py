"""Response templating: Handlebars (pybars3) with WireMock's request model and helpers.

Follows wiremock.org/docs/response-templating. A stub with
``"transformers": ["response-template"]`` has its body, header values, status message
and ``bodyFileName`` rendered with Handlebars, the context being ``request``:
``url``, ``path`` (and ``path.[n]`` / ``path.<name>`` for ``urlPathTemplate``
parameters), ``pathSegments``, ``query.<name>``, ``headers.<name>``, ``cookies.<name>``,
``method``, ``scheme``, ``host``, ``port``, ``baseUrl``, ``body``, ``clientIp``, ``id``.

Helpers registered on the compiler, in WireMock's spelling: ``jsonPath``, ``now``
(``offset``, ``format``, ``timezone``), ``randomValue`` (``length``, ``type``,
``uppercase``), ``randomInt``, ``math``, ``eq``/``neq``/``gt``/``gte``/``lt``/``lte``,
``and``/``or``/``not``, ``size``, ``upper``/``lower``/``capitalize``/``trim``,
``base64``, ``urlEncode``, ``toJson``, ``join``, ``contains``, ``substring``.
``{{#if}}``, ``{{#unless}}``, ``{{#each}}``, ``{{#with}}`` are Handlebars' own.

pybars3 rather than pybars4: with pybars3 a missing value renders empty, as in
WireMock's Handlebars.java; pybars4 raises on it. WireMock 3 does not HTML-escape
``{{x}}`` (the differential test shows it), so :func:`unescaped` rewrites every
plain ``{{x}}`` to ``{{{x}}}`` before compiling.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import string
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import quote_plus, unquote

from .matching import RequestView


class ListOrSingle(list[str]):
    """WireMock's ListOrSingle: prints its first value; ``.[n]``, ``first``, ``last`` index it."""

    def __str__(self) -> str:
        return self[0] if self else ""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            if key == "first":
                return self[0] if self else None
            if key == "last":
                return self[-1] if self else None
            key = int(key)
        return super().__getitem__(key)


class CaseInsensitive(dict[str, ListOrSingle]):
    """Request headers: ``request.headers.content-type`` finds ``Content-Type``."""

    def __getitem__(self, key: str) -> ListOrSingle:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class PathValue(str):
    """``request.path``: the path text, with ``.[n]`` segments and ``.name`` template parameters."""

    segments: list[str]
    parameters: dict[str, str]

    def __new__(cls, path: str, parameters: dict[str, str]) -> PathValue:
        value = super().__new__(cls, path)
        value.segments = [unquote(s) for s in path.strip("/").split("/")] if path.strip("/") else []
        value.parameters = parameters
        return value

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str) and key in self.parameters:
            return self.parameters[key]
        try:
            return self.segments[int(key)]
        except (ValueError, IndexError):
            return None


def request_model(request: RequestView, path_parameters: dict[str, str], request_id: str) -> dict[str, Any]:
    headers = CaseInsensitive()
    for name, value in request.headers:
        headers.setdefault(name.lower(), ListOrSingle()).append(value)
    base_url = f"{request.scheme}://{request.host}" + (f":{request.port}" if request.port else "")
    path = PathValue(request.path, path_parameters)
    return {
        "request": {
            "id": request_id,
            "url": request.url,
            "path": path,
            "pathSegments": path.segments,
            "query": {name: ListOrSingle(values) for name, values in request.query.items()},
            "headers": headers,
            "cookies": {name: ListOrSingle(values) for name, values in request.cookies.items()},
            "method": request.method,
            "scheme": request.scheme,
            "host": request.host,
            "port": request.port,
            "baseUrl": base_url,
            "body": request.body_text,
            "bodyAsBase64": base64.b64encode(request.body).decode(),
            "clientIp": request.client_ip,
        }
    }


# -- dates ---------------------------------------------------------------------------------

# Java DateTimeFormatter letters -> strftime (the ones stubs use).
_JAVA_DATE = [
    ("yyyy", "%Y"), ("yy", "%y"), ("MMMM", "%B"), ("MMM", "%b"), ("MM", "%m"), ("dd", "%d"),
    ("EEEE", "%A"), ("EEE", "%a"), ("HH", "%H"), ("hh", "%I"), ("mm", "%M"), ("ss", "%S"),
    ("SSS", "{ms}"), ("a", "%p"), ("XXX", "{iso_offset}"), ("Z", "%z"), ("z", "%Z"),
]  # fmt: skip
_OFFSET_UNITS = {
    "milliseconds": "milliseconds", "seconds": "seconds", "minutes": "minutes", "hours": "hours",
    "days": "days", "weeks": "weeks", "months": "months", "years": "years",
}  # fmt: skip


def java_date_format(moment: dt.datetime, pattern: str) -> str:
    if pattern == "epoch":
        return str(int(moment.timestamp() * 1000))
    if pattern == "unix":
        return str(int(moment.timestamp()))
    out = ""
    for i, part in enumerate(pattern.split("'")):
        if i % 2:  # quoted literal
            out += part.replace("%", "%%") if part else "'"
            continue
        converted = ""
        while part:
            for java, python in _JAVA_DATE:
                if part.startswith(java):
                    converted += python
                    part = part[len(java) :]
                    break
            else:
                converted += "%%" if part[0] == "%" else part[0]
                part = part[1:]
        out += converted
    offset = moment.strftime("%z")
    iso_offset = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return moment.strftime(out).replace("{ms}", f"{moment.microsecond // 1000:03d}").replace("{iso_offset}", iso_offset)


def apply_offset(moment: dt.datetime, offset: str) -> dt.datetime:
    found = re.fullmatch(r"\s*([+-]?\d+)\s+(\w+?)s?\s*", offset)
    if not found:
        return moment
    amount, unit = int(found.group(1)), found.group(2) + "s"
    if unit not in _OFFSET_UNITS:
        return moment
    if unit in ("months", "years"):
        months = amount * (12 if unit == "years" else 1)
        year, month = divmod(moment.month - 1 + months, 12)
        day = min(moment.day, 28)
        return moment.replace(year=moment.year + year, month=month + 1, day=day if moment.day > 28 else moment.day)
    return moment + dt.timedelta(**{unit: amount})


def _zone(name: str | None) -> dt.tzinfo:
    if not name or name in ("UTC", "GMT", "Z"):
        return dt.UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(name)
    except (ImportError, ValueError, KeyError):
        return dt.UTC


# -- helpers ---------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _number(value: Any) -> float | int:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = _text(value).strip()
    try:
        return int(text)
    except ValueError:
        return float(text)


def _json_path(_this: Any, source: Any, expression: str, **options: Any) -> Any:
    import jsonpath  # on first use: 46 ms of every start-up of the HTTP server otherwise

    document = source
    if isinstance(source, str):
        try:
            document = json.loads(source)
        except ValueError:
            return options.get("default", "")
    try:
        found = jsonpath.findall(expression, document)
    except jsonpath.JSONPathError:
        return options.get("default", "")
    if not found:
        return options.get("default", "")
    # A definite path gives its value; a filter or wildcard gives the list of values.
    value = found[0] if len(found) == 1 and not re.search(r"\[\?|\*|\.\.", expression) else found
    if isinstance(value, (dict, list)):
        return _JsonValue(value)
    return value


class _JsonValue:
    """A JSON object or array from jsonPath: prints as JSON, iterates and indexes as data."""

    def __init__(self, value: Any):
        self.value = value

    def __str__(self) -> str:
        return json.dumps(self.value, separators=(",", ":"))

    def __getitem__(self, key: Any) -> Any:
        if isinstance(self.value, list):
            return self.value[int(key)]
        return self.value[key]

    def __iter__(self) -> Any:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __bool__(self) -> bool:
        return bool(self.value)


def _now(_this: Any, **options: Any) -> str:
    moment = dt.datetime.now(_zone(options.get("timezone")))
    if options.get("offset"):
        moment = apply_offset(moment, str(options["offset"]))
    pattern = options.get("format")
    if not pattern:
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if not options.get("timezone") else moment.isoformat()
    return java_date_format(moment, str(pattern))


_RANDOM_ALPHABETS = {
    "ALPHANUMERIC": string.ascii_letters + string.digits,
    "ALPHABETIC": string.ascii_letters,
    "NUMERIC": string.digits,
    "ALPHANUMERIC_AND_SYMBOLS": string.ascii_letters + string.digits + string.punctuation,
    "HEXADECIMAL": "0123456789abcdef",
}


def _random_value(_this: Any, **options: Any) -> str:
    kind = str(options.get("type", "ALPHANUMERIC")).upper()
    if kind == "UUID":
        return str(uuid.uuid4())
    alphabet = _RANDOM_ALPHABETS.get(kind, _RANDOM_ALPHABETS["ALPHANUMERIC"])
    value = "".join(random.choice(alphabet) for _ in range(int(options.get("length", 36))))
    return value.upper() if options.get("uppercase") else value


def _random_int(_this: Any, **options: Any) -> int:
    return random.randint(int(options.get("lower", -(2**31))), int(options.get("upper", 2**31 - 1)))


def _divide(x: Any, y: Any) -> Any:
    if isinstance(x, int) and isinstance(y, int):
        # WireMock divides integers as BigDecimals rounded half-up to an integer (7 / 2 = 4).
        return int((Decimal(x) / Decimal(y)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    return x / y


def _math(_this: Any, left: Any, operator: str, right: Any) -> Any:
    a, b = _number(left), _number(right)
    operations: dict[str, Callable[[Any, Any], Any]] = {
        "+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y,
        "/": _divide,
        "%": lambda x, y: x % y,
    }  # fmt: skip
    if operator not in operations:
        return ""
    return operations[operator](a, b)


def _compare(test: Callable[[Any, Any], bool]) -> Callable[..., Any]:
    def helper(this: Any, *args: Any, **options: Any) -> Any:
        block = args[0] if args and callable(getattr(args[0], "get", None)) and "fn" in args[0] else None
        left, right = (args[1], args[2]) if block else (args[0], args[1])
        if isinstance(left, list) != isinstance(right, list):
            # Handlebars.java compares objects: a query value list never equals a string.
            outcome = False
            if block is not None:
                return block["fn"](this) if outcome else block["inverse"](this)
            return outcome
        try:
            outcome = test(_number(left), _number(right))
        except (TypeError, ValueError):
            outcome = test(_text(left), _text(right))
        if block is not None:
            return block["fn"](this) if outcome else block["inverse"](this)
        return outcome

    return helper


def _block_or_value(outcome: bool, this: Any, options: Any) -> Any:
    if isinstance(options, dict) and "fn" in options:
        return options["fn"](this) if outcome else options["inverse"](this)
    return outcome


def _size(_this: Any, value: Any) -> int:
    return len(value) if hasattr(value, "__len__") else 0


def _join(_this: Any, *args: Any) -> str:
    if len(args) >= 2 and isinstance(args[0], (list, tuple, _JsonValue)):
        return str(args[1]).join(_text(v) for v in args[0])
    *items, separator = args
    return str(separator).join(_text(v) for v in items)


def _substring(_this: Any, value: Any, start: Any, end: Any = None) -> str:
    text = _text(value)
    return text[int(start) : None if end is None else int(end)]


def _with_block(name: str, operation: Callable[[list[Any]], bool]) -> Callable[..., Any]:
    def helper(this: Any, *args: Any) -> Any:
        block = args[0] if args and isinstance(args[0], dict) and "fn" in args[0] else None
        values = list(args[1:] if block else args)
        return _block_or_value(operation(values), this, block)

    helper.__name__ = name
    return helper


def _truthy(value: Any) -> bool:
    return bool(value) and value != "false"


HELPERS: dict[str, Callable[..., Any]] = {
    "jsonPath": _json_path,
    "now": _now,
    "randomValue": _random_value,
    "randomInt": _random_int,
    "math": _math,
    "eq": _compare(lambda a, b: a == b),
    "neq": _compare(lambda a, b: a != b),
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
    "and": _with_block("and", lambda values: all(_truthy(v) for v in values)),
    "or": _with_block("or", lambda values: any(_truthy(v) for v in values)),
    "not": lambda _this, value: not _truthy(value),
    "size": _size,
    "upper": lambda _this, value: _text(value).upper(),
    "lower": lambda _this, value: _text(value).lower(),
    "capitalize": lambda _this, value: _text(value).title(),
    "trim": lambda _this, value: _text(value).strip(),
    "base64": lambda _this, value, **o: (
        base64.b64decode(_text(value)).decode("utf-8", "replace") if o.get("decode") else base64.b64encode(_text(value).encode()).decode()
    ),
    "urlEncode": lambda _this, value, **o: (unquote(_text(value)) if o.get("decode") else quote_plus(_text(value))),
    "toJson": lambda _this, value: json.dumps(value.value if isinstance(value, _JsonValue) else value),
    "join": _join,
    "contains": lambda _this, haystack, needle: needle in (haystack.value if isinstance(haystack, _JsonValue) else haystack),
    "substring": _substring,
}


_PLAIN_MUSTACHE = re.compile(r"(?<!\{)\{\{(?![{#/!>^&~])(?!else\b)(.*?)\}\}(?!\})", re.DOTALL)
_ANY_MUSTACHE = re.compile(r"\{\{(?!!)(.*?)\}\}", re.DOTALL)
_FLOAT_LITERAL = re.compile(r"(?<=[\s(=])(-?\d+\.\d+)(?=[\s)}])")


def unescaped(source: str) -> str:
    """The template in the dialect pybars3 compiles, meaning what it means in WireMock 3.

    ``{{x}}`` becomes ``{{{x}}}``: WireMock 3 renders values as they are, without HTML
    escaping. Float literals (``{{math 1.5 '+' 1}}``) become strings, which pybars3's
    grammar accepts and the helpers read back as numbers.
    """
    quoted = _ANY_MUSTACHE.sub(lambda m: "{{" + _FLOAT_LITERAL.sub(r"'\1'", m.group(1)) + "}}", source)
    return _PLAIN_MUSTACHE.sub(lambda m: "{{{" + m.group(1) + "}}}", quoted)


class TemplateBook:
    """Compiled templates by source text (stubs render the same ones on every request).

    pybars is imported on the first template: its import builds the Handlebars grammar
    (about 0.4 s), which a server without templated stubs should not pay at start-up.
    """

    def __init__(self) -> None:
        self._compiler: Any = None
        self._compiled: dict[str, Callable[..., Any]] = {}

    def check(self, source: str) -> None:
        """Compile now; raises ``pybars.PybarsError`` on a template that does not parse."""
        self._compile(source)

    def _compile(self, source: str) -> Callable[..., Any]:
        template = self._compiled.get(source)
        if template is None:
            if self._compiler is None:
                import pybars

                self._compiler = pybars.Compiler()
            template = self._compiler.compile(unescaped(source))
            if len(self._compiled) > 10_000:  # admin-API churn must not grow this forever
                self._compiled.clear()
            self._compiled[source] = template
        return template

    def render(self, source: str, model: dict[str, Any]) -> str:
        if "{{" not in source:
            return source
        return str(self._compile(source)(model, helpers=HELPERS))
