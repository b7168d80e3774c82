"""bench/check.py (`make bench-check`): which standings count as having fallen.

The comparison only; running the benchmarks is `make bench`'s business and needs the
peers, so it is not exercised here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def load_check() -> Any:
    sys.path.insert(0, str(ROOT / "bench"))
    spec = importlib.util.spec_from_file_location("bench_check", ROOT / "bench" / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def results(standings: dict[str, float], load: list[float] | None = None) -> dict[str, Any]:
    rows = [
        {"group": "IMAP", "metric": metric, "peer": "Dovecot", "standing": standing}
        for metric, standing in standings.items()
    ]
    machine = {"date": "2026-12-01 09:00 UTC", "load_average": {"start": load, "end": load}}
    return {"machine": machine, "rows": rows}


def test_a_standing_that_fell_by_more_than_the_threshold_is_flagged() -> None:
    check = load_check()
    baseline = results({"fetch": 1.0, "each": 1.0, "search": 2.0, "gone": 1.0})
    fresh = results({"fetch": 0.74, "each": 0.76, "search": 2.5})
    lines, regressions = check.compare(baseline, fresh, 0.25)
    assert len(regressions) == 1 and "fetch" in regressions[0] and "-26%" in regressions[0]
    assert any(line.startswith("ok") and "each" in line for line in lines)
    assert lines[-1] == "--    IMAP / gone vs Dovecot: no standing in this run (group measured)"
    assert len(lines) == 4


def test_rows_from_a_file_and_the_exit_status(tmp_path: Path) -> None:
    baseline, fresh = tmp_path / "baseline.json", tmp_path / "fresh.json"
    baseline.write_text(json.dumps(results({"fetch": 1.0}, [1.0, 1.0, 1.0])))
    fresh.write_text(json.dumps(results({"fetch": 0.5}, [9.0, 9.0, 9.0])))
    command = [sys.executable, str(ROOT / "bench" / "check.py"), "--baseline", str(baseline)]
    fell = subprocess.run([*command, "--rows", str(fresh)], capture_output=True, text=True, timeout=60)
    assert fell.returncode == 1, fell.stdout + fell.stderr
    assert "FELL" in fell.stdout and "load {'start': [9.0, 9.0, 9.0]" in fell.stdout
    same = subprocess.run([*command, "--rows", str(baseline)], capture_output=True, text=True, timeout=60)
    assert same.returncode == 0 and "no standing fell" in same.stdout
