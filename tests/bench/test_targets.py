"""bench/targets.py: which row each of issue 16's targets reads, and the verdict."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import targets  # noqa: E402


def row(group: str, metric: str, value: float, peer: str = "", standing: float | None = None) -> dict[str, Any]:
    return {"group": group, "metric": metric, "peer": peer, "refservers": value, "standing": standing}


def verdicts(rows: list[dict[str, Any]]) -> dict[str, tuple[float | None, bool | None]]:
    return {entry["target"]: (entry["figure"], entry["met"]) for entry in targets.evaluate(rows)}


def test_a_target_reads_the_standing_against_its_peer_or_its_own_value() -> None:
    smtp = "messages/s stored, 20 parallel senders (smtp-source)"
    checked = verdicts(
        [
            row("SMTP", smtp, 900.0, "smtp-sink", 0.1),  # same metric, another peer: not read
            row("SMTP", smtp, 900.0, "MailDev", 3.2),
            row("start-up", "idle RSS of `refservers up`", 101.0),
        ]
    )
    assert checked["SMTP: messages/s stored, 20 parallel senders, standing against MailDev ≥ 3"] == (3.2, True)
    assert checked["SMTP: messages/s stored, 20 parallel senders, refservers' own figure ≥ 1000"] == (900.0, False)
    assert checked["start-up: idle RSS of `refservers up`, refservers' own figure ≤ 100"] == (101.0, False)


def test_a_target_without_its_row_is_not_measured_rather_than_met() -> None:
    checked = verdicts([row("POP3", "RETR all 1000 messages, one session", 0.2, "Dovecot", 0.8)])
    assert checked["POP3: RETR all, standing against Dovecot ≥ 0.8"] == (0.8, True)
    assert checked["proxy: added latency per GET, standing against tinyproxy ≥ 1"] == (None, None)
    assert len(checked) == len(targets.TARGETS)
