"""HTTP details through the proxy with real clients: 100-continue, HTTP/1.0 clients,
close-delimited upstream bodies, and pip fetching a package from a local index."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from .conftest import raw_request


def test_expect_100_continue_is_relayed(proxy_url, origin):
    out = subprocess.run(
        ["curl", "-sS", "-v", "-x", proxy_url, "-H", "Expect: 100-continue", "--data-binary", "@-", f"{origin.url}/big"],
        input=b"y" * 200_000, capture_output=True, timeout=30,
    )
    assert out.returncode == 0, out.stderr
    assert b"< HTTP/1.1 100 Continue" in out.stderr
    assert len(json.loads(out.stdout)["body"]) == 200_000


def test_http10_client(proxy, origin):
    data, _ = raw_request("127.0.0.1", proxy.port, f"GET {origin.url}/old HTTP/1.0\r\n\r\n".encode())
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert json.loads(body)["path"] == "/old"


class CloseDelimitedHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            request += self.request.recv(4096)
        self.request.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\n" + b"z" * 10_000)


@pytest.fixture
def close_delimited_origin() -> Iterator[int]:
    """An HTTP/1.0 upstream whose body ends when it closes (no Content-Length)."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), CloseDelimitedHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()
    thread.join()


def test_close_delimited_upstream_body(proxy_url, close_delimited_origin):
    with requests.Session() as session:
        session.proxies = {"http": proxy_url}
        for _ in range(2):  # the client connection stays usable after the upstream closed
            reply = session.get(f"http://127.0.0.1:{close_delimited_origin}/", timeout=10)
            assert reply.content == b"z" * 10_000


@pytest.fixture
def package_index(tmp_path: Path) -> Iterator[str]:
    """A PEP 503 simple index with one tiny wheel, served by http.server."""
    wheel_name = "tinypkg-1.0-py3-none-any.whl"
    project = tmp_path / "simple" / "tinypkg"
    project.mkdir(parents=True)
    with zipfile.ZipFile(project / wheel_name, "w") as wheel:
        wheel.writestr("tinypkg/__init__.py", "VALUE = 1\n")
        wheel.writestr("tinypkg-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n")
        wheel.writestr("tinypkg-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr("tinypkg-1.0.dist-info/RECORD", "")
    (project / "index.html").write_text(f'<html><body><a href="{wheel_name}">{wheel_name}</a></body></html>\n')

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.mark.slow
def test_pip_download_through_the_proxy(proxy, proxy_url, package_index, tmp_path):
    target = tmp_path / "downloads"
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "http_proxy", "https_proxy", "pip_index_url")}
    out = subprocess.run(
        [
            sys.executable, "-m", "pip", "download", "tinypkg", "--no-deps", "--no-cache-dir",
            "--disable-pip-version-check", "--index-url", package_index, "--proxy", proxy_url, "-d", str(target),
        ],
        capture_output=True, env=env, timeout=120,
    )
    assert out.returncode == 0, out.stderr.decode()
    assert (target / "tinypkg-1.0-py3-none-any.whl").exists()
    targets = [e.details["target"] for e in proxy.journal.events(server="proxy", kind="request")]
    assert f"{package_index}/tinypkg/" in targets
    assert any(t.endswith("/tinypkg-1.0-py3-none-any.whl") for t in targets)
