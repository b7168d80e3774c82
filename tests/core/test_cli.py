"""The refservers command as a subprocess: up, run, check, list, errors, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from servers.cli import read_ready_table

from .conftest import STOP_SECONDS


def refservers(*args: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "servers", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_up_prints_table_serves_and_stops_on_sigterm(cli):
    run = cli("up", "--only", "http", env={"REFSERVERS_HTTP_PORT": "0", "REFSERVERS_HTTP_TLS_PORT": "0", "REFSERVERS_ADMIN_PORT": "0"})
    table = run.wait_ready()
    assert set(table) == {"http", "admin"}
    header = run.lines[0].split()
    assert header == ["SERVER", "ADDRESS", "TLS", "DESCRIPTION"]
    assert any(line.startswith("users: demo") for line in run.lines)
    with urllib.request.urlopen(table["http"] + "/get") as reply:
        assert reply.status == 200
    with urllib.request.urlopen(table["admin"] + "/health") as reply:
        health = json.load(reply)
    assert health["status"] == "ok"
    assert [entry["name"] for entry in health["servers"]] == ["http"]
    assert f"web console: {table['admin']}/\n" in run.lines
    with urllib.request.urlopen(table["admin"] + "/") as reply:
        assert b'<script type="module" src="/console/app.js">' in reply.read()
    started = time.monotonic()
    assert run.stop() == 0
    # Generous bound: the point is that SIGTERM is handled, not the exact time.
    assert time.monotonic() - started < 5


def test_run_starts_one_server_without_admin(cli):
    run = cli("run", "http", "--port", "0", "--set", "http.tls_port=0")
    table = run.wait_ready()
    assert list(table) == ["http"]


def test_run_with_admin_flag(cli):
    run = cli("run", "http", "--port", "0", "--admin", "--set", "http.tls_port=0", "--set", "admin.port=0")
    assert set(run.wait_ready()) == {"http", "admin"}


def test_port_in_use_exits_non_zero_with_clear_message(busy_port, cli_env, tmp_path):
    result = refservers("run", "http", "--port", str(busy_port), "--set", "http.tls_port=0", env=cli_env, cwd=tmp_path)
    assert result.returncode == 3
    assert f"http: cannot listen on 127.0.0.1:{busy_port} (main): " in result.stderr
    assert "Address already in use" in result.stderr or "address already in use" in result.stderr.lower()


def test_bad_environment_value_fails_with_one_line(cli_env, tmp_path):
    result = refservers("up", env={**cli_env, "REFSERVERS_HTTP_PORT": "99999"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "refservers: config error: REFSERVERS_HTTP_PORT: expected a port number 0-65535 (0 picks a free port), got '99999'"
    )


def test_missing_config_file_fails_with_one_line(cli_env, tmp_path):
    result = refservers("up", "--config", "nope.toml", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "refservers: config error: nope.toml: config file not found"


def test_unknown_server_is_named(cli_env, tmp_path):
    result = refservers("run", "gopher", env=cli_env, cwd=tmp_path)
    assert result.returncode == 2
    assert "unknown server 'gopher'" in result.stderr


def test_check_exits_zero_against_a_running_server_and_one_otherwise(cli, cli_env, tmp_path, busy_port):
    run = cli("run", "http", "--port", "0", "--set", "http.tls_port=0")
    port = run.wait_ready()["http"].rsplit(":", 1)[1]
    ok = refservers("check", "http", "--port", port, env=cli_env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith(f"http: ready at 127.0.0.1:{port}: HTTP 200")
    # A listening socket that never answers HTTP is not ready.
    bad = refservers("check", "http", "--port", str(busy_port), "--timeout", "1", env=cli_env, cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stdout.startswith("http: not ready: ")
    assert len(bad.stdout.strip().splitlines()) == 1


def test_check_reads_port_from_environment(cli, cli_env, tmp_path):
    run = cli("run", "http", "--port", "0", "--set", "http.tls_port=0")
    port = run.wait_ready()["http"].rsplit(":", 1)[1]
    ok = refservers("check", "http", env={**cli_env, "REFSERVERS_HTTP_PORT": port}, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout


def test_list_shows_servers_and_default_ports(cli_env, tmp_path):
    result = refservers("list", env=cli_env, cwd=tmp_path)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["SERVER", "PORTS", "DESCRIPTION"]
    http = next(line for line in lines if line.startswith("http "))
    assert "port=8080" in http and "tls_port=8443" in http
    assert any(line.startswith("admin ") and "port=8025" in line for line in lines)


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_format_and_trace_mask_credentials(cli, fmt):
    run = cli("run", "http", "--port", "0", "--set", "http.tls_port=0", "--trace", "--log-format", fmt)
    url = run.wait_ready()["http"]
    request = urllib.request.Request(url + "/get", headers={"Authorization": "Basic c2VjcmV0OnNlY3JldA=="})
    with urllib.request.urlopen(request) as reply:
        reply.read()
    assert run.stop() == 0
    log = run.stderr
    assert "GET /get" in log  # the trace is there...
    assert "c2VjcmV0OnNlY3JldA==" not in log  # ...without the credentials
    if fmt == "json":
        entries = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
        assert entries and all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)


def test_nntp_run_check_and_list(cli, cli_env, tmp_path):
    run = cli("run", "nntp", "--port", "0", "--set", "nntp.tls_port=0")
    port = run.wait_ready()["nntp"].rsplit(":", 1)[1]
    ok = refservers("check", "nntp", "--port", port, env=cli_env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.startswith(f"nntp: ready at 127.0.0.1:{port}: 200 ")
    listed = refservers("list", env=cli_env, cwd=tmp_path).stdout.splitlines()
    nntp_row = next(line for line in listed if line.startswith("nntp "))
    assert "1119" in nntp_row and "1563" in nntp_row


def test_run_reads_the_config_of_the_servers_it_starts_with_it(cli):
    # `run toxiproxy` starts the proxy server its proxies live on: [proxy] is read too.
    run = cli("run", "toxiproxy", "--port", "0", "--set", "proxy.port=0")
    table = run.wait_ready()
    assert set(table) == {"toxiproxy", "proxy"}
    with urllib.request.urlopen(table["toxiproxy"] + "/version", timeout=10) as reply:
        assert reply.status == 200


# `refservers run http`, reporting at gc.freeze how many objects it froze and how many
# collections ran since the HTTP server's module began to load (after the CLI's own imports).
GC_REPORTING_RUN = """
import gc, sys
from servers.cli import entry_point
collections = []
def count(phase, info):
    if phase == "start" and "servers.http.server" in sys.modules:
        collections.append(info["generation"])
gc.callbacks.append(count)
freeze = gc.freeze
def reporting_freeze():
    freeze()
    print("frozen", gc.get_freeze_count(), file=sys.stderr, flush=True)
    print("collections", len(collections), file=sys.stderr, flush=True)
gc.freeze = reporting_freeze
sys.argv = ["refservers", "run", "http", "--port", "0", "--set", "http.tls_port=0"]
entry_point()
"""


def _gc_reports(cli_env: dict[str, str], tmp_path: Path) -> dict[str, int]:
    """What GC_REPORTING_RUN reported, once its HTTP server answered a GET and stopped."""
    process = subprocess.Popen(
        [sys.executable, "-c", GC_REPORTING_RUN], cwd=tmp_path, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        table = read_ready_table(process.stdout, [])
        assert table is not None
        with urllib.request.urlopen(table["http"] + "/get", timeout=10) as reply:
            assert reply.status == 200
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=STOP_SECONDS)
    assert process.returncode == 0, stderr
    reports = [line.split() for line in stderr.splitlines() if line.startswith(("frozen ", "collections "))]
    assert [name for name, _ in reports] == ["frozen", "collections"], stderr
    return {name: int(value) for name, value in reports}


def test_start_up_objects_are_left_out_of_later_garbage_collections(cli_env, tmp_path):
    # A full collection walks every tracked object with every server's loop stopped;
    # the start-up heap (modules, classes, functions) made such a pause set the HTTP
    # p99 latency under load (issue 16). Once ready, it is frozen.
    reports = _gc_reports(cli_env, tmp_path)
    assert reports["frozen"] > 10_000  # the start-up heap: tens of thousands of objects


def test_start_up_runs_no_garbage_collection(cli_env, tmp_path):
    # Start-up allocates long-lived objects: each automatic collection walked the growing
    # heap again (about a fifth of `up`'s CPU, issue 16), and a last one before the
    # freeze cost 50-100 ms before the first request for half a megabyte of garbage.
    assert _gc_reports(cli_env, tmp_path)["collections"] == 0
