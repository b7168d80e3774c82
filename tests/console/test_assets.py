"""The console's files over plain HTTP: served from the package, with a strict CSP."""

from __future__ import annotations

import re
import tomllib
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path, PurePosixPath

import requests


def fetch(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, dict(reply.headers), reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), error.read()


def test_the_console_page_and_its_modules_come_from_the_package_with_a_strict_policy(refservers_admin):
    status, headers, body = fetch(refservers_admin.url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert b'<script type="module" src="/console/app.js">' in body
    policy = headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "'unsafe-eval'" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy and "object-src 'none'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    packaged = resources.files("servers.console") / "static"
    for name in ("app.js", "inbox.js", "message.js", "traffic.js", "files.js", "faults.js", "servers.js", "console.css"):
        status, headers, body = fetch(f"{refservers_admin.url}/console/{name}")
        assert status == 200, name
        assert body == (packaged / name).read_bytes()
        assert headers["Content-Security-Policy"] == policy


def test_favicon_is_local_and_nothing_outside_the_static_folder_is_served(refservers_admin):
    status, headers, body = fetch(refservers_admin.url + "/favicon.ico")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml" and body.startswith(b"<svg")
    for path in ("/console/../admin.py", "/console/%2e%2e/__init__.py", "/console/__init__.py", "/console/nothing.js"):
        assert fetch(refservers_admin.url + path)[0] == 404, path


def test_no_console_file_writes_html_or_loads_anything_from_another_origin():
    packaged = resources.files("servers.console") / "static"
    for entry in packaged.iterdir():
        lines = [line for line in entry.read_text("utf-8").splitlines() if not line.lstrip().startswith(("//", "*", "/*"))]
        code = "\n".join(lines)
        # Markup may be read (the inert copy of a mail for its sandboxed frame), never written.
        for sink in (r"\.(inner|outer)HTML\s*\+?=(?!=)", r"insertAdjacentHTML", r"document\.write", r"createContextualFragment",
                     r"setHTMLUnsafe", r"\beval\(", r"new Function"):
            assert not re.search(sink, code), f"{entry.name} uses {sink}"
        for line in lines:
            # Addresses in the code are templated on the servers' own host, the SVG
            # namespace, or example.com inside a command shown for copying (RFC 2606).
            for found in re.finditer(r"https?://(\S*)", line):
                assert found.group(1).startswith(("${", "www.w3.org/2000/svg", "example.com")), f"{entry.name}: {line}"


def test_the_ca_the_console_offers_verifies_the_tls_listeners(refservers_http, refservers_admin, tmp_path):
    status, headers, body = fetch(refservers_admin.url + "/api/v1/tls/ca.pem")
    assert status == 200 and body.startswith(b"-----BEGIN CERTIFICATE-----")
    assert 'filename="refservers-ca.pem"' in headers["Content-Disposition"]
    ca = tmp_path / "ca.pem"
    ca.write_bytes(body)
    port = refservers_http.listeners["tls"]
    reply = requests.get(f"https://localhost:{port}/get", verify=str(ca), timeout=10)
    assert reply.status_code == 200


def test_every_console_file_is_declared_package_data():
    # A non-editable install (and so every container image) ships only what
    # [tool.setuptools.package-data] names: a file it misses would be a 404 there.
    root = Path(__file__).resolve().parents[2]
    declared = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["servers.console"]
    package = root / "servers" / "console"
    files = [path.relative_to(package).as_posix() for path in (package / "static").rglob("*") if path.is_file()]
    assert files
    for relative in files:
        # setuptools' patterns are globs without "**": PurePosixPath.match keeps "static/*" from matching deeper
        assert any(PurePosixPath(relative).match(pattern) for pattern in declared), f"{relative} is not package data"
