"""Request matching in WireMock 3's JSON: string value patterns and request patterns.

Follows WireMock's "Request Matching" documentation (wiremock.org/docs/request-matching):
a request pattern names ``method``, one URL matcher (``url``, ``urlPattern``,
``urlPath``, ``urlPathPattern``, ``urlPathTemplate`` with ``pathParameters``),
``queryParameters``, ``headers``, ``cookies``, ``formParameters``,
``basicAuthCredentials`` and ``bodyPatterns``. Each named value takes a *string value
pattern* (``equalTo``, ``contains``, ``doesNotContain``, ``matches``, ``doesNotMatch``,
``absent``, ``equalToJson``, ``matchesJsonPath``, ``equalToXml``, ``matchesXPath``,
``binaryEqualTo``, ``and``/``or``/``not``) or, for repeated values, ``hasExactly`` /
``includes``.

Rules this module keeps:

1. Parsing and matching are separate: :func:`parse_pattern` and
   :func:`parse_request_pattern` check the JSON once (raising :class:`StubFormatError`
   that names the field) and return matchers; matching never raises on odd input.
2. Every matcher returns a *distance* in [0, 1]: 0 is a match. Near misses (why did
   this not match?) sort stubs by the sum of their distances, as WireMock does.
   Graded distances (string similarity) are computed only inside
   :meth:`RequestPattern.distance`; plain matching, on every request against every
   stub, gets 0 or 1 at the cost of a comparison.
3. The JSON a pattern came from is kept and given back unchanged (``.json``), so the
   admin API shows mappings exactly as they were sent.
"""

from __future__ import annotations

import base64
import contextvars
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from xml.etree import ElementTree

EXACT = 0.0
NO_MATCH = 1.0


class StubFormatError(ValueError):
    """A mapping that does not follow WireMock's JSON; ``field`` is its path (``request.url``)."""

    def __init__(self, field_path: str, message: str):
        super().__init__(f"{field_path}: {message}")
        self.field = field_path
        self.message = message


# True while RequestPattern.distance() grades a near miss (a context variable, so threads
# and reactor callbacks each see their own).
_GRADING = contextvars.ContextVar("stub_near_miss_grading", default=False)


def _similarity_distance(expected: str, actual: str) -> float:
    # WireMock uses a normalised Levenshtein distance; difflib's ratio ranks the same way
    # for near-miss ordering and is in the standard library.
    if expected == actual:
        return EXACT
    if not _GRADING.get() or len(expected) + len(actual) > 4096:  # keep near-miss reports cheap on big bodies
        return NO_MATCH
    from difflib import SequenceMatcher  # (near misses only: see _xml_parse)

    return max(0.01, 1.0 - SequenceMatcher(None, expected, actual).ratio())


# -- string value patterns -----------------------------------------------------------------


@dataclass
class ValuePattern:
    """One string value pattern: ``match(value)`` is a distance, None means absent."""

    json: dict[str, Any]
    test: Callable[[str | None], float]

    def match(self, value: str | None) -> float:
        return self.test(value)

    @property
    def is_absent(self) -> bool:
        return self.json.get("absent") is True


def _present(test: Callable[[str], float]) -> Callable[[str | None], float]:
    return lambda value: NO_MATCH if value is None else test(value)


def _regex(where: str, text: Any) -> re.Pattern[str]:
    if not isinstance(text, str):
        raise StubFormatError(where, "expected a regular expression string")
    # Java's regex dialect is close enough for the patterns stubs use; the named-group
    # syntax is the one common difference.
    try:
        return re.compile(re.sub(r"\(\?<([A-Za-z]\w*)>", r"(?P<\1>", text), re.DOTALL)
    except re.error as error:
        raise StubFormatError(where, f"invalid regular expression {text!r}: {error}") from None


def _string(where: str, value: Any) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise StubFormatError(where, f"expected a string, got {json.dumps(value)}")
    return str(value)


def _json_value(where: str, value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as error:
            raise StubFormatError(where, f"not valid JSON: {error}") from None
    return value


def json_equal(expected: Any, actual: Any, ignore_array_order: bool, ignore_extra: bool) -> bool:
    """WireMock's equalToJson: structural equality, numbers by value, with its two options."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        if not ignore_extra and set(actual) != set(expected):
            return False
        return all(k in actual and json_equal(v, actual[k], ignore_array_order, ignore_extra) for k, v in expected.items())
    if isinstance(expected, list):
        if not isinstance(actual, list):
            return False
        if not ignore_array_order:
            if len(expected) != len(actual) and not ignore_extra:
                return False
            if ignore_extra:  # extra elements may only trail when the order matters
                if len(actual) < len(expected):
                    return False
                actual = actual[: len(expected)]
            return all(json_equal(e, a, ignore_array_order, ignore_extra) for e, a in zip(expected, actual, strict=True))
        if len(expected) != len(actual) and not ignore_extra:
            return False
        remaining = list(actual)
        for item in expected:
            found = next((i for i, a in enumerate(remaining) if json_equal(item, a, True, ignore_extra)), None)
            if found is None:
                return False
            remaining.pop(found)
        return True
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        return float(expected) == float(actual)
    if isinstance(expected, str) and expected.startswith("${json-unit.any-"):
        kind = expected[len("${json-unit.any-") : -1]
        return {"string": isinstance(actual, str), "number": isinstance(actual, (int, float)), "boolean": isinstance(actual, bool)}.get(kind, False)
    if expected == "${json-unit.ignore}":
        return True
    return bool(expected == actual)


def _stringify(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return "null" if value is None else str(value)


def _json_path_results(expression: str, text: str) -> list[Any] | None:
    import jsonpath  # on first use: 46 ms of every start-up of the HTTP server otherwise

    try:
        document = json.loads(text)
    except ValueError:
        return None
    try:
        return list(jsonpath.findall(expression, document))
    except jsonpath.JSONPathError:
        return None


def _xml_canonical(element: ElementTree.Element) -> Any:
    text = (element.text or "").strip()
    children = sorted((_xml_canonical(child) for child in element), key=repr)
    return (element.tag, sorted(element.attrib.items()), text, children)


def _xml_parse(text: str) -> ElementTree.Element | None:
    # Imported on the first XML body matched, as difflib on the first near miss graded:
    # with them, the stub matchers were a visible share of `run http`'s start-up (issue 16).
    from xml.etree import ElementTree

    try:
        return ElementTree.fromstring(text)
    except ElementTree.ParseError:
        return None


def _xpath_results(expression: str, text: str) -> list[str] | None:
    """The subset of XPath ElementTree evaluates: element paths, predicates, ``text()``."""
    from xml.etree import ElementTree  # (see _xml_parse)

    root = _xml_parse(text)
    if root is None:
        return None
    want_text = expression.endswith("/text()")
    path = expression[: -len("/text()")] if want_text else expression
    if path.startswith("//"):
        path = "." + path
    elif path.startswith("/"):  # absolute: the first step names the root element
        first, _, rest = path[1:].partition("/")
        tag = first.split("[")[0]
        if tag not in (root.tag, "*"):
            return []
        if first != tag:  # a predicate on the root: evaluate it from a wrapper
            wrapper = ElementTree.Element("wrapper")
            wrapper.append(root)
            root, path = wrapper, "./" + first + ("/" + rest if rest else "")
        else:
            path = "./" + rest if rest else "."
    try:
        found = root.findall(path)
    except (SyntaxError, KeyError):
        return None
    return [(node.text or "") if want_text else ElementTree.tostring(node, encoding="unicode") for node in found]


def _sub_pattern(where: str, spec: dict[str, Any], reserved: tuple[str, ...]) -> ValuePattern | None:
    rest = {k: v for k, v in spec.items() if k not in reserved}
    return parse_pattern(where, rest) if rest else None


def _expression_pattern(
    where: str, key: str, spec: dict[str, Any], evaluate: Callable[[str, str], list[Any] | None]
) -> ValuePattern:
    value = spec[key]
    if isinstance(value, str):
        expression, sub = value, None
    elif isinstance(value, dict) and isinstance(value.get("expression"), str):
        expression = value["expression"]
        sub = _sub_pattern(f"{where}.{key}", value, ("expression",))
    else:
        raise StubFormatError(f"{where}.{key}", "expected an expression string or {expression, <pattern>}")

    def test(text: str) -> float:
        results = evaluate(expression, text)
        if not results:
            return NO_MATCH
        if sub is None:
            return EXACT
        values = results if key == "matchesXPath" else [_stringify(r) for r in results]
        if len(values) > 1 and key == "matchesJsonPath":
            values = values + [_stringify(results)]
        return min(sub.match(v) for v in values)

    return ValuePattern(spec, _present(test))


def parse_pattern(where: str, spec: Any) -> ValuePattern:
    """A string value pattern from its JSON (``{"equalTo": "x", "caseInsensitive": true}``)."""
    if not isinstance(spec, dict):
        raise StubFormatError(where, f"expected a pattern object such as {{\"equalTo\": ...}}, got {json.dumps(spec)}")
    keys = [k for k in spec if k in _OPERATORS]
    if len(keys) != 1:
        names = ", ".join(sorted(spec)) or "nothing"
        raise StubFormatError(where, f"expected one of {', '.join(_OPERATORS)}; got {names}")
    return _OPERATORS[keys[0]](where, spec)


def _equal_to(where: str, spec: dict[str, Any]) -> ValuePattern:
    expected = _string(f"{where}.equalTo", spec["equalTo"])
    if spec.get("caseInsensitive") is True:
        folded = expected.casefold()
        return ValuePattern(spec, _present(lambda v: _similarity_distance(folded, v.casefold())))
    return ValuePattern(spec, _present(lambda v: _similarity_distance(expected, v)))


def _contains(where: str, spec: dict[str, Any]) -> ValuePattern:
    part = _string(f"{where}.contains", spec["contains"])
    return ValuePattern(spec, _present(lambda v: EXACT if part in v else NO_MATCH))


def _does_not_contain(where: str, spec: dict[str, Any]) -> ValuePattern:
    part = _string(f"{where}.doesNotContain", spec["doesNotContain"])
    return ValuePattern(spec, _present(lambda v: NO_MATCH if part in v else EXACT))


def _matches(where: str, spec: dict[str, Any]) -> ValuePattern:
    regex = _regex(f"{where}.matches", spec["matches"])
    return ValuePattern(spec, _present(lambda v: EXACT if regex.fullmatch(v) else NO_MATCH))


def _does_not_match(where: str, spec: dict[str, Any]) -> ValuePattern:
    regex = _regex(f"{where}.doesNotMatch", spec["doesNotMatch"])
    return ValuePattern(spec, _present(lambda v: NO_MATCH if regex.fullmatch(v) else EXACT))


def _absent(where: str, spec: dict[str, Any]) -> ValuePattern:
    if spec["absent"] is not True:
        raise StubFormatError(f"{where}.absent", "expected true")
    return ValuePattern(spec, lambda v: EXACT if v is None else NO_MATCH)


def _equal_to_json(where: str, spec: dict[str, Any]) -> ValuePattern:
    expected = _json_value(f"{where}.equalToJson", spec["equalToJson"])
    order = spec.get("ignoreArrayOrder") is True
    extra = spec.get("ignoreExtraElements") is True

    def test(text: str) -> float:
        try:
            actual = json.loads(text)
        except ValueError:
            return NO_MATCH
        return EXACT if json_equal(expected, actual, order, extra) else _similarity_distance(
            json.dumps(expected, sort_keys=True), json.dumps(actual, sort_keys=True)
        )

    return ValuePattern(spec, _present(test))


def _matches_json_path(where: str, spec: dict[str, Any]) -> ValuePattern:
    expression = spec["matchesJsonPath"]
    text = expression if isinstance(expression, str) else (expression or {}).get("expression")
    if isinstance(text, str):
        import jsonpath  # on first use: 46 ms of every start-up of the HTTP server otherwise

        try:
            jsonpath.compile(text)
        except jsonpath.JSONPathError as error:
            raise StubFormatError(f"{where}.matchesJsonPath", f"invalid JSONPath {text!r}: {error}") from None
    return _expression_pattern(where, "matchesJsonPath", spec, _json_path_results)


def _equal_to_xml(where: str, spec: dict[str, Any]) -> ValuePattern:
    source = _string(f"{where}.equalToXml", spec["equalToXml"])
    expected = _xml_parse(source)
    if expected is None:
        raise StubFormatError(f"{where}.equalToXml", "not well-formed XML")
    canonical = _xml_canonical(expected)

    def test(text: str) -> float:
        actual = _xml_parse(text)
        return EXACT if actual is not None and _xml_canonical(actual) == canonical else NO_MATCH

    return ValuePattern(spec, _present(test))


def _matches_xpath(where: str, spec: dict[str, Any]) -> ValuePattern:
    return _expression_pattern(where, "matchesXPath", spec, _xpath_results)


def _binary_equal_to(where: str, spec: dict[str, Any]) -> ValuePattern:
    try:
        expected = base64.b64decode(_string(f"{where}.binaryEqualTo", spec["binaryEqualTo"]), validate=True)
    except ValueError:
        raise StubFormatError(f"{where}.binaryEqualTo", "expected base64") from None
    # Matched against the raw body; see RequestPattern (bodies are bytes there).
    return ValuePattern(spec, _present(lambda v: EXACT if v.encode("latin-1", "replace") == expected else NO_MATCH))


def _combined(name: str) -> Callable[[str, dict[str, Any]], ValuePattern]:
    def parse(where: str, spec: dict[str, Any]) -> ValuePattern:
        parts = spec[name]
        if not isinstance(parts, list) or not parts:
            raise StubFormatError(f"{where}.{name}", "expected a non-empty list of patterns")
        patterns = [parse_pattern(f"{where}.{name}[{i}]", p) for i, p in enumerate(parts)]
        if name == "and":
            return ValuePattern(spec, lambda v: max(p.match(v) for p in patterns))
        return ValuePattern(spec, lambda v: min(p.match(v) for p in patterns))

    return parse


def _not(where: str, spec: dict[str, Any]) -> ValuePattern:
    inner = parse_pattern(f"{where}.not", spec["not"])
    return ValuePattern(spec, lambda v: NO_MATCH if inner.match(v) == EXACT else EXACT)


_OPERATORS: dict[str, Callable[[str, dict[str, Any]], ValuePattern]] = {
    "equalTo": _equal_to,
    "contains": _contains,
    "doesNotContain": _does_not_contain,
    "matches": _matches,
    "doesNotMatch": _does_not_match,
    "absent": _absent,
    "equalToJson": _equal_to_json,
    "matchesJsonPath": _matches_json_path,
    "equalToXml": _equal_to_xml,
    "matchesXPath": _matches_xpath,
    "binaryEqualTo": _binary_equal_to,
    "and": _combined("and"),
    "or": _combined("or"),
    "not": _not,
}


# -- multi-value patterns (query parameters, headers, cookies, form fields) ---------------


@dataclass
class MultiValuePattern:
    """A pattern over every value of one name: single, ``hasExactly`` or ``includes``."""

    json: Any
    test: Callable[[list[str]], float]

    def match(self, values: list[str]) -> float:
        return self.test(values)


def parse_multi(where: str, spec: Any) -> MultiValuePattern:
    if isinstance(spec, dict) and ("hasExactly" in spec or "includes" in spec):
        key = "hasExactly" if "hasExactly" in spec else "includes"
        items = spec[key]
        if not isinstance(items, list):
            raise StubFormatError(f"{where}.{key}", "expected a list of patterns")
        patterns = [parse_pattern(f"{where}.{key}[{i}]", item) for i, item in enumerate(items)]

        def test(values: list[str]) -> float:
            if key == "hasExactly" and len(values) != len(patterns):
                return NO_MATCH
            ok = all(any(p.match(v) == EXACT for v in values) for p in patterns)
            return EXACT if ok else NO_MATCH

        return MultiValuePattern(spec, test)
    single = parse_pattern(where, spec)

    def test_single(values: list[str]) -> float:
        if not values:
            return single.match(None)
        if single.is_absent:
            return NO_MATCH
        return min(single.match(v) for v in values)

    return MultiValuePattern(spec, test_single)


# -- the request ---------------------------------------------------------------------------


@dataclass
class RequestView:
    """What matching reads from one request (built by the engine from Twisted's request)."""

    method: str
    url: str  # path and query, as received (percent-encoded)
    headers: list[tuple[str, str]]
    body: bytes = b""
    scheme: str = "http"
    host: str = "127.0.0.1"
    port: int = 0
    client_ip: str = "127.0.0.1"
    _query: dict[str, list[str]] | None = field(default=None, repr=False)

    @property
    def path(self) -> str:
        return self.url.partition("?")[0]

    @property
    def query(self) -> dict[str, list[str]]:
        if self._query is None:
            self._query = parse_qs(self.url.partition("?")[2], keep_blank_values=True)
        return self._query

    def header_values(self, name: str) -> list[str]:
        lowered = name.lower()
        return [value for key, value in self.headers if key.lower() == lowered]

    def header(self, name: str) -> str | None:
        values = self.header_values(name)
        return values[0] if values else None

    @property
    def cookies(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for line in self.header_values("cookie"):
            for part in line.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep:
                    found.setdefault(name, []).append(value)
        return found

    @property
    def body_text(self) -> str:
        return self.body.decode("utf-8", "replace")

    @property
    def form(self) -> dict[str, list[str]]:
        if "application/x-www-form-urlencoded" not in (self.header("content-type") or ""):
            return {}
        return parse_qs(self.body_text, keep_blank_values=True)


# -- request patterns ----------------------------------------------------------------------

URL_KEYS = ("url", "urlPattern", "urlPath", "urlPathPattern", "urlPathTemplate")
REQUEST_KEYS = {
    "method", *URL_KEYS, "pathParameters", "queryParameters", "headers", "cookies", "formParameters",
    "basicAuthCredentials", "bodyPatterns", "host", "port", "scheme", "customMatcher", "multipartPatterns",
}  # fmt: skip


def _template_regex(where: str, template: str) -> tuple[re.Pattern[str], list[str]]:
    names: list[str] = []
    regex = ""
    for part in re.split(r"(\{[^}/]+\})", template):
        if part.startswith("{") and part.endswith("}"):
            name = part[1:-1]
            if not re.fullmatch(r"[A-Za-z_][\w-]*", name) or name in names:
                raise StubFormatError(where, f"bad or repeated path parameter {part!r}")
            names.append(name)
            regex += f"(?P<p{len(names) - 1}>[^/]+)"
        else:
            regex += re.escape(part)
    return re.compile(regex + "$"), names


@dataclass
class RequestPattern:
    """A parsed ``request`` object; :meth:`distance` is 0 for a match."""

    json: dict[str, Any]
    checks: list[Callable[[RequestView], float]]
    path_template: tuple[re.Pattern[str], list[str]] | None = None
    # The one path a ``urlPath`` pattern accepts: the engine looks stubs up by it
    # instead of trying each one (None: any path may match).
    exact_path: str | None = None

    def distance(self, request: RequestView) -> float:
        """How far the request is from matching (0: it matches), graded for near misses."""
        token = _GRADING.set(True)
        try:
            return sum(check(request) for check in self.checks)
        finally:
            _GRADING.reset(token)

    def matches(self, request: RequestView) -> bool:
        return all(check(request) == EXACT for check in self.checks)

    def path_parameters(self, request: RequestView) -> dict[str, str]:
        if self.path_template is None:
            return {}
        regex, names = self.path_template
        found = regex.match(request.path)
        return {name: found.group(f"p{i}") for i, name in enumerate(names)} if found else {}


def _named(where: str, spec: Any) -> dict[str, MultiValuePattern]:
    if not isinstance(spec, dict):
        raise StubFormatError(where, "expected an object of name -> pattern")
    return {name: parse_multi(f"{where}.{name}", value) for name, value in spec.items()}


def parse_request_pattern(where: str, spec: Any) -> RequestPattern:
    if not isinstance(spec, dict):
        raise StubFormatError(where, "expected an object")
    unknown = sorted(set(spec) - REQUEST_KEYS)
    if unknown:
        raise StubFormatError(f"{where}.{unknown[0]}", f"unknown request field; expected one of {', '.join(sorted(REQUEST_KEYS))}")
    checks: list[Callable[[RequestView], float]] = []
    method = spec.get("method", "ANY")
    if not isinstance(method, str) or not method:
        raise StubFormatError(f"{where}.method", "expected an HTTP method name or ANY")
    if method != "ANY":
        checks.append(lambda r: EXACT if r.method == method else NO_MATCH)

    url_keys = [k for k in URL_KEYS if k in spec]
    if len(url_keys) > 1:
        raise StubFormatError(f"{where}.{url_keys[1]}", f"only one URL matcher allowed, also got {url_keys[0]}")
    template = None
    if url_keys:
        key = url_keys[0]
        value = spec[key]
        if not isinstance(value, str):
            raise StubFormatError(f"{where}.{key}", "expected a string")
        if key == "url":
            checks.append(lambda r: _similarity_distance(value, r.url))
        elif key == "urlPath":
            checks.append(lambda r: _similarity_distance(value, r.path))
        elif key in ("urlPattern", "urlPathPattern"):
            regex = _regex(f"{where}.{key}", value)
            of_path = key == "urlPathPattern"
            checks.append(lambda r: EXACT if regex.fullmatch(r.path if of_path else r.url) else NO_MATCH)
        else:
            template = _template_regex(f"{where}.urlPathTemplate", value)
            template_regex = template[0]
            checks.append(lambda r: EXACT if template_regex.match(r.path) else NO_MATCH)

    if "pathParameters" in spec:
        if template is None:
            raise StubFormatError(f"{where}.pathParameters", "needs urlPathTemplate")
        names = template[1]
        for name, value in _named(f"{where}.pathParameters", spec["pathParameters"]).items():
            if name not in names:
                raise StubFormatError(f"{where}.pathParameters.{name}", "not a parameter of urlPathTemplate")
            checks.append(_path_parameter_check(template, name, value))

    for key, values_of in (
        ("queryParameters", lambda r, n: r.query.get(n, [])),
        ("headers", lambda r, n: r.header_values(n)),
        ("cookies", lambda r, n: r.cookies.get(n, [])),
        ("formParameters", lambda r, n: r.form.get(n, [])),
    ):
        if key in spec:
            for name, pattern in _named(f"{where}.{key}", spec[key]).items():
                checks.append(_named_check(values_of, name, pattern))

    if "basicAuthCredentials" in spec:
        credentials = spec["basicAuthCredentials"]
        if not isinstance(credentials, dict) or not all(isinstance(credentials.get(k), str) for k in ("username", "password")):
            raise StubFormatError(f"{where}.basicAuthCredentials", "expected {username, password} strings")
        token = base64.b64encode(f"{credentials['username']}:{credentials['password']}".encode()).decode()
        checks.append(lambda r: EXACT if r.header("authorization") == f"Basic {token}" else NO_MATCH)

    if "bodyPatterns" in spec:
        patterns = spec["bodyPatterns"]
        if not isinstance(patterns, list):
            raise StubFormatError(f"{where}.bodyPatterns", "expected a list of patterns")
        for i, pattern_spec in enumerate(patterns):
            body_pattern = parse_pattern(f"{where}.bodyPatterns[{i}]", pattern_spec)
            binary = isinstance(pattern_spec, dict) and "binaryEqualTo" in pattern_spec
            checks.append(_body_check(body_pattern, binary))

    for key, read in (("host", lambda r: r.host), ("scheme", lambda r: r.scheme)):
        if key in spec:
            host_pattern = parse_pattern(f"{where}.{key}", spec[key]) if isinstance(spec[key], dict) else None
            expected_text = spec[key] if host_pattern is None else None
            checks.append(_scalar_check(read, host_pattern, expected_text))
    if "port" in spec:
        port = spec["port"]
        checks.append(lambda r: EXACT if r.port == port else NO_MATCH)
    for key in ("customMatcher", "multipartPatterns"):
        if key in spec:
            raise StubFormatError(f"{where}.{key}", "not supported by refservers (see docs/stubs.md)")
    exact_path = spec["urlPath"] if url_keys == ["urlPath"] else None
    return RequestPattern(spec, checks, template, exact_path)


def _path_parameter_check(
    template: tuple[re.Pattern[str], list[str]], name: str, pattern: MultiValuePattern
) -> Callable[[RequestView], float]:
    regex, names = template
    group = f"p{names.index(name)}"

    def check(request: RequestView) -> float:
        found = regex.match(request.path)
        return pattern.match([found.group(group)]) if found else NO_MATCH

    return check


def _named_check(
    values_of: Callable[[RequestView, str], list[str]], name: str, pattern: MultiValuePattern
) -> Callable[[RequestView], float]:
    return lambda request: pattern.match(values_of(request, name))


def _body_check(pattern: ValuePattern, binary: bool) -> Callable[[RequestView], float]:
    if binary:
        return lambda request: pattern.match(request.body.decode("latin-1"))
    return lambda request: pattern.match(request.body_text)


def _scalar_check(
    read: Callable[[RequestView], str], pattern: ValuePattern | None, expected: Any
) -> Callable[[RequestView], float]:
    if pattern is not None:
        return lambda request: pattern.match(read(request))
    return lambda request: EXACT if read(request) == expected else NO_MATCH
