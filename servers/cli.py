"""The ``refservers`` command: up, run, check, list.

Config sources, lowest first: built-in defaults, TOML files (``--config`` or
``REFSERVERS_CONFIG``, else ``./configs/*.toml``), ``REFSERVERS_*`` environment
variables, then flags (``--host``, ``--port``, ``--set section.key=value``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from . import registry
from .core import BindError, ConfigError, Core, ProbeError, load_config
from .core.config import PORT, Config
from .core.lifecycle import Server
from .core.logs import configure_logging
from .scenario import SECTIONS, Scenario, ScenarioError, ScenarioRunner
from .scenario import load as load_scenario


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command in (_up, _run):
        # Before the config is read: importing the servers takes a while, and a signal
        # in that time must not meet Python's default handlers (a KeyboardInterrupt
        # traceback, or death by SIGTERM with no word).
        args.stop = StopSignals.install()
        # Start-up makes long-lived objects (modules, classes, functions), hardly any
        # garbage: the collections their allocations triggered walked the growing heap
        # again and again, about a fifth of `up`'s CPU to ready (issue 16). Once ready,
        # they are frozen (_freeze_startup_objects).
        gc.disable()
    try:
        return int(args.command(args, env) or 0)
    except ConfigError as error:
        print(f"refservers: config error: {error}", file=sys.stderr)
        return 2
    except BindError as error:
        print(f"refservers: {error}", file=sys.stderr)
        return 3
    except ScenarioError as error:
        print(f"refservers: scenario error: {error}", file=sys.stderr)
        return 2
    except KeyError as error:
        print(f"refservers: {error.args[0]}", file=sys.stderr)
        return 2
    finally:
        gc.enable()  # when start-up failed before _freeze_startup_objects (main runs in tests too)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="refservers", description="Reference network servers for local testing.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def config_flags(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--config", action="append", type=Path, metavar="FILE", help="TOML config file (repeatable)")
        sub.add_argument("--data-dir", type=Path, help="where servers persist data (default ./var)")
        sub.add_argument("--host", help="bind address (default 127.0.0.1)")
        sub.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
        sub.add_argument("--log-format", choices=["text", "json"])
        sub.add_argument("--trace", action="store_true", help="log every protocol line in and out")
        sub.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", help="override one option")
        sub.add_argument(
            "--scenario",
            action="append",
            type=Path,
            metavar="FILE",
            help="start-up state: users, messages, files, faults, proxies (TOML/JSON; repeatable; "
            "default REFSERVERS_SCENARIO, else ./configs/scenario*.toml)",
        )

    up = commands.add_parser("up", help="start every configured server in one process")
    config_flags(up)
    up.add_argument("--only", help="comma-separated servers to start (default: all enabled)")
    up.set_defaults(command=_up)

    run = commands.add_parser("run", help="run one server alone (what each container runs)")
    run.add_argument("server", help="server name (see `refservers list`)")
    config_flags(run)
    run.add_argument("--port", type=int, help="main port of the server")
    run.add_argument("--admin", action="store_true", help="also serve the admin API")
    run.set_defaults(command=_run)

    check = commands.add_parser("check", help="exit 0 when a server answers a real protocol probe")
    check.add_argument("server")
    check.add_argument("--host", default=None, help="default: REFSERVERS_<SERVER>_HOST or 127.0.0.1")
    check.add_argument("--port", type=int, default=None, help="default: the configured or default port")
    check.add_argument("--timeout", type=float, default=5.0)
    check.set_defaults(command=_check)

    listing = commands.add_parser("list", help="servers, default ports, descriptions")
    listing.set_defaults(command=_list)
    return parser


def _config(args: argparse.Namespace, env: Mapping[str, str], extra: list[str], servers: list[str] | None = None) -> Config:
    """Read the config for ``servers`` (default: all); only their classes are imported."""
    if args.config:
        files = list(args.config)
    elif env.get("REFSERVERS_CONFIG"):
        files = [Path(item) for item in env["REFSERVERS_CONFIG"].split(os.pathsep) if item]
    else:
        files = [path for path in sorted(Path("configs").glob("*.toml")) if not path.name.startswith("scenario")]
    overrides = list(extra)
    for flag, key in (("data_dir", "data_dir"), ("host", "host"), ("log_level", "log_level"), ("log_format", "log_format")):
        value = getattr(args, flag, None)
        if value is not None:
            overrides.append(f"core.{key}={value}")
    if getattr(args, "trace", False):
        overrides.append("core.trace=true")
    overrides += args.set
    config = load_config(
        registry.schema(servers),
        files,
        env,
        overrides,
        renamed=registry.RENAMED_OPTIONS,
        unloaded=registry.unloaded_sections(servers) if servers is not None else (),
    )
    level = config.core.log_level
    if config.core.trace and level in ("warning", "error"):
        level = "info"  # the wire trace logs at info: asking for it means wanting to see it
    configure_logging(level, config.core.log_format)
    for line in config.deprecations:
        logging.getLogger("refservers.config").warning("%s", line)
    return config


def _up(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    only = [n.strip() for n in args.only.split(",")] if args.only else None
    for name in only or ():
        registry.server_class(name)  # an unknown name fails before the config is read
    config = _config(args, env, [], only)
    names = only or [n for n in registry.SERVERS if config[n].enabled]
    return _serve(config, names, args.stop, with_admin=config["admin"].enabled, scenario=_scenario(args, env))


def _run(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    registry.server_class(args.server)  # an unknown name fails before the config is read
    extra = [f"{args.server}.port={args.port}"] if args.port is not None else []
    config = _config(args, env, extra, [args.server])
    # One server alone: the admin API only on request (--admin, or enabled set explicitly).
    explicit_admin = config["admin"].source("enabled") != "default" and config["admin"].enabled
    return _serve(config, [args.server], args.stop, with_admin=args.admin or explicit_admin, scenario=_scenario(args, env))


def _scenario(args: argparse.Namespace, env: Mapping[str, str]) -> Scenario:
    """The start scenario, read and checked before any server starts (a bad one: exit 2)."""
    if args.scenario:
        paths = list(args.scenario)
    elif env.get("REFSERVERS_SCENARIO"):
        paths = [Path(item) for item in env["REFSERVERS_SCENARIO"].split(os.pathsep) if item]
    else:
        paths = sorted(Path("configs").glob("scenario*.toml"))
    combined = Scenario()
    for path in paths:
        part = load_scenario(path)
        for section in SECTIONS:
            getattr(combined, section).extend(getattr(part, section))
    return combined


def _serve(config: Config, names: list[str], stop: StopSignals, with_admin: bool, scenario: Scenario) -> int:
    """Start ``names`` (then the admin API) on one Core, apply the start scenario, print
    the table, wait for a signal."""
    classes = [registry.server_class(name) for name in names]  # fail early on an unknown name
    core = registry.make_core(config)
    started = time.monotonic()
    to_start = list(zip(names, classes, strict=True))
    if with_admin:
        to_start.append(("admin", registry.server_class("admin")))
    try:
        for name, cls in to_start:
            if stop.requested:  # a signal during start-up: stop at the next step
                break
            cls(config[name], core).start()
        else:
            runner = core.shared(ScenarioRunner)
            runner.start = scenario
            runner.apply(scenario)
    except BaseException:
        core.stop_all()
        raise
    if not stop.requested:
        _print_table(core, sys.stdout, time.monotonic() - started)
        _freeze_startup_objects()
        stop.wait()
    core.stop_all()
    core.loop.shutdown()
    print("stopped", file=sys.stderr, flush=True)
    _exit_when_threads_linger()
    return 0


def _freeze_startup_objects() -> None:
    """Leave what start-up made (modules, classes, functions: most of the heap) out of
    every later garbage collection.

    A full collection walks every tracked object, and each one stops every server's
    loop: with the start-up objects in it, a full collection under HTTP load took as
    long as tens of requests and set the p99 latency (issue 16). The frozen objects are
    still freed by reference counting when they are dropped; only cycles among them stay.

    No collection first: the cyclic garbage start-up leaves is a few thousand small
    objects made while modules load (attrs class builders, lexers, closed probe
    sockets; 1,200 for `run http`, 2,400 for `up`, about half a megabyte), and
    collecting them cost a full walk of the heap, 50-100 ms between the ready line and
    the first request served. They are kept instead.
    """
    gc.freeze()
    gc.enable()  # off during start-up (see main)


def _exit_when_threads_linger(grace: float = 2.0) -> None:
    """Interpreter exit joins every non-daemon thread (library thread pools, executors);
    one stuck in a blocking call would keep a stopped server's process alive forever.
    Everything acknowledged to clients is already on disk, so after a grace period we
    name the stragglers and leave without them."""
    deadline = time.monotonic() + grace
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    lingering = [t.name for t in threading.enumerate() if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    if lingering:
        print(f"refservers: exiting without waiting for threads: {', '.join(lingering)}", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(0)


def _check(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    cls = registry.server_class(args.server)
    prefix = f"REFSERVERS_{args.server.upper()}_"
    host = args.host or env.get(prefix + "HOST") or "127.0.0.1"
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    port = args.port
    if port is None:
        text = env.get(prefix + "PORT")
        port = int(text) if text else _default_port(cls)
    try:
        summary = cls.probe(host, port, args.timeout)
    except ProbeError as error:
        print(f"{args.server}: not ready: {error}")
        return 1
    print(f"{args.server}: ready at {host}:{port}: {summary}")
    return 0


def _list(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    rows = [("SERVER", "PORTS", "DESCRIPTION")]
    for name in [*registry.SERVERS, "admin"]:
        cls = registry.server_class(name)
        ports = ", ".join(f"{o.key}={o.default}" for o in cls.options if o.kind is PORT)
        rows.append((name, ports, cls.description))
    _print_rows(rows, sys.stdout)
    return 0


def _default_port(cls: type[Server]) -> int:
    return next(int(o.default) for o in cls.options if o.kind is PORT)


READY_LINE = "ready in"


def _print_table(core: Core, out: TextIO, seconds: float) -> None:
    users = core.users.names()
    default_user = core.users.check_password("demo", "demo") is not None
    rows = [("SERVER", "ADDRESS", "TLS", "DESCRIPTION")]
    for server in core.servers:
        tls = server.listeners.get("tls")
        rows.append((server.name, server.url, f"{server.probe_host}:{tls}" if tls else "-", server.description))
    _print_rows(rows, out)
    print(f"\nusers: {', '.join(users)}" + (" (demo's password is demo)" if default_user else ""), file=out)
    if core.tls.ca_file is not None and core.tls.ca_file.exists():
        print(f"CA certificate (trust it in clients): {core.tls.ca_file}", file=out)
    print(f"data dir: {core.data_dir}", file=out)
    admin = next((server for server in core.servers if server.name == "admin"), None)
    if admin is not None:
        print(f"web console: {admin.url}/", file=out)
    print(f"{READY_LINE} {seconds:.2f}s; Ctrl-C or SIGTERM stops", file=out, flush=True)


def read_ready_table(stdout: Iterable[str], seen: list[str] | None = None) -> dict[str, str] | None:
    """Read a `refservers up|run` process's output up to its ready line (the readiness
    signal for supervisors, tests and benchmarks); return server -> address.

    None when the output ended first (the process exited). Lines read are appended to
    ``seen`` when given.
    """
    table: dict[str, str] = {}
    for line in stdout:
        if seen is not None:
            seen.append(line)
        cells = line.split()
        if len(cells) >= 2 and "://" in cells[1]:
            table[cells[0]] = cells[1]
        if line.startswith(READY_LINE):
            return table
    return None


def _print_rows(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        print("  ".join(cells).rstrip(), file=out)


class StopSignals:
    """SIGTERM and SIGINT for `up` and `run`, handled without taking a lock.

    Python runs a signal handler in the main thread between two bytecodes, possibly
    while that very thread is inside a call that holds a lock. A handler that takes the
    same lock (``threading.Event.set``, ``print``) then waits on itself forever: a burst
    of signals hung `up` that way. So the handler only counts, writes one byte to a pipe
    the main thread waits on, or leaves at once with ``os._exit``:

    - the first signal asks for a graceful stop (servers stopped, ports freed, exit 0):
      once ready, the main thread wakes from :meth:`wait`; during start-up, it stops
      starting at the next step (:attr:`requested`) and stops what it started;
    - a second signal skips the rest and exits at once: every write a client was told
      about is already durable.
    """

    def __init__(self) -> None:
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        self.received = 0

    @classmethod
    def install(cls) -> StopSignals:
        stop = cls()
        signal.set_wakeup_fd(stop._wake_write, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, stop._handle)
        signal.signal(signal.SIGINT, stop._handle)
        return stop

    @property
    def requested(self) -> bool:
        """A signal asked for a stop (start-up checks this between its steps)."""
        return self.received > 0

    def _handle(self, signum: int, frame: Any) -> None:
        self.received += 1
        if self.received > 1:
            name = signal.Signals(signum).name
            self._exit_now(signum, f"refservers: {name} again; exiting without a graceful stop\n")

    @staticmethod
    def _exit_now(signum: int, message: str) -> None:
        # os.write, not print: sys.stderr's buffer has a lock the interrupted code may hold.
        os.write(2, message.encode())
        os._exit(128 + signum)

    def wait(self) -> None:
        """Block until a signal asks for a graceful stop."""
        os.read(self._wake_read, 1)  # the C-level handler wrote the signal number


def entry_point() -> None:
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # Ctrl-C before `up`/`run` installed their handlers
        print("refservers: interrupted", file=sys.stderr)
        sys.exit(130)
