"""Stubs on the HTTP server driven with ``requests``: precedence, admin API, journal,
scenarios, delays, faults, and the fixture's ``stub``/``requests``/``verify`` helpers."""

from __future__ import annotations

import http.client
import json
import socket
import time
import uuid

import pytest
import requests

from servers.core import Server
from servers.http.stubs import VerificationError

ORDER = {"request": {"method": "GET", "urlPath": "/v1/orders/42"}, "response": {"status": 200, "jsonBody": {"id": 42}}}


def admin(server: Server, method: str, path: str, **kwargs: object) -> requests.Response:
    return requests.request(method, f"{server.url}/__admin{path}", timeout=10, **kwargs)  # type: ignore[arg-type]


def test_stub_takes_precedence_and_unmatched_falls_through_to_httpbin(refservers_http: Server) -> None:
    admin(refservers_http, "POST", "/mappings", json={"request": {"urlPath": "/get"}, "response": {"status": 418, "body": "stubbed /get"}})
    stubbed = requests.get(refservers_http.url + "/get", timeout=10)
    assert (stubbed.status_code, stubbed.text) == (418, "stubbed /get")
    httpbin = requests.get(refservers_http.url + "/anything/x", timeout=10)
    assert httpbin.status_code == 200 and httpbin.json()["url"].endswith("/anything/x")
    unmatched = admin(refservers_http, "GET", "/requests/unmatched").json()["requests"]
    assert [r["url"] for r in unmatched if r["url"] == "/anything/x"] == ["/anything/x"]


def test_request_journalled_with_no_stub_loaded_is_logged_whole(refservers_http: Server) -> None:
    # With no stub to match, the journal keeps what the request was and makes its
    # logged form only when asked: read back after the request is long finished.
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.putrequest("POST", "/anything/journal?q=1&q=2", skip_host=True)
        for name, value in (("Host", "example.test:1234"), ("X-Twice", "a"), ("X-Twice", "b"), ("Content-Length", "4")):
            connection.putheader(name, value)
        connection.endheaders(b"ping")
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    logged = [r for r in admin(refservers_http, "GET", "/requests").json()["requests"] if r["request"]["url"].startswith("/anything/journal")]
    request = logged[0]["request"]
    assert logged[0]["wasMatched"] is False and request["method"] == "POST"
    assert request["url"] == "/anything/journal?q=1&q=2" and request["queryParams"]["q"]["values"] == ["1", "2"]
    assert (request["host"], request["port"], request["scheme"]) == ("example.test", refservers_http.port, "http")
    assert request["absoluteUrl"] == f"http://example.test:{refservers_http.port}/anything/journal?q=1&q=2"
    assert request["headers"]["X-Twice"] == ["a", "b"] and request["body"] == "ping"
    assert request["clientIp"] == "127.0.0.1"
    assert abs(request["loggedDate"] / 1000 - time.time()) < 600  # the request's own time, not the epoch


def test_unmatched_404_mode(refservers_start) -> None:  # type: ignore[no-untyped-def]
    http_server = refservers_start("http", unmatched="404")
    missed = requests.get(http_server.url + "/get", timeout=10)
    assert missed.status_code == 404 and "Request was not matched" in missed.text


def test_mapping_crud_through_admin(refservers_http: Server) -> None:
    created = admin(refservers_http, "POST", "/mappings", json=ORDER)
    assert created.status_code == 201
    stub_id = created.json()["id"]
    assert admin(refservers_http, "GET", f"/mappings/{stub_id}").json()["request"] == ORDER["request"]
    assert requests.get(refservers_http.url + "/v1/orders/42", timeout=10).json() == {"id": 42}
    edited = {**ORDER, "response": {"status": 200, "jsonBody": {"id": 43}}}
    assert admin(refservers_http, "PUT", f"/mappings/{stub_id}", json=edited).status_code == 200
    assert requests.get(refservers_http.url + "/v1/orders/42", timeout=10).json() == {"id": 43}
    listing = admin(refservers_http, "GET", "/mappings").json()
    assert listing["meta"]["total"] == 1 and listing["mappings"][0]["id"] == stub_id
    assert admin(refservers_http, "DELETE", f"/mappings/{stub_id}").status_code == 200
    assert admin(refservers_http, "GET", f"/mappings/{stub_id}").status_code == 404
    assert requests.get(refservers_http.url + "/v1/orders/42", timeout=10).status_code == 404  # httpbin: no such endpoint


def test_bad_mapping_is_a_422_naming_the_field(refservers_http: Server) -> None:
    bad = admin(refservers_http, "POST", "/mappings", json={"request": {"url": "/x", "bodyPatterns": [{"equalsTo": "y"}]}})
    assert bad.status_code == 422
    error = bad.json()["errors"][0]
    assert error["source"]["pointer"] == "/request/bodyPatterns/0"
    assert "equalsTo" in error["title"]


def test_import_and_find_by_metadata(refservers_http: Server) -> None:
    mappings = [
        {**ORDER, "metadata": {"team": "orders"}},
        {"request": {"urlPath": "/v1/users"}, "response": {"status": 204}, "metadata": {"team": "users"}},
    ]
    assert admin(refservers_http, "POST", "/mappings/import", json={"mappings": mappings}).status_code == 200
    found = admin(refservers_http, "POST", "/mappings/find-by-metadata", json={"matchesJsonPath": {"expression": "$.team", "equalTo": "users"}}).json()
    assert [m["request"]["urlPath"] for m in found["mappings"]] == ["/v1/users"]
    assert requests.get(refservers_http.url + "/v1/users", timeout=10).status_code == 204


def test_scenario_admin_and_reset(refservers_http: Server) -> None:
    for required, new, status in (("Started", "broken", 503), ("broken", None, 200)):
        mapping = {"scenarioName": "svc", "requiredScenarioState": required, "request": {"url": "/svc"}, "response": {"status": status}}
        if new:
            mapping["newScenarioState"] = new
        admin(refservers_http, "POST", "/mappings", json=mapping)
    statuses = [requests.get(refservers_http.url + "/svc", timeout=10).status_code for _ in range(3)]
    assert statuses == [503, 200, 200]
    scenario = admin(refservers_http, "GET", "/scenarios").json()["scenarios"][0]
    assert (scenario["name"], scenario["state"], scenario["possibleStates"]) == ("svc", "broken", ["Started", "broken"])
    assert admin(refservers_http, "POST", "/scenarios/reset").status_code == 200
    assert requests.get(refservers_http.url + "/svc", timeout=10).status_code == 503
    assert admin(refservers_http, "PUT", "/scenarios/svc/state", json={"state": "broken"}).status_code == 200
    assert requests.get(refservers_http.url + "/svc", timeout=10).status_code == 200


def test_journal_count_find_near_misses_and_clear(refservers_http: Server) -> None:
    admin(refservers_http, "POST", "/mappings", json=ORDER)
    requests.get(refservers_http.url + "/v1/orders/42", headers={"X-Client": "a"}, timeout=10)
    requests.get(refservers_http.url + "/v1/orders/41", timeout=10)
    count = admin(refservers_http, "POST", "/requests/count", json={"urlPath": "/v1/orders/42", "headers": {"X-Client": {"equalTo": "a"}}})
    assert count.json()["count"] == 1
    found = admin(refservers_http, "POST", "/requests/find", json={"urlPathPattern": "/v1/orders/.*"}).json()["requests"]
    assert sorted(r["url"] for r in found) == ["/v1/orders/41", "/v1/orders/42"]
    misses = admin(refservers_http, "GET", "/near-misses/request-unmatched").json()["nearMisses"]
    near = [m for m in misses if m["request"]["url"] == "/v1/orders/41"]
    assert near and near[0]["stubMapping"]["request"]["urlPath"] == "/v1/orders/42"
    assert 0 < near[0]["matchResult"]["distance"] < 0.5
    journal = admin(refservers_http, "GET", "/requests").json()
    assert journal["requests"][0]["request"]["url"] == "/v1/orders/41"  # newest first
    assert journal["requests"][1]["wasMatched"] is True and journal["requests"][0]["wasMatched"] is False
    assert admin(refservers_http, "DELETE", "/requests").status_code == 200
    assert admin(refservers_http, "GET", "/requests").json()["meta"]["total"] == 0


def test_serve_event_ids_are_distinct_version_4_uuids(refservers_http: Server) -> None:
    with requests.Session() as session:
        for _ in range(40):
            session.get(refservers_http.url + "/get", timeout=10)
    events = admin(refservers_http, "GET", "/requests").json()["requests"]
    ids = [event["id"] for event in events]
    assert len(ids) >= 40 and len(set(ids)) == len(ids)
    for event in events:
        parsed = uuid.UUID(event["id"])
        assert (str(parsed), parsed.version, parsed.variant) == (event["id"], 4, uuid.RFC_4122)
        assert event["request"]["id"] == event["id"]


def test_health(refservers_http: Server) -> None:
    health = admin(refservers_http, "GET", "/health").json()
    assert health["status"] == "healthy" and health["version"].startswith("3.")


def test_fixture_helpers_stub_requests_verify(refservers_http: Server) -> None:
    http_server = refservers_http
    http_server.stub(request={"method": "POST", "url": "/hook"}, response={"status": 202})  # type: ignore[attr-defined]
    assert requests.post(http_server.url + "/hook", json={"event": "paid"}, timeout=10).status_code == 202
    logged = http_server.verify({"method": "POST", "url": "/hook", "bodyPatterns": [{"matchesJsonPath": "$.event"}]}, count=1)  # type: ignore[attr-defined]
    assert logged[0]["body"] == '{"event": "paid"}'
    assert http_server.requests({"method": "POST"})[0]["url"] == "/hook"  # type: ignore[attr-defined]
    with pytest.raises(VerificationError, match=r"expected 2 request\(s\).*closest: POST /hook"):
        http_server.verify({"method": "POST", "url": "/hook"}, count=2)  # type: ignore[attr-defined]


def test_templated_response_with_now_and_random(refservers_http: Server) -> None:
    refservers_http.stub(  # type: ignore[attr-defined]
        request={"urlPathTemplate": "/users/{id}"},
        response={
            "body": "{{request.path.id}} {{now offset='1 days' format='yyyy-MM-dd'}} {{randomValue length=8 type='HEXADECIMAL'}}",
            "transformers": ["response-template"],
        },
    )
    user, date, token = requests.get(refservers_http.url + "/users/ada", timeout=10).text.split()
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    assert (user, date, len(token), set(token) <= set("0123456789abcdef")) == ("ada", tomorrow, 8, True)


def test_delays(refservers_http: Server) -> None:
    refservers_http.stub(request={"url": "/slow"}, response={"fixedDelayMilliseconds": 300, "delayDistribution": {"type": "uniform", "lower": 100, "upper": 200}})  # type: ignore[attr-defined]
    refservers_http.stub(request={"url": "/fast"}, response={"body": "fast"})  # type: ignore[attr-defined]
    started = time.monotonic()
    assert requests.get(refservers_http.url + "/slow", timeout=10).status_code == 200
    slow = time.monotonic() - started
    started = time.monotonic()
    requests.get(refservers_http.url + "/fast", timeout=10)
    fast = time.monotonic() - started
    assert slow >= 0.4  # fixed 300 ms plus at least 100 from the distribution
    assert fast < slow - 0.3  # the other stub is not delayed (relative: the machine may be busy)


def test_chunked_dribble(refservers_http: Server) -> None:
    refservers_http.stub(request={"url": "/dribble"}, response={"body": "abcdefghij", "chunkedDribbleDelay": {"numberOfChunks": 5, "totalDuration": 500}})  # type: ignore[attr-defined]
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        started = time.monotonic()
        connection.request("GET", "/dribble")
        response = connection.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        first = response.read1()
        assert 0 < len(first) < 10  # the body comes in pieces, the first at once
        assert first + response.read() == b"abcdefghij"
        assert 0.35 <= time.monotonic() - started < 3
    finally:
        connection.close()


def _raw_get(server: Server, path: str) -> tuple[bytes, BaseException | None]:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        try:
            while chunk := sock.recv(4096):
                data += chunk
        except ConnectionResetError as error:
            return data, error
    return data, None


@pytest.mark.parametrize(
    ("fault", "expect_data", "expect_reset"),
    [
        ("CONNECTION_RESET_BY_PEER", b"", True),
        ("EMPTY_RESPONSE", b"", False),
        ("MALFORMED_RESPONSE_CHUNK", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nlskdu", False),
        ("RANDOM_DATA_THEN_CLOSE", b"lskdu", False),
    ],
)
def test_faults(refservers_http: Server, fault: str, expect_data: bytes, expect_reset: bool) -> None:
    refservers_http.stub(request={"url": "/fault"}, response={"fault": fault})  # type: ignore[attr-defined]
    data, error = _raw_get(refservers_http, "/fault")
    assert data.startswith(expect_data) and (expect_data or data == b"")
    assert (error is not None) == expect_reset
    assert requests.get(refservers_http.url + "/get", timeout=10).status_code == 200  # still serving


def test_stubs_on_https_too(refservers_http: Server) -> None:
    refservers_http.stub(request={"url": "/secure", "scheme": "https"}, response={"body": "tls"})  # type: ignore[attr-defined]
    tls_port = refservers_http.listeners["tls"]
    answer = requests.get(f"https://127.0.0.1:{tls_port}/secure", verify=str(refservers_http.core.tls.ca_file), timeout=10)
    assert answer.text == "tls"
    assert requests.get(refservers_http.url + "/secure", timeout=10).status_code == 404


def test_admin_refuses_cross_site_browsers_and_rebound_hosts(refservers_http: Server) -> None:
    """A web page must not rewrite stubs: foreign Origin or Host gets 403; scripts are unaffected."""
    mapping = {"request": {"url": "/x"}, "response": {"status": 200}}
    cross_site = admin(refservers_http, "POST", "/mappings", json=mapping, headers={"Origin": "http://evil.example"})
    assert cross_site.status_code == 403 and "evil.example" in cross_site.json()["error"]
    rebound = admin(refservers_http, "GET", "/mappings", headers={"Host": f"evil.example:{refservers_http.port}"})
    assert rebound.status_code == 403 and "http.admin_hosts" in rebound.json()["error"]
    same_site = admin(refservers_http, "POST", "/mappings", json=mapping, headers={"Origin": f"http://localhost:{refservers_http.port}"})
    assert same_site.status_code == 201
    # curl -d sends form-urlencoded; WireMock scripts do that, so it stays accepted.
    form_typed = admin(refservers_http, "POST", "/mappings", data=json.dumps(mapping), headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert form_typed.status_code == 201
    assert admin(refservers_http, "GET", "/mappings").json()["meta"]["total"] == 2


def test_stub_cors_for_browsers(refservers_http: Server) -> None:
    refservers_http.stub(request={"method": "GET", "url": "/api/me"}, response={"jsonBody": {"me": 1}})  # type: ignore[attr-defined]
    refservers_http.stub(request={"method": "GET", "url": "/api/own"}, response={"headers": {"Access-Control-Allow-Origin": "https://app.example"}})  # type: ignore[attr-defined]
    origin = {"Origin": "http://localhost:3000"}
    preflight = requests.options(refservers_http.url + "/api/me", headers={**origin, "Access-Control-Request-Method": "GET"}, timeout=10)
    assert preflight.status_code == 200 and "GET" in preflight.headers["Access-Control-Allow-Methods"]
    browser = requests.get(refservers_http.url + "/api/me", headers=origin, timeout=10)
    assert (browser.headers["Access-Control-Allow-Origin"], browser.headers["Access-Control-Allow-Credentials"]) == ("http://localhost:3000", "true")
    assert "Access-Control-Allow-Origin" not in requests.get(refservers_http.url + "/api/me", timeout=10).headers
    assert requests.get(refservers_http.url + "/api/own", headers=origin, timeout=10).headers["Access-Control-Allow-Origin"] == "https://app.example"


def test_files_api_and_unmatched_mappings(refservers_http: Server) -> None:
    assert admin(refservers_http, "PUT", "/files/orders/42.json", data=b'{"id": 42}').status_code == 200
    assert admin(refservers_http, "GET", "/files").json() == ["orders/42.json"]
    assert admin(refservers_http, "GET", "/files/orders/42.json").content == b'{"id": 42}'
    assert admin(refservers_http, "PUT", "/files/..%2F..%2Fescape", data=b"x").status_code == 400
    used = refservers_http.stub(request={"url": "/o"}, response={"bodyFileName": "orders/42.json"})  # type: ignore[attr-defined]
    unused = refservers_http.stub(request={"url": "/never"}, response={"status": 204})  # type: ignore[attr-defined]
    assert requests.get(refservers_http.url + "/o", timeout=10).json() == {"id": 42}
    assert [m["id"] for m in admin(refservers_http, "GET", "/mappings/unmatched").json()["mappings"]] == [unused["id"]]
    admin(refservers_http, "DELETE", "/mappings/unmatched")
    assert [m["id"] for m in admin(refservers_http, "GET", "/mappings").json()["mappings"]] == [used["id"]]
    assert admin(refservers_http, "DELETE", "/files/orders/42.json").status_code == 200
    assert admin(refservers_http, "GET", "/files/orders/42.json").status_code == 404


def test_global_settings_delay_every_stub(refservers_http: Server) -> None:
    refservers_http.stub(request={"url": "/quick"}, response={"status": 200})  # type: ignore[attr-defined]
    assert admin(refservers_http, "POST", "/settings", json={"fixedDelay": 300}).status_code == 200
    assert admin(refservers_http, "GET", "/settings").json()["settings"]["fixedDelay"] == 300
    started = time.monotonic()
    assert requests.get(refservers_http.url + "/quick", timeout=10).status_code == 200
    assert time.monotonic() - started >= 0.3
    assert admin(refservers_http, "POST", "/settings", json={"fixedDelay": -1}).status_code == 422
    admin(refservers_http, "POST", "/reset")  # as WireMock: a reset keeps the settings
    assert admin(refservers_http, "GET", "/settings").json()["settings"]["fixedDelay"] == 300
    admin(refservers_http, "POST", "/settings", json={"fixedDelay": 0})


def test_requests_since(refservers_http: Server) -> None:
    requests.get(refservers_http.url + "/get?before", timeout=10)
    cut = admin(refservers_http, "GET", "/requests").json()["requests"][0]["request"]["loggedDateString"]
    requests.get(refservers_http.url + "/get?after", timeout=10)
    urls = [e["request"]["url"] for e in admin(refservers_http, "GET", "/requests", params={"since": cut}).json()["requests"]]
    assert urls == ["/get?after"]
    assert admin(refservers_http, "GET", "/requests", params={"since": "yesterday"}).status_code == 400


def test_journal_bodies_are_bounded() -> None:
    """Uploads through httpbin are journalled too: bodies have a byte budget, oldest out first."""
    from servers.http.stubs.journal import RequestJournal, ServedResponse, ServeEvent
    from servers.http.stubs.matching import RequestView

    journal = RequestJournal(size=100, body_budget=1000)
    events = [ServeEvent(RequestView("POST", f"/{i}", [], b"x" * 300)) for i in range(5)]
    for event in events:
        journal.add(event)
    assert [e.request.url for e in journal.events()] == ["/2", "/3", "/4"]
    journal.answered(events[4], ServedResponse(200, [], b"y" * 200))
    assert [e.request.url for e in journal.events()] == ["/3", "/4"]
    journal.clear()
    for event in events:
        journal.add(event)
    assert len(journal.events()) == 3


def test_remote_target_helpers_speak_admin_over_http(refservers_http: Server) -> None:
    """A remote http target (container) gets the same stub/requests/verify, over /__admin."""
    from servers.http.stubs import StubFormatError
    from servers.testing.remote import RemoteServer

    remote = RemoteServer("http", refservers_http.host, refservers_http.port, env={})
    created = remote.stub(request={"method": "PUT", "urlPath": "/remote"}, response={"status": 204})
    assert created["request"]["urlPath"] == "/remote"
    assert requests.put(refservers_http.url + "/remote?x=1", timeout=10).status_code == 204
    assert [r["url"] for r in remote.requests({"method": "PUT"})] == ["/remote?x=1"]
    assert remote.verify({"urlPath": "/remote"}, count=1)[0]["method"] == "PUT"
    with pytest.raises(VerificationError, match=r"found 0; closest: PUT /remote\?x=1"):
        remote.verify({"method": "PUT", "urlPath": "/remotely"})
    with pytest.raises(StubFormatError, match=r"^request\.url: expected a string"):
        remote.stub(request={"url": 5})
