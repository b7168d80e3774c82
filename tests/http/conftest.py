"""Shared helpers for the HTTP server tests: a curl runner bound to the running server."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from servers.core import Server


@pytest.fixture
def curl(refservers_http: Server) -> Callable[..., subprocess.CompletedProcess[bytes]]:
    """``curl("/get", "-H", "X: 1")``: run curl against the server; paths are joined to its URL."""

    def run(path: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        url = path if path.startswith("http") else refservers_http.url + path
        return subprocess.run(
            ["curl", "--silent", "--show-error", "--max-time", "20", *args, url],
            capture_output=True,
            check=check,
            timeout=30,
        )

    return run
