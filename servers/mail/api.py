"""Admin API routes over the mail store: list, read, wait for and delete messages.

The mail store's admin routes (``MailStore.admin_routes``), mounted whenever a server
using the store runs (SMTP, POP3, IMAP). Store work runs on an executor thread (it reads
files and takes flocks), so the admin loop never blocks; ``/wait`` is a long poll
that wakes on deliveries made in this process and re-reads the store every half
second for deliveries made by other processes sharing it.

Message ids are store keys (Maildir base names), unique across users and folders.The users endpoints belong to the user table (servers/core/users.py).
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..core.web import ApiError, ApiRequest, Reply, Route
from .store import MailStore, MailStoreError, MessageSummary

if TYPE_CHECKING:
    from ..core.context import Core

WAIT_DEFAULT = 10.0
WAIT_MAX = 300.0
RESCAN_SECONDS = 0.5


def mail_routes(core: Core) -> list[Route]:
    api = MessagesApi(core.shared(MailStore))
    return [
        Route("GET", "/api/v1/messages/wait", api.wait, "wait for a message (to, from, subject, user, timeout); 408 on timeout"),
        Route("GET", "/api/v1/messages", api.list, "stored messages, newest first (user, to, from, subject, since)"),
        Route("DELETE", "/api/v1/messages", api.clear, "delete every message (?user=)"),
        Route("GET", "/api/v1/messages/{id}/raw", api.raw, "a message as stored (message/rfc822)"),
        Route("GET", "/api/v1/messages/{id}", api.show, "a message parsed: headers, text, html, attachments, envelope"),
        Route("DELETE", "/api/v1/messages/{id}", api.delete, "delete one message"),
    ]


class MessagesApi:
    def __init__(self, store: MailStore):
        self.store = store

    async def _off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def _filters(self, request: ApiRequest) -> dict[str, Any]:
        return {
            "user": request.arg("user") or None,
            "to": request.arg("to") or None,
            "sender": request.arg("from") or None,
            "subject": request.arg("subject") or None,
            "since": _parse_since(request.arg("since")),
        }

    async def list(self, request: ApiRequest) -> Any:
        filters = self._filters(request)
        found: list[MessageSummary] = await self._off_loop(lambda: self.store.find(**filters))
        return {"count": len(found), "messages": [summary.as_json() for summary in found]}

    async def wait(self, request: ApiRequest) -> Any:
        filters = self._filters(request)
        try:
            timeout = min(float(request.arg("timeout") or WAIT_DEFAULT), WAIT_MAX)
        except ValueError:
            raise ApiError(400, f"query parameter 'timeout': expected seconds, got {request.arg('timeout')!r}") from None
        loop = asyncio.get_running_loop()
        delivered = asyncio.Event()

        def wake(user: str, folder: str) -> None:
            loop.call_soon_threadsafe(delivered.set)

        unsubscribe = self.store.subscribe(wake)
        deadline = loop.time() + timeout
        try:
            while True:
                delivered.clear()
                found = await self._off_loop(lambda: self.store.find(**filters))
                if found:
                    return found[0].as_json()
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return Reply(408, {"error": f"no matching message within {timeout:g}s"})
                try:
                    await asyncio.wait_for(delivered.wait(), min(remaining, RESCAN_SECONDS))
                except TimeoutError:
                    pass
        finally:
            unsubscribe()

    async def show(self, request: ApiRequest) -> Any:
        user, folder, info, data = await self._off_loop(self._load, request.params["id"])
        return describe_message(request.params["id"], user, folder, info, data)

    async def raw(self, request: ApiRequest) -> Reply:
        _, _, _, data = await self._off_loop(self._load, request.params["id"])
        return Reply(200, data, content_type="message/rfc822")

    async def delete(self, request: ApiRequest) -> Any:
        message_id = request.params["id"]

        def remove() -> int:
            user, folder, _ = self._locate(message_id)
            return self.store.delete(user, [message_id], folder)

        await self._off_loop(remove)
        return {"deleted": message_id}

    async def clear(self, request: ApiRequest) -> Any:
        removed = await self._off_loop(self.store.clear, request.arg("user") or None)
        return {"deleted": removed}

    # -- accounts: the core user table every protocol checks --------------------------
    def _locate(self, message_id: str) -> tuple[str, str, Any]:
        try:
            return self.store.locate(message_id)
        except MailStoreError:
            raise ApiError(404, f"no message {message_id!r}") from None

    def _load(self, message_id: str) -> tuple[str, str, Any, bytes]:
        user, folder, info = self._locate(message_id)
        try:
            return user, folder, info, self.store.read(user, message_id, folder)
        except MailStoreError:
            raise ApiError(404, f"no message {message_id!r}") from None


def describe_message(message_id: str, user: str, folder: str, info: Any, data: bytes) -> dict[str, Any]:
    """The parsed view of a stored message the admin API returns."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    attachments = []
    for part in message.walk():
        if part.is_multipart() or part in (text, html):
            continue
        if part.get_content_disposition() == "attachment" or part.get_filename():
            payload = part.get_payload(decode=True) or b""
            attachments.append(
                {"filename": part.get_filename(), "content_type": part.get_content_type(), "size": len(payload)}
            )
    return {
        "id": message_id,
        "user": user,
        "folder": folder,
        "uid": info.uid,
        "flags": sorted(info.flags),
        "size": info.size,
        "received": info.internal_date,
        "envelope": {
            "from": str(message.get("Return-Path", "")).strip().strip("<>"),
            "to": [str(value) for value in message.get_all("Delivered-To", [])],
        },
        "headers": [[name, str(value)] for name, value in message.items()],
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "subject": str(message.get("Subject", "")),
        "date": str(message.get("Date", "")),
        "text": _content(text),
        "html": _content(html),
        "attachments": attachments,
    }


def _content(part: Any) -> str | None:
    """A text part decoded, with LF line endings (the store keeps the wire's CRLF)."""
    if part is None:
        return None
    try:
        text = str(part.get_content())
    except (LookupError, ValueError):
        payload = part.get_payload(decode=True) or b""
        text = bytes(payload).decode("utf-8", "replace")
    return text.replace("\r\n", "\n")


def _parse_since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ApiError(400, f"query parameter 'since': expected epoch seconds or ISO 8601, got {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.timestamp()
