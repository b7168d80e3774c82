"""ServerMetrics: Prometheus counters per server, fed by the event journal.

One :class:`prometheus_client.CollectorRegistry` per Core (never the library's global
default registry: a test process runs many Cores, and each must count only its own
servers). The admin API serves it at ``GET /metrics`` in the Prometheus text format
(https://prometheus.io/docs/instrumenting/exposition_formats/).

Everything is derived from journal events, the one record of what servers saw, so a
protocol needs no metrics code of its own. The tables below say which event kind feeds
which counter, and which detail of an event is a byte count in which direction (from
the server's side: ``received`` from its clients, ``sent`` to them).

Counters (each ``_total``), labelled by ``server``:
- ``refservers_events``: every event, by ``kind``;
- ``refservers_connections``: ``connect`` events;
- ``refservers_commands``: ``command`` events (SMTP, POP3, IMAP, FTP, NNTP, SSH...);
- ``refservers_requests``: ``request`` and ``query`` events (HTTP, JSON-RPC, proxies, DNS);
- ``refservers_logins``: ``auth`` events, by ``outcome`` (ok, failed);
- ``refservers_messages``: ``message`` and ``retrieve`` events, by ``action`` (received
  over SMTP, post/ihave over NNTP, fetch/append/copy over IMAP, retrieve over POP3),
  counting the event's ``count`` messages where it gives one;
- ``refservers_bytes``: payload bytes, by ``direction``;
- ``refservers_faults_fired``: ``fault`` events, by ``action``;
- ``refservers_webhook_events``, by ``url`` and ``outcome`` (delivered, retried, failed,
  dropped): counted by the webhooks (webhooks.py), not from the journal.

The counters start from the events still in the journal when the metrics are first
built (the admin API builds them at start), then follow every new event.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest

from .journal import Event, EventJournal

if TYPE_CHECKING:
    from .context import Core

__all__ = ["CONTENT_TYPE_LATEST", "ServerMetrics"]

# (event kind, detail) -> direction of the bytes that detail counts, from the server's side.
BYTE_DETAILS: dict[tuple[str, str], str] = {
    ("message", "size"): "received",  # SMTP DATA, NNTP POST/IHAVE
    ("retrieve", "size"): "sent",  # POP3 RETR
    ("request", "bytes"): "sent",  # HTTP reply body
    ("request", "request_bytes"): "received",  # HTTP request body
    ("request", "bytes_up"): "received",  # forward proxy: client -> upstream
    ("request", "bytes_down"): "sent",  # forward proxy: upstream -> client
    ("connection", "bytes_up"): "received",  # TCP proxy
    ("connection", "bytes_down"): "sent",
    ("datagram", "bytes"): "received",  # UDP echo/discard...
}
# ``file`` events (FTP, SFTP) name their direction from the client's side.
FILE_DIRECTIONS = {"upload": "received", "download": "sent"}
COMMAND_KINDS = frozenset({"command"})
REQUEST_KINDS = frozenset({"request", "query"})
MESSAGE_KINDS = frozenset({"message", "retrieve"})


class ServerMetrics:
    """The Prometheus registry of one Core, kept up to date from its journal."""

    @classmethod
    def from_core(cls, core: Core) -> ServerMetrics:
        return cls(core.journal)

    def __init__(self, journal: EventJournal):
        self.registry = CollectorRegistry(auto_describe=True)
        self.events = self.counter("refservers_events", "journal events, by kind", ["server", "kind"])
        self.connections = self.counter("refservers_connections", "connections accepted", ["server"])
        self.commands = self.counter("refservers_commands", "protocol commands received", ["server"])
        self.requests = self.counter("refservers_requests", "requests answered (HTTP, JSON-RPC, proxies, DNS)", ["server"])
        self.logins = self.counter("refservers_logins", "login attempts, by outcome (ok, failed)", ["server", "outcome"])
        self.messages = self.counter(
            "refservers_messages", "messages received, posted, fetched or retrieved, by action", ["server", "action"]
        )
        self.bytes = self.counter("refservers_bytes", "payload bytes, by direction (received, sent)", ["server", "direction"])
        self.faults = self.counter("refservers_faults_fired", "fault rules fired, by action", ["server", "action"])
        self.webhook_events = self.counter(
            "refservers_webhook_events", "webhook events, by URL and outcome (delivered, retried, failed, dropped)", ["url", "outcome"]
        )
        # Replay what the journal still holds, then follow it; events recorded while
        # replaying are counted once (see _observe).
        self._lock = threading.Lock()
        with self._lock:
            self._unsubscribe = journal.subscribe(self._observe)
            self._counted_up_to = 0
            for event in journal.events():
                self._count(event)
                self._counted_up_to = event.id

    def counter(self, name: str, documentation: str, labels: list[str]) -> Counter:
        """A new counter in this Core's registry."""
        return Counter(name, documentation, labels, registry=self.registry)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format (CONTENT_TYPE_LATEST)."""
        return generate_latest(self.registry)

    def close(self) -> None:
        self._unsubscribe()

    def _observe(self, event: Event) -> None:
        with self._lock:
            if event.id > self._counted_up_to:
                self._count(event)

    def _count(self, event: Event) -> None:
        server, kind, details = event.server, event.kind, event.details
        self.events.labels(server, kind).inc()
        if kind == "connect":
            self.connections.labels(server).inc()
        elif kind in COMMAND_KINDS:
            self.commands.labels(server).inc()
        elif kind in REQUEST_KINDS:
            self.requests.labels(server).inc()
        elif kind == "auth":
            self.logins.labels(server, "ok" if details.get("ok") else "failed").inc()
        elif kind == "fault":
            self.faults.labels(server, str(details.get("action", ""))).inc()
        if kind in MESSAGE_KINDS:
            action = details.get("action") or ("received" if kind == "message" else kind)
            self.messages.labels(server, str(action)).inc(_amount(details.get("count", 1)))
        if kind == "file" and details.get("direction") in FILE_DIRECTIONS:
            self.bytes.labels(server, FILE_DIRECTIONS[details["direction"]]).inc(_amount(details.get("bytes")))
        for (byte_kind, key), direction in BYTE_DETAILS.items():
            if byte_kind == kind and key in details:
                self.bytes.labels(server, direction).inc(_amount(details[key]))


def _amount(value: Any) -> float:
    """A count from an event detail; anything else (None, text) counts nothing."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return 0
    return value
