"""Every server's container: healthy, probed from the host, serving its admin API,
running as the unprivileged user, and stopping cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import pytest

from servers import registry
from servers.core.lifecycle import Server

from .conftest import docker, service_container

SERVERS = list(registry.SERVERS)
UNPRIVILEGED_UID = "10001"  # docker/Dockerfile.base


@pytest.mark.parametrize("name", SERVERS)
def test_docker_reports_the_container_healthy(name: str) -> None:
    state = json.loads(docker("inspect", "--format", "{{json .State}}", service_container(name)))
    assert state["Status"] == "running"
    assert state["Health"]["Status"] == "healthy"
    last = state["Health"]["Log"][-1]
    assert last["ExitCode"] == 0
    assert f"{name}: ready at" in last["Output"]


@pytest.mark.parametrize("name", SERVERS)
def test_refservers_check_probes_the_published_port(name: str, refservers_start: Callable[..., Server]) -> None:
    server = refservers_start(name)
    env = {**os.environ, f"REFSERVERS_{name.upper()}_PORT": str(server.port)}
    result = subprocess.run(
        [sys.executable, "-m", "servers", "check", name, "--timeout", "10"],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"{name}: ready at 127.0.0.1:{server.port}")


@pytest.mark.parametrize("name", SERVERS)
def test_admin_health_endpoint_of_each_container(name: str, refservers_start: Callable[..., Server]) -> None:
    server = refservers_start(name)
    assert server.admin_url, f"docker/targets.env names no admin API for {name}"
    with urllib.request.urlopen(f"{server.admin_url}/health", timeout=10) as reply:
        assert reply.status == 200
        health = json.load(reply)
    assert health["status"] == "ok"
    from servers import registry

    # A server's companions run in its container too (toxiproxy's proxies live in the proxy server).
    assert [entry["name"] for entry in health["servers"]] == [name, *registry.server_class(name).companions]
    assert health["servers"][0]["state"] == "ready"


@pytest.mark.parametrize("name", SERVERS)
def test_container_runs_as_the_unprivileged_user(name: str) -> None:
    container = service_container(name)
    assert docker("exec", container, "id", "-u") == UNPRIVILEGED_UID
    # PID 1 is refservers itself (exec-form CMD), and it is not root either.
    status = docker("exec", container, "cat", "/proc/1/status")
    uid_line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    assert set(uid_line.split()[1:]) == {UNPRIVILEGED_UID}
    assert "refservers" in docker("exec", container, "cat", "/proc/1/cmdline")


@pytest.mark.parametrize("name", SERVERS)
def test_sigterm_stops_the_server_cleanly(name: str, record_property: Callable[[str, object], None]) -> None:
    """A fresh container of the image (no ports published) stops on SIGTERM by itself:
    exit status 0 and the CLI's "stopped" line, not Docker's SIGKILL after the grace
    period. The stop time is recorded (not asserted: no timing assertions)."""
    container = docker("run", "-d", f"refservers/{name}:latest")
    try:
        # `refservers check` retries until the server listens: a real readiness signal.
        docker("exec", container, "refservers", "check", name, "--timeout", "30", timeout=60)
        started = time.monotonic()
        docker("stop", "--time", "20", container, timeout=60)
        seconds = time.monotonic() - started
        record_property("sigterm_stop_seconds", round(seconds, 3))
        print(f"{name}: stopped {seconds:.2f}s after SIGTERM")
        state = json.loads(docker("inspect", "--format", "{{json .State}}", container))
        assert state["ExitCode"] == 0, f"exit {state['ExitCode']} (137 would be SIGKILL after the grace period)"
        assert not state["OOMKilled"]
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True, timeout=30)
        assert "stopped" in logs.stderr.splitlines()[-1]
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)


def test_all_in_one_image_serves_every_server_behind_one_admin_api() -> None:
    """`refservers up` in one container: the admin API's /health lists every registered
    server as ready (read from inside the container: no ports published, so it
    cannot clash with the stack)."""
    container = docker("run", "-d", "refservers/all-in-one:latest")
    try:
        docker("exec", container, "refservers", "check", "admin", "--timeout", "60", timeout=90)
        script = (
            "import json, urllib.request;"
            "print(urllib.request.urlopen('http://127.0.0.1:8025/health', timeout=10).read().decode())"
        )
        health = json.loads(docker("exec", container, "python3", "-c", script))
        assert health["status"] == "ok"
        assert {entry["name"]: entry["state"] for entry in health["servers"]} == {name: "ready" for name in SERVERS}
        assert docker("exec", container, "id", "-u") == UNPRIVILEGED_UID
        docker("stop", "--time", "20", container, timeout=60)
        assert docker("inspect", "--format", "{{.State.ExitCode}}", container) == "0"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)
