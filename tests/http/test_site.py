"""Beyond httpbin: static files, CGI, uploads, HTTPS, keep-alive, chunked, faults, journal."""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import socket
import ssl
import time
import urllib.request
from pathlib import Path

import h11
import pytest
import requests

from servers.core import ConfigError

# Real clients on host/port/url only: also run against the compose stack (make test-containers).
pytestmark = pytest.mark.container_ok
ON_CONTAINERS = os.environ.get("REFSERVERS_TARGET") == "container"

# -- static files --------------------------------------------------------------------------


def test_static_files_listing_and_range(refservers_http, curl):
    root = Path(refservers_http.static_dir)
    (root / "docs").mkdir()
    (root / "docs" / "readme.txt").write_text("0123456789")
    listing = requests.get(f"{refservers_http.url}/static/docs/", timeout=10)
    assert listing.status_code == 200 and 'href="readme.txt"' in listing.text
    assert requests.get(f"{refservers_http.url}/static/docs/readme.txt", timeout=10).text == "0123456789"
    part = curl("/static/docs/readme.txt", "--range", "3-5", "--write-out", "\n%{http_code}").stdout.decode()
    assert part == "345\n206"


@pytest.mark.parametrize("size", [0, 16 * 1024, 64 * 1024, 64 * 1024 + 1, 300 * 1024])
def test_static_bodies_small_and_large_keep_length_ranges_and_conditional_get(refservers_http, size):
    # Bodies up to one 64 KiB buffer are written at once, bigger ones through Twisted's
    # producers: both must give the same bytes, headers, ranges and 304s.
    data = bytes(i % 251 for i in range(size))
    (Path(refservers_http.static_dir) / "blob.bin").write_bytes(data)
    url = f"{refservers_http.url}/static/blob.bin"
    with requests.Session() as session:  # keep-alive: each answer must be framed right
        whole = session.get(url, timeout=10)
        assert whole.status_code == 200 and whole.content == data
        assert whole.headers["Content-Length"] == str(size) and whole.headers["Accept-Ranges"] == "bytes"
        head = session.head(url, timeout=10)
        assert head.headers["Content-Length"] == str(size) and head.content == b""
        if size:
            last = session.get(url, headers={"Range": f"bytes={size // 2}-"}, timeout=10)
            assert last.status_code == 206 and last.content == data[size // 2 :]
            assert last.headers["Content-Range"] == f"bytes {size // 2}-{size - 1}/{size}"
        if size > 10:
            several = session.get(url, headers={"Range": "bytes=0-1,5-7"}, timeout=10)
            assert several.status_code == 206 and several.headers["Content-Type"].startswith("multipart/byteranges")
            assert data[0:2] in several.content and data[5:8] in several.content
        cached = session.get(url, headers={"If-Modified-Since": whole.headers["Last-Modified"]}, timeout=10)
        assert cached.status_code == 304 and cached.content == b""
        assert session.get(url, timeout=10).content == data


def test_static_without_trailing_slash_redirects_and_missing_is_404(refservers_http):
    (Path(refservers_http.static_dir) / "d").mkdir()
    moved = requests.get(f"{refservers_http.url}/static/d", allow_redirects=False, timeout=10)
    assert moved.status_code in (301, 302) and moved.headers["Location"].endswith("/static/d/")
    assert requests.get(f"{refservers_http.url}/static/nope.txt", timeout=10).status_code == 404


@pytest.mark.parametrize("path", ["/static/../server.py", "/static/%2e%2e/uploads/", "/static/..%2fcgi-bin/", "/static//etc/passwd"])
def test_static_paths_never_escape_the_root(refservers_http, curl, path):
    secret = Path(refservers_http.static_dir).parent / "secret.txt"
    secret.write_text("do not serve")
    result = curl(path.replace("server.py", "secret.txt"), "--path-as-is", "--write-out", "\n%{http_code}")
    body, code = result.stdout.decode().rsplit("\n", 1)
    assert code in ("400", "404") and "do not serve" not in body


def test_configured_static_dir_must_exist(refservers_start, tmp_path):
    with pytest.raises(ConfigError, match=r"\[http\] static_dir: .* is not a directory"):
        refservers_start("http", static_dir=str(tmp_path / "missing"))


def test_configured_static_dir_is_served(refservers_start, tmp_path):
    (tmp_path / "hello.html").write_text("<p>hi</p>")
    server = refservers_start("http", static_dir=str(tmp_path))
    reply = requests.get(f"{server.url}/static/hello.html", timeout=10)
    assert reply.text == "<p>hi</p>" and reply.headers["Content-Type"].startswith("text/html")


# -- CGI ---------------------------------------------------------------------------------


def test_cgi_script_gets_query_method_and_body(refservers_http, curl):
    script = Path(refservers_http.cgi_dir) / "echo.sh"
    script.write_text(
        "#!/bin/sh\n"
        "printf 'Content-Type: text/plain\\r\\nX-Cgi: yes\\r\\n\\r\\n'\n"
        'echo "method=$REQUEST_METHOD query=$QUERY_STRING"\n'
        "cat\n"
    )
    script.chmod(0o755)
    get = requests.get(f"{refservers_http.url}/cgi-bin/echo.sh?a=1", timeout=10)
    assert get.status_code == 200 and get.headers["X-Cgi"] == "yes"
    assert get.text == "method=GET query=a=1\n"
    posted = curl("/cgi-bin/echo.sh", "--data-binary", "payload").stdout.decode()
    assert posted == "method=POST query=\npayload"


def test_missing_cgi_script_is_404(refservers_http):
    assert requests.get(f"{refservers_http.url}/cgi-bin/none.sh", timeout=10).status_code == 404


# -- uploads -----------------------------------------------------------------------------


def test_upload_with_curl_is_stored_durably_and_journalled(refservers_http, curl, tmp_path):
    source = tmp_path / "report.csv"
    source.write_bytes(b"a,b\n1,2\n")
    since = refservers_http.journal.last_id
    result = json.loads(curl("/upload", "-F", f"file=@{source}").stdout)
    assert result["files"][0]["filename"] == "report.csv" and result["files"][0]["size"] == 8
    stored = Path(refservers_http.data_dir) / "uploads" / "report.csv"
    assert stored.read_bytes() == b"a,b\n1,2\n"
    event = refservers_http.journal.wait_for(since=since, server="http", kind="file")
    assert event.details["filename"] == "report.csv" and event.details["size"] == 8
    listed = requests.get(f"{refservers_http.url}/upload", headers={"Accept": "application/json"}, timeout=10).json()
    assert listed == {"files": [{"filename": "report.csv", "size": 8}]}


@pytest.mark.parametrize(
    "client_name, stored_name",
    [("../../escape.txt", "escape.txt"), ("..\\..\\win.txt", "win.txt"), ("..", "upload.bin"), ("a b$c.txt", "a_b_c.txt")],
)
def test_upload_names_are_sanitized_and_stay_inside(refservers_http, client_name, stored_name):
    reply = requests.post(f"{refservers_http.url}/upload", files={"f": (client_name, b"x")}, timeout=10)
    assert reply.status_code == 201
    assert reply.json()["files"][0]["filename"] == stored_name
    uploads = Path(refservers_http.data_dir) / "uploads"
    assert (uploads / stored_name).read_bytes() == b"x"
    assert not (Path(refservers_http.data_dir).parent / "escape.txt").exists()
    assert sorted(p.name for p in uploads.iterdir()) == [stored_name]


def test_upload_larger_than_upload_max_is_413_and_not_stored(refservers_start):
    server = refservers_start("http", upload_max="1000")
    reply = requests.post(f"{server.url}/upload", files={"f": ("big.bin", b"x" * 2000)}, timeout=10)
    assert reply.status_code == 413
    assert not (Path(server.data_dir) / "uploads" / "big.bin").exists()
    assert requests.post(f"{server.url}/upload", files={"f": ("small.bin", b"x" * 10)}, timeout=10).status_code == 201


def test_upload_errors(refservers_http):
    url = f"{refservers_http.url}/upload"
    assert requests.post(url, data=b"raw", timeout=10).status_code == 415
    assert requests.post(url, files={"field": (None, "not a file")}, timeout=10).status_code == 400
    assert "multipart/form-data" in requests.get(url, timeout=10).text


# -- HTTPS, keep-alive, chunked --------------------------------------------------------------


def test_https_verified_with_the_generated_ca(refservers_http, curl):
    ca_file = str(refservers_http.core.tls.ca_file)
    https_url = f"https://localhost:{refservers_http.listeners['tls']}"
    reply = requests.get(f"{https_url}/get", verify=ca_file, timeout=10)
    assert reply.json()["url"] == f"{https_url}/get"
    context = ssl.create_default_context(cafile=ca_file)
    with urllib.request.urlopen(f"https://127.0.0.1:{refservers_http.listeners['tls']}/ip", context=context) as answer:
        assert json.load(answer) == {"origin": "127.0.0.1"}
    assert json.loads(curl(f"{https_url}/json", "--cacert", ca_file).stdout)["slideshow"]
    refused = curl(f"{https_url}/json", check=False)  # no CA given: curl must refuse the certificate
    assert refused.returncode == 60
    event = refservers_http.journal.wait_for(lambda e: e.details.get("path") == "/ip", kind="request")
    assert event.details["tls"] is True


@pytest.mark.skipif(ON_CONTAINERS, reason="Docker's port publishing relays the connection: the server sees another source port")
def test_keep_alive_reuses_one_connection(refservers_http):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        peers = set()
        for path in ("/get", "/json", "/status/204", "/post"):
            connection.request("POST" if path == "/post" else "GET", path, body=b"x" if path == "/post" else None)
            reply = connection.getresponse()
            reply.read()
            assert reply.status in (200, 204)
            peers.add(connection.sock.getsockname())
    finally:
        connection.close()
    assert len(peers) == 1
    local_port = peers.pop()[1]
    requests_seen = [e for e in refservers_http.journal.events(server="http", kind="request") if e.peer.endswith(f":{local_port}")]
    assert [e.details["path"] for e in requests_seen][-4:] == ["/get", "/json", "/status/204", "/post"]


@pytest.mark.skipif(ON_CONTAINERS, reason="Docker's port publishing relays the connection: the server sees another source port")
def test_pipelined_requests_are_answered_in_order_and_journalled_by_then(refservers_http):
    # Direct answers, a HEAD and a 204 (headers only), a delayed answer, a paced
    # chunked stream and an error, all sent in one write: each reply is complete and
    # in order, and a reply a client has read is already in the journal.
    asked = [("GET", "/get"), ("HEAD", "/get"), ("GET", "/status/204"), ("GET", "/delay/0"),
             ("GET", "/stream/2"), ("GET", "/no/such/endpoint"), ("GET", "/ip")]  # fmt: skip
    host = f"{refservers_http.host}:{refservers_http.port}"
    wire = b"".join(f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode() for method, path in asked)
    client = h11.Connection(h11.CLIENT)
    with socket.create_connection((refservers_http.host, refservers_http.port), timeout=10) as sock:
        sock.sendall(wire)
        local_port = sock.getsockname()[1]
        for index, (method, path) in enumerate(asked):
            client.send(h11.Request(method=method, target=path, headers=[("Host", host)]))  # the state only: sent above
            client.send(h11.EndOfMessage())
            reply, body = None, b""
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(sock.recv(65536))
                elif isinstance(event, h11.Response):
                    reply = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert reply is not None
            journalled = [e.details["path"] for e in refservers_http.journal.events(server="http", kind="request") if e.peer.endswith(f":{local_port}")]
            # Read only now, and already journalled (later ones may be too: the server reads ahead).
            assert journalled[: index + 1] == [p for _, p in asked[: index + 1]]
            expected = {"/status/204": 204, "/no/such/endpoint": 404}.get(path, 200)
            assert reply.status_code == expected, (method, path)
            if method == "HEAD" or expected == 204:
                assert body == b""
            elif path == "/stream/2":
                assert [json.loads(line)["id"] for line in body.splitlines()] == [0, 1]
            elif expected == 200:
                assert json.loads(body)["origin" if path == "/ip" else "url"]
            client.start_next_cycle()


def test_idle_connections_are_closed_after_idle_timeout_but_not_while_answered(refservers_start):
    # The timeout counts only silence between requests (as Twisted's): a reply that
    # takes longer than it (/delay/0.5 with a 0.2 s timeout) still arrives whole, then
    # the silent connection is closed, as is one that never sent a request.
    server = refservers_start("http", idle_timeout="0.2")
    with socket.create_connection((server.host, server.port), timeout=10) as never_asked:
        connection = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            connection.request("GET", "/delay/0.5")
            reply = connection.getresponse()
            assert reply.status == 200 and json.loads(reply.read())["url"].endswith("/delay/0.5")
            assert connection.sock.recv(1) == b""  # closed by the server, not timed out here
        finally:
            connection.close()
        assert never_asked.recv(1) == b""


def test_idle_timeout_zero_keeps_connections_open(refservers_start):
    server = refservers_start("http", idle_timeout="0")
    with socket.create_connection((server.host, server.port), timeout=0.6) as silent:
        with pytest.raises(TimeoutError):
            silent.recv(1)  # still open after 0.6 s of silence
        silent.sendall(f"GET /get HTTP/1.1\r\nHost: {server.host}\r\nConnection: close\r\n\r\n".encode())
        assert silent.recv(64).startswith(b"HTTP/1.1 200 OK")


def test_date_header_follows_the_clock_and_options_star_is_answered(refservers_http):
    # The Date text is made once a second: a request in a later second gets a later Date.
    first = requests.get(f"{refservers_http.url}/get", timeout=10)
    sent = email.utils.parsedate_to_datetime(first.headers["Date"]).timestamp()
    time.sleep(max(0.0, sent + 1.05 - time.time()))  # into the next second of the clock, not a readiness wait
    later = requests.get(f"{refservers_http.url}/get", timeout=10)
    assert email.utils.parsedate_to_datetime(later.headers["Date"]).timestamp() > sent
    assert later.headers["Server"].startswith("TwistedWeb/")
    # "*" requests are Twisted's: OPTIONS * is 200, anything else 405 (RFC 9110 section 9.3.7).
    with socket.create_connection((refservers_http.host, refservers_http.port), timeout=10) as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\nGET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        local_port = sock.getsockname()[1]
        replies = b""
        while chunk := sock.recv(65536):
            replies += chunk
    assert replies.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"HTTP/1.1 405 Method Not Allowed\r\n" in replies and b"Allow: OPTIONS\r\n" in replies
    if not ON_CONTAINERS:  # (Docker's port publishing relays the connection from another port)
        journalled = refservers_http.journal.events(server="http", kind="request")
        assert [(e.details["method"], e.details["status"]) for e in journalled if e.peer == f"127.0.0.1:{local_port}"] == [
            ("OPTIONS", 200),
            ("GET", 405),
        ]


def test_chunked_request_body_is_read(refservers_http):
    connection = http.client.HTTPConnection(refservers_http.host, refservers_http.port, timeout=10)
    try:
        connection.request("POST", "/post", body=iter([b"hello ", b"chunked ", b"world"]), encode_chunked=True,
                           headers={"Content-Type": "text/plain"})
        body = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert body["data"] == "hello chunked world"
    assert body["headers"].get("Transfer-Encoding") is None or body["headers"]["Transfer-Encoding"] == "chunked"


# -- faults, journal, trace -------------------------------------------------------------------


def test_status_fault_replaces_the_answer_for_matching_paths(refservers_http):
    rule = refservers_http.core.faults.add({"server": "http", "match": "/get*", "action": "status", "params": {"code": 503}, "times": 1})
    assert requests.get(f"{refservers_http.url}/get", timeout=10).status_code == 503
    assert requests.get(f"{refservers_http.url}/get", timeout=10).status_code == 200  # times=1
    assert requests.get(f"{refservers_http.url}/json", timeout=10).status_code == 200
    fired = refservers_http.journal.wait_for(kind="fault", server="http")
    assert fired.details["rule"] == rule.id and fired.details["subject"] == "/get"


def test_delay_fault_postpones_then_answers(refservers_http):
    refservers_http.core.faults.add({"server": "http", "match": "/uuid", "action": "delay", "params": {"seconds": 0.2}})
    since = refservers_http.journal.last_id
    assert requests.get(f"{refservers_http.url}/uuid", timeout=10).status_code == 200
    kinds = [e.kind for e in refservers_http.journal.events(server="http", since=since)]
    assert kinds == ["fault", "request"]


def test_disconnect_fault_drops_the_connection(refservers_http):
    refservers_http.core.faults.add({"server": "http", "match": "/html", "action": "disconnect"})
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{refservers_http.url}/html", timeout=10)
    assert requests.get(f"{refservers_http.url}/xml", timeout=10).status_code == 200


def test_unknown_fault_action_is_refused(refservers_http):
    from servers.core.faults import FaultError

    with pytest.raises(FaultError, match="action: http supports delay, disconnect, status"):
        refservers_http.core.faults.add({"server": "http", "action": "explode"})


@pytest.mark.skipif(ON_CONTAINERS, reason="the container's journal is shared with concurrent tests: the next request event may be theirs")
def test_journal_records_method_path_status_and_sizes(refservers_http):
    since = refservers_http.journal.last_id
    requests.put(f"{refservers_http.url}/put", data=b"12345", timeout=10)
    event = refservers_http.journal.wait_for(since=since, server="http", kind="request")
    assert event.details["method"] == "PUT" and event.details["path"] == "/put"
    assert event.details["status"] == 200 and event.details["request_bytes"] == 5
    assert event.details["bytes"] > 100 and "content-length" in event.details["headers"]
    assert event.peer.startswith("127.0.0.1:")
