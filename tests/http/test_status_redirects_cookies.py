"""Status codes, response headers, redirects and cookies."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from http.cookiejar import CookieJar

import pytest
import requests

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


@pytest.mark.parametrize("code", [200, 201, 204, 400, 404, 418, 500, 503])
def test_status_code_is_answered_as_asked(refservers_http, code):
    assert requests.get(f"{refservers_http.url}/status/{code}", allow_redirects=False, timeout=10).status_code == code


def test_status_extras_redirect_auth_and_teapot(refservers_http):
    base = refservers_http.url
    moved = requests.get(f"{base}/status/302", allow_redirects=False, timeout=10)
    assert moved.headers["Location"] == "/redirect/1"
    assert requests.get(f"{base}/status/401", timeout=10).headers["WWW-Authenticate"].startswith("Basic")
    teapot = requests.post(f"{base}/status/418", timeout=10)
    assert teapot.status_code == 418 and "teapot" in teapot.text


def test_weighted_status_list_picks_only_codes_with_weight(refservers_http):
    seen = {requests.get(f"{refservers_http.url}/status/200:0,503:1", timeout=10).status_code for _ in range(10)}
    assert seen == {503}
    mixed = {requests.get(f"{refservers_http.url}/status/201,202", timeout=10).status_code for _ in range(40)}
    assert mixed <= {201, 202}


@pytest.mark.parametrize("spec", ["abc", "99", "600", "200:x", "200:0,500:0"])
def test_bad_status_specs_are_400(refservers_http, spec):
    reply = requests.get(f"{refservers_http.url}/status/{spec}", timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]


def test_response_headers_from_query(refservers_http):
    reply = requests.get(f"{refservers_http.url}/response-headers?X-Color=blue&X-Many=1&X-Many=2", timeout=10)
    assert reply.headers["X-Color"] == "blue"
    assert reply.headers["X-Many"] == "1, 2"
    assert reply.json() == {"X-Color": "blue", "X-Many": ["1", "2"]}


def test_redirect_chain_followed_by_requests(refservers_http):
    reply = requests.get(f"{refservers_http.url}/redirect/3", timeout=10)
    assert reply.status_code == 200
    assert [r.headers["Location"] for r in reply.history] == ["/relative-redirect/2", "/relative-redirect/1", "/get"]
    assert reply.url == f"{refservers_http.url}/get"


def test_absolute_redirects_followed_by_urllib(refservers_http):
    with urllib.request.urlopen(f"{refservers_http.url}/absolute-redirect/2") as reply:
        assert reply.url == f"{refservers_http.url}/get"
        assert json.load(reply)["url"] == f"{refservers_http.url}/get"
    first = requests.get(f"{refservers_http.url}/redirect/2?absolute=true", allow_redirects=False, timeout=10)
    assert first.headers["Location"] == f"{refservers_http.url}/absolute-redirect/1"


def test_curl_follows_redirects_and_counts_them(curl):
    result = curl("/redirect/4", "--location", "--write-out", "\n%{num_redirects} %{http_code}")
    assert result.stdout.decode().rsplit("\n", 1)[1] == "4 200"


def test_redirect_to_with_status_code(refservers_http):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.request("GET", "/redirect-to?url=http%3A%2F%2Fexample.invalid%2Fx&status_code=307")
        reply = connection.getresponse()
        reply.read()
        assert reply.status == 307
        assert reply.headers["Location"] == "http://example.invalid/x"
        connection.request("GET", "/redirect-to")
        missing = connection.getresponse()
        missing.read()
        assert missing.status == 400
    finally:
        connection.close()


def test_cookies_set_read_and_delete_with_a_session(refservers_http):
    base = refservers_http.url
    with requests.Session() as session:
        assert session.get(f"{base}/cookies/set?flavor=oat&size=big", timeout=10).json() == {
            "cookies": {"flavor": "oat", "size": "big"}
        }
        assert session.get(f"{base}/cookies/set/extra/1", timeout=10).json()["cookies"]["extra"] == "1"
        after = session.get(f"{base}/cookies/delete?flavor", timeout=10).json()
    assert after == {"cookies": {"size": "big", "extra": "1"}}


def test_cookies_with_urllib_cookie_jar(refservers_http):
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{refservers_http.url}/cookies/set/session/abc") as reply:
        assert json.load(reply) == {"cookies": {"session": "abc"}}
    assert [cookie.name for cookie in jar] == ["session"]


def test_cookie_values_are_quoted_as_httpbin_sets_them_and_read_back(refservers_http):
    # Werkzeug's rules (httpbin): bare when token-like, else quoted with octal escapes; never %-encoded.
    base = refservers_http.url
    set_reply = requests.get(f"{base}/cookies/set", params={"plain": "a=b", "spaced": "hello world", "semi": "a;b"}, allow_redirects=False, timeout=10)
    assert set_reply.raw.headers.getlist("Set-Cookie") == [
        "plain=a=b; Path=/",
        'spaced="hello world"; Path=/',
        'semi="a\\073b"; Path=/',
    ]
    with requests.Session() as session:
        read = session.get(f"{base}/cookies/set", params={"spaced": "hello world", "accent": "café"}, timeout=10)
    assert read.json() == {"cookies": {"spaced": "hello world", "accent": "café"}}


def test_trace_is_answered_by_status_and_anything(refservers_http):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.request("TRACE", "/status/418")
        teapot = connection.getresponse()
        assert teapot.status == 418 and b"teapot" in teapot.read()
        connection.request("TRACE", "/anything/x")
        echoed = connection.getresponse()
        assert echoed.status == 200 and json.loads(echoed.read())["method"] == "TRACE"
    finally:
        connection.close()


def test_redirect_zero_is_a_client_error(refservers_http):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{refservers_http.url}/relative-redirect/0")
    assert caught.value.code == 400
    caught.value.close()
