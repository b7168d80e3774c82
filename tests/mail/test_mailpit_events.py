"""Mailpit's WebSocket /api/events, read with the ``websockets`` client (no Mailpit library
covers it): ``{"Type", "Data"}`` frames for new, update, delete, truncate and stats."""

from __future__ import annotations

import json
import smtplib
from typing import Any

import pytest
import requests
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin


def send(smtp: Any, subject: str) -> None:
    with smtplib.SMTP(smtp.probe_host, smtp.port, timeout=10) as client:
        client.sendmail("alice@example.com", ["demo@example.com"], f"From: alice@example.com\r\nTo: demo@example.com\r\nSubject: {subject}\r\n\r\nhello\r\n".encode())


def next_event(socket: Any, kind: str) -> Any:
    """The Data of the next frame of this Type (stats frames come in between)."""
    for _ in range(20):
        frame = json.loads(socket.recv(timeout=10))
        assert set(frame) == {"Type", "Data"}
        if frame["Type"] == kind:
            return frame["Data"]
    raise AssertionError(f"no {kind!r} event in 20 frames")


def test_events_follow_the_mailbox(refservers_smtp: Any, refservers_admin: Any) -> None:
    ws_url = refservers_admin.url.replace("http://", "ws://") + "/api/events"
    api = f"{refservers_admin.url}/api/v1"
    send(refservers_smtp, "before")
    with connect(ws_url, open_timeout=10) as socket:
        # refservers sends the stats once it knows the mailbox: later arrivals are "new".
        assert next_event(socket, "stats") == {"Total": 1, "Unread": 1, "Version": "refservers"}
        send(refservers_smtp, "during")
        new = next_event(socket, "new")
        assert new["Subject"] == "during" and new["Cc"] == [] and new["Read"] is False
        assert next_event(socket, "stats")["Total"] == 2

        requests.get(f"{api}/message/{new['ID']}", timeout=10)
        assert next_event(socket, "update") == {"ID": new["ID"], "Read": True}
        requests.put(f"{api}/tags", json={"IDs": [new["ID"]], "Tags": ["seen-live"]}, timeout=10)
        assert next_event(socket, "update") == {"ID": new["ID"], "Tags": ["seen-live"]}
        requests.delete(f"{api}/messages", json={"IDs": [new["ID"]]}, timeout=10)
        assert next_event(socket, "delete") == {"ID": new["ID"]}
        requests.delete(f"{api}/messages", timeout=10)
        assert next_event(socket, "truncate") is None


def test_plain_get_is_refused(refservers_smtp: Any, refservers_admin: Any) -> None:
    reply = requests.get(f"{refservers_admin.url}/api/events", timeout=10)
    assert (reply.status_code, reply.text, reply.headers["Sec-Websocket-Version"]) == (400, "Bad Request\n", "13")


def test_cross_site_upgrade_is_refused(refservers_smtp: Any, refservers_admin: Any) -> None:
    """The upgrade passes the admin guard like every route: a foreign page cannot listen."""
    ws_url = refservers_admin.url.replace("http://", "ws://") + "/api/events"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, origin=Origin("http://evil.example"), open_timeout=10)
    assert refused.value.response.status_code == 403
