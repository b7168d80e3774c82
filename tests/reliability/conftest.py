"""A whole `refservers up` in a subprocess, shared by the reliability tests of a module.

Reliability is measured from outside: the server process is another process, so its
memory can be read from /proc and it can be killed like a real deployment.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from servers import registry
from servers.cli import read_ready_table
from servers.core.config import PORT


def all_ports_zero() -> dict[str, str]:
    env = {}
    for section, options in registry.schema().items():
        for option in options:
            if option.kind is PORT:
                env[f"REFSERVERS_{section.upper()}_{option.key.upper()}"] = "0"
    return env


@dataclass
class Stack:
    process: subprocess.Popen[str]
    admin_url: str
    data_dir: Path
    servers: dict[str, dict[str, Any]] = field(default_factory=dict)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def alive(self) -> bool:
        return self.process.poll() is None


# Seconds a server process gets to stop after SIGTERM before it is killed (and the test
# fails): a readiness-style bound, generous for a loaded 2-core CI machine.
STOP_SECONDS = 60


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGTERM, wait; SIGKILL if it does not stop, so no test leaves a server behind."""
    try:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(f"pid {process.pid} did not stop within {STOP_SECONDS}s of SIGTERM (killed)") from None
    finally:
        if process.stdout:
            process.stdout.close()


def start_stack(tmp: Path, only: list[str] | None = None, extra_env: dict[str, str] | None = None) -> Stack:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFSERVERS_")}
    env.update(all_ports_zero())
    env["REFSERVERS_DATA_DIR"] = str(tmp / "data")
    env["REFSERVERS_LOG_LEVEL"] = "error"
    env["REFSERVERS_FTP_PASSIVE_PORTS"] = "0"  # any free port: the fixed default range is shared
    env.update(extra_env or {})
    args = [sys.executable, "-m", "servers", "up"] + (["--only", ",".join(only)] if only else [])
    process = subprocess.Popen(args, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:  # a failed or timed-out start-up must not leave the process running
        assert process.stdout is not None
        table = read_ready_table(process.stdout)
        if table is None:
            raise AssertionError(f"refservers up exited with {process.wait()}")
        admin_url = table["admin"]
        with urllib.request.urlopen(admin_url + "/api/v1/servers", timeout=30) as reply:
            servers = {entry["name"]: entry for entry in json.load(reply)["servers"]}
    except BaseException:
        process.kill()
        process.wait()
        if process.stdout:
            process.stdout.close()
        raise
    return Stack(process, admin_url, tmp / "data", servers)


def stop_stack(stack: Stack) -> None:
    stop_process(stack.process)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = start_stack(tmp_path_factory.mktemp("stack"))
    yield running
    stop_stack(running)


# -- one server alone (`refservers run NAME`), for the crash tests ---------------------------


@dataclass
class Single:
    """A ``refservers run NAME --admin`` subprocess; ``kill()`` is a real SIGKILL."""

    name: str
    process: subprocess.Popen[str]
    port: int
    admin_url: str
    data_dir: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        if self.process.stdout:
            self.process.stdout.close()

    def stop(self) -> None:
        stop_process(self.process)


def run_server(name: str, data_dir: Path, cwd: Path) -> Single:
    """Start one server on port 0 over ``data_dir``; the printed table gives its ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFSERVERS_")}
    env.update(all_ports_zero())
    env["REFSERVERS_DATA_DIR"] = str(data_dir)
    env["REFSERVERS_LOG_LEVEL"] = "error"
    env["REFSERVERS_FTP_PASSIVE_PORTS"] = "0"  # any free port: the fixed default range is shared
    args = [sys.executable, "-m", "servers", "run", name, "--admin"]
    process = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:  # a failed or timed-out start-up must not leave the process running
        assert process.stdout is not None
        urls = read_ready_table(process.stdout)
        if urls is None:
            raise AssertionError(f"refservers run {name} exited with {process.wait()}")
        port = urllib.parse.urlsplit(urls[name]).port
        assert port, urls
    except BaseException:
        process.kill()
        process.wait()
        if process.stdout:
            process.stdout.close()
        raise
    return Single(name, process, port, urls["admin"], data_dir)


def journal(admin_url: str, **filters: Any) -> list[dict[str, Any]]:
    """Events of the journal through the admin API (``server=``, ``kind=``, ``since=``)."""
    query = urllib.parse.urlencode({k: v for k, v in filters.items() if v is not None})
    with urllib.request.urlopen(f"{admin_url}/api/v1/events?{query}", timeout=30) as reply:
        events: list[dict[str, Any]] = json.load(reply)["events"]
    return events
