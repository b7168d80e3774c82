"""MailpitEvents: Mailpit's WebSocket ``/api/events`` (server/websockets, storage's Broadcast calls).

Every frame is a JSON text message ``{"Type": ..., "Data": ...}``:

- ``new``: a message arrived; Data is its summary (empty address lists as ``[]``);
- ``update``: ``{"ID", "Read"}`` after a read-state change, ``{"ID", "Tags"}`` after tagging;
- ``delete``: ``{"ID"}`` per message deleted; ``truncate``: null after "delete all";
- ``prune``: null after a tag was renamed or deleted;
- ``stats``: ``{"Total", "Unread", "Version"}``, at most four times a second, after any change.

As in Mailpit, nothing is computed while no client is connected. Deliveries come from
the store's notifications (any protocol, on any thread); the API's own changes are
broadcast by the handler that made them. Clients' frames are ignored (Mailpit's
reader only keeps the connection alive). One instance per Core (``core.shared``); the
WebSocket protocol itself is in mailpit_socket.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.loop import twisted_reactor
from .mailpit import MailpitView

if TYPE_CHECKING:
    from ..core.context import Core
    from .mailpit_socket import EventsProtocol

STATS_DELAY = 0.25  # storage.BroadcastMailboxStats: rate limited to 4x per second
VERSION = "refservers"


class MailpitEvents:
    def __init__(self, view: MailpitView):
        self.view = view
        self.clients: set[EventsProtocol] = set()
        self._known: set[str] | None = None  # message IDs last seen, while clients listen
        self._lock = threading.Lock()
        self._stats_pending = False
        self._scan_pending = False
        self._rescan = False
        self._resource: Any = None
        self._unsubscribe: Callable[[], None] | None = None  # subscribed while clients listen

    @classmethod
    def from_core(cls, core: Core) -> MailpitEvents:
        return cls(core.shared(MailpitView))

    @property
    def resource(self) -> Any:
        """autobahn's resource that upgrades a request to an events socket (reactor thread).

        Built at the first upgrade, not with the hub: the admin API makes the hub as it
        starts, and importing autobahn was a fifth of `refservers up`'s start-up (issue 16).
        """
        if self._resource is None:
            from .mailpit_socket import events_resource

            self._resource = events_resource(self)
        return self._resource

    def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    # -- broadcasting (any thread) -------------------------------------------------------
    def broadcast(self, kind: str, data: Any) -> None:
        if not self.clients:
            return
        frame = json.dumps({"Type": kind, "Data": data}).encode()
        twisted_reactor().callFromThread(self._send, frame)

    def changed(self) -> None:
        """Something in the mailbox changed: send ``stats`` soon (coalesced)."""
        if not self.clients:
            return
        twisted_reactor().callFromThread(self._schedule_stats)

    def forget(self, ids: list[str]) -> None:
        with self._lock:
            if self._known is not None:
                self._known.difference_update(ids)

    # -- reactor thread --------------------------------------------------------------------
    def _send(self, frame: bytes) -> None:
        for client in list(self.clients):
            client.sendMessage(frame, isBinary=False)

    def _schedule_stats(self) -> None:
        if self._stats_pending:
            return
        self._stats_pending = True
        twisted_reactor().callLater(STATS_DELAY, self._stats)

    def _stats(self) -> None:
        from twisted.internet import threads

        def count() -> dict[str, Any]:
            entries = self.view.entries()
            return {"Total": len(entries), "Unread": sum(not e.read for e in entries), "Version": VERSION}

        def send(data: dict[str, Any]) -> None:
            self._stats_pending = False
            self.broadcast("stats", data)

        deferred = threads.deferToThread(count)
        deferred.addCallback(send)
        deferred.addErrback(lambda failure: setattr(self, "_stats_pending", False))

    def joined(self, client: EventsProtocol) -> None:
        first = not self.clients
        self.clients.add(client)
        if first:
            self._unsubscribe = self.view.store.subscribe(self._delivered)
            self._scan()

    def left(self, client: EventsProtocol) -> None:
        self.clients.discard(client)
        if not self.clients:
            self.close()
            with self._lock:
                self._known = None

    # -- new messages: the store says "something arrived"; find what ------------------------
    def _delivered(self, user: str, folder: str) -> None:
        if self.clients:
            twisted_reactor().callFromThread(self._scan)

    def _scan(self) -> None:
        if self._scan_pending:
            self._rescan = True
            return
        self._scan_pending = True
        from twisted.internet import threads

        deferred = threads.deferToThread(self._find_new)
        deferred.addBoth(self._scanned)

    def _scanned(self, result: Any) -> None:
        self._scan_pending = False
        if self._rescan:
            self._rescan = False
            self._scan()

    def _find_new(self) -> None:
        entries = self.view.entries()
        with self._lock:
            first_scan = self._known is None
            known = self._known or set()
            fresh = [entry for entry in entries if entry.id not in known]
            self._known = {entry.id for entry in entries}
        if first_scan:
            # A client just connected: what is there is not "new". Mailpit sends nothing
            # here; refservers sends the stats at once, which tells a client (a test) that
            # every later arrival will be announced.
            self.changed()
            return
        for entry in reversed(fresh):  # oldest first, as they arrived
            self.broadcast("new", entry.broadcast_summary())
        if fresh:
            self.changed()
