"""Delays, paced and chunked bodies, random bytes, Range, compression and caching."""

from __future__ import annotations

import gzip
import http.client
import json
import random
import socket
import zlib

import brotli
import pytest
import requests

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok


def test_delay_does_not_block_other_requests(refservers_start):
    server = refservers_start("http", delay_max="60")
    since = server.journal.last_id
    with socket.create_connection((server.host, server.port), timeout=10) as slow:
        slow.sendall(b"GET /delay/60 HTTP/1.1\r\nHost: x\r\n\r\n")
        # While /delay/60 waits on the reactor, another client is answered.
        assert requests.get(f"{server.url}/get", timeout=10).status_code == 200
        answered = server.journal.events(server="http", kind="request", since=since)
        assert [event.details["path"] for event in answered] == ["/get"]
    # The client that gave up waiting is journalled as aborted.
    gave_up = server.journal.wait_for(lambda e: e.details.get("aborted") is True, since=since, kind="request")
    assert gave_up.details["path"] == "/delay/60"


@pytest.mark.parametrize("path", ["/stream/3", "/drip?numbytes=4&duration=0.1", "/stream-bytes/10"])
def test_head_of_paced_endpoints_answers_headers_only(refservers_http, curl, path):
    since = refservers_http.journal.last_id
    headers = curl(path, "--head").stdout.decode()
    assert headers.startswith("HTTP/1.1 200")
    event = refservers_http.journal.wait_for(since=since, server="http", kind="request")
    assert event.details["method"] == "HEAD" and event.details["bytes"] == 0 and "aborted" not in event.details


def test_delay_is_capped_by_delay_max(refservers_http):
    # The fixture's delay_max is 0.5: a 100 s delay comes back well inside the timeout.
    reply = requests.get(f"{refservers_http.url}/delay/100", timeout=20)
    assert reply.status_code == 200 and reply.json()["url"].endswith("/delay/100")


def test_delay_reply_has_the_anything_shape(refservers_http):
    body = requests.post(f"{refservers_http.url}/delay/0", data={"a": "1"}, timeout=10).json()
    assert body["form"] == {"a": "1"} and body["method"] == "POST"
    assert requests.get(f"{refservers_http.url}/delay/soon", timeout=10).status_code == 400


def test_drip_sends_the_asked_bytes_and_status(refservers_http):
    reply = requests.get(f"{refservers_http.url}/drip?numbytes=5&duration=0.2&code=202", timeout=10)
    assert reply.status_code == 202
    assert reply.content == b"*****"
    assert reply.headers["Content-Length"] == "5"


def test_stream_sends_n_json_lines_chunked(refservers_http):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.request("GET", "/stream/4?x=1")
        reply = connection.getresponse()
        assert reply.headers["Transfer-Encoding"] == "chunked"
        lines = [json.loads(line) for line in reply.read().splitlines()]
    finally:
        connection.close()
    assert [line["id"] for line in lines] == [0, 1, 2, 3]
    assert all(line["args"] == {"x": "1"} for line in lines)


def test_stream_bytes_and_bytes_are_reproducible_with_a_seed(refservers_http):
    base = refservers_http.url
    one = requests.get(f"{base}/bytes/64?seed=7", timeout=10).content
    two = requests.get(f"{base}/bytes/64?seed=7", timeout=10).content
    other = requests.get(f"{base}/bytes/64?seed=8", timeout=10).content
    assert len(one) == 64 and one == two != other
    streamed = requests.get(f"{base}/stream-bytes/300?seed=7&chunk_size=50", timeout=10)
    assert streamed.headers["Transfer-Encoding"] == "chunked"
    assert len(streamed.content) == 300
    assert streamed.content == requests.get(f"{base}/stream-bytes/300?seed=7", timeout=10).content


def test_seeded_bytes_are_httpbins_bytes(refservers_http):
    # httpbin seeds Python's random and draws randint(0, 255) per byte: the same seed, the same bytes.
    oracle = random.Random(42)
    expected = bytes(oracle.randint(0, 255) for _ in range(1000))
    base = refservers_http.url
    assert requests.get(f"{base}/bytes/1000?seed=42", timeout=10).content == expected
    assert requests.get(f"{base}/stream-bytes/1000?seed=42&chunk_size=7", timeout=10).content == expected
    assert requests.get(f"{base}/bytes/10?seed=0", timeout=10).content == b"\xc5\xd7\x14\x84\xf8\xcf\x9b\xf4\xb7o"
    assert requests.get(f"{base}/bytes/10?seed=x", timeout=10).status_code == 400


def test_range_with_http_client_and_curl(refservers_http, curl):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.request("GET", "/range/52", headers={"Range": "bytes=10-19"})
        part = connection.getresponse()
        assert part.status == 206
        assert part.headers["Content-Range"] == "bytes 10-19/52"
        assert part.read() == b"klmnopqrst"
        connection.request("GET", "/range/52", headers={"Range": "bytes=-3"})
        tail = connection.getresponse()
        assert tail.read() == b"xyz"
        connection.request("GET", "/range/52", headers={"Range": "bytes=100-"})
        beyond = connection.getresponse()
        beyond.read()
        assert beyond.status == 416
        assert beyond.headers["Content-Range"] == "bytes */52"
    finally:
        connection.close()
    assert curl("/range/26", "--range", "0-4").stdout == b"abcde"
    whole = requests.get(f"{refservers_http.url}/range/26", timeout=10)
    assert whole.status_code == 200 and whole.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize(
    "path, encoding, flag, decode",
    [("/gzip", "gzip", "gzipped", gzip.decompress), ("/deflate", "deflate", "deflated", zlib.decompress),
     ("/brotli", "br", "brotli", brotli.decompress)],
)
def test_compressed_endpoints_are_really_encoded(refservers_http, curl, path, encoding, flag, decode):
    raw = curl(path, "--include", "--raw").stdout
    head, _, body = raw.partition(b"\r\n\r\n")
    assert f"content-encoding: {encoding}".encode() in head.lower()
    assert json.loads(decode(body))[flag] is True
    # curl --compressed and requests decode them transparently.
    assert json.loads(curl(path, "--compressed").stdout)[flag] is True
    assert requests.get(refservers_http.url + path, timeout=10).json()[flag] is True


def test_cache_and_cache_control(refservers_http):
    base = refservers_http.url
    first = requests.get(f"{base}/cache", timeout=10)
    assert first.status_code == 200 and first.headers["ETag"] and first.headers["Last-Modified"]
    again = requests.get(f"{base}/cache", headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
    assert again.status_code == 304 and again.content == b""
    since = requests.get(f"{base}/cache", headers={"If-Modified-Since": first.headers["Last-Modified"]}, timeout=10)
    assert since.status_code == 304
    assert requests.get(f"{base}/cache/60", timeout=10).headers["Cache-Control"] == "public, max-age=60"


def test_etag_conditional_requests(refservers_http):
    url = f"{refservers_http.url}/etag/abc"
    plain = requests.get(url, timeout=10)
    assert plain.status_code == 200 and plain.headers["ETag"] == '"abc"'
    assert requests.get(url, headers={"If-None-Match": '"abc"'}, timeout=10).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"other", W/"abc"'}, timeout=10).status_code == 304
    assert requests.get(url, headers={"If-None-Match": '"other"'}, timeout=10).status_code == 200
    assert requests.get(url, headers={"If-Match": '"other"'}, timeout=10).status_code == 412
    assert requests.get(url, headers={"If-Match": '"abc"'}, timeout=10).status_code == 200
