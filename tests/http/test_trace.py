"""Wire trace (core.trace=true): request line and headers in, status line out, secrets masked."""

from __future__ import annotations

import logging

import pytest
import requests


@pytest.fixture
def refservers_settings() -> list[str]:
    return ["core.trace=true"]


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_wire_trace_shows_request_line_headers_and_status_with_secrets_masked(refservers_http):
    capture = _Lines()
    logger = logging.getLogger("refservers.http.wire")
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    try:
        requests.get(f"{refservers_http.url}/basic-auth/u/pw?x=1", auth=("u", "pw"), timeout=10)
        refservers_http.journal.wait_for(lambda e: e.details.get("path", "").startswith("/basic"), kind="request")
    finally:
        logger.removeHandler(capture)
    text = "\n".join(capture.lines)
    assert "<< GET /basic-auth/u/pw?x=1 HTTP/1.1" in text
    assert ">> HTTP/1.1 200 OK" in text
    assert "Authorization: Basic ****" in text and "dTpwdw==" not in text


def test_wire_lines_are_journalled_masked_for_the_console(refservers_http):
    since = refservers_http.journal.last_id
    requests.get(f"{refservers_http.url}/bearer", headers={"Authorization": "Bearer t0ken"}, timeout=10)
    refservers_http.journal.wait_for(lambda e: e.details.get("path") == "/bearer", kind="request", since=since)
    wire = [e for e in refservers_http.journal.events(server="http", kind="wire", since=since)]
    lines = [(e.details["direction"], e.details["line"]) for e in wire]
    assert ("in", "GET /bearer HTTP/1.1") in lines
    assert ("in", "Authorization: Bearer ****") in lines
    assert any(direction == "out" and line.startswith("HTTP/1.1 200") for direction, line in lines)
    assert all("t0ken" not in line for _, line in lines)
