"""Differential test: the same mapping files in refservers and in WireMock 3.13.2 itself.

Both load tests/http/stubs/wiremock_root (mappings/ and __files/) at start; every case
sends the same requests to both and compares the status, the reason phrase where the
stub sets one, the significant headers (those the stubs set, and Content-Type) and the
body bytes. refservers runs with ``http.unmatched = "404"`` so unmatched requests
compare too (its default, falling through to httpbin, is tested in test_stubs.py).
"""

from __future__ import annotations

import base64
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from servers.core import Server

STUB_ROOT = Path(__file__).with_name("wiremock_root")
WireMockProcess = Any  # tests/http/stubs/conftest.py's peer handle

SIGNIFICANT_HEADERS = ("Content-Type", "X-Order", "X-Method", "X-Echo-Query", "WWW-Authenticate", "Set-Cookie")


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    compare_body: bool = True
    expect_status: int | None = None  # what WireMock must answer, so a case tests what it says


def _json(value: str) -> bytes:
    return value.encode()


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


CASES: dict[str, list[Call]] = {
    "url equalTo and jsonBody": [Call("GET", "/v1/orders/42", expect_status=200)],
    "urlPathPattern and statusMessage": [Call("GET", "/v1/orders/9", expect_status=404)],
    "priority beats newer stubs": [Call("GET", "/v1/orders/7")],
    "equal priority: the later mapping wins": [Call("GET", "/v1/dup")],
    "method mismatch is unmatched": [Call("DELETE", "/v1/orders/42")],
    "query equalTo, matches, absent": [
        Call("GET", "/v1/search?q=shoes&size=10"),
        Call("GET", "/v1/search?q=shoes&size=10&debug=1"),
        Call("GET", "/v1/search?q=shoes&size=ten"),
    ],
    "query hasExactly": [Call("GET", "/v1/search?tag=b&tag=a"), Call("GET", "/v1/search?tag=a&tag=b&tag=c")],
    "urlPathTemplate with pathParameters": [
        Call("GET", "/v1/contacts/ada/addresses/12"),
        Call("GET", "/v1/contacts/123/addresses/12"),
    ],
    "headers equalTo caseInsensitive": [
        Call("GET", "/h/accept", {"Accept": "APPLICATION/XML"}, expect_status=200),
        Call("GET", "/h/accept", {"X-Token": "secret"}, expect_status=200),
        Call("GET", "/h/accept", {"Accept": "text/html"}, expect_status=404),
    ],
    "cookies": [Call("GET", "/h/cookie", {"Cookie": "other=1; session=s-123"}), Call("GET", "/h/cookie", {"Cookie": "session=x"})],
    "basicAuthCredentials": [Call("GET", "/h/auth", _basic("demo", "pw"), expect_status=200), Call("GET", "/h/auth", _basic("demo", "nope"), expect_status=401)],
    "and/or/doesNotMatch": [
        Call("GET", "/h/logic", {"X-V": "two", "X-W": "abc"}),
        Call("GET", "/h/logic", {"X-V": "one", "X-W": "abz"}),
        Call("GET", "/h/logic", {"X-V": "three", "X-W": "a"}),
    ],
    "equalToJson ignoreArrayOrder": [
        Call("POST", "/b/json", {"Content-Type": "application/json"}, _json('{"tags": [3, 1, 2], "name": "x"}')),
        Call("POST", "/b/json", {"Content-Type": "application/json"}, _json('{"tags": [3, 1], "name": "x"}')),
    ],
    "equalToJson ignoreExtraElements": [
        Call("POST", "/b/extra", {}, _json('{"name": "x", "more": [1]}')),
        Call("POST", "/b/extra", {}, _json('{"name": "y"}')),
    ],
    "matchesJsonPath": [
        Call("POST", "/b/path", {}, _json('{"items": [{"qty": 1}, {"qty": 5}]}')),
        Call("POST", "/b/path", {}, _json('{"items": [{"qty": 1}], "customer": {"name": "Ada"}}')),
        Call("POST", "/b/path", {}, _json('{"items": [{"qty": 1}], "customer": {"name": "Bob"}}')),
    ],
    "body contains and doesNotMatch": [Call("POST", "/b/text", {}, b"well hello there"), Call("POST", "/b/text", {}, b"hello and bye")],
    "equalToXml": [
        Call("POST", "/b/xml", {}, b"<order>\n  <id>1</id>\n  <qty>2</qty>\n</order>"),
        Call("POST", "/b/xml", {}, b"<order><id>1</id><qty>3</qty></order>"),
    ],
    "matchesXPath": [
        Call("POST", "/b/xpath", {}, b"<order><item sku='B2'/><item sku='A1'/></order>"),
        Call("POST", "/b/xpath", {}, b"<order><item sku='B2'/></order>"),
    ],
    "bodyFileName": [Call("GET", "/b/file")],
    "base64Body": [Call("GET", "/b/base64")],
    "fixedDelayMilliseconds": [Call("GET", "/b/slow")],
    "templating: request model": [
        Call("GET", "/t/echo?q=one&q=two", {"X-Thing": "thing", "X-Html": "<b>&'\""}),
        Call("PUT", "/t/echo", {"X-Thing": "t2"}, b"x"),
    ],
    "templating: jsonPath, math, each, if": [
        Call("POST", "/t/json", {}, _json('{"name": "Ada", "price": 3, "qty": 4, "tags": ["a", "b"], "vip": true}')),
    ],
    "templating: eq block, math, size": [Call("GET", "/t/cmp?kind=a&x=1&x=2"), Call("GET", "/t/cmp?kind=b&x=1")],
    "templating: headers and pathSegments": [Call("GET", "/t/status?v=hello")],
    "templating: more helpers": [Call("POST", "/t/more?x=1&x=2", {"X-Thing": "th"}, _json('{"tags": ["a", "b"]}'))],
    "no transformer, no templating": [Call("GET", "/t/plain?z=1")],
    "scenario fails twice then succeeds": [Call("GET", "/s/flaky"), Call("GET", "/s/flaky"), Call("GET", "/s/flaky"), Call("GET", "/s/flaky")],
    "unmatched is a 404": [Call("GET", "/nothing/here", compare_body=False)],
}


@dataclass
class Answer:
    status: int
    reason: str
    headers: dict[str, str]
    body: bytes


def _send(base: str, call: Call) -> Answer:
    response = requests.request(call.method, base + call.path, headers=call.headers, data=call.body, timeout=10)
    headers = {name: response.raw.headers.getlist(name) for name in SIGNIFICANT_HEADERS if name in response.headers}
    return Answer(response.status_code, response.reason, {k: ", ".join(v) for k, v in headers.items()}, response.content)


@pytest.fixture
def stubs_copy(tmp_path: Path) -> Path:
    target = tmp_path / "stubs"
    shutil.copytree(STUB_ROOT, target)
    return target


@pytest.fixture
def refservers_settings(stubs_copy: Path) -> list[str]:
    return [f"http.stubs_dir={stubs_copy}", "http.unmatched=404"]


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_same_answers_as_wiremock(case: str, refservers_http: Server, wiremock: WireMockProcess) -> None:
    assert wiremock.admin("POST", "/scenarios/reset").status_code == 200
    differences: list[str] = []
    for call in CASES[case]:
        theirs = _send(wiremock.url, call)
        ours = _send(refservers_http.url, call)
        where = f"{call.method} {call.path}"
        if theirs.status != ours.status:
            differences.append(f"{where}: status WireMock {theirs.status}, refservers {ours.status} ({ours.body[:200]!r})")
            continue
        if call.expect_status is not None and theirs.status != call.expect_status:
            differences.append(f"{where}: the case expects {call.expect_status}, both answered {theirs.status} (the case is wrong)")
        if theirs.status != 404 and theirs.reason != ours.reason:
            differences.append(f"{where}: reason WireMock {theirs.reason!r}, refservers {ours.reason!r}")
        if b"Request was not matched" in theirs.body:
            # WireMock's 404 explains the miss in a table of its own making: compare the type only.
            if theirs.headers.get("Content-Type") != ours.headers.get("Content-Type"):
                differences.append(f"{where}: 404 type WireMock {theirs.headers}, refservers {ours.headers}")
            continue
        if call.compare_body and theirs.body != ours.body:
            differences.append(f"{where}: body WireMock {theirs.body[:300]!r}, refservers {ours.body[:300]!r}")
        if call.compare_body and theirs.headers != ours.headers:
            differences.append(f"{where}: headers WireMock {theirs.headers}, refservers {ours.headers}")
    assert not differences, "\n".join(differences)


def test_admin_mapping_json_round_trips_like_wiremock(refservers_http: Server, wiremock: WireMockProcess) -> None:
    """A mapping POSTed to both comes back from GET /__admin/mappings/{id} with the same fields."""
    mapping: dict[str, Any] = {
        "id": "4b6f2c58-5b0d-4f0e-9d2e-1c2a3b4c5d6e",
        "name": "round trip",
        "request": {"method": "GET", "urlPath": "/rt", "queryParameters": {"a": {"equalTo": "1"}}},
        "response": {"status": 200, "jsonBody": {"ok": True}},
        "priority": 3,
        "metadata": {"team": "orders"},
    }
    theirs = wiremock.admin("POST", "/mappings", json=mapping)
    ours = requests.post(refservers_http.url + "/__admin/mappings", json=mapping, timeout=10)
    try:
        assert (theirs.status_code, ours.status_code) == (201, 201)
        got_theirs = wiremock.admin("GET", f"/mappings/{mapping['id']}").json()
        got_ours = requests.get(f"{refservers_http.url}/__admin/mappings/{mapping['id']}", timeout=10).json()
        for key in ("id", "name", "request", "response", "priority", "metadata"):
            assert got_ours[key] == got_theirs[key], key
        found = {"matchesJsonPath": {"expression": "$.team", "equalTo": "orders"}}
        by_meta_theirs = wiremock.admin("POST", "/mappings/find-by-metadata", json=found).json()
        by_meta_ours = requests.post(refservers_http.url + "/__admin/mappings/find-by-metadata", json=found, timeout=10).json()
        assert [m["id"] for m in by_meta_ours["mappings"]] == [m["id"] for m in by_meta_theirs["mappings"]] == [mapping["id"]]
    finally:
        wiremock.admin("DELETE", f"/mappings/{mapping['id']}")


def test_journal_count_like_wiremock(refservers_http: Server, wiremock: WireMockProcess) -> None:
    """``/__admin/requests/count`` and ``/find`` agree after the same traffic."""
    wiremock.admin("DELETE", "/requests")
    requests.delete(refservers_http.url + "/__admin/requests", timeout=10)
    for base in (wiremock.url, refservers_http.url):
        for path in ("/v1/orders/42", "/v1/orders/42?x=1", "/v1/search?q=shoes&size=1", "/unknown"):
            requests.get(base + path, headers={"X-Trace": "diff"}, timeout=10)
    pattern = {"method": "GET", "urlPathPattern": "/v1/.*", "headers": {"X-Trace": {"equalTo": "diff"}}}
    theirs = wiremock.admin("POST", "/requests/count", json=pattern).json()["count"]
    ours = requests.post(refservers_http.url + "/__admin/requests/count", json=pattern, timeout=10).json()["count"]
    assert ours == theirs == 3
    theirs_urls = sorted(r["url"] for r in wiremock.admin("POST", "/requests/find", json=pattern).json()["requests"])
    ours_urls = sorted(r["url"] for r in requests.post(refservers_http.url + "/__admin/requests/find", json=pattern, timeout=10).json()["requests"])
    assert ours_urls == theirs_urls
    theirs_unmatched = [r["url"] for r in wiremock.admin("GET", "/requests/unmatched").json()["requests"]]
    ours_unmatched = [r["url"] for r in requests.get(refservers_http.url + "/__admin/requests/unmatched", timeout=10).json()["requests"]]
    assert "/unknown" in theirs_unmatched and "/unknown" in ours_unmatched


def _raw(url: str, path: str) -> tuple[bytes, bool]:
    """Everything the server sends for a GET on a fresh socket, and whether it was reset."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"\r\n\r\n" in data and not data.startswith(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked") and b"lskdu" not in data:
                    break  # a well-formed answer on a kept-alive connection: done
        except ConnectionResetError:
            return data, True
    return data, False


@pytest.mark.parametrize("fault", ["CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE", "MALFORMED_RESPONSE_CHUNK", "RANDOM_DATA_THEN_CLOSE"])
def test_faults_like_wiremock(fault: str, refservers_http: Server, wiremock: WireMockProcess) -> None:
    mapping = {"id": str(uuid.uuid4()), "request": {"url": f"/fault/{fault}"}, "response": {"fault": fault}}
    assert wiremock.admin("POST", "/mappings", json=mapping).status_code == 201
    try:
        requests.post(refservers_http.url + "/__admin/mappings", json=mapping, timeout=10).raise_for_status()
        theirs, ours = _raw(wiremock.url, mapping["request"]["url"]), _raw(refservers_http.url, mapping["request"]["url"])
        assert ours[1] == theirs[1], f"reset: WireMock {theirs[1]}, refservers {ours[1]}"
        # Same shape: nothing, garbage, or a chunked 200 head followed by garbage.
        assert ours[0][:40] == theirs[0][:40] or (fault == "RANDOM_DATA_THEN_CLOSE" and bool(ours[0]) == bool(theirs[0])), (theirs[0][:80], ours[0][:80])
    finally:
        wiremock.admin("DELETE", f"/mappings/{mapping['id']}")


def test_chunked_dribble_like_wiremock(refservers_http: Server, wiremock: WireMockProcess) -> None:
    mapping = {"id": str(uuid.uuid4()), "request": {"url": "/dribble"}, "response": {"body": "0123456789" * 3, "chunkedDribbleDelay": {"numberOfChunks": 3, "totalDuration": 300}}}
    assert wiremock.admin("POST", "/mappings", json=mapping).status_code == 201
    try:
        requests.post(refservers_http.url + "/__admin/mappings", json=mapping, timeout=10).raise_for_status()
        for base in (wiremock.url, refservers_http.url):
            started = time.monotonic()
            answer = requests.get(base + "/dribble", timeout=10)
            assert (answer.status_code, answer.text, answer.headers.get("Transfer-Encoding")) == (200, "0123456789" * 3, "chunked"), base
            assert time.monotonic() - started >= 0.2, base
    finally:
        wiremock.admin("DELETE", f"/mappings/{mapping['id']}")
