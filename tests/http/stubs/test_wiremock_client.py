"""WireMock's npm client (wiremock-rest-client) against refservers, unchanged."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from servers.core import Server

SCRIPT = Path(__file__).with_name("wiremock_client.js")


def test_wiremock_rest_client_drives_the_admin_api(refservers_http: Server, npm_dir: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed for the npm WireMock client (apt-get install nodejs)")
    done = subprocess.run(
        [node, str(SCRIPT), refservers_http.url],
        env={**os.environ, "NODE_PATH": str(npm_dir / "node_modules")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"stubbed": 200, "count": 1, "scenario": [500, 200, 200], "reset": True}
