"""Shared helpers for the HTTP server tests: a curl runner bound to the running server."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest

from servers.core import Server
from servers.testing.remote import CONTAINER_MODE, TARGET, RemoteServer


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


@pytest.fixture
def client_origin(refservers_http: Server) -> str:
    """The address the server sees for this test's clients (httpbin's ``origin``).

    Loopback in-process. Against the compose stack (make test-containers) Docker's port
    publishing relays clients from the stack network's gateway (172.x), so that is the
    expected origin, read from Docker rather than from the server under test.
    """
    if not isinstance(refservers_http, RemoteServer):
        return "127.0.0.1"
    if os.environ.get(TARGET) != CONTAINER_MODE:
        pytest.skip(f"the client address a remote http target sees is unknown outside {TARGET}={CONTAINER_MODE}")
    network = os.environ.get("REFSERVERS_COMPOSE_PROJECT", "refservers") + "_default"
    inspect = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", network],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if inspect.returncode != 0 or not inspect.stdout.strip():
        pytest.fail(f"docker network inspect {network}: exit {inspect.returncode}: {inspect.stderr.strip()}")
    return inspect.stdout.strip()
