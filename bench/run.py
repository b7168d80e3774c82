"""`make bench`: refservers side by side with the servers users would pick instead.

Each benchmark starts refservers and its peer(s) on loopback ports, drives both with the
same client (wrk, Postfix's smtp-source, curl, OpenSSH's sftp, Python's ftplib, poplib
and imaplib, a raw-socket Telnet client) and records the median of REPS repetitions;
every load loop is bounded in count and time.
Then the worst standings are measured once more with refservers under py-spy, and
bench/results/results.{json,md} are written. Usage:

    .venv/bin/python bench/run.py [--reps 3] [--only startup,http,...] [--no-install] [--out DIR]

The committed bench/results/ come from one full run (never rows merged from several
invocations); a partial run (--only) writes to bench/results/tmp/ unless --out says
otherwise. bench/check.py (`make bench-check`) compares a run with the committed one.
"""

from __future__ import annotations

import argparse
import contextlib
import ftplib
import functools
import imaplib
import io
import json
import os
import poplib
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers  # noqa: E402
from harness import (  # noqa: E402
    PYTHON,
    RESULTS,
    ROOT,
    SCRATCH,
    WORK,
    Row,
    free_port,
    in_turns,
    load_average,
    log,
    median,
    refservers,
    rss_kib,
    run,
    service,
    stop,
    summarize_profile,
    timed,
    wait_port,
    write_results,
)

BIG_FILE_MIB = 256  # FTP RETR/STOR file
SFTP_FILE_MIB = 128  # SFTP get/put file (asyncssh is slower; keeps the run bounded)
WRK_SECONDS = 5
WRK_CONNECTIONS = 32
SMTP_MESSAGES = 1000
SMTP_SENDERS = 20
FTP_PARALLEL = 100
CLIENT_TIMEOUT = 300.0
MAIL_MESSAGES = 1000  # POP3/IMAP mailbox size
MAIL_NEEDLE_EVERY = 100  # every 100th message has "needle" in its body (IMAP SEARCH)
IMAP_SEARCHES = 20
TELNET_SESSIONS = 200  # per measurement, at most ...
TELNET_SECONDS = 20.0  # ... or this long, whichever ends first
TELNET_CLIENTS = (1, 8)
NNTP_POSTS = 500  # per repetition, in NNTP_POSTERS parallel sessions
NNTP_POSTERS = 10
NNTP_GROUP = "local.test"

rows: list[Row] = []
skipped: list[dict[str, str]] = []
workloads: dict[str, Callable[[Path], None]] = {}  # metric -> re-run refservers under py-spy


def skip(what: str, reason: str) -> None:
    log(f"not measured: {what}: {reason}")
    skipped.append({"what": what, "reason": reason})


def pair(
    group: str,
    metric: str,
    unit: str,
    higher: bool,
    ours: list[float],
    peer: str = "",
    theirs: list[float] | None = None,
    note: str = "",
) -> Row:
    row = Row(
        group,
        metric,
        unit,
        higher,
        median(ours),
        peer,
        median(theirs or []),
        {"refservers": ours, peer or "peer": theirs or []},
        note,
    )
    rows.append(row)
    log(f"{group} / {metric}: refservers {row.refservers} vs {peer or '-'} {row.peer_value}")
    return row


# -- start-up --------------------------------------------------------------------------------


# The least a Twisted web server on the reactor refservers uses must import and do before
# it answers a GET: the floor under `refservers run http`.
BARE_TWISTED_WEB_SCRIPT = """
from twisted.internet import asyncioreactor
asyncioreactor.install()
from twisted.internet import reactor
from twisted.web import resource, server
class Get(resource.Resource):
    isLeaf = True
    def render_GET(self, request):
        request.setHeader(b"Content-Type", b"application/json")
        return b'{"url": "/get"}\\n'
port = reactor.listenTCP(0, server.Site(Get()), interface="127.0.0.1")
print(port.getHost().port, flush=True)
reactor.run()
"""


UP_LIBRARIES_SCRIPT = """
from twisted.internet import asyncioreactor
asyncioreactor.install()
import twisted.web.server, twisted.mail.imap4, twisted.mail.pop3, twisted.conch.telnet
import aiosmtpd.smtp, pyftpdlib.handlers, pyftpdlib.servers, jsonrpcserver, h11, dnslib, prometheus_client
import OpenSSL.SSL, cryptography.x509
import ctypes.util
ctypes.util.find_library = ctypes.util._findSoname_ldconfig  # as servers/sftp/__init__.py has it
import asyncssh
"""


def _run_http_answered(rep: int) -> float:
    """Seconds from starting `refservers run http` until it answered a GET."""
    started = time.monotonic()
    with refservers(["run", "http"], WORK / f"run-http-{rep}") as server:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port('http')}/get", timeout=30) as reply:
            reply.read()
        return time.monotonic() - started


def _bare_twisted_answered() -> float:
    """The same for a bare Twisted web server (BARE_TWISTED_WEB_SCRIPT)."""
    started = time.monotonic()
    process = subprocess.Popen(
        [str(PYTHON), "-c", BARE_TWISTED_WEB_SCRIPT], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        port = int(process.stdout.readline())  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/get", timeout=30) as reply:
            reply.read()
        return time.monotonic() - started
    finally:
        stop(process)


def bench_startup(reps: int) -> None:
    sys.path.insert(0, str(ROOT))
    from servers import registry

    # Start-up as users see it: pip compiles an installed wheel's modules, and a checkout
    # caches them on its first start, unless the environment says otherwise (this
    # machine's shells set PYTHONDONTWRITEBYTECODE=1, which left every start compiling
    # servers/ from source: about a quarter of a second of `up`).
    run([str(PYTHON), "-m", "compileall", "-q", str(ROOT / "servers")], timeout=CLIENT_TIMEOUT)

    # Start-up takes about a second and moves with the machine's load by a tenth of that:
    # two more repetitions than the other groups, each next to its floor, in turns.
    reps += 2
    ready, probed, rss, stopped, imported = [], [], [], [], []
    for rep, index in in_turns(reps, 2):
        if index == 1:  # the floor under `up`: importing its libraries, nothing else
            imported.append(timed(lambda: run([str(PYTHON), "-c", UP_LIBRARIES_SCRIPT], timeout=CLIENT_TIMEOUT)))
            continue
        started = time.monotonic()
        with refservers(["up"], WORK / f"up-{rep}") as stack:
            ready.append(time.monotonic() - started)
            # Every server answers its real probe from outside the process too.
            with urllib.request.urlopen(stack.urls["admin"] + "/api/v1/servers", timeout=30) as reply:
                servers = json.load(reply)["servers"]
            for entry in servers:
                port = next(iter(entry["listeners"].values()))
                registry.server_class(entry["name"]).probe("127.0.0.1", port, 10)
            probed.append(time.monotonic() - started)
            time.sleep(2)  # idle: let start-up garbage settle before reading RSS
            rss.append(rss_kib(stack.pid) / 1024)
            stop_started = time.monotonic()
        stopped.append(time.monotonic() - stop_started)
    names = ", ".join(registry.SERVERS)
    up_probed = "`refservers up` until every server answered its probe"
    pair("start-up", up_probed, "s", False, probed, note=f"{len(registry.SERVERS)} servers: {names}")
    # The floor under `up` (asyncssh with the same library lookup refservers uses, see
    # servers/sftp/__init__.py).
    pair(
        "start-up",
        up_probed,
        "s",
        False,
        probed,
        "its libraries' imports",
        imported,
        "the floor: a Python process importing twisted (web, mail, conch), aiosmtpd, pyftpdlib, asyncssh, "
        "jsonrpcserver, h11, dnslib, prometheus_client, pyOpenSSL and cryptography, then exiting; in turns with `up`",
    )
    pair("start-up", "`refservers up` printed its ready table", "s", False, ready)
    pair("start-up", "idle RSS of `refservers up`", "MiB", False, rss)
    pair("start-up", "`refservers up` stop (SIGTERM to exit)", "s", False, stopped)

    # One server alone: run imports only what it starts (lazy loading); in turns with its
    # floor, a bare Twisted web server.
    http_answered: list[float] = []
    bare_answered: list[float] = []
    for rep, index in in_turns(reps, 2):
        if index == 0:
            http_answered.append(_run_http_answered(rep))
        else:
            bare_answered.append(_bare_twisted_answered())
    http_metric = "`refservers run http` until it answered a GET"
    pair("start-up", http_metric, "s", False, http_answered)
    pair(
        "start-up",
        http_metric,
        "s",
        False,
        http_answered,
        "bare Twisted web",
        bare_answered,
        "the floor: Python with Twisted's asyncio reactor and twisted.web, one resource, nothing else",
    )

    script = textwrap.dedent(
        """
        import json, statistics, sys, tempfile, time
        from servers import registry
        from servers.core import Core, load_config
        from servers.core.config import PORT
        schema = registry.schema()
        overrides = [f"core.data_dir={tempfile.mkdtemp()}", "ftp.passive_ports=0"]
        for section, options in schema.items():
            overrides += [f"{section}.{o.key}=0" for o in options if o.kind is PORT]
        core = registry.make_core(load_config(schema, env={}, overrides=overrides))
        out = {}
        for name in sys.argv[1:]:
            times = []
            for _ in range(6):
                t = time.perf_counter()
                server = registry.server_class(name)(core.config[name], core).start()
                server.stop()
                core.servers.remove(server)
                times.append(time.perf_counter() - t)
            out[name] = {"first": times[0], "warm": statistics.median(times[1:])}
        core.stop_all()
        print(json.dumps(out))
        """
    )
    names_in_process = ["http", "smtp", "ftp", "sftp", "imap"]
    per_name: dict[str, list[dict[str, float]]] = {name: [] for name in names_in_process}
    for _ in range(reps):
        result = run([str(PYTHON), "-c", script, *names_in_process], timeout=CLIENT_TIMEOUT, cwd=ROOT)
        for name, timing in json.loads(result.stdout.strip().splitlines()[-1]).items():
            per_name[name].append(timing)
    for name, timings in per_name.items():
        pair(
            "start-up",
            f"in-process start+stop of {name} (the fixture path), warm",
            "ms",
            False,
            [t["warm"] * 1000 for t in timings],
        )


# -- HTTP --------------------------------------------------------------------------------------


def wrk(url: str, script: Path | None = None) -> tuple[float, float]:
    """(requests/s, p99 ms) of one bounded wrk run; socket errors or non-2xx fail it."""
    args = ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{WRK_SECONDS}s", "--latency", "--timeout", "10s"]
    if script:
        args += ["-s", str(script)]
    output = run([*args, url], timeout=WRK_SECONDS + 60).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk {url}: {[line.strip() for line in output.splitlines() if 'Non-2xx' in line]}")
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"\s99%\s+([\d.]+)(us|ms|s)", output).groups()  # type: ignore[union-attr]
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rate, p99


def wrk_turns(urls: list[str], reps: int, script: Path | None = None) -> list[tuple[list[float], list[float]]]:
    """(requests/s, p99 ms) of ``reps`` wrk runs against each URL, the servers in turns."""
    runs: list[list[tuple[float, float]]] = [[] for _ in urls]
    for _, index in in_turns(reps, len(urls)):
        runs[index].append(wrk(urls[index], script))
    return [([rate for rate, _ in series], [p99 for _, p99 in series]) for series in runs]


def bench_http(reps: int) -> None:
    static = WORK / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "page.html").write_bytes(b"<p>" + b"refservers " * 1480 + b"</p>\n")  # ~16 KiB
    settings = {"REFSERVERS_HTTP_STATIC_DIR": str(static)}
    gunicorn = peers.PEER_VENV / "bin" / "gunicorn"
    with contextlib.ExitStack() as running:
        ours = running.enter_context(refservers(["run", "http"], WORK / "rs-http", settings))
        base = f"http://127.0.0.1:{ours.port('http')}"
        nginx_port = free_port()
        nginx = ["nginx", "-c", str(peers.nginx_config(nginx_port, static))]
        running.enter_context(service(nginx, nginx_port, WORK / "logs" / "nginx.log"))
        our_static, their_static = wrk_turns([base + "/static/page.html", f"http://127.0.0.1:{nginx_port}/static/page.html"], reps)
        if gunicorn.exists():
            port = free_port()
            httpbin = [str(gunicorn), "-b", f"127.0.0.1:{port}", "httpbin:app"]
            running.enter_context(service(httpbin, port, WORK / "logs" / "httpbin.log"))
            our_get, their_get = wrk_turns([base + "/get", f"http://127.0.0.1:{port}/get"], reps)
        else:
            (our_get,) = wrk_turns([base + "/get"], reps)
    workloads["HTTP /get"] = lambda out: _profile_wrk(["run", "http"], settings, "/get", out)
    workloads["HTTP static file"] = lambda out: _profile_wrk(["run", "http"], settings, "/static/page.html", out)
    if gunicorn.exists():
        note = "httpbin's usual command line: gunicorn, 1 sync worker; the servers take turns at each repetition"
        pair(
            "HTTP",
            "/get requests/s (wrk, 32 connections)",
            "req/s",
            True,
            our_get[0],
            "httpbin+gunicorn",
            their_get[0],
            note,
        )
        pair("HTTP", "/get p99 latency", "ms", False, our_get[1], "httpbin+gunicorn", their_get[1], note)
    else:
        skip("HTTP /get vs httpbin", "httpbin/gunicorn could not be installed into bench/.peer-venv")
        pair("HTTP", "/get requests/s (wrk, 32 connections)", "req/s", True, our_get[0])
    note = "16 KiB file; nginx with 1 worker process (the ceiling)"
    pair(
        "HTTP",
        "static file requests/s (wrk, 32 connections)",
        "req/s",
        True,
        our_static[0],
        "nginx",
        their_static[0],
        note,
    )
    pair("HTTP", "static file p99 latency", "ms", False, our_static[1], "nginx", their_static[1], note)


def _profile_wrk(
    command: list[str], settings: dict[str, str], path: str, out: Path, script: Path | None = None
) -> None:
    with refservers(command, WORK / "rs-profile", settings, profile_to=out) as ours:
        name = command[1]
        wrk(f"http://127.0.0.1:{ours.port(name)}{path}", script)


# -- SMTP --------------------------------------------------------------------------------------


def smtp_source(port: int) -> float:
    """Seconds for SMTP_SENDERS parallel sessions to send SMTP_MESSAGES messages of 2 KiB."""
    args = [
        "smtp-source",
        "-s",
        str(SMTP_SENDERS),
        "-m",
        str(SMTP_MESSAGES),
        "-l",
        "2048",
        "-f",
        "bench@example.com",
        "-t",
        "demo@example.com",
    ]
    return timed(lambda: run([*args, f"127.0.0.1:{port}"], timeout=CLIENT_TIMEOUT))


MAILDEV = peers.NODE_MODULES / "maildev" / "bin" / "maildev"


def maildev_once(measure: Callable[[int], float]) -> float:
    """``measure(smtp_port)`` against a fresh MailDev."""
    port, web = free_port(), free_port()
    args = ["node", str(MAILDEV), "--smtp", str(port), "--web", str(web), "--ip", "127.0.0.1", "--silent"]
    with service(args, port, WORK / "logs" / "maildev.log"):
        return measure(port)


def maildev_runs(reps: int, measure: Callable[[int], float]) -> list[float] | None:
    """``measure(smtp_port)`` against a fresh MailDev, ``reps`` times; None when npm could
    not install it."""
    return [maildev_once(measure) for _ in range(reps)] if MAILDEV.exists() else None


def refservers_smtp_rate(rep: int) -> float:
    """Messages/s stored by a fresh `refservers run smtp` on a fresh data directory."""
    data = WORK / f"rs-smtp-{rep}"
    shutil.rmtree(data, ignore_errors=True)
    with refservers(["run", "smtp"], data) as server:
        seconds = smtp_source(server.port("smtp"))
    stored = len(list((data / "mail" / "demo" / "new").iterdir()))
    if stored != SMTP_MESSAGES:
        raise RuntimeError(f"refservers stored {stored} of {SMTP_MESSAGES} messages")
    return SMTP_MESSAGES / seconds


def bench_smtp(reps: int) -> None:
    # The ceilings: Postfix's smtp-sink (C), and the library refservers' SMTP is built on,
    # on one asyncio loop, with a handler that stores nothing (no Maildir, no fsync, no
    # journal); then the same with a plain durable store, as a first version would have it.
    ceilings = {
        "smtp-sink": (["smtp-sink", "-u", "nobody", "127.0.0.1:{port}", "256"], "smtp-sink stores nothing: the ceiling"),
        "stock aiosmtpd": (
            [str(PYTHON), "-c", STOCK_AIOSMTPD_SCRIPT, "{port}"],
            "aiosmtpd alone, its handler stores nothing: one asyncio loop's ceiling",
        ),
        "stock aiosmtpd, fsyncing": (
            [str(PYTHON), "-c", STOCK_AIOSMTPD_SCRIPT, "{port}", str(WORK / "aiosmtpd-fsyncing")],
            "aiosmtpd with a handler that writes, fsyncs and renames each message into one directory "
            "and fsyncs it, in the loop's default executor: what durable storage costs it",
        ),
    }
    shutil.rmtree(WORK / "aiosmtpd-fsyncing", ignore_errors=True)  # as each of our repetitions starts afresh
    # Every server is started afresh for each repetition, and they take turns.
    contestants: dict[str, Callable[[int], float]] = {"refservers": refservers_smtp_rate}
    if MAILDEV.exists():
        contestants["MailDev"] = lambda rep: maildev_once(lambda port: SMTP_MESSAGES / smtp_source(port))
    else:
        skip("SMTP vs MailDev", "npm install maildev failed")
    for peer, (command, _) in ceilings.items():
        contestants[peer] = functools.partial(smtp_peer_once, command, peer)
    rates: dict[str, list[float]] = {name: [] for name in contestants}
    names = list(contestants)
    for rep, index in in_turns(reps, len(names)):
        rates[names[index]].append(contestants[names[index]](rep))
    workloads["SMTP messages/s"] = lambda out: _profile_smtp(out)

    ours = rates["refservers"]
    if "MailDev" in rates:
        pair(
            "SMTP",
            f"messages/s stored, {SMTP_SENDERS} parallel senders (smtp-source)",
            "msg/s",
            True,
            ours,
            "MailDev",
            rates["MailDev"],
            f"{SMTP_MESSAGES} x 2 KiB; refservers fsyncs each message into Maildir, MailDev keeps them in memory and a temp dir; "
            "the servers take turns at each repetition",
        )
    metric = f"messages/s, {SMTP_SENDERS} parallel senders (smtp-source)"
    for peer, (_, note) in ceilings.items():
        pair("SMTP", metric, "msg/s", True, ours, peer, rates[peer], note)


# argv: port [directory]; with a directory, each message is stored there durably.
STOCK_AIOSMTPD_SCRIPT = """
import asyncio, itertools, os, sys
from aiosmtpd.smtp import SMTP
directory = os.path.join(sys.argv[2], str(os.getpid())) if len(sys.argv) > 2 else None
names = itertools.count()
def store(data):
    name = str(next(names))
    fd = os.open(os.path.join(directory, "tmp-" + name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.fsync(fd)
    os.close(fd)
    os.rename(os.path.join(directory, "tmp-" + name), os.path.join(directory, name))
    fd = os.open(directory, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
class Handler:
    async def handle_DATA(self, server, session, envelope):
        if directory:
            await asyncio.get_running_loop().run_in_executor(None, store, envelope.original_content)
        return "250 OK"
async def main():
    if directory:
        os.makedirs(directory, exist_ok=True)
    loop = asyncio.get_running_loop()
    await loop.create_server(lambda: SMTP(Handler(), hostname="localhost"), "127.0.0.1", int(sys.argv[1]))
    await asyncio.Event().wait()
asyncio.run(main())
"""


def smtp_peer_once(command: list[str], name: str, rep: int) -> float:
    """Messages/s of smtp-source against a peer started afresh (``{port}`` in ``command``
    is its port) for repetition ``rep``."""
    port = free_port()
    argv = [part.replace("{port}", str(port)) for part in command]
    with service(argv, port, WORK / "logs" / f"{name.replace(' ', '-').replace(',', '')}-{rep}.log"):
        return SMTP_MESSAGES / smtp_source(port)


def _profile_smtp(out: Path) -> None:
    data = WORK / "rs-profile-smtp"
    shutil.rmtree(data, ignore_errors=True)
    with refservers(["run", "smtp"], data, profile_to=out) as server:
        smtp_source(server.port("smtp"))


# -- FTP ---------------------------------------------------------------------------------------


def big_file(mib: int) -> Path:
    path = WORK / f"payload-{mib}MiB.bin"
    if not path.exists() or path.stat().st_size != mib * 1024 * 1024:
        with open(path, "wb") as out:
            block = bytes(range(256)) * 4096  # 1 MiB, compressible-neutral for loopback
            for _ in range(mib):
                out.write(block)
    return path


def curl_ftp(url: str, upload: Path | None) -> float:
    args = ["curl", "-sS", "--fail", "--max-time", str(int(CLIENT_TIMEOUT))]
    args += ["-T", str(upload), url] if upload else ["-o", "/dev/null", url]
    return timed(lambda: run(args, timeout=CLIENT_TIMEOUT + 10))


def ftp_parallel(port: int, user: str, password: str) -> float:
    """Seconds for FTP_PARALLEL clients at once to log in, STOR 4 KiB, RETR it and quit."""
    payload = bytes(range(256)) * 16

    def client(index: int) -> None:
        with ftplib.FTP() as ftp:
            ftp.connect("127.0.0.1", port, timeout=60)  # bounded: a hung client fails the round
            ftp.login(user, password)
            ftp.storbinary(f"STOR small-{index}.bin", io.BytesIO(payload))
            received = bytearray()
            ftp.retrbinary(f"RETR small-{index}.bin", received.extend)
            if bytes(received) != payload:
                raise RuntimeError("small file came back different")

    def all_clients() -> None:
        with ThreadPoolExecutor(max_workers=FTP_PARALLEL) as pool:
            for future in [pool.submit(client, i) for i in range(FTP_PARALLEL)]:
                future.result(timeout=CLIENT_TIMEOUT)

    return timed(all_clients)


FtpLogin = tuple[int, str, str]  # port, user, password


def ftp_measure(servers: list[FtpLogin], reps: int) -> list[dict[str, list[float]]]:
    """STOR, RETR and the parallel small-file round on each server, the servers in turns."""
    big = big_file(BIG_FILE_MIB)

    def url(port: int, user: str, password: str) -> str:
        return f"ftp://{user}:{password}@127.0.0.1:{port}/big.bin"

    measures: dict[str, Callable[[int, str, str], float]] = {
        "stor": lambda *login: BIG_FILE_MIB / curl_ftp(url(*login), big),
        "retr": lambda *login: BIG_FILE_MIB / curl_ftp(url(*login), None),
        "parallel": ftp_parallel,
    }
    results: list[dict[str, list[float]]] = [{**{name: [] for name in measures}, "hung": [0.0]} for _ in servers]
    for name, measure in measures.items():
        for _, index in in_turns(reps, len(servers)):
            # Each transfer starts with nothing left to write back: a peer that does not
            # fsync leaves its 256 MiB upload dirty, and the next server's upload would
            # share the disk with its write-back.
            os.sync()
            try:
                results[index][name].append(measure(*servers[index]))
            except TimeoutError:  # a parallel client got no reply for 60 s: the round failed
                results[index]["hung"][0] += 1
    return results


PYFTPDLIB_SCRIPT = """
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
authorizer = DummyAuthorizer()
authorizer.add_user("demo", "demo", sys.argv[2], perm="elradfmwMT")
FTPHandler.authorizer = authorizer
server = FTPServer(("127.0.0.1", int(sys.argv[1])), FTPHandler)
server.max_cons = 512
server.serve_forever()
"""


def fsync_seconds(directory: Path, mib: int) -> float:
    """Seconds one fsync takes for a file of ``mib`` MiB just written to ``directory``:
    the part of refservers' STOR before its 226 that vsftpd does not do."""
    path = directory / "fsync-floor.bin"
    block = bytes(range(256)) * 4096
    try:
        with open(path, "wb") as out:
            for _ in range(mib):
                out.write(block)
            out.flush()
            return timed(lambda: os.fsync(out.fileno()))
    finally:
        path.unlink(missing_ok=True)


def bench_ftp(reps: int) -> None:
    settings = {"REFSERVERS_FTP_AUTH_FAILED_DELAY": "0"}
    bare = WORK / "pyftpdlib-home"
    bare.mkdir(parents=True, exist_ok=True)
    peer_servers = {
        "vsftpd": (lambda port: ["vsftpd", str(peers.vsftpd_config(port))], peers.LOCAL_USER, peers.LOCAL_PASSWORD),
        "bare pyftpdlib": (lambda port: [str(PYTHON), "-c", PYFTPDLIB_SCRIPT, str(port), str(bare)], "demo", "demo"),
    }
    with contextlib.ExitStack() as running:
        server = running.enter_context(refservers(["run", "ftp"], WORK / "rs-ftp", settings))
        logins: dict[str, FtpLogin] = {"refservers": (server.port("ftp"), "demo", "demo")}
        for peer, (command, user, password) in peer_servers.items():
            port = free_port()
            try:
                running.enter_context(service(command(port), port, WORK / "logs" / f"{peer.replace(' ', '-')}.log"))
            except Exception as error:  # keep the other peer's figures
                skip(f"FTP vs {peer}", f"{type(error).__name__}: {error}")
                continue
            logins[peer] = (port, user, password)
        measured = dict(zip(logins, ftp_measure(list(logins.values()), reps), strict=True))
    ours = measured.pop("refservers")
    results = measured
    # What the fsync before the 226 would cost if the whole file were synced at the end
    # (EarlyWriteback syncs it while it arrives): the same file system as the data dir.
    fsyncs = [fsync_seconds(WORK, BIG_FILE_MIB) for _ in ours["stor"]]
    workloads["FTP STOR MB/s"] = lambda out: _profile_ftp(out, settings, upload=True)
    workloads["FTP RETR MB/s"] = lambda out: _profile_ftp(out, settings, upload=False)
    workloads["FTP 100 parallel login+small file"] = lambda out: _profile_ftp(out, settings, upload=None)

    for peer, theirs in results.items():
        note = (
            "curl; refservers fsyncs the upload before its 226; the servers take turns at each repetition, each transfer after a sync"
            if peer == "vsftpd"
            else "curl; pyftpdlib alone, no fsync, no journal"
        )
        pair("FTP", f"STOR {BIG_FILE_MIB} MiB", "MB/s", True, ours["stor"], peer, theirs["stor"], note)
        pair("FTP", f"RETR {BIG_FILE_MIB} MiB", "MB/s", True, ours["retr"], peer, theirs["retr"], "curl")
        pair(
            "FTP",
            f"{FTP_PARALLEL} parallel clients: login, STOR+RETR 4 KiB, quit",
            "s",
            False,
            ours["parallel"],
            peer,
            theirs["parallel"],
            "Python ftplib threads",
        )
    if "vsftpd" in results:
        pair(
            "FTP",
            f"fsync of a {BIG_FILE_MIB} MiB file just written, no network",
            "s",
            False,
            fsyncs,
            note="a STOR's durability step if left to the end; refservers syncs while the file arrives",
        )



def _profile_ftp(out: Path, settings: dict[str, str], upload: bool | None) -> None:
    with refservers(["run", "ftp"], WORK / "rs-profile-ftp", settings, profile_to=out) as server:
        port = server.port("ftp")
        url = f"ftp://demo:demo@127.0.0.1:{port}/big.bin"
        if upload is None:
            ftp_parallel(port, "demo", "demo")
        else:
            curl_ftp(url, big_file(BIG_FILE_MIB))
            if not upload:
                curl_ftp(url, None)


# -- SFTP --------------------------------------------------------------------------------------


def sftp_batch(port: int, user: str, password: str, commands: str) -> float:
    """Seconds for one OpenSSH sftp session running ``commands``.

    The commands go on stdin, not ``-b``: batch mode forces BatchMode=yes, which turns
    password authentication (sshpass) off. Errors then do not change the exit status,
    so the output is checked for sftp's error messages instead.
    """
    args = [
        "sshpass", "-p", password, "sftp", "-q", "-P", str(port),
        "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "PubkeyAuthentication=no",
        "-o", "LogLevel=ERROR", f"{user}@127.0.0.1",
    ]  # fmt: skip
    outcome: list[subprocess.CompletedProcess[str]] = []
    seconds = timed(lambda: outcome.append(run(args, timeout=CLIENT_TIMEOUT, input=commands)))
    output = outcome[0].stdout + outcome[0].stderr
    if any(word in output for word in ("Couldn't", "not found", "denied", "No such", "failure")):
        raise RuntimeError(f"sftp: {output[-300:]}")
    return seconds


def sftp_measure(servers: list[tuple[int, str, str]], reps: int) -> list[dict[str, list[float]]]:
    """put and get on each server ((port, user, password)), the servers in turns."""
    big = big_file(SFTP_FILE_MIB)
    for login in servers:
        sftp_batch(*login, "pwd\n")  # connect once: a host key, an account that works
    results: list[dict[str, list[float]]] = [{"put": [], "get": []} for _ in servers]
    for direction, command in (("put", f"put {big} big.bin\n"), ("get", "get big.bin /dev/null\n")):
        for _, index in in_turns(reps, len(servers)):
            os.sync()  # as for FTP: no other server's upload still being written back
            results[index][direction].append(SFTP_FILE_MIB / sftp_batch(*servers[index], command))
    return results


def bench_sftp(reps: int) -> None:
    port = free_port()
    sshd = ["/usr/sbin/sshd", "-D", "-e", "-f", str(peers.sshd_config(port))]
    with refservers(["run", "sftp"], WORK / "rs-sftp") as server, service(sshd, port, WORK / "logs" / "sshd.log"):
        logins = [(server.port("sftp"), "demo", "demo"), (port, peers.LOCAL_USER, peers.LOCAL_PASSWORD)]
        ours, theirs = sftp_measure(logins, reps)
    workloads["SFTP put MB/s"] = lambda out: _profile_sftp(out, "put")
    workloads["SFTP get MB/s"] = lambda out: _profile_sftp(out, "get")
    note = f"{SFTP_FILE_MIB} MiB, OpenSSH sftp client for both (incl. its SSH handshake); the servers take turns at each repetition"
    pair("SFTP", f"put {SFTP_FILE_MIB} MiB", "MB/s", True, ours["put"], "OpenSSH sftp-server", theirs["put"], note)
    pair("SFTP", f"get {SFTP_FILE_MIB} MiB", "MB/s", True, ours["get"], "OpenSSH sftp-server", theirs["get"], note)


def _profile_sftp(out: Path, direction: str) -> None:
    with refservers(["run", "sftp"], WORK / "rs-profile-sftp", profile_to=out) as server:
        port = server.port("sftp")
        sftp_batch(port, "demo", "demo", f"put {big_file(SFTP_FILE_MIB)} big.bin\n")
        if direction == "get":
            sftp_batch(port, "demo", "demo", "get big.bin /dev/null\n")


# -- JSON-RPC ----------------------------------------------------------------------------------

JSONRPC_PEER = """
import sys
from jsonrpcserver import Success, method, serve

@method
def ping():
    return Success("pong")

serve("127.0.0.1", int(sys.argv[1]))
"""


def bench_jsonrpc(reps: int) -> None:
    script = WORK / "jsonrpc-post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.body = \'{"jsonrpc": "2.0", "method": "ping", "id": 1}\'\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    port = free_port()
    with (
        refservers(["run", "jsonrpc"], WORK / "rs-jsonrpc") as server,
        service([str(PYTHON), "-c", JSONRPC_PEER, str(port)], port, WORK / "logs" / "jsonrpcserver.log"),
    ):
        ours, theirs = wrk_turns([f"http://127.0.0.1:{server.port('jsonrpc')}/", f"http://127.0.0.1:{port}/"], reps, script)
    workloads["JSON-RPC calls/s"] = lambda out: _profile_wrk(["run", "jsonrpc"], {}, "/", out, script)
    note = (
        "wrk POST of a ping call; jsonrpcserver.serve() is http.server, one connection at a time; "
        "the servers take turns at each repetition"
    )
    pair(
        "JSON-RPC", "calls/s (wrk, 32 connections)", "calls/s", True, ours[0], "jsonrpcserver serve()", theirs[0], note
    )


# -- proxy -------------------------------------------------------------------------------------


def proxied_latency(proxy_port: int | None, target: str, count: int = 300) -> float:
    """Median milliseconds of one GET on a new connection (through the proxy or direct).

    A new connection each time: tinyproxy closes client connections after each response.
    """
    import http.client

    host, port = ("127.0.0.1", proxy_port) if proxy_port else target.split("//")[1].split("/")[0].split(":")
    path = target if proxy_port else "/" + target.split("/", 3)[3]
    times = []
    for _ in range(count):
        started = time.perf_counter()
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"GET {target} via {proxy_port}: {response.status}")
        times.append((time.perf_counter() - started) * 1000)
    return float(median(times) or 0)


def connect_throughput(proxy_port: int, url: str, mib: int) -> float:
    args = ["curl", "-sS", "--fail", "-p", "-x", f"http://127.0.0.1:{proxy_port}", "-o", "/dev/null", url]
    return mib / timed(lambda: run(args, timeout=CLIENT_TIMEOUT))


# A relay that parses nothing: each client connection is piped to one fixed upstream on
# asyncio's transports, the way refservers' forward proxy moves bytes once it has parsed
# a request. nginx takes the proxy's absolute-form request line itself (RFC 9112 3.2.2).
BARE_RELAY_SCRIPT = """
import asyncio, sys
class Pipe(asyncio.Protocol):
    def __init__(self, peer=None):
        self.peer, self.pending = peer, []
    def connection_made(self, transport):
        self.transport = transport
        if self.peer is None:
            transport.pause_reading()
            asyncio.ensure_future(self.connect())
    async def connect(self):
        loop = asyncio.get_running_loop()
        _, upstream = await loop.create_connection(lambda: Pipe(self), "127.0.0.1", int(sys.argv[2]))
        self.peer = upstream
        self.transport.resume_reading()
    def data_received(self, data):
        self.peer.transport.write(data)
    def eof_received(self):
        if self.peer is not None:
            self.peer.transport.close()
    def connection_lost(self, exc):
        if self.peer is not None:
            self.peer.transport.close()
async def main():
    server = await asyncio.get_running_loop().create_server(Pipe, "127.0.0.1", int(sys.argv[1]))
    await server.serve_forever()
asyncio.run(main())
"""


def bench_proxy(reps: int) -> None:
    static = WORK / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "small.txt").write_bytes(b"x" * 1024)
    big = static / "big.bin"
    if not big.exists():
        big.symlink_to(big_file(BIG_FILE_MIB))
    nginx_port = free_port()
    with service(
        ["nginx", "-c", str(peers.nginx_config(nginx_port, static))], nginx_port, WORK / "logs" / "nginx-proxy.log"
    ):
        small = f"http://127.0.0.1:{nginx_port}/static/small.txt"
        large = f"http://127.0.0.1:{nginx_port}/static/big.bin"
        direct = [proxied_latency(None, small) for _ in range(reps)]
        with refservers(["run", "proxy"], WORK / "rs-proxy") as server:
            port = server.port("proxy")
            ours_latency = [proxied_latency(port, small) - d for d in direct]
            ours_tunnel = [connect_throughput(port, large, BIG_FILE_MIB) for _ in range(reps)]
        workloads["proxy CONNECT MB/s"] = lambda out: _profile_proxy(out, "connect")
        workloads["proxy added latency"] = lambda out: _profile_proxy(out, "latency")
        port = free_port()
        with service(
            ["tinyproxy", "-d", "-c", str(peers.tinyproxy_config(port))], port, WORK / "logs" / "tinyproxy.log"
        ):
            their_latency = [proxied_latency(port, small) - d for d in direct]
            their_tunnel = [connect_throughput(port, large, BIG_FILE_MIB) for _ in range(reps)]
        port = free_port()
        with service(
            [str(PYTHON), "-c", BARE_RELAY_SCRIPT, str(port), str(nginx_port)], port, WORK / "logs" / "bare-relay.log"
        ):
            relay_latency = [proxied_latency(port, small) - d for d in direct]
    pair(
        "proxy",
        "added latency per GET on a new connection (median of 300)",
        "ms",
        False,
        ours_latency,
        "tinyproxy",
        their_latency,
        "1 KiB from nginx, minus the direct time",
    )
    pair(
        "proxy",
        "floor, not refservers: added latency per GET of a relay that parses nothing",
        "ms",
        False,
        relay_latency,
        "tinyproxy",
        their_latency,
        "the 'refservers' column is a Python relay on asyncio's transports piping to nginx",
    )
    pair(
        "proxy",
        f"CONNECT tunnel throughput, {BIG_FILE_MIB} MiB",
        "MB/s",
        True,
        ours_tunnel,
        "tinyproxy",
        their_tunnel,
        "curl -p through the proxy to nginx",
    )


def _profile_proxy(out: Path, what: str) -> None:
    static = WORK / "static"
    nginx_port = free_port()
    with service(
        ["nginx", "-c", str(peers.nginx_config(nginx_port, static))], nginx_port, WORK / "logs" / "nginx-proxy.log"
    ):
        with refservers(["run", "proxy"], WORK / "rs-profile-proxy", profile_to=out) as server:
            if what == "latency":
                proxied_latency(server.port("proxy"), f"http://127.0.0.1:{nginx_port}/static/small.txt", count=2000)
            else:
                connect_throughput(server.port("proxy"), f"http://127.0.0.1:{nginx_port}/static/big.bin", BIG_FILE_MIB)


# -- TCP proxy listeners (the Toxiproxy API's proxies) ---------------------------------------


def direct_get(url: str) -> float:
    """Seconds for one GET with curl on a new connection (through a TCP relay or not)."""
    return timed(lambda: run(["curl", "-sS", "--fail", "-o", "/dev/null", url], timeout=CLIENT_TIMEOUT))


# Toxiproxy itself can't be installed here (no Go toolchain or release download), so its
# own published figures are quoted beside ours, not measured.
TOXIPROXY_PUBLISHED_LATENCY = "Toxiproxy publishes < 0.1 ms added latency (quoted, not measured)"
TOXIPROXY_PUBLISHED_THROUGHPUT = "Toxiproxy publishes ~1,000 MB/s (quoted, not measured)"


def bench_tcp_proxy(reps: int) -> None:
    """A plain TCP proxy listener (no toxics) in front of nginx, against HAProxy in TCP
    mode and socat: latency added to a GET on a new connection, and the throughput of
    one big download through it."""
    static = WORK / "static"
    static.mkdir(parents=True, exist_ok=True)
    (static / "small.txt").write_bytes(b"x" * 1024)
    big = static / "big.bin"
    if not big.exists():
        big.symlink_to(big_file(BIG_FILE_MIB))
    nginx_port = free_port()
    with service(
        ["nginx", "-c", str(peers.nginx_config(nginx_port, static))], nginx_port, WORK / "logs" / "nginx-tcp.log"
    ):
        direct = [proxied_latency(None, f"http://127.0.0.1:{nginx_port}/static/small.txt") for _ in range(reps)]

        def measure(port: int) -> tuple[list[float], list[float]]:
            small = f"http://127.0.0.1:{port}/static/small.txt"
            added = [proxied_latency(None, small) - d for d in direct]
            big_url = f"http://127.0.0.1:{port}/static/big.bin"
            throughput = [BIG_FILE_MIB / direct_get(big_url) for _ in range(reps)]
            return added, throughput

        port = free_port()
        settings = {"REFSERVERS_PROXY_TCP": f"bench@{port}=127.0.0.1:{nginx_port}"}
        with refservers(["run", "proxy"], WORK / "rs-tcp-proxy", settings):
            wait_port(port)
            ours = measure(port)
        workloads["tcp-proxy added latency"] = lambda out: _profile_tcp_proxy(out, "latency")
        workloads["tcp-proxy throughput"] = lambda out: _profile_tcp_proxy(out, "throughput")
        peer_runs: dict[str, tuple[list[float], list[float]]] = {}
        port = free_port()
        with service(
            ["haproxy", "-db", "-f", str(peers.haproxy_config(port, nginx_port))], port, WORK / "logs" / "haproxy.log"
        ):
            peer_runs["HAProxy (TCP mode)"] = measure(port)
        port = free_port()
        with service(peers.socat_command(port, nginx_port), port, WORK / "logs" / "socat.log"):
            peer_runs["socat (fork)"] = measure(port)
    for peer, (latency, throughput) in peer_runs.items():
        pair(
            "tcp-proxy",
            "added latency per GET on a new connection (median of 300)",
            "ms",
            False,
            ours[0],
            peer,
            latency,
            f"1 KiB from nginx through a TCP listener, minus the direct time; {TOXIPROXY_PUBLISHED_LATENCY}",
        )
        pair(
            "tcp-proxy",
            f"throughput, one {BIG_FILE_MIB} MiB download",
            "MB/s",
            True,
            ours[1],
            peer,
            throughput,
            f"curl through the TCP listener from nginx; {TOXIPROXY_PUBLISHED_THROUGHPUT}",
        )


def _profile_tcp_proxy(out: Path, what: str) -> None:
    static = WORK / "static"
    nginx_port = free_port()
    with service(
        ["nginx", "-c", str(peers.nginx_config(nginx_port, static))], nginx_port, WORK / "logs" / "nginx-tcp.log"
    ):
        port = free_port()
        settings = {"REFSERVERS_PROXY_TCP": f"bench@{port}=127.0.0.1:{nginx_port}"}
        with refservers(["run", "proxy"], WORK / "rs-profile-tcp-proxy", settings, profile_to=out):
            wait_port(port)
            if what == "latency":
                proxied_latency(None, f"http://127.0.0.1:{port}/static/small.txt", count=2000)
            else:
                direct_get(f"http://127.0.0.1:{port}/static/big.bin")


# -- POP3 and IMAP -----------------------------------------------------------------------------


def seed_maildir(target: Path) -> None:
    """MAIL_MESSAGES messages of 1-8 KiB in Maildir ``new/``, CRLF line ends (what both
    servers put on the wire), every MAIL_NEEDLE_EVERY-th with "needle" in its body.

    Written once, then copied for each server: refservers and Dovecot read the same files.
    """
    if (target / "new").is_dir() and len(list((target / "new").iterdir())) == MAIL_MESSAGES:
        return
    shutil.rmtree(target, ignore_errors=True)
    for sub in ("cur", "new", "tmp"):
        (target / sub).mkdir(parents=True)
    started = int(time.time()) - MAIL_MESSAGES
    for index in range(MAIL_MESSAGES):
        body_lines = 16 + (index * 37) % 112  # 1-8 KiB, varied like real mail
        words = "needle " if index % MAIL_NEEDLE_EVERY == 0 else ""
        body = "".join(
            f"line {line} of message {index}: {words}lorem ipsum dolor sit amet\r\n" for line in range(body_lines)
        )
        message = (
            f"From: Sender {index % 50} <sender{index % 50}@example.com>\r\n"
            "To: Demo <demo@example.com>\r\n"
            f"Subject: benchmark message {index}\r\n"
            f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S +0000', time.gmtime(started + index))}\r\n"
            f"Message-ID: <bench-{index}@example.com>\r\n"
            "\r\n" + body
        ).encode()
        path = target / "new" / f"{started + index}.M{index:06d}P1.refbench,S={len(message)}"
        path.write_bytes(message)
        os.utime(path, (started + index, started + index))  # arrival order = UID order for both


def pop3_retrieve_all(port: int) -> float:
    """Seconds for one POP3 session: USER/PASS, STAT, RETR 1..n, QUIT (bounded in count and time)."""
    started = time.monotonic()
    client = poplib.POP3("127.0.0.1", port, timeout=60)
    try:
        client.user("demo")
        client.pass_("demo")
        count, _ = client.stat()
        if count != MAIL_MESSAGES:
            raise RuntimeError(f"POP3 STAT says {count} messages, expected {MAIL_MESSAGES}")
        for number in range(1, count + 1):
            _, lines, _ = client.retr(number)
            if not lines or time.monotonic() - started > CLIENT_TIMEOUT:
                raise RuntimeError(f"POP3 RETR {number}: {'empty' if not lines else 'over the time limit'}")
        client.quit()
    finally:
        client.close()
    return time.monotonic() - started


def imap_session(port: int, work: Callable[[imaplib.IMAP4], None]) -> float:
    """Seconds for LOGIN, SELECT INBOX, ``work``, LOGOUT in one imaplib session."""
    started = time.monotonic()
    client = imaplib.IMAP4("127.0.0.1", port, timeout=60)
    try:
        client.login("demo", "demo")
        status, data = client.select("INBOX")
        if status != "OK" or int(data[0] or 0) != MAIL_MESSAGES:
            raise RuntimeError(f"IMAP SELECT: {status} {data}")
        work(client)
        client.logout()
    finally:
        with contextlib.suppress(OSError):
            client.shutdown()
    return time.monotonic() - started


def imap_fetch_all(client: imaplib.IMAP4) -> None:
    status, data = client.fetch(f"1:{MAIL_MESSAGES}", "(BODY[])")
    fetched = sum(1 for item in data if isinstance(item, tuple))
    if status != "OK" or fetched != MAIL_MESSAGES:
        raise RuntimeError(f"IMAP FETCH 1:* BODY[]: {status}, {fetched} messages")


def imap_fetch_each(client: imaplib.IMAP4) -> None:
    started = time.monotonic()
    for number in range(1, MAIL_MESSAGES + 1):
        status, data = client.fetch(str(number), "(BODY[])")
        if status != "OK" or not isinstance(data[0], tuple) or time.monotonic() - started > CLIENT_TIMEOUT:
            raise RuntimeError(f"IMAP FETCH {number} BODY[]: {status}")


def imap_search_seconds(port: int) -> float:
    """Median seconds of IMAP_SEARCHES ``SEARCH BODY "needle"`` in one session (a full scan)."""
    times: list[float] = []

    def searches(client: imaplib.IMAP4) -> None:
        expected = len(range(0, MAIL_MESSAGES, MAIL_NEEDLE_EVERY))
        for _ in range(IMAP_SEARCHES):
            started = time.perf_counter()
            status, data = client.search(None, "BODY", "needle")
            times.append(time.perf_counter() - started)
            if status != "OK" or len(data[0].split()) != expected:
                raise RuntimeError(f"IMAP SEARCH BODY needle: {status}, {len(data[0].split())} of {expected}")

    imap_session(port, searches)
    return float(median(times) or 0)


def mail_measure(servers: list[tuple[int, int]], reps: int) -> list[dict[str, list[float]]]:
    """Each workload on each server ((POP3, IMAP) ports), the servers in turns."""
    # Untimed warm-up: the first session lets each server index the new Maildir
    # (refservers numbers the messages in its uidlist, Dovecot builds its index).
    for pop3_port, _ in servers:
        pop3_retrieve_all(pop3_port)
    measures: dict[str, Callable[[int, int], float]] = {
        "retr": lambda pop3_port, imap_port: pop3_retrieve_all(pop3_port),
        "fetch": lambda pop3_port, imap_port: imap_session(imap_port, imap_fetch_all),
        "fetch each": lambda pop3_port, imap_port: imap_session(imap_port, imap_fetch_each),
        "search": lambda pop3_port, imap_port: imap_search_seconds(imap_port) * 1000,
    }
    results: list[dict[str, list[float]]] = [{name: [] for name in measures} for _ in servers]
    for name, measure in measures.items():
        for _, index in in_turns(reps, len(servers)):
            results[index][name].append(measure(*servers[index]))
    return results


def refservers_mail(data_dir: Path, seed: Path) -> None:
    """A fresh data dir whose demo INBOX (refservers' store: <data_dir>/mail/<user>/) is a copy of ``seed``."""
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(seed, data_dir / "mail" / "demo")


@contextlib.contextmanager
def refservers_pop3_imap(data_dir: Path) -> Iterator[tuple[int, int]]:
    """refservers POP3 and IMAP (two `refservers run` processes) on one data dir."""
    with refservers(["run", "pop3"], data_dir) as pop3, refservers(["run", "imap"], data_dir) as imap:
        yield pop3.port("pop3"), imap.port("imap")


@contextlib.contextmanager
def dovecot(seed: Path) -> Iterator[tuple[int, int]]:
    """Dovecot on a copy of the Maildir ``seed``, until both its ports answer: (POP3, IMAP)."""
    with tempfile.TemporaryDirectory(prefix="refbench-dovecot-") as temporary:
        directory = Path(temporary)
        directory.chmod(0o755)  # Dovecot's mail processes run as LOCAL_USER and must get through
        maildir = directory / "Maildir"
        shutil.copytree(seed, maildir)
        (directory / "home").mkdir()
        run(["chown", "-R", f"{peers.LOCAL_USER}:{peers.LOCAL_USER}", str(maildir), str(directory / "home")], 60)
        imap_port, pop3_port = free_port(), free_port()
        config = peers.dovecot_config(directory, imap_port, pop3_port, maildir)
        with service(["dovecot", "-F", "-c", str(config)], imap_port, WORK / "logs" / "dovecot.log") as process:
            wait_port(pop3_port, process)
            yield pop3_port, imap_port


def bench_mail(reps: int) -> None:
    seed = WORK / "mail-seed"
    seed_maildir(seed)
    data = WORK / "rs-mail"
    refservers_mail(data, seed)
    with refservers_pop3_imap(data) as refservers_ports, dovecot(seed) as dovecot_ports:
        ours, theirs = mail_measure([refservers_ports, dovecot_ports], reps)
    workloads["POP3 RETR"] = lambda out: _profile_mail(out, "pop3", seed)
    workloads["IMAP FETCH 1:*"] = lambda out: _profile_mail(out, "fetch", seed)
    workloads["IMAP FETCH one"] = lambda out: _profile_mail(out, "fetch each", seed)
    workloads["IMAP SEARCH"] = lambda out: _profile_mail(out, "search", seed)

    note = f"{MAIL_MESSAGES} messages of 1-8 KiB, the same Maildir files; Python poplib/imaplib for both; after one untimed warm-up session; the two servers take turns at each repetition"
    peer = "Dovecot"
    pair(
        "POP3", f"RETR all {MAIL_MESSAGES} messages, one session", "s", False, ours["retr"], peer, theirs["retr"], note
    )
    pair("IMAP", f"FETCH 1:{MAIL_MESSAGES} BODY[], one command", "s", False, ours["fetch"], peer, theirs["fetch"], note)
    pair(
        "IMAP",
        f"FETCH n BODY[] one message at a time, {MAIL_MESSAGES} commands",
        "s",
        False,
        ours["fetch each"],
        peer,
        theirs["fetch each"],
        "one round trip per message, like a client syncing one by one",
    )
    pair(
        "IMAP",
        f'SEARCH BODY "needle" over {MAIL_MESSAGES} messages',
        "ms",
        False,
        ours["search"],
        peer,
        theirs["search"],
        f"median of {IMAP_SEARCHES} searches in one session; {MAIL_MESSAGES // MAIL_NEEDLE_EVERY} match; no full-text index on either side",
    )


def _profile_mail(out: Path, what: str, seed: Path) -> None:
    data = WORK / "rs-profile-mail"
    refservers_mail(data, seed)
    name = "pop3" if what == "pop3" else "imap"
    with refservers(["run", name], data, profile_to=out) as server:
        port = server.port(name)
        if what == "pop3":
            for _ in range(3):
                pop3_retrieve_all(port)
        elif what == "search":
            imap_search_seconds(port)
        else:
            for _ in range(3):
                imap_session(port, imap_fetch_all if what == "fetch" else imap_fetch_each)


# -- one big message: SMTP in, IMAP out ----------------------------------------------------

BIG_MAIL_MIB = 15  # the whole message on the wire, mostly one base64 attachment


def big_message() -> bytes:
    """A MIME message of BIG_MAIL_MIB MiB: a short text part and a base64 attachment of
    incompressible bytes, CRLF line ends and dot-stuffed already (nothing starts with "."),
    so the client spends no time on it inside the timed DATA."""
    path = WORK / f"big-mail-{BIG_MAIL_MIB}MiB.eml"
    if path.exists():
        return path.read_bytes()
    from email.message import EmailMessage
    from email.policy import SMTP as SMTP_POLICY
    from random import Random

    message = EmailMessage()
    message["From"] = "Bench <bench@example.com>"
    message["To"] = "Demo <demo@example.com>"
    message["Subject"] = "benchmark: one big attachment"
    message["Message-ID"] = "<bench-big@example.com>"
    message.set_content("The attachment is random bytes.\r\n")
    raw = Random(16).randbytes(BIG_MAIL_MIB * 1024 * 1024 * 3 // 4 - 4096)  # base64: 4/3, plus CRLFs
    message.add_attachment(raw, maintype="application", subtype="octet-stream", filename="payload.bin")
    data = message.as_bytes(policy=SMTP_POLICY)
    if any(line.startswith(b".") for line in data.split(b"\r\n")):
        raise RuntimeError("big message needs dot-stuffing")
    WORK.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return data


def smtp_send_big(port: int, message: bytes) -> float:
    """Seconds from DATA to its 250 for ``message`` on one smtplib connection."""
    with smtplib.SMTP("127.0.0.1", port, timeout=CLIENT_TIMEOUT) as client:
        client.ehlo("bench.example.com")
        client.mail("bench@example.com", [f"SIZE={len(message)}"] if client.has_extn("size") else [])
        client.rcpt("demo@example.com")
        started = time.monotonic()
        client.putcmd("data")
        code, reply = client.getreply()
        if code != 354:
            raise RuntimeError(f"SMTP DATA: {code} {reply!r}")
        client.send(message + b".\r\n")  # message ends in CRLF
        code, reply = client.getreply()
        seconds = time.monotonic() - started
        if code != 250:
            raise RuntimeError(f"SMTP end of DATA: {code} {reply!r}")
    return seconds


def imap_fetch_big(port: int, size: int) -> float:
    """Seconds for ``FETCH 1 BODY[]`` of the one message of INBOX, in a logged-in session."""
    client = imaplib.IMAP4("127.0.0.1", port, timeout=CLIENT_TIMEOUT)
    try:
        client.login("demo", "demo")
        status, data = client.select("INBOX")
        if status != "OK" or int(data[0] or 0) != 1:
            raise RuntimeError(f"IMAP SELECT: {status} {data}")
        started = time.monotonic()
        status, fetched = client.fetch("1", "(BODY[])")
        seconds = time.monotonic() - started
        body = fetched[0][1] if fetched and isinstance(fetched[0], tuple) else b""
        if status != "OK" or len(body) != size:
            raise RuntimeError(f"IMAP FETCH 1 BODY[]: {status}, {len(body)} of {size} bytes")
        client.logout()
    finally:
        with contextlib.suppress(OSError):
            client.shutdown()
    return seconds


def bench_bigmail(reps: int) -> None:
    message = big_message()
    mib = len(message) / 1024 / 1024
    ours, stored = [], None
    for rep in range(reps):
        data = WORK / f"rs-bigmail-{rep}"
        shutil.rmtree(data, ignore_errors=True)
        with refservers(["run", "smtp"], data) as server:
            ours.append(smtp_send_big(server.port("smtp"), message))
        files = list((data / "mail" / "demo" / "new").iterdir())
        if len(files) != 1:
            raise RuntimeError(f"refservers stored {len(files)} messages, expected 1")
        stored = files[0]
    workloads["SMTP one big message"] = lambda out: _profile_bigmail(out, "smtp", message)

    theirs = maildev_runs(reps, lambda port: smtp_send_big(port, message))
    if theirs is not None:
        note = f"{mib:.1f} MiB MIME message, base64 attachment; smtplib, DATA to its 250; refservers fsyncs it into Maildir"
        pair("SMTP", f"one {BIG_MAIL_MIB} MiB message, DATA to 250", "s", False, ours, "MailDev", theirs, note)
    else:
        skip("SMTP big message vs MailDev", "npm install maildev failed")

    # IMAP: the Maildir file refservers stored, in a one-message INBOX for both servers.
    assert stored is not None
    seed = WORK / "bigmail-seed"
    shutil.rmtree(seed, ignore_errors=True)
    for sub in ("cur", "new", "tmp"):
        (seed / sub).mkdir(parents=True)
    shutil.copy2(stored, seed / "new" / stored.name)
    size = stored.stat().st_size
    data = WORK / "rs-bigmail-imap"
    refservers_mail(data, seed)
    with refservers(["run", "imap"], data) as server:
        imap_fetch_big(server.port("imap"), size)  # untimed warm-up: the server indexes the Maildir
        ours = [imap_fetch_big(server.port("imap"), size) for _ in range(reps)]
    workloads["IMAP FETCH big"] = lambda out: _profile_bigmail(out, "imap", message, seed)

    with dovecot(seed) as (_, imap_port):
        imap_fetch_big(imap_port, size)
        theirs = [imap_fetch_big(imap_port, size) for _ in range(reps)]
    note = f"the {size / 1024 / 1024:.1f} MiB Maildir file refservers stored, same file for both; imaplib; after one untimed fetch"
    pair("IMAP", f"FETCH 1 BODY[] of the {BIG_MAIL_MIB} MiB message", "s", False, ours, "Dovecot", theirs, note)


def _profile_bigmail(out: Path, what: str, message: bytes, seed: Path | None = None) -> None:
    data = WORK / "rs-profile-bigmail"
    if what == "smtp":
        shutil.rmtree(data, ignore_errors=True)
        with refservers(["run", "smtp"], data, profile_to=out) as server:
            for _ in range(3):
                smtp_send_big(server.port("smtp"), message)
        return
    assert seed is not None
    refservers_mail(data, seed)
    size = next((seed / "new").iterdir()).stat().st_size
    with refservers(["run", "imap"], data, profile_to=out) as server:
        for _ in range(4):
            imap_fetch_big(server.port("imap"), size)


# -- telnet ------------------------------------------------------------------------------------

IAC, DONT, DO, WONT, WILL, SB, SE = 255, 254, 253, 252, 251, 250, 240
TELNET_AGREE = {1, 3}  # ECHO and SGA, what both servers offer; everything else refused


class TelnetClient:
    """A minimal NVT client (RFC 854) for both servers: agrees to the server's ECHO and
    SGA, refuses every other option and subnegotiation, reads the data stream with IAC
    sequences removed."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        # Interactive, like a terminal: without it the password line waits behind our
        # unacknowledged DO ECHO (Nagle) for the server's delayed ACK, 40 ms a login.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.text = b""
        self.pending = b""

    def close(self) -> None:
        self.sock.close()

    def send_line(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.text:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise EOFError(f"telnet: closed before {marker!r}; got {self.text[-200:]!r}")
            self._parse(self.pending + chunk)
        index = self.text.index(marker) + len(marker)
        out, self.text = self.text[:index], self.text[index:]
        return out

    def read_to_close(self) -> None:
        while self.sock.recv(4096):
            pass

    def _parse(self, data: bytes) -> None:
        index, out = 0, bytearray()
        while index < len(data):
            if data[index] != IAC:
                out.append(data[index])
                index += 1
                continue
            if index + 2 >= len(data):
                break  # an IAC sequence split across reads: wait for the rest
            command, option = data[index + 1], data[index + 2]
            if command == IAC:
                out.append(IAC)
                index += 2
            elif command in (WILL, DO):
                agree = option in TELNET_AGREE
                reply = {WILL: DO if agree else DONT, DO: WILL if agree else WONT}[command]
                self.sock.sendall(bytes([IAC, reply, option]))
                index += 3
            elif command in (WONT, DONT):
                index += 3
            elif command == SB:
                end = data.find(bytes([IAC, SE]), index)
                if end < 0:
                    break
                index = end + 2
            else:
                index += 2
        self.pending = data[index:]
        self.text += bytes(out)


def telnet_session(port: int, user: str, password: str) -> None:
    """login, one command whose output is checked, exit, until the server closes."""
    client = TelnetClient(port)
    try:
        client.read_until(b"login: ")
        client.send_line(user)
        client.read_until(b"Password: ")
        client.send_line(password)
        client.read_until(b"$ ")
        client.send_line("echo refbench-42")
        output = client.read_until(b"$ ")
        # The output line, not the pty's echo of the typed command (telnetd echoes, refservers does not).
        if not re.search(rb"(?<!echo )refbench-42\r\n", output):
            raise RuntimeError(f"telnet command output: {output[-200:]!r}")
        client.send_line("exit")
        client.read_to_close()
    finally:
        client.close()


def telnet_rate(port: int, user: str, password: str, clients: int) -> float:
    """Sessions/s of ``clients`` parallel loops, TELNET_SESSIONS in all or TELNET_SECONDS."""
    done = 0
    lock = threading.Lock()
    started = time.monotonic()

    def loop() -> None:
        nonlocal done
        while time.monotonic() - started < TELNET_SECONDS:
            with lock:
                if done >= TELNET_SESSIONS:
                    return
                done += 1  # claimed; an error below fails the whole measurement
            telnet_session(port, user, password)

    with ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(loop) for _ in range(clients)]:
            future.result(timeout=TELNET_SECONDS + CLIENT_TIMEOUT)
    return done / (time.monotonic() - started)


def telnet_measure(port: int, user: str, password: str, reps: int) -> dict[int, list[float]]:
    telnet_session(port, user, password)  # untimed: a first login that works
    return {clients: [telnet_rate(port, user, password, clients) for _ in range(reps)] for clients in TELNET_CLIENTS}


def bench_telnet(reps: int) -> None:
    with refservers(["run", "telnet"], WORK / "rs-telnet") as server:
        ours = telnet_measure(server.port("telnet"), "demo", "demo", reps)
    workloads["telnet sessions/s"] = lambda out: _profile_telnet(out)
    port = free_port()
    args = [
        "inetutils-inetd",
        "-d",
        "-R",
        "100000",
        "-p",
        str(WORK / "inetd" / "inetd.pid"),
        str(peers.inetd_config(port)),
    ]
    with service(args, port, WORK / "logs" / "inetd.log"):
        theirs = telnet_measure(port, peers.LOCAL_USER, peers.LOCAL_PASSWORD, reps)
    for clients in TELNET_CLIENTS:
        pair(
            "telnet",
            f"login+command sessions/s, {clients} client{'s' if clients > 1 else ''}",
            "sessions/s",
            True,
            ours[clients],
            "inetutils-telnetd",
            theirs[clients],
            "login, `echo`, `exit` until closed; telnetd under inetutils-inetd runs /bin/login (PAM) and bash; "
            f"up to {TELNET_SESSIONS} sessions or {TELNET_SECONDS:.0f} s",
        )


def _profile_telnet(out: Path) -> None:
    with refservers(["run", "telnet"], WORK / "rs-profile-telnet", profile_to=out) as server:
        telnet_rate(server.port("telnet"), "demo", "demo", max(TELNET_CLIENTS))


# -- NNTP ----------------------------------------------------------------------------------------


class NntpSession:
    """A raw NNTP reader session (nntplib is deprecated and warns): greeting, MODE READER."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.reader = self.sock.makefile("rb")
        self.expect(b"20")
        self.command(b"MODE READER", b"20")  # INN hands the connection to nnrpd here

    def expect(self, code: bytes) -> bytes:
        line = self.reader.readline()
        if not line.startswith(code):
            raise RuntimeError(f"NNTP: expected {code!r}, got {line[:120]!r}")
        return line

    def command(self, line: bytes, code: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.expect(code)

    def block(self) -> int:
        size = 0
        while (line := self.reader.readline()) != b".\r\n":
            if not line:
                raise RuntimeError("NNTP: connection closed in a multi-line block")
            size += len(line)
        return size

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.command(b"QUIT", b"205")
        self.reader.close()
        self.sock.close()


def nntp_article(index: int) -> bytes:
    """About 2 KiB: the usual headers, then 30 lines (a few that need dot-stuffing)."""
    body = "".join(
        f"{'.' if line % 10 == 0 else ''}line {line} of article {index}: lorem ipsum dolor sit amet consectetur\r\n"
        for line in range(30)
    )
    head = f"From: Bench <bench@example.com>\r\nNewsgroups: {NNTP_GROUP}\r\nSubject: bench article {index}\r\n\r\n"
    stuffed = (head + body).replace("\r\n.", "\r\n..")
    return stuffed.encode() + b".\r\n"


def nntp_post_all(port: int) -> float:
    """Seconds for NNTP_POSTERS parallel sessions to POST NNTP_POSTS articles, each
    waiting for its 240 (refservers sends it after fsync; INN after innd took it)."""
    per_session = NNTP_POSTS // NNTP_POSTERS

    def poster(index: int) -> None:
        session = NntpSession(port)
        try:
            for number in range(per_session):
                session.command(b"POST", b"340")
                session.sock.sendall(nntp_article(index * per_session + number))
                session.expect(b"240")
        finally:
            session.close()

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=NNTP_POSTERS) as pool:
        for future in [pool.submit(poster, index) for index in range(NNTP_POSTERS)]:
            future.result(timeout=CLIENT_TIMEOUT)
    return time.monotonic() - started


def nntp_read_newest(port: int) -> float:
    """Seconds for one session to GROUP, then ARTICLE n for the newest NNTP_POSTS, one at a time."""
    started = time.monotonic()
    session = NntpSession(port)
    try:
        _, count, _, high, _ = session.command(f"GROUP {NNTP_GROUP}".encode(), b"211").split()
        if int(count) < NNTP_POSTS:
            raise RuntimeError(f"NNTP GROUP says {int(count)} articles, expected at least {NNTP_POSTS}")
        for number in range(int(high) - NNTP_POSTS + 1, int(high) + 1):
            session.command(f"ARTICLE {number}".encode(), b"220")
            if session.block() < 1000 or time.monotonic() - started > CLIENT_TIMEOUT:
                raise RuntimeError(f"NNTP ARTICLE {number}: short or over the time limit")
    finally:
        session.close()
    return time.monotonic() - started


def nntp_measure(ports: list[int], reps: int) -> list[dict[str, list[float]]]:
    """articles/s for posting and reading on each server, ``reps`` times each, the servers
    in turns; every rep posts new articles."""
    results: list[dict[str, list[float]]] = [{"post": [], "read": []} for _ in ports]
    for _, index in in_turns(reps, len(ports)):
        results[index]["post"].append(NNTP_POSTS / nntp_post_all(ports[index]))
        results[index]["read"].append(NNTP_POSTS / nntp_read_newest(ports[index]))
    return results


def bench_nntp(reps: int) -> None:
    workloads["NNTP POST"] = lambda out: _profile_nntp(out)
    directory = WORK / "inn"
    shutil.rmtree(directory, ignore_errors=True)
    port = free_port()
    with refservers(["run", "nntp"], WORK / "rs-nntp") as server:
        try:
            config = peers.inn_config(directory, port, (NNTP_GROUP,))
        except (OSError, subprocess.SubprocessError) as problem:
            skip("NNTP vs INN", f"cannot set up INN: {problem}")
            (ours,) = nntp_measure([server.port("nntp")], reps)
            pair("NNTP", f"POST, {NNTP_POSTERS} sessions", "articles/s", True, ours["post"])
            pair("NNTP", "ARTICLE n, one session", "articles/s", True, ours["read"])
            return
        env = {**os.environ, "INNCONF": str(config)}
        with service([str(peers.INN_BIN / "innd"), "-f", "-P", str(port)], port, WORK / "logs" / "innd.log", env=env):
            ours, theirs = nntp_measure([server.port("nntp"), port], reps)
    note = (
        f"{NNTP_POSTS} articles of ~2.5 KiB per repetition, raw-socket client for both; INN 2.7 innd + nnrpd "
        "(tradspool, tradindexed overview, no fsync per article); refservers fsyncs each article, then its directory and "
        "index line in a group commit shared by concurrent posts, before 240; the two servers take turns at each repetition"
    )
    pair(
        "NNTP",
        f"POST, {NNTP_POSTERS} sessions waiting for each 240",
        "articles/s",
        True,
        ours["post"],
        "INN 2",
        theirs["post"],
        note,
    )
    pair(
        "NNTP",
        f"ARTICLE n for the newest {NNTP_POSTS}, one session",
        "articles/s",
        True,
        ours["read"],
        "INN 2",
        theirs["read"],
        "one round trip per article, like a reader catching up; INN's nnrpd took ~45 ms per ARTICLE here "
        "(a stall per round trip, cause not investigated: it looks like Nagle against delayed ACK)",
    )


def _profile_nntp(out: Path) -> None:
    with refservers(["run", "nntp"], WORK / "rs-profile-nntp", profile_to=out) as server:
        nntp_post_all(server.port("nntp"))


# -- main --------------------------------------------------------------------------------------

# -- HTTP stubs (WireMock-compatible) ------------------------------------------------------------

STUB_MAPPINGS = 100


def stub_mappings(root: Path) -> str:
    """STUB_MAPPINGS mappings in WireMock's layout under ``root``; returns the path wrk asks for.

    The target is the middle mapping, so a matcher that walks the stubs in order does
    half of them per request, as a real stub set with a busy endpoint would.
    """
    mappings = [
        {
            "request": {"method": "GET", "urlPath": f"/api/v1/items/{i}", "headers": {"Accept": {"contains": "json"}}},
            "response": {"status": 200, "jsonBody": {"id": i, "name": f"item {i}"}, "headers": {"Content-Type": "application/json"}},
        }
        for i in range(STUB_MAPPINGS)
    ]
    (root / "mappings").mkdir(parents=True, exist_ok=True)
    (root / "__files").mkdir(exist_ok=True)
    (root / "mappings" / "bench.json").write_text(json.dumps({"mappings": mappings}))
    return f"/api/v1/items/{STUB_MAPPINGS // 2}"


def bench_stubs(reps: int) -> None:
    root = WORK / "stubs"
    path = stub_mappings(root)
    script = WORK / "accept-json.lua"
    script.write_text('wrk.headers["Accept"] = "application/json"\n')
    settings = {"REFSERVERS_HTTP_STUBS_DIR": str(root), "REFSERVERS_HTTP_STUB_PACKS": ""}
    workloads["stubs matched stub requests/s"] = lambda out: _profile_wrk(["run", "http"], settings, path, out, script)
    java = shutil.which("java")
    if java is None or not peers.WIREMOCK_JAR.exists():
        skip("stubs vs WireMock", "java or the wiremock npm package (bench/node_modules) is missing")
        return
    port = free_port()
    command = [java, "-jar", str(peers.WIREMOCK_JAR), "--port", str(port), "--bind-address", "127.0.0.1", "--root-dir", str(root)]
    with (
        refservers(["run", "http"], WORK / "rs-stubs", settings) as ours,
        service(command, port, WORK / "logs" / "wiremock.log"),
    ):
        wrk(f"http://127.0.0.1:{port}{path}", script)  # JIT warm-up, not counted
        urls = [f"http://127.0.0.1:{ours.port('http')}{path}", f"http://127.0.0.1:{port}{path}"]
        our_runs, their_runs = wrk_turns(urls, reps, script)
    note = (
        f"{STUB_MAPPINGS} mappings (urlPath + header), the middle one matched; WireMock standalone with its defaults "
        "(journal on, as ours), one JIT warm-up run; the servers take turns at each repetition"
    )
    metric = f"matched stub requests/s (wrk, {WRK_CONNECTIONS} connections)"
    pair("stubs", metric, "req/s", True, our_runs[0], f"WireMock {peers.WIREMOCK_VERSION}", their_runs[0], note)
    pair("stubs", "matched stub p99 latency", "ms", False, our_runs[1], f"WireMock {peers.WIREMOCK_VERSION}", their_runs[1], note)


BENCHMARKS: dict[str, Callable[[int], None]] = {
    "startup": bench_startup,
    "http": bench_http,
    "smtp": bench_smtp,
    "ftp": bench_ftp,
    "sftp": bench_sftp,
    "jsonrpc": bench_jsonrpc,
    "proxy": bench_proxy,
    "tcp-proxy": bench_tcp_proxy,
    "mail": bench_mail,
    "bigmail": bench_bigmail,
    "telnet": bench_telnet,
    "stubs": bench_stubs,
    "nntp": bench_nntp,
}


def profile_worst(count: int) -> list[dict[str, object]]:
    """Re-run the workloads of the worst standings with refservers under py-spy."""
    ranked = sorted((r for r in rows if r.standing is not None), key=lambda r: r.standing or 0)
    chosen, seen = [], set()
    for row in ranked:
        key = next((k for k in workloads if _matches(k, row)), None)
        if key and key not in seen:
            seen.add(key)
            chosen.append((key, row))
        if len(chosen) == count:
            break
    profiles: list[dict[str, object]] = []
    for key, row in chosen:
        out = WORK / "profiles" / (re.sub(r"\W+", "-", key) + ".txt")
        out.parent.mkdir(parents=True, exist_ok=True)
        log(f"profiling {key} (standing {row.standing:.2f} vs {row.peer})")
        try:
            workloads[key](out)
            top = summarize_profile(out)
        except Exception as error:  # a profile is a bonus: report why it is missing
            profiles.append(
                {
                    "what": key,
                    "standing": row.standing,
                    "peer": row.peer,
                    "top": {},
                    "reading": f"profile failed: {error}",
                }
            )
            continue
        profiles.append({"what": key, "standing": row.standing, "peer": row.peer, "top": top, "reading": ""})
    return profiles


def _matches(key: str, row: Row) -> bool:
    group, _, metric = key.partition(" ")
    words = {"HTTP /get": "/get", "HTTP static file": "static", "SMTP messages/s": "messages", "FTP STOR MB/s": "STOR 256", "FTP RETR MB/s": "RETR 256",
             "FTP 100 parallel login+small file": "parallel", "SFTP put MB/s": "put", "SFTP get MB/s": "get", "JSON-RPC calls/s": "calls",
             "proxy CONNECT MB/s": "CONNECT", "proxy added latency": "latency", "POP3 RETR": "RETR all",
             "tcp-proxy added latency": "latency", "tcp-proxy throughput": "throughput",
             "IMAP FETCH 1:*": "one command", "IMAP FETCH one": "at a time", "IMAP SEARCH": "SEARCH",
             "SMTP one big message": "MiB message", "IMAP FETCH big": "MiB message",
             "telnet sessions/s": "sessions/s"}  # fmt: skip
    return row.group == group and words.get(key, metric) in row.metric


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", default=",".join(BENCHMARKS))
    parser.add_argument("--no-install", action="store_true")
    parser.add_argument("--profiles", type=int, default=3, help="how many of the worst standings to profile")
    parser.add_argument(
        "--out",
        type=Path,
        help=f"where results.{{json,md}} go; default {RESULTS.relative_to(ROOT)} for a full run, "
        f"{SCRATCH.relative_to(ROOT)} for a partial one (--only): the committed results come from one full run",
    )
    args = parser.parse_args()
    unknown = sorted(set(args.only.split(",")) - set(BENCHMARKS))
    if unknown:
        parser.error(f"--only: unknown group(s) {', '.join(unknown)}; expected some of {','.join(BENCHMARKS)}")
    out = args.out or (RESULTS if set(args.only.split(",")) == set(BENCHMARKS) else SCRATCH)
    load_at_start = load_average()
    WORK.mkdir(parents=True, exist_ok=True)
    if not args.no_install:
        for what, reason in peers.install().items():
            skip(f"peer {what}", reason)
    peers.ensure_local_user()
    for name in args.only.split(","):
        log(f"== {name}")
        try:
            BENCHMARKS[name](args.reps)
        except Exception as error:  # one broken pair must not lose the others' figures
            skip(name, f"{type(error).__name__}: {error}")
    profiles = profile_worst(args.profiles) if args.profiles else []
    write_results(out, rows, skipped, profiles, args.reps, load_at_start)
    log(f"wrote {out / 'results.md'}")
    subprocess.run(["cat", str(out / "results.md")])
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
