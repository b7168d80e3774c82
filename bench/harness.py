"""The measuring machinery of `make bench`: processes on loopback ports, medians, results.

Owned here: starting and stopping servers (refservers and peers) as subprocesses and
waiting for their port, running bounded client commands, taking the median of
repetitions, profiling a refservers process with py-spy, and writing
bench/results/results.json and results.md. What is measured lives in bench/run.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from targets import evaluate as evaluate_targets

from servers.cli import read_ready_table

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / "work"  # data dirs, configs, payloads of one run (git-ignored)
RESULTS = BENCH / "results"  # the committed results: a full `make bench`, one invocation
SCRATCH = RESULTS / "tmp"  # partial runs (--only) and bench-check runs (git-ignored)
PYTHON = ROOT / ".venv" / "bin" / "python"
STARTUP_DEADLINE = 60.0  # seconds any server may take to accept connections


@dataclass
class Row:
    """One line of the table: a metric for refservers and the peer measured in the same run."""

    group: str
    metric: str
    unit: str
    higher_is_better: bool
    refservers: float | None
    peer: str = ""
    peer_value: float | None = None
    runs: dict[str, list[float]] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """refservers/peer; above 1 is refservers ahead for throughput, behind for times."""
        if self.refservers is None or not self.peer_value:
            return None
        return self.refservers / self.peer_value

    @property
    def standing(self) -> float | None:
        """How refservers fares, 1 = even, below 1 = behind, whatever the unit's direction."""
        ratio = self.ratio
        if ratio is None or ratio == 0:
            return None
        return ratio if self.higher_is_better else 1 / ratio


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def repeat(times: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(times)]


# -- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[Any] | None = None, deadline: float = STARTUP_DEADLINE) -> float:
    """Seconds until 127.0.0.1:port accepts a connection (the process must stay alive)."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited with {process.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return time.monotonic() - started
        except OSError:
            time.sleep(0.02)  # polling a port that is not open yet
    raise RuntimeError(f"nothing listening on {port} after {deadline}s")


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
    for stream in (process.stdout, process.stderr):
        if stream:
            stream.close()


@contextlib.contextmanager
def service(args: list[str], port: int, log: Path, **popen: Any) -> Iterator[subprocess.Popen[Any]]:
    """A peer server: started in its own process group, ready once ``port`` accepts."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **popen)
    try:
        wait_port(port, process)
        yield process
    finally:
        stop(process)


def refservers_env(data_dir: Path, settings: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a refservers subprocess: every port 0, its own data dir, quiet logs."""
    sys.path.insert(0, str(ROOT))
    from servers import registry
    from servers.core.config import PORT

    env = {k: v for k, v in os.environ.items() if not k.startswith("REFSERVERS_")}
    for section, options in registry.schema().items():
        for option in options:
            if option.kind is PORT:
                env[f"REFSERVERS_{section.upper()}_{option.key.upper()}"] = "0"
    env["REFSERVERS_DATA_DIR"] = str(data_dir)
    env["REFSERVERS_LOG_LEVEL"] = "error"
    env["REFSERVERS_FTP_PASSIVE_PORTS"] = "0"
    env.update(settings or {})
    return env


@dataclass
class Running:
    process: subprocess.Popen[str]
    urls: dict[str, str]
    pid: int  # the Python process itself (under py-spy it is the child)

    def port(self, name: str) -> int:
        return int(self.urls[name].rsplit(":", 1)[1])


@contextlib.contextmanager
def refservers(
    command: list[str], data_dir: Path, settings: dict[str, str] | None = None, profile_to: Path | None = None
) -> Iterator[Running]:
    """``refservers run NAME`` / ``up`` as a subprocess, ready when it prints its table.

    With ``profile_to``, the process runs under ``py-spy record`` and the raw (collapsed
    stacks) profile is written there when it stops.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [str(PYTHON), "-m", "servers", *command]
    if profile_to is not None:
        spy = [str(ROOT / ".venv" / "bin" / "py-spy"), "record", "--format", "raw", "--rate", "200"]
        args = [*spy, "--output", str(profile_to), "--", *args]
    process = subprocess.Popen(
        args,
        cwd=WORK,
        env=refservers_env(data_dir, settings),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    urls = read_ready_table(process.stdout)
    if urls is None:
        raise RuntimeError(f"{' '.join(command)} exited with {process.wait()}")
    pid = process.pid
    if profile_to is not None:
        pid = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
    try:
        yield Running(process, urls, pid)
    finally:
        if profile_to is not None:
            # SIGINT to py-spy, not SIGTERM to the server: a signal sent to the traced
            # child is lost under py-spy's ptrace. On SIGINT py-spy writes the profile
            # and its child ends too.
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGINT)
            try:
                process.wait(timeout=300)  # py-spy writes a long recording slowly
            finally:
                stop(process)
        else:
            stop(process)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def run(args: list[str], timeout: float, **popen: Any) -> subprocess.CompletedProcess[str]:
    """A bounded client command; a non-zero exit is an error with its output."""
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **popen)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {result.returncode}: {(result.stderr or result.stdout)[-400:]}")
    return result


def timed(action: Callable[[], Any]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def in_turns(reps: int, count: int) -> Iterator[tuple[int, int]]:
    """(repetition, index) for ``reps`` repetitions of ``count`` servers taking turns, in
    swapped order every other repetition.

    The load of this shared machine moves within a minute: measured one after the other,
    a change fell on one side of a standing only; in turns it falls on every side.
    """
    for rep in range(reps):
        for index in range(count) if rep % 2 == 0 else reversed(range(count)):
            yield rep, index


# -- profiles ---------------------------------------------------------------------------------


def summarize_profile(raw: Path, top: int = 8) -> dict[str, list[dict[str, Any]]]:
    """Where the busy samples went, from py-spy's collapsed stacks.

    ``functions``: own time per function; ``libraries``: own time per library (twisted,
    asyncssh, pyftpdlib, aiosmtpd, refservers' own servers/, the standard library).
    py-spy leaves idle threads out; samples of the start-up imports are dropped too, so
    the shares are of the time spent serving the workload.
    """
    own: Counter[str] = Counter()
    libraries: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit() or "importlib._bootstrap" in stack:
            continue
        leaf = stack.split(";")[-1]
        count = int(count_text)
        own[_short_frame(leaf)] += count
        libraries[_library(leaf)] += count
        total += count
    if not total:
        return {"functions": [], "libraries": []}
    return {
        "functions": [{"name": name, "share": round(n / total, 3)} for name, n in own.most_common(top)],
        "libraries": [{"name": name, "share": round(n / total, 3)} for name, n in libraries.most_common(6)],
    }


def _location(frame: str) -> str:
    # py-spy prints paths relative to the sys.path entry: "twisted/web/http.py", "threading.py"
    return frame.partition(" (")[2].rstrip(")").rsplit(":", 1)[0]


def _library(frame: str) -> str:
    path = _location(frame)
    top = path.split("/", 1)[0].removesuffix(".py")
    if top == "servers":
        return "refservers servers/" + path.split("/")[1].removesuffix(".py")
    if top in sys.stdlib_module_names or top.startswith("<"):
        return "python stdlib"
    return top or "native"


def _short_frame(frame: str) -> str:
    name = frame.partition(" (")[0]
    return f"{name} ({_location(frame)})"


# -- results ---------------------------------------------------------------------------------


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (the machine is shared: say how busy it was)."""
    return [round(value, 2) for value in os.getloadavg()]


def machine(note: str | None = None, load_at_start: list[float] | None = None) -> dict[str, Any]:
    mem_kib = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal:")
    )
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(mem_kib / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_average": {"start": load_at_start, "end": load_average()},
        "note": note
        or "compare ratios, not absolute figures: each peer ran on this machine in the same run",
    }


def write_results(
    out: Path,
    rows: list[Row],
    skipped: list[dict[str, str]],
    profiles: list[dict[str, Any]],
    reps: int,
    load_at_start: list[float],
    note: str | None = None,
) -> None:
    """results.json and results.md of ONE run into ``out`` (bench/results for a full run)."""
    out.mkdir(parents=True, exist_ok=True)
    info = machine(note, load_at_start)
    row_data = [{**asdict(row), "ratio": row.ratio, "standing": row.standing} for row in rows]
    data = {
        "machine": info,
        "repetitions": reps,
        "rows": row_data,
        "not_measured": skipped,
        "profiles": profiles,
        "targets": evaluate_targets(row_data),
    }
    (out / "results.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "results.md").write_text(markdown(data))


def _load_sentence(info: dict[str, Any]) -> str:
    load = info.get("load_average") or {}
    if not load.get("start") or not load.get("end"):
        return ""
    start, end = (", ".join(f"{v:g}" for v in load[when]) for when in ("start", "end"))
    return f"Load average (1, 5, 15 min) {start} at the start, {end} at the end. "


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def markdown(data: dict[str, Any]) -> str:
    info = data["machine"]
    lines = [
        "# refservers benchmarks",
        "",
        f"Run {info['date']} on {info['cores']} cores ({info['cpu']}), {info['ram_gib']} GiB RAM, "
        f"Python {info['python']}, Linux {info['kernel']}. Medians of {data['repetitions']} repetitions, "
        "peers measured in the same run on loopback. "
        f"{_load_sentence(info)}"
        f"{info['note'][0].upper()}{info['note'][1:]}.",
        "",
        "`ratio` is refservers/peer in the metric's own unit; `standing` turns it into "
        '"how refservers fares" (1.0 = even, 0.5 = half as good, 2.0 = twice as good).',
        "",
        "| group | metric | unit | refservers | peer | peer value | ratio | standing | note |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for row in data["rows"]:
        lines.append(
            f"| {row['group']} | {row['metric']} | {row['unit']} | {_fmt(row['refservers'])} | {row['peer'] or '-'} | "
            f"{_fmt(row['peer_value'])} | {_fmt(row['ratio'])} | {_fmt(row['standing'])} | {row['note']} |"
        )
    lines += ["", "## Targets of the performance round (issue 16, `bench/targets.py`)", ""]
    lines += ["| target | this run | |", "|---|---:|---|"]
    for entry in data.get("targets", []):
        verdict = {True: "met", False: "**missed**", None: "not measured"}[entry["met"]]
        lines.append(f"| {entry['target']} | {_fmt(entry['figure'])} | {verdict} |")
    if data["not_measured"]:
        lines += ["", "## Not measured", ""]
        lines += [f"- **{item['what']}**: {item['reason']}" for item in data["not_measured"]]
    if data["profiles"]:
        lines += ["", "## Where refservers spends its time (py-spy, busy samples only)", ""]
        for profile in data["profiles"]:
            lines += [f"### {profile['what']} (standing {_fmt(profile.get('standing'))})", ""]
            if profile.get("reading"):
                lines += [profile["reading"], ""]
            top = profile["top"]
            if top.get("libraries"):
                lines.append(
                    "By library: " + ", ".join(f"{e['name']} {e['share'] * 100:.0f}%" for e in top["libraries"]) + "."
                )
                lines.append("")
            lines += [f"- {entry['share'] * 100:.0f}% {entry['name']}" for entry in top.get("functions", [])]
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
