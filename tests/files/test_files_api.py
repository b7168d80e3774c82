"""The files admin API against a running admin server and FTP server on one core:
tree, content, seeding with PUT, DELETE, and confinement of every path."""

from __future__ import annotations

import ftplib
import http.client
import io
import json
from typing import Any

import pytest

from servers.core import Server
from servers.files.root import FileRoot


@pytest.fixture
def api(refservers_ftp: Server, refservers_admin: Server) -> Any:
    """``api(method, path, body=None) -> (status, bytes)`` against the admin server."""

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", refservers_admin.port, timeout=10)
        try:
            connection.request(method, path, body=body)
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    return call


def test_put_then_fetch_over_ftp_then_tree_and_content(api: Any, refservers_ftp: Server) -> None:
    status, body = api("PUT", "/api/v1/files/demo/seeded/hello.txt", b"hello from the API\n")
    assert status == 201, body
    assert json.loads(body) == {"user": "demo", "path": "/seeded/hello.txt", "bytes": 19}
    status, _ = api("PUT", "/api/v1/files/demo/seeded/hello.txt", b"hello again\n")
    assert status == 200  # replaced
    with ftplib.FTP(timeout=10) as client:
        client.connect("127.0.0.1", refservers_ftp.port)
        client.login("demo", "demo")
        fetched = io.BytesIO()
        client.retrbinary("RETR seeded/hello.txt", fetched.write)
        client.storbinary("STOR from-ftp.bin", io.BytesIO(b"\x00\x01\x02"))
    assert fetched.getvalue() == b"hello again\n"

    status, body = api("GET", "/api/v1/files?user=demo")
    assert status == 200
    tree = {entry["path"]: entry for entry in json.loads(body)["files"]}
    assert tree["/seeded"]["type"] == "dir"
    assert tree["/seeded/hello.txt"]["size"] == 12
    assert tree["/from-ftp.bin"]["size"] == 3
    assert tree["/from-ftp.bin"]["mtime"] > 0

    assert api("GET", "/api/v1/files/demo/from-ftp.bin") == (200, b"\x00\x01\x02")
    status, body = api("GET", "/api/v1/files/demo/seeded")
    assert [entry["path"] for entry in json.loads(body)["files"]] == ["/seeded/hello.txt"]
    assert api("GET", "/api/v1/files/demo/missing.txt")[0] == 404


def test_delete_one_and_all(api: Any, refservers_ftp: Server) -> None:
    home = refservers_ftp.core.shared(FileRoot).home("demo")
    for name in ("a.txt", "dir/b.txt", "dir/sub/c.txt"):
        assert api("PUT", f"/api/v1/files/demo/{name}", b"x")[0] == 201
    assert api("DELETE", "/api/v1/files/demo/a.txt")[0] == 200
    assert not (home / "a.txt").exists()
    assert api("DELETE", "/api/v1/files/demo/a.txt")[0] == 404
    status, body = api("DELETE", "/api/v1/files/demo")
    assert status == 200 and json.loads(body)["removed"] == 1
    assert list(home.iterdir()) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/files/demo/%2e%2e/%2e%2e/etc/passwd",
        "/api/v1/files/demo/../../etc/passwd",
        "/api/v1/files/demo/%252e%252e/x",
        "/api/v1/files/demo/a%00b",
    ],
)
def test_escapes_are_refused(api: Any, path: str) -> None:
    assert api("GET", path)[0] == 403
    assert api("PUT", path, b"planted")[0] == 403
    assert api("DELETE", path)[0] == 403


def test_symlink_out_is_refused(api: Any, refservers_ftp: Server, tmp_path: Any) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    home = refservers_ftp.core.shared(FileRoot).home("demo")
    (home / "link").symlink_to(secret)
    (home / "linkdir").symlink_to(tmp_path)
    assert api("GET", "/api/v1/files/demo/link")[0] == 403
    assert api("PUT", "/api/v1/files/demo/linkdir/new.txt", b"x")[0] == 403
    assert not (tmp_path / "new.txt").exists()
    assert api("DELETE", "/api/v1/files/demo/link")[0] == 200  # the link itself may go
    assert secret.exists()


def test_unknown_user_is_404(api: Any) -> None:
    assert api("GET", "/api/v1/files?user=nobody")[0] == 404
    assert api("PUT", "/api/v1/files/nobody/x.txt", b"x")[0] == 404
    assert api("DELETE", "/api/v1/files/nobody")[0] == 404


def test_post_creates_a_folder_that_ftp_lists(api: Any, refservers_ftp: Server) -> None:
    status, body = api("POST", "/api/v1/files/demo/reports/2026")
    assert status == 201 and json.loads(body) == {"user": "demo", "path": "/reports/2026", "type": "dir"}
    assert api("POST", "/api/v1/files/demo/reports/2026")[0] == 200  # already there
    with ftplib.FTP(timeout=10) as client:
        client.connect("127.0.0.1", refservers_ftp.port)
        client.login("demo", "demo")
        assert client.nlst("reports") == ["reports/2026"] or client.nlst("reports") == ["2026"]
    assert api("PUT", "/api/v1/files/demo/plain.txt", b"x")[0] == 201
    assert api("POST", "/api/v1/files/demo/plain.txt")[0] == 409
    assert api("POST", "/api/v1/files/demo/%2e%2e/%2e%2e/outside")[0] == 403
    assert api("POST", "/api/v1/files/nobody/folder")[0] == 404
