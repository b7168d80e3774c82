"""Peers for the stub tests: WireMock's own JAR and its npm client, installed on demand.

The npm packages (``wiremock@3.13.2``, which ships wiremock-standalone-3.13.2.jar,
``wiremock-rest-client`` and ``wiremock-captain``) are installed by the first test that needs them into a cache
directory (``REFSERVERS_NPM_CACHE``, default ``.cache/npm`` in the checkout), under a file
lock so parallel workers install once. Nothing is skipped: no npm or no Java fails the
test with the reason (.ci/apt-packages.txt brings Java and npm).
"""

from __future__ import annotations

import fcntl
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

NPM_PACKAGES = ("wiremock@3.13.2", "wiremock-rest-client@1", "wiremock-captain@4")
WIREMOCK_JAR = "node_modules/wiremock/build/wiremock-standalone-3.13.2.jar"
ROOT = Path(__file__).resolve().parents[3]
STUB_ROOT = Path(__file__).with_name("wiremock_root")


@pytest.fixture(scope="session")
def npm_dir() -> Path:
    """The npm prefix holding WireMock's JAR and wiremock-rest-client (installed if missing)."""
    base = Path(os.environ.get("REFSERVERS_NPM_CACHE", ROOT / ".cache" / "npm"))
    base.mkdir(parents=True, exist_ok=True)
    wanted = [base / WIREMOCK_JAR] + [base / "node_modules" / name / "package.json" for name in ("wiremock-rest-client", "wiremock-captain")]
    with open(base / ".install.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not all(path.exists() for path in wanted):
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is needed to install WireMock and its client (apt-get install npm)")
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--prefix", str(base), *NPM_PACKAGES],
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                pytest.fail(f"npm install {' '.join(NPM_PACKAGES)} failed: {done.stderr[-2000:]}")
    return base


@dataclass
class WireMockProcess:
    url: str
    root: Path

    def admin(self, method: str, path: str, **kwargs: object) -> requests.Response:
        return requests.request(method, self.url + "/__admin" + path, timeout=10, **kwargs)  # type: ignore[arg-type]


def _read_port(process: subprocess.Popen[str], timeout: float) -> int:
    """WireMock prints ``port: N`` in its banner once it listens (``--port 0`` picks N)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen = []
    while True:
        try:
            line = lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"WireMock printed no port within {timeout}s: {''.join(seen)[-2000:]}") from None
        if line is None:
            raise AssertionError(f"WireMock exited ({process.wait()}): {''.join(seen)[-2000:]}")
        seen.append(line)
        if line.startswith("port:"):
            return int(line.split()[1])


@pytest.fixture(scope="session")
def wiremock(npm_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WireMockProcess]:
    """The real WireMock 3.13.2 on a free loopback port, loaded with tests/http/stubs/wiremock_root."""
    java = shutil.which("java")
    if java is None:
        pytest.fail("Java is needed for WireMock (apt-get install openjdk-17-jre-headless)")
    root = tmp_path_factory.mktemp("wiremock") / "root"
    shutil.copytree(STUB_ROOT, root)
    process = subprocess.Popen(
        [java, "-jar", str(npm_dir / WIREMOCK_JAR), "--port", "0", "--bind-address", "127.0.0.1", "--root-dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        port = _read_port(process, timeout=90)
        peer = WireMockProcess(f"http://127.0.0.1:{port}", root)
        health = peer.admin("GET", "/health")
        assert health.status_code == 200, health.text
        yield peer
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
