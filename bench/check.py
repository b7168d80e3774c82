"""`make bench-check`: has any standing fallen since the committed benchmark run?

Compares the standings (refservers against its peer, measured in the same run) of a
fresh run, or of a results.json given with --rows, with the committed
bench/results/results.json, and flags every row whose standing fell by more than
--threshold (25 % by default). Standings, not absolute figures: the machine is shared,
and a ratio measured side by side moves far less than either figure. Run by hand, not in
CI (a run takes minutes and needs the peers). Usage:

    .venv/bin/python bench/check.py [--only mail,smtp] [--reps 3] [--threshold 0.25] [--no-install]
    .venv/bin/python bench/check.py --rows bench/results/tmp/results.json

Exit status 1 when a standing fell past the threshold, 0 otherwise. The fresh run goes to
bench/results/tmp/check/ (git-ignored); the committed results are never rewritten.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import PYTHON, RESULTS, ROOT, SCRATCH  # noqa: E402

THRESHOLD = 0.25


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["group"], row["metric"], row.get("peer") or "")


def compare(baseline: dict[str, Any], fresh: dict[str, Any], threshold: float) -> tuple[list[str], list[str]]:
    """(report lines, regressions): one line per row both runs measured with a standing."""
    before = {row_key(row): row for row in baseline["rows"] if row.get("standing")}
    lines, regressions = [], []
    for row in fresh["rows"]:
        old = before.get(row_key(row))
        if old is None or not row.get("standing"):
            continue
        change = row["standing"] / old["standing"] - 1
        fell = change < -threshold
        line = (
            f"{'FELL' if fell else 'ok':4}  {row['group']} / {row['metric']} vs {row['peer']}: "
            f"standing {old['standing']:.3g} -> {row['standing']:.3g} ({change:+.0%})"
        )
        lines.append(line)
        if fell:
            regressions.append(line)
    measured = {row_key(row) for row in fresh["rows"]}
    groups = {key[0] for key in measured}
    for key in before:
        if key not in measured and key[0] in groups:
            lines.append(f"--    {key[0]} / {key[1]} vs {key[2]}: no standing in this run (group measured)")
    missing = sorted({key[0] for key in before if key[0] not in groups})
    if missing:
        lines.append(f"--    groups not in this run: {', '.join(missing)}")
    return lines, regressions


def fresh_run(only: str | None, reps: int, install: bool) -> Path:
    out = SCRATCH / "check"
    command = [str(PYTHON), str(ROOT / "bench" / "run.py"), "--reps", str(reps), "--profiles", "0", "--out", str(out)]
    if only:
        command += ["--only", only]
    if not install:
        command.append("--no-install")
    subprocess.run(command, check=True)
    return out / "results.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, help="a results.json to compare instead of running the benchmarks")
    parser.add_argument("--only", help="groups to run (bench/run.py --only); default every group")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-install", action="store_true", help="the peers are installed already (bench/run.py)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="flag a standing that fell by more")
    parser.add_argument("--baseline", type=Path, default=RESULTS / "results.json")
    args = parser.parse_args()
    baseline = json.loads(args.baseline.read_text())
    fresh = json.loads((args.rows or fresh_run(args.only, args.reps, not args.no_install)).read_text())
    lines, regressions = compare(baseline, fresh, args.threshold)
    loads = {name: data["machine"].get("load_average") for name, data in (("committed", baseline), ("this", fresh))}
    print(f"baseline {args.baseline} ({baseline['machine']['date']}, load {loads['committed']})")
    print(f"compared {fresh['machine']['date']} (load {loads['this']}), threshold -{args.threshold:.0%}")
    print("\n".join(lines))
    if regressions:
        print(f"\n{len(regressions)} standing(s) fell by more than {args.threshold:.0%}:")
        print("\n".join(regressions))
        return 1
    print(f"\nno standing fell by more than {args.threshold:.0%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
