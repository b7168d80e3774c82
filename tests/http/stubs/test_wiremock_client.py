"""WireMock's npm clients (wiremock-rest-client, wiremock-captain) against refservers, unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from servers.core import Server

HERE = Path(__file__).parent


def run_node(script: str, server: Server, npm_dir: Path) -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the npm WireMock clients (apt-get install nodejs)")
    done = subprocess.run(
        [node, str(HERE / script), server.url],
        env={**os.environ, "NODE_PATH": str(npm_dir / "node_modules")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def test_wiremock_rest_client_drives_the_admin_api(refservers_http: Server, npm_dir: Path) -> None:
    report = run_node("wiremock_client.js", refservers_http, npm_dir)
    assert report == {"stubbed": 200, "count": 1, "scenario": [500, 200, 200], "reset": True}


def test_wiremock_captain_registers_and_reads_back(refservers_http: Server, npm_dir: Path) -> None:
    report = run_node("wiremock_captain.js", refservers_http, npm_dir)
    assert report == {"created": 201, "scenario": [503, 200, 200], "journalled": 1}
