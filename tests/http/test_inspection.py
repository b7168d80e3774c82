"""Request inspection endpoints: httpbin's JSON shapes from several real clients."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
import uuid

import pytest
import requests

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


def test_get_echoes_args_headers_origin_and_url_to_urllib(refservers_http, client_origin):
    request = urllib.request.Request(f"{refservers_http.url}/get?a=1&a=2&b=x%20y", headers={"X-Test": "yes"})
    with urllib.request.urlopen(request) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"] == "application/json"
        body = json.load(reply)
    assert body["args"] == {"a": ["1", "2"], "b": "x y"}
    assert body["headers"]["X-Test"] == "yes"
    assert body["headers"]["Host"] == f"127.0.0.1:{refservers_http.port}"
    assert body["origin"] == client_origin
    assert body["url"] == f"{refservers_http.url}/get?a=1&a=2&b=x%20y"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_body_methods_report_json_bodies(refservers_http, method):
    reply = requests.request(method, f"{refservers_http.url}/{method.lower()}?q=1", json={"k": [1, 2]}, timeout=10)
    assert reply.status_code == 200
    body = reply.json()
    assert body["json"] == {"k": [1, 2]}
    assert body["data"] == '{"k": [1, 2]}'
    assert body["args"] == {"q": "1"}
    assert body["form"] == {} and body["files"] == {}


def test_post_form_and_multipart_files_with_requests(refservers_http):
    form = requests.post(f"{refservers_http.url}/post", data={"name": "Ada", "tag": ["a", "b"]}, timeout=10).json()
    assert form["form"] == {"name": "Ada", "tag": ["a", "b"]}
    assert form["data"] == ""
    files = requests.post(
        f"{refservers_http.url}/post",
        data={"field": "value"},
        files={"text": ("notes.txt", b"hello"), "blob": ("b.bin", b"\xff\x00\xfe", "application/octet-stream")},
        timeout=10,
    ).json()
    assert files["form"] == {"field": "value"}
    assert files["files"]["text"] == "hello"
    assert files["files"]["blob"] == "data:application/octet-stream;base64,/wD+"


def test_post_with_curl_form_and_raw_data(curl, tmp_path):
    (tmp_path / "host.txt").write_text("line one\n")
    raw = json.loads(curl("/post", "--data-binary", "plain text", "-H", "Content-Type: text/plain").stdout)
    assert raw["data"] == "plain text" and raw["json"] is None
    multipart = json.loads(curl("/post", "-F", "n=1", "-F", f"upload=@{tmp_path / 'host.txt'}").stdout)
    assert multipart["form"] == {"n": "1"}
    assert multipart["files"] == {"upload": "line one\n"}


def test_anything_reports_method_and_any_subpath(refservers_http):
    reply = requests.request("PATCH", f"{refservers_http.url}/anything/deep/path?x=1", data="hi", timeout=10).json()
    assert reply["method"] == "PATCH"
    assert reply["url"].endswith("/anything/deep/path?x=1")
    assert reply["data"] == "hi"
    assert requests.get(f"{refservers_http.url}/anything", timeout=10).json()["method"] == "GET"


def test_headers_ip_user_agent_uuid(refservers_http, client_origin):
    base = refservers_http.url
    headers = requests.get(f"{base}/headers", headers={"X-One": "1"}, timeout=10).json()["headers"]
    assert headers["X-One"] == "1"
    assert requests.get(f"{base}/ip", timeout=10).json() == {"origin": client_origin}
    assert requests.get(f"{base}/user-agent", headers={"User-Agent": "probe/1.0"}, timeout=10).json() == {
        "user-agent": "probe/1.0"
    }
    first = requests.get(f"{base}/uuid", timeout=10).json()["uuid"]
    second = requests.get(f"{base}/uuid", timeout=10).json()["uuid"]
    assert uuid.UUID(first).version == 4 and first != second


def test_wrong_method_is_405_with_allow_and_unknown_path_is_404(refservers_http):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(urllib.request.Request(f"{refservers_http.url}/get", data=b"x", method="POST"))
    assert caught.value.code == 405
    assert caught.value.headers["Allow"] == "GET"
    caught.value.close()
    missing = requests.get(f"{refservers_http.url}/no/such/thing", timeout=10)
    assert missing.status_code == 404
    assert "no such endpoint" in missing.json()["error"]


def test_head_has_headers_and_no_body_and_options_answers_cors(refservers_http):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.request("HEAD", "/json")
        head = connection.getresponse()
        assert head.status == 200
        assert int(head.headers["Content-Length"]) > 0
        assert head.read() == b""
        connection.request("OPTIONS", "/post", headers={"Access-Control-Request-Headers": "X-Custom"})
        options = connection.getresponse()
        options.read()
        assert options.status == 200
        assert options.headers["Access-Control-Allow-Origin"] == "*"
        assert options.headers["Access-Control-Allow-Headers"] == "X-Custom"
    finally:
        connection.close()


def test_cors_echoes_the_origin_so_credentialed_browser_requests_work(refservers_http):
    # A browser refuses "Access-Control-Allow-Origin: *" together with credentials; httpbin echoes Origin.
    reply = requests.get(f"{refservers_http.url}/get", headers={"Origin": "http://app.test:3000"}, timeout=10)
    assert reply.headers["Access-Control-Allow-Origin"] == "http://app.test:3000"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert requests.get(f"{refservers_http.url}/get", timeout=10).headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    "headers, scheme",
    [
        ({"X-Forwarded-Proto": "https"}, "https"),
        ({"X-Forwarded-Protocol": "https"}, "https"),
        ({"X-Forwarded-Ssl": "on"}, "https"),
        ({"X-Forwarded-Ssl": "off"}, "http"),
        ({}, "http"),
    ],
)
def test_url_takes_the_scheme_a_proxy_forwarded(refservers_http, headers, scheme):
    body = requests.get(f"{refservers_http.url}/get?x=1", headers=headers, timeout=10).json()
    assert body["url"] == f"{scheme}://{refservers_http.host}:{refservers_http.port}/get?x=1"
