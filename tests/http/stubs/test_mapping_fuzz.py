"""Any JSON sent as a mapping is either accepted or refused with the field named: never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from servers.http.stubs.mappings import parse_mapping
from servers.http.stubs.matching import RequestView, StubFormatError, parse_request_pattern

KEYS = ["request", "response", "method", "url", "urlPath", "urlPattern", "urlPathTemplate", "pathParameters",
        "queryParameters", "headers", "cookies", "bodyPatterns", "equalTo", "matches", "contains", "absent",
        "equalToJson", "matchesJsonPath", "matchesXPath", "equalToXml", "and", "or", "not", "hasExactly", "includes",
        "expression", "status", "body", "jsonBody", "base64Body", "bodyFileName", "fault", "delayDistribution",
        "type", "median", "sigma", "lower", "upper", "chunkedDribbleDelay", "numberOfChunks", "totalDuration",
        "priority", "scenarioName", "basicAuthCredentials", "username", "password", "transformers", "proxyBaseUrl",
        "X-Id", "q", "id"]  # fmt: skip
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 700), st.sampled_from(["", "x", "/a", "[", "$.a", "//a", "GET", "{{x}}", "AAEC", "lognormal", "EMPTY_RESPONSE", "response-template"]))
JSON: Any = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4), max_leaves=20)
REQUEST = RequestView("POST", "/a?q=1", [("X-Id", "7"), ("Cookie", "a=b")], b'{"a": [1]}')


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(KEYS), JSON, max_size=5))
def test_parse_mapping_never_crashes(spec: dict[str, Any]) -> None:
    try:
        stub = parse_mapping(spec)
    except StubFormatError as error:
        assert error.field and "\n" not in str(error)
        return
    stub.request.matches(REQUEST)
    stub.request.distance(REQUEST)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_request_patterns_never_crash(spec: Any) -> None:
    try:
        pattern = parse_request_pattern("request", spec)
    except StubFormatError:
        return
    pattern.matches(REQUEST)
