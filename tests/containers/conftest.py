"""Tests against the compose stack of docker/compose.yaml (``make test-containers``).

They need the stack running and ``REFSERVERS_TARGET=container`` (docker/targets.env
sets it, with each container's admin API address); without it every test here is
skipped (but test_generated.py, which needs no Docker), so ``make test`` on a
machine without Docker passes over them. The server
fixtures (``refservers_smtp``...) then yield remote handles on the containers'
ports published on 127.0.0.1 (servers/testing/remote.py).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
IN_CONTAINER_MODE = os.environ.get("REFSERVERS_TARGET") == "container"
PROJECT = os.environ.get("REFSERVERS_COMPOSE_PROJECT", "refservers")
# Modules here that check the generated files, not the running stack.
RUN_WITHOUT_STACK = {"test_generated.py", "test_remote_target.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs the compose stack: make test-containers (REFSERVERS_TARGET=container)")
    for item in items:
        if HERE in item.path.parents:
            # make test-containers selects -m container_ok: everything here, and the
            # other areas' tests marked container_ok.
            item.add_marker(pytest.mark.container_ok)
        if HERE in item.path.parents and item.path.name not in RUN_WITHOUT_STACK:
            item.add_marker(pytest.mark.container)
            if not IN_CONTAINER_MODE:
                item.add_marker(skip)


def docker(*args: str, timeout: float = 60) -> str:
    """Run the docker client; return stdout, fail the test with stderr on error."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        pytest.fail(f"docker {' '.join(args)}: exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout.strip()


def service_container(service: str) -> str:
    """Container id of a compose service of the stack under test."""
    found = docker(
        "ps", "-q",
        "--filter", f"label=com.docker.compose.project={PROJECT}",
        "--filter", f"label=com.docker.compose.service={service}",
    ).split()
    if len(found) != 1:
        pytest.fail(f"expected one running container for service {service!r} of project {PROJECT!r}, found {found}")
    return found[0]
