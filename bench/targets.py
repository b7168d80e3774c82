"""The performance round's targets (issue 16), as data, checked against one run's rows.

Each target names a row of the results (group, the start of its metric, the start of
its peer's name; no peer for an absolute figure) and the bound its standing or its own
value must reach. The results' Markdown gets a table of them, met or missed, so the
committed run shows where refservers stands without copying figures by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    group: str
    metric: str  # the row's metric starts with this
    peer: str = ""  # the row's peer starts with this ("": a row without a peer)
    at_least: float | None = None
    at_most: float | None = None
    absolute: bool = False  # bound refservers' own figure, not its standing (always so without a peer)

    @property
    def reads_value(self) -> bool:
        return self.absolute or not self.peer

    def describe(self) -> str:
        measure = "refservers' own figure" if self.reads_value else f"standing against {self.peer}"
        bound = f"≥ {self.at_least:g}" if self.at_least is not None else f"≤ {self.at_most:g}"
        return f"{self.group}: {self.metric}, {measure} {bound}"

    def matches(self, row: dict[str, Any]) -> bool:
        same_peer = row["peer"].startswith(self.peer) if self.peer else not row["peer"]
        return row["group"] == self.group and row["metric"].startswith(self.metric) and same_peer

    def figure(self, row: dict[str, Any]) -> float | None:
        return row["refservers"] if self.reads_value else row["standing"]

    def met(self, figure: float) -> bool:
        if self.at_least is not None and figure < self.at_least:
            return False
        return self.at_most is None or figure <= self.at_most


TARGETS = (
    Target("start-up", "`refservers up` until every server answered", at_most=1.0),
    Target("start-up", "`refservers run http` until it answered", at_most=0.5),
    Target("start-up", "idle RSS of `refservers up`", at_most=100),
    Target("SMTP", "messages/s stored, 20 parallel senders", "MailDev", at_least=1000, absolute=True),
    Target("SMTP", "messages/s stored, 20 parallel senders", "MailDev", at_least=3),
    Target("SMTP", "one 15 MiB message", "MailDev", at_least=1),
    Target("IMAP", "FETCH 1 BODY[] of the 15 MiB message", "Dovecot", at_least=0.5),
    Target("HTTP", "/get requests/s", "httpbin", at_least=3),
    Target("HTTP", "/get p99 latency", "httpbin", at_least=1),
    Target("proxy", "added latency per GET", "tinyproxy", at_least=1),
    Target("IMAP", "FETCH 1:1000 BODY[]", "Dovecot", at_least=0.5),
    Target("IMAP", "FETCH n BODY[] one message at a time", "Dovecot", at_least=0.7),
    Target("POP3", "RETR all", "Dovecot", at_least=0.8),
    Target("JSON-RPC", "calls/s", "jsonrpcserver", at_least=2),
    Target("FTP", "STOR", "vsftpd", at_least=0.8),
    Target("SFTP", "get", "OpenSSH", at_least=0.9),
    Target("stubs", "matched stub requests/s", "WireMock", at_least=1),
    Target("NNTP", "POST", "INN", at_least=0.5),
    Target("NNTP", "ARTICLE", "INN", at_least=0.5),
)


def evaluate(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per target: its text, the figure of the first matching row, and
    whether it is met (None when the run has no such row, e.g. a peer failed to install)."""
    checked = []
    for target in TARGETS:
        row = next((row for row in rows if target.matches(row)), None)
        figure = target.figure(row) if row is not None else None
        checked.append(
            {"target": target.describe(), "figure": figure, "met": None if figure is None else target.met(figure)}
        )
    return checked
