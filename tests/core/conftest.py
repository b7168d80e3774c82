from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from servers.cli import read_ready_table

# Seconds a refservers process gets to stop after SIGTERM before it is killed: a bound
# for a hung stop, generous for a loaded 2-core CI machine (speed is not asserted).
STOP_SECONDS = 60


class CliRun:
    """A `refservers` subprocess; reads stdout until the ready line, parses the table."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "servers", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self.stdout = self.stderr = ""

    def wait_ready(self) -> dict[str, str]:
        """Block until the table is printed (the real readiness signal); return server -> address."""
        assert self.process.stdout is not None
        table = read_ready_table(self.process.stdout, self.lines)
        if table is None:
            raise AssertionError(f"exited early: {self.process.wait()} {self.process.stderr.read()}")  # type: ignore[union-attr]
        return table

    def stop(self) -> int:
        """SIGTERM (once) and wait; the remaining output lands in ``stdout``/``stderr``.

        A process that does not stop within STOP_SECONDS is killed (no test leaves one
        behind) and the stop fails.
        """
        if self.process.returncode is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.stdout, self.stderr = self.process.communicate(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                # SIGABRT makes faulthandler (PYTHONFAULTHANDLER in cli_env) print every
                # thread's stack, so the failure says where the stop hung.
                self.process.send_signal(signal.SIGABRT)
                try:
                    self.stdout, self.stderr = self.process.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.stdout, self.stderr = self.process.communicate()
                raise AssertionError(
                    f"refservers did not stop within {STOP_SECONDS}s of SIGTERM (aborted); stderr:\n{self.stderr[-8000:]}"
                ) from None
        return self.process.returncode


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFSERVERS_")}
    env["REFSERVERS_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONFAULTHANDLER"] = "1"  # a hung process shows its threads when CliRun.stop aborts it
    return env


@pytest.fixture
def cli(tmp_path: Path, cli_env: dict[str, str]) -> Iterator[object]:
    runs: list[CliRun] = []

    def start(*args: str, env: dict[str, str] | None = None) -> CliRun:
        run = CliRun(list(args), tmp_path, {**cli_env, **(env or {})})
        runs.append(run)
        return run

    yield start
    failures = []
    for run in runs:  # every run is stopped, even when an earlier one fails to stop
        try:
            run.stop()
        except AssertionError as error:
            failures.append(error)
    if failures:
        raise failures[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A loopback port that is bound and listening, so servers cannot take it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def call(url: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    """One JSON request to the admin API: (status, decoded body), errors included."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)
