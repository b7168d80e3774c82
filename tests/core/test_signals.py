"""Stopping `refservers up` and `run` never hangs, however the signals come.

Impatient people press Ctrl-C twice, and `make` forwards a signal to its child: bursts of
SIGTERM and SIGINT, during start-up and once ready, must end the process within a second
every time. (A handler that took a lock once hung 9 bursts in 20.)
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time

import pytest

from .conftest import CliRun

# Each burst mixes both signals: Python may fold repeats of one signal into a single
# handler call, never two different ones, so every burst reaches the handler twice.
BURST = [signal.SIGTERM, signal.SIGINT] * 4
EXIT_SECONDS = 1.0
ROUNDS = 5
# Where in start-up a burst lands: spread over the import, config and listen phases.
START_UP_DELAYS = (0.0, 0.05, 0.15, 0.3, 0.5)
COMMANDS = {
    "up": ["up", "--only", "http"],
    "run": ["run", "http"],
}
PORTS_0 = {"REFSERVERS_HTTP_PORT": "0", "REFSERVERS_HTTP_TLS_PORT": "0", "REFSERVERS_ADMIN_PORT": "0"}


def send_burst(process: subprocess.Popen[str]) -> None:
    for signum in BURST:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            return  # already gone: the first signals did their job


def assert_exits_promptly(run: CliRun) -> int:
    started = time.monotonic()
    try:
        run.process.wait(timeout=EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        run.stop()  # SIGABRT + faulthandler: the failure shows where it hung
        raise AssertionError(f"still running {EXIT_SECONDS}s after a signal burst") from None
    finally:
        run.stdout, run.stderr = run.process.communicate()
    assert time.monotonic() - started < EXIT_SECONDS
    return run.process.returncode


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("round_", range(ROUNDS))
def test_burst_once_ready_exits_within_a_second(cli, command, round_):
    run = cli(*COMMANDS[command], env=PORTS_0)
    run.wait_ready()
    send_burst(run.process)
    code = assert_exits_promptly(run)
    # The first signal starts a graceful stop; the second skips the rest of it and says so
    # (or the stop was already over: exit 0).
    # (or it was over, exit 0; or the interpreter was already finishing, with Python's
    # default handlers back, and the signal itself ended it).
    assert code in (0, 128 + signal.SIGTERM, 128 + signal.SIGINT, -signal.SIGTERM, -signal.SIGINT), run.stderr
    if code > 0:
        assert "again; exiting without a graceful stop" in run.stderr


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("delay", START_UP_DELAYS)
def test_burst_during_start_up_exits_within_a_second(cli, command, delay):
    run = cli(*COMMANDS[command], env=PORTS_0)
    # Not a readiness wait: the point is to land the burst at different moments of start-up.
    threading.Event().wait(delay)
    send_burst(run.process)
    code = assert_exits_promptly(run)
    assert code != 0
    assert "Traceback" not in run.stderr, run.stderr


def test_single_sigint_once_ready_stops_gracefully(cli):
    run = cli(*COMMANDS["up"], env=PORTS_0)
    run.wait_ready()
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(timeout=30) == 0
    run.stdout, run.stderr = run.process.communicate()
    assert "stopped" in run.stderr


def test_sigint_before_handlers_leaves_without_a_traceback(cli_env, tmp_path):
    # `list` installs no handlers: a Ctrl-C there meets the entry point's fallback.
    code = (
        "import os, signal, sys; sys.argv = ['refservers', 'list']; "
        "import servers.cli as cli; cli.main = lambda: os.kill(os.getpid(), signal.SIGINT) or 0; cli.entry_point()"
    )
    result = subprocess.run([sys.executable, "-c", code], env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 130
    assert result.stderr.strip() == "refservers: interrupted"


def test_single_sigterm_during_start_up_stops_gracefully(cli):
    # What `docker stop` does to a container still starting: the servers already
    # started are stopped, exit 0 and "stopped", as once ready.
    run = cli("up", "--only", "http,smtp", env={**PORTS_0, "REFSERVERS_SMTP_PORT": "0", "REFSERVERS_SMTP_TLS_PORT": "0"})
    assert run.process.stderr is not None
    for line in run.process.stderr:  # the real signal: http said it is ready, the others are not yet
        if "refservers.http: http ready" in line:
            break
    run.process.send_signal(signal.SIGTERM)
    assert run.process.wait(timeout=30) == 0
    run.stdout, rest = run.process.communicate()
    assert rest.strip().splitlines()[-1] == "stopped"
