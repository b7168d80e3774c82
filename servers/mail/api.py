"""The messages API on the admin port: Mailpit's API v1, MailHog's v2, refservers' additions.

The mail store's admin routes (``MailStore.admin_routes``), mounted whenever a server
using the store runs (SMTP, POP3, IMAP). Store work runs on an executor thread (it
reads files and takes flocks), so the admin loop never blocks.

- **Mailpit API v1** (server/apiv1, server/server.go routes), with Mailpit's shapes,
  status codes and plain-text error bodies: messages, message/{ID} (and ``latest``)
  with headers, raw, parts, release; search; send; tags; info, webui; chaos (always
  available, mapped onto fault rules: :mod:`.mailpit_chaos`); ``/livez``, ``/readyz``;
  ``/view/{ID}.html|.txt``; the WebSocket ``/api/events`` (:mod:`.mailpit_events`).
  The model behind them is :class:`~servers.mail.mailpit.MailpitView`.
- **MailHog** (MailHog-Server api/v2.go, v1.go): ``GET /api/v2/messages``, ``GET
  /api/v2/search``, ``GET/DELETE /api/v1/messages/{ID}``; ``DELETE /api/v1/messages``
  is shared with Mailpit. Where the two disagree (``GET /api/v1/messages``), Mailpit's
  shape is served.
- **refservers' additions**, which collide with neither: ``GET /api/v1/messages/wait``
  (long poll; 408 on timeout), the ``user`` (mailbox), ``to``, ``from``, ``subject``
  and ``since`` filters on the list, ``Users`` and ``Envelope`` keys in summaries.
  (The users endpoints belong to the user table, servers/core/users.py.)
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import email.utils
import json
import os
import re
import time
import zoneinfo
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from ..core import schemas
from ..core.web import ApiError, ApiRequest, Query, Reply, Route
from . import mailhog, mailpit_chaos
from .mailpit import Entry, MailpitView, clean_tag, data_uri_payload, headers_json, message_json
from .mailpit_events import VERSION, MailpitEvents
from .mailpit_search import compile_query, parse_date
from .store import MailStore

if TYPE_CHECKING:
    from ..core.context import Core

WAIT_DEFAULT = 10.0
WAIT_MAX = 300.0
RESCAN_SECONDS = 0.5
DEFAULT_LIMIT = 50  # apiv1 getStartLimit
NOT_FOUND = "404 page not found"  # apiv1 fourOFour
TEXT = "text/plain; charset=utf-8"
# Mail content served as a document on the admin origin (an attachment of any type, a
# message's HTML): sandboxed, so an HTML or SVG attachment opened in a tab cannot run
# script with the admin API's origin (the web console's, too).
SANDBOXED = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}
STARTED = time.time()
# thumbnails.go blankImage: a white 180x120 JPEG (quality 70 there; a baseline JPEG here)
BLANK_THUMBNAIL = base64.b64decode(
    "/9j/2wBDAAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAj/wAALCAB4ALQBAREA"
    "/8QAFQAAAgAAAAAAAAAAAAAAAAAAAAf/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/9oACAEBAAA/AH+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    + "A" * 135
    + "//9k="
)


class PlainError(Exception):
    """Mailpit's error replies: plain text (httpError is 400, fourOFour 404)."""

    def __init__(self, status: int, text: str, content_type: str = "text/plain"):
        super().__init__(text)
        self.reply = Reply(status, text.encode(), content_type=content_type)


def go_json(value: Any, status: int = 200) -> Reply:
    """JSON as Go's json.Encoder writes it: compact, a newline, <>& escaped."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Reply(status, (text + "\n").encode(), content_type="application/json")


def ok() -> Reply:
    return Reply(200, b"ok", content_type="text/plain")


def go_decode(body: bytes) -> Any:
    """A JSON body as Go's json.Decoder reads it; its error message when it cannot."""
    text = body.decode("utf-8", "replace").lstrip()
    if not text:
        raise PlainError(400, "EOF")
    try:
        return json.JSONDecoder().raw_decode(text)[0]
    except ValueError:
        raise PlainError(400, f"invalid character {text[0]!r} looking for beginning of value") from None


def field(body: Any, name: str, default: Any = None) -> Any:
    """Go's encoding/json matches struct fields case-insensitively."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key.lower() == name.lower():
                return value
    return default


# Query parameters of the lists (apiv1 getStartLimit), and refservers' filters on them.
PAGE = (
    Query("start", "skip this many", "integer"),
    Query("limit", f"at most this many (default {DEFAULT_LIMIT}; 0: all)", "integer"),
    Query("before", "only messages received before this date (RFC 3339)"),
)
SEARCH_QUERY = Query("query", "Mailpit search syntax: from:, to:, subject:, is:read, has:attachment, before:...", required=True)
MAILHOG_PAGE = (Query("start", "skip this many", "integer"), Query("limit", "at most this many", "integer"))
FILTERS = (
    Query("user", "refservers: only this mailbox"),
    Query("to", "refservers: recipient contains"),
    Query("from", "refservers: sender contains"),
    Query("subject", "refservers: subject contains"),
    Query("since", "refservers: only messages received since this date"),
)


def mail_routes(core: Core) -> list[Route]:
    api = MessagesApi(core)
    plain = api.plain
    return [
        # Mailpit API v1 (and the list and delete-all MailHog shares)
        Route(
            "GET",
            "/api/v1/messages/wait",
            api.wait,
            "refservers: wait for a message (query, to, from, subject, user, timeout); 408 on timeout",
            query=(
                Query("query", "Mailpit search syntax"),
                *FILTERS[:4],
                Query("timeout", f"seconds to wait (default {WAIT_DEFAULT:g}, at most {WAIT_MAX:g})", "number"),
            ),
            reply=schemas.MESSAGE_SUMMARY,
        ),
        Route(
            "GET",
            "/api/v1/messages",
            plain(api.list_messages),
            "Mailpit: messages, newest first (start, limit, before; user, to, from, subject, since)",
            query=PAGE + FILTERS,
            reply=schemas.MESSAGES,
        ),
        Route("PUT", "/api/v1/messages", plain(api.set_read), "Mailpit: set read status {Read, IDs | Search}"),
        Route(
            "DELETE",
            "/api/v1/messages",
            plain(api.delete_messages),
            "Mailpit/MailHog: delete {IDs}, or all",
            query=(Query("user", "refservers: only this mailbox's messages"),),
            body=schemas.MESSAGE_IDS,
            media_type="text/plain",
            reply={"const": "ok"},
        ),
        Route("GET", "/api/v1/message/{id}/headers", plain(api.headers), "Mailpit: message headers"),
        Route(
            "GET",
            "/api/v1/message/{id}/raw",
            plain(api.raw),
            "Mailpit: message source (?dl=1)",
            query=(Query("dl", "1: as an attachment download"),),
            media_type="text/plain",
            reply={"type": "string"},
        ),
        Route(
            "GET",
            "/api/v1/message/{id}/part/{part}/thumb",
            plain(api.thumbnail),
            "Mailpit: image attachment (not resized)",
        ),
        Route("GET", "/api/v1/message/{id}/part/{part}", plain(api.part), "Mailpit: an attachment or inline part"),
        Route("POST", "/api/v1/message/{id}/release", plain(api.release), "Mailpit: relay to another SMTP server (none configured: 400)"),
        Route("GET", "/api/v1/message/{id}", plain(api.message), "Mailpit: a message (marks it read)", reply=schemas.MESSAGE),
        Route(
            "GET",
            "/api/v1/search",
            plain(api.search),
            "Mailpit: search (query, start, limit, tz)",
            query=(
                SEARCH_QUERY,
                *PAGE,
                Query("tz", "time zone of before:/after: dates (IANA name)"),
            ),
            reply=schemas.MESSAGES,
        ),
        Route(
            "DELETE",
            "/api/v1/search",
            plain(api.delete_search),
            "Mailpit: delete what a search matches",
            query=(SEARCH_QUERY, Query("tz", "time zone of before:/after: dates (IANA name)")),
        ),
        Route("POST", "/api/v1/send", plain(api.send), "Mailpit: store a JSON message as if received"),
        Route("GET", "/api/v1/tags", plain(api.all_tags), "Mailpit: every tag"),
        Route("PUT", "/api/v1/tags", plain(api.set_tags), "Mailpit: set tags {Tags, IDs}"),
        Route("PUT", "/api/v1/tags/{tag}", plain(api.rename_tag), "Mailpit: rename a tag {Name}"),
        Route("DELETE", "/api/v1/tags/{tag}", plain(api.delete_tag), "Mailpit: delete a tag"),
        Route("GET", "/api/v1/info", plain(api.info), "Mailpit: application information"),
        Route("GET", "/api/v1/webui", plain(api.webui), "Mailpit: web UI configuration"),
        Route("GET", "/api/v1/chaos", plain(api.chaos), "Mailpit: chaos triggers (SMTP fault rules)"),
        Route("PUT", "/api/v1/chaos", plain(api.set_chaos), "Mailpit: set chaos triggers"),
        Route("GET", "/api/events", api.events_socket, "Mailpit: WebSocket of new/update/delete/stats events"),
        Route(
            "GET",
            "/api/v1/mailboxes",
            api.mailboxes,
            "refservers: every mailbox of the store: users and created addresses",
            reply=schemas.MAILBOXES,
        ),
        Route("GET", "/livez", api.livez, "Mailpit: liveness (200)"),
        Route("GET", "/readyz", api.readyz, "Mailpit: readiness (200 when every server is ready)"),
        Route("GET", "/view/latest", plain(api.view_latest), "Mailpit: redirect to the latest message's view"),
        Route("GET", "/view/{file}", plain(api.view_file), "Mailpit: {ID}.html or {ID}.txt (latest too)"),
        # MailHog
        Route(
            "GET",
            "/api/v2/messages",
            plain(api.mailhog_messages),
            "MailHog: messages (start, limit)",
            query=(*MAILHOG_PAGE, FILTERS[0]),
        ),
        Route(
            "GET",
            "/api/v2/search",
            plain(api.mailhog_search),
            "MailHog: search (kind=from|to|containing, query)",
            query=(
                Query("kind", "from, to or containing", required=True),
                Query("query", "the text looked for", required=True),
                *MAILHOG_PAGE,
                FILTERS[0],
            ),
        ),
        Route("GET", "/api/v1/messages/{id}", plain(api.mailhog_message), "MailHog: one message"),
        Route("DELETE", "/api/v1/messages/{id}", plain(api.mailhog_delete), "MailHog: delete one message"),
    ]


class MessagesApi:
    def __init__(self, core: Core):
        self.core = core
        self.store = core.shared(MailStore)
        self.mailbox = core.shared(MailpitView)
        self.hub = core.shared(MailpitEvents)

    async def mailboxes(self, request: ApiRequest) -> Any:
        """Mailboxes on disk, with whether each is an account of this process's user table
        (a mailbox made by another process sharing the store, or before a restart, is
        not). The ``user`` filter of the messages API takes these names."""
        names = await asyncio.get_running_loop().run_in_executor(None, self.store.mailbox_users)
        return {"mailboxes": [{"name": name, "account": name in self.store.users} for name in names]}

    # -- plumbing ------------------------------------------------------------------------
    def plain(self, handler: Callable[[ApiRequest], Awaitable[Any]]) -> Callable[[ApiRequest], Awaitable[Any]]:
        async def answer(request: ApiRequest) -> Any:
            try:
                return await handler(request)
            except PlainError as error:
                return error.reply

        return answer

    async def _off_loop(self, function: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    def _find(self, request: ApiRequest, message_id: str) -> Entry:
        """The message of an ID (or ``latest``, which takes ``?query=``), as Mailpit
        answers: 404 "Message not found" for no latest, "404 page not found" otherwise."""
        if message_id == "latest":
            entries = self._matching(request, request.arg("query") or "")
            if not entries:
                raise PlainError(404, "Message not found", TEXT)
            return entries[0]
        entry = self.mailbox.entry(message_id)
        if entry is None:
            raise PlainError(404, NOT_FOUND)
        return entry

    def _matching(self, request: ApiRequest, query: str, everything: list[Entry] | None = None) -> list[Entry]:
        """The messages matching a search (and ``?user=``), newest first; ``everything``
        is the whole mailbox when the caller already has it (one scan per request)."""
        user = request.arg("user") or None
        if everything is None:
            entries = self.mailbox.entries(user)
        else:
            entries = [entry for entry in everything if not user or user in entry.users]
        if query.strip():
            test = compile_query(query, _zone(request.arg("tz")))
            entries = [entry for entry in entries if test(entry)]
        return entries

    def _ids(self, ids: Any) -> list[Entry]:
        if not isinstance(ids, list):
            return []
        entries = self.mailbox.entries()
        by_id = {entry.id: entry for entry in entries}
        for entry in entries:
            for copy in entry.copies:
                by_id.setdefault(copy.info.key, entry)
        chosen: dict[str, Entry] = {}
        for message_id in ids:
            found = entries[0] if message_id == "latest" and entries else by_id.get(str(message_id))
            if found is not None:
                chosen[found.id] = found
        return list(chosen.values())

    def _stats(self, entries: list[Entry] | None = None) -> dict[str, Any]:
        entries = self.mailbox.entries() if entries is None else entries
        tags = sorted({tag for entry in entries for tag in entry.tags})
        return {"total": len(entries), "unread": sum(not entry.read for entry in entries), "tags": tags}

    def _deleted(self, ids: list[str]) -> None:
        for message_id in ids:
            self.hub.broadcast("delete", {"ID": message_id})
        self.hub.changed()

    # -- messages ------------------------------------------------------------------------
    async def list_messages(self, request: ApiRequest) -> Reply:
        start, before, limit = _start_limit(request)

        def listing() -> dict[str, Any]:
            everything = self.mailbox.entries()
            entries = _legacy_filters(request, self._matching(request, "", everything))
            if before is not None:
                entries = [entry for entry in entries if entry.created < before]
            page = entries[start : start + limit] if limit > 0 else entries
            stats = self._stats(everything)
            filtered = len(entries) != len(everything)  # refservers' filters narrow the counts
            return {
                "total": stats["total"],
                "unread": stats["unread"],
                "count": len(page),
                "messages_count": len(entries) if filtered else stats["total"],
                "messages_unread": sum(not e.read for e in entries) if filtered else stats["unread"],
                "start": start,
                "tags": stats["tags"],
                "messages": [entry.summary() for entry in page],
            }

        return go_json(await self._off_loop(listing))

    async def set_read(self, request: ApiRequest) -> Reply:
        body = go_decode(request.body)
        read, ids, search = bool(field(body, "Read", False)), field(body, "IDs") or [], field(body, "Search") or ""
        if ids and search:
            raise PlainError(400, "You may specify either IDs or a search query, not both")

        def change() -> list[Entry]:
            if search:
                entries = self._matching(request, search)
            elif ids:
                entries = self._ids(ids)
            else:
                entries = self.mailbox.entries()
            return self.mailbox.set_read(entries, read)

        changed = await self._off_loop(change)
        for entry in changed:
            self.hub.broadcast("update", {"ID": entry.id, "Read": read})
        self.hub.changed()
        return ok()

    async def delete_messages(self, request: ApiRequest) -> Reply:
        try:
            ids = field(go_decode(request.body), "IDs") or []
        except PlainError:
            ids = []  # Mailpit: an unreadable body deletes everything, as no IDs does
        user = request.arg("user") or None  # refservers: only this mailbox's messages

        def remove() -> list[str]:
            entries = self._ids(ids) if ids else self.mailbox.entries(user)
            return self.mailbox.delete(entries)

        removed = await self._off_loop(remove)
        if ids or user:
            self._deleted(removed)
        else:
            self.hub.broadcast("truncate", None)
            self.hub.changed()
        return ok()

    async def message(self, request: ApiRequest) -> Reply:
        def load() -> dict[str, Any]:
            entry = self._find(request, request.params["id"])
            message, tree, data = self.mailbox.full(entry)
            was_read = entry.read
            self.mailbox.set_read([entry], True)
            if not was_read:
                self.hub.broadcast("update", {"ID": entry.id, "Read": True})
                self.hub.changed()
            return message_json(entry, message, tree, data)

        return go_json(await self._off_loop(load))

    async def headers(self, request: ApiRequest) -> Reply:
        def load() -> dict[str, list[str]]:
            return headers_json(self.mailbox.raw(self._find(request, request.params["id"])))

        return go_json(await self._off_loop(load))

    async def raw(self, request: ApiRequest) -> Reply:
        def load() -> tuple[str, bytes]:
            entry = self._find(request, request.params["id"])
            return entry.id, self.mailbox.raw(entry)

        message_id, data = await self._off_loop(load)
        headers = (
            {"Content-Disposition": f'attachment; filename="{message_id}.eml"'} if request.arg("dl") == "1" else {}
        )
        return Reply(200, data, content_type=TEXT, headers=headers)

    async def part(self, request: ApiRequest) -> Reply:
        part = await self._off_loop(self._part, request)
        name = part.file_name or part.content_id
        disposition = f'inline; filename="{_path_escape(name)}"'
        return Reply(200, part.content, content_type=part.content_type, headers={"Content-Disposition": disposition, **SANDBOXED})

    async def thumbnail(self, request: ApiRequest) -> Reply:
        """Mailpit answers a 180x120 JPEG: the image cropped or padded, a blank one for a
        non-image. Without an imaging library an image is returned as it is (browsers
        scale it); a non-image gets Mailpit's blank JPEG."""
        try:
            part = await self._off_loop(self._part, request)
        except PlainError:
            raise PlainError(400, "attachment not found") from None
        name = part.file_name or part.content_id
        headers = {"Content-Disposition": f'filename="{name}"', **SANDBOXED}
        if not part.content_type.startswith("image/"):
            return Reply(200, BLANK_THUMBNAIL, content_type="image/jpeg", headers=headers)
        return Reply(200, part.content, content_type=part.content_type, headers=headers)

    def _part(self, request: ApiRequest) -> Any:
        entry = self._find(request, request.params["id"])
        _, tree, _ = self.mailbox.full(entry)
        for part in tree.parts():
            if part.part_id == request.params["part"]:
                return part
        raise PlainError(404, NOT_FOUND)

    async def release(self, request: ApiRequest) -> Reply:
        """Relay needs a configured SMTP relay in Mailpit; refservers has none, so this
        answers as Mailpit does when the relay cannot be reached: 400 "SMTP error: ..."."""
        await self._off_loop(self._find, request, request.params["id"])  # 404 first, as Mailpit
        body = go_decode(request.body)
        recipients = field(body, "To") or []
        for address in recipients:
            if not isinstance(address, str) or "@" not in email.utils.parseaddr(address)[1]:
                raise PlainError(400, f"Invalid email address: {address}")
        if not recipients:
            raise PlainError(400, "No valid addresses found")
        raise PlainError(400, "SMTP error: message relay is not configured")

    async def search(self, request: ApiRequest) -> Reply:
        query = (request.arg("query") or "").strip()
        if not query:
            raise PlainError(400, "Error: no search query")
        start, before, limit = _start_limit(request)

        def find() -> dict[str, Any]:
            everything = self.mailbox.entries()
            found = self._matching(request, query, everything)
            if before is not None:
                found = [entry for entry in found if entry.created < before]
            page = found[start : start + limit]
            stats = self._stats(everything)
            return {
                "total": stats["total"],
                "unread": stats["unread"],
                "count": len(page),
                "messages_count": len(found),
                "messages_unread": sum(not entry.read for entry in found),
                "start": start,
                "tags": stats["tags"],
                "messages": [entry.summary() for entry in page],
            }

        return go_json(await self._off_loop(find))

    async def delete_search(self, request: ApiRequest) -> Reply:
        query = (request.arg("query") or "").strip()
        if not query:
            raise PlainError(400, "Error: no search query")
        removed = await self._off_loop(lambda: self.mailbox.delete(self._matching(request, query)))
        self._deleted(removed)
        return ok()

    # -- send ------------------------------------------------------------------------------
    async def send(self, request: ApiRequest) -> Reply:
        try:
            body = go_decode(request.body)
            message, recipients, sender = _build_message(body, request.peer)
        except PlainError as error:
            return go_json({"Error": error.reply.body.decode()}, 400)
        except ValueError as error:
            return go_json({"Error": str(error)}, 400)

        def deliver() -> str:
            data = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))
            by_user: dict[str, list[str]] = {}
            for address in recipients:
                user = self.store.resolve_recipient(address)
                if user is not None:
                    by_user.setdefault(user, []).append(address)
            if not by_user:
                raise PlainError(400, "no recipient has a mailbox here (see [mail] unknown_recipients)")
            keys = [
                self.store.deliver(user, data, {"mail_from": sender, "rcpt_to": rcpts})
                for user, rcpts in by_user.items()
            ]
            self.core.journal.record(
                "admin",
                "message",
                request.peer,
                users=list(by_user),
                sender=sender,
                to=recipients,
                keys=keys,
                key=min(keys),
                via="api/v1/send",
            )
            return min(keys)

        try:
            message_id = await self._off_loop(deliver)
        except PlainError as error:
            return go_json({"Error": error.reply.body.decode()}, 400)
        return go_json({"ID": message_id})

    # -- tags ------------------------------------------------------------------------------
    async def all_tags(self, request: ApiRequest) -> Reply:
        entries = await self._off_loop(self.mailbox.entries)
        return go_json(self._stats(entries)["tags"])

    async def set_tags(self, request: ApiRequest) -> Reply:
        body = go_decode(request.body)
        tags, ids = field(body, "Tags") or [], field(body, "IDs") or []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise PlainError(400, "json: cannot unmarshal into Go struct field .Tags of type []string")

        def apply() -> list[tuple[str, list[str]]]:
            return [(entry.id, self.mailbox.set_tags(entry, tags)) for entry in self._ids(ids)]

        for message_id, applied in await self._off_loop(apply):
            self.hub.broadcast("update", {"ID": message_id, "Tags": applied})
        self.hub.changed()
        return ok()

    async def rename_tag(self, request: ApiRequest) -> Reply:
        name = field(go_decode(request.body), "Name") or ""
        old = request.params["tag"]
        if not isinstance(name, str) or not clean_tag(name):
            raise PlainError(400, "invalid tag name")

        def rename() -> None:
            self.mailbox.rename_tag(old, name, self.mailbox.entries())

        try:
            await self._off_loop(rename)
        except ValueError as error:
            raise PlainError(400, str(error)) from None
        self.hub.broadcast("prune", None)
        return ok()

    async def delete_tag(self, request: ApiRequest) -> Reply:
        tag = request.params["tag"].lower()

        def remove() -> None:
            for entry in self.mailbox.entries():
                if any(t.lower() == tag for t in entry.tags):
                    self.mailbox.set_tags(entry, [t for t in entry.tags if t.lower() != tag])

        await self._off_loop(remove)
        self.hub.broadcast("prune", None)
        return ok()

    # -- application -------------------------------------------------------------------------
    async def info(self, request: ApiRequest) -> Reply:
        entries = await self._off_loop(self.mailbox.entries)
        journal = self.core.journal
        accepted = [e for e in journal.events(kind="message") if e.server == "smtp"]
        tags: dict[str, int] = {}
        for entry in entries:
            for tag in entry.tags:
                tags[tag] = tags.get(tag, 0) + 1
        return go_json(
            {
                "Version": VERSION,
                "LatestVersion": "disabled",
                "Database": str(self.store.root),
                "DatabaseSize": sum(entry.size for entry in entries),
                "Messages": len(entries),
                "Unread": sum(not entry.read for entry in entries),
                "Tags": tags,
                "RuntimeStats": {
                    "Uptime": int(time.time() - STARTED),
                    "Memory": 0,
                    "MessagesDeleted": 0,
                    "SMTPAccepted": len(accepted),
                    "SMTPAcceptedSize": sum(int(e.details.get("size", 0)) for e in accepted),
                    "SMTPRejected": 0,
                    "SMTPIgnored": 0,
                },
            }
        )

    async def webui(self, request: ApiRequest) -> Reply:
        return go_json(
            {
                "Label": "",
                "MessageRelay": {
                    "Enabled": False,
                    "SMTPServer": "",
                    "ReturnPath": "",
                    "AllowedRecipients": "",
                    "BlockedRecipients": "",
                    "OverrideFrom": "",
                    "PreserveMessageIDs": False,
                    "RecipientAllowlist": "",
                },
                "SpamAssassin": False,
                "ChaosEnabled": True,
                "DuplicatesIgnored": False,
                "HideDeleteAllButton": False,
            }
        )

    async def chaos(self, request: ApiRequest) -> Reply:
        return go_json(mailpit_chaos.current(self.core.faults))

    async def set_chaos(self, request: ApiRequest) -> Reply:
        try:
            return go_json(mailpit_chaos.apply(self.core.faults, go_decode(request.body)))
        except mailpit_chaos.ChaosError as error:
            raise PlainError(400, str(error)) from None

    def events_socket(self, request: ApiRequest) -> Any:
        """The WebSocket upgrade: the route table hands the request to autobahn's resource
        (one place, so the admin's Host/Origin checks apply to it as to every route). A
        plain GET gets what Mailpit's upgrader (gorilla/websocket) answers: 400."""
        if "websocket" not in request.headers.get("upgrade", "").lower():
            return Reply(400, b"Bad Request\n", content_type=TEXT, headers={"Sec-Websocket-Version": "13"})
        return self.hub.resource

    def livez(self, request: ApiRequest) -> Reply:
        return Reply(200, b"", content_type="text/plain")

    def readyz(self, request: ApiRequest) -> Reply:
        ready = all(server.state == "ready" for server in self.core.servers)
        if ready:
            return Reply(200, b"", content_type="text/plain")
        return Reply(
            503,
            b"Service Unavailable\n",
            content_type="text/plain; charset=utf-8",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    async def view_latest(self, request: ApiRequest) -> Reply:
        entries = await self._off_loop(self._matching, request, request.arg("query") or "")
        location = f"/view/{entries[0].id}" if entries else "/"
        return Reply(
            302,
            f'<a href="{location}">Found</a>.\n\n'.encode(),
            content_type="text/html; charset=utf-8",
            headers={"Location": location},
        )

    async def view_file(self, request: ApiRequest) -> Reply:
        name = request.params["file"]
        message_id, dot, kind = name.rpartition(".")
        if not dot or kind not in ("html", "txt"):
            raise PlainError(404, NOT_FOUND)

        def load() -> tuple[Entry, Any]:
            try:
                entry = self._find(request, message_id)
            except PlainError as error:
                if message_id == "latest":
                    raise
                raise PlainError(404, "Message not found", TEXT) from error
            return entry, self.mailbox.full(entry)[1]

        entry, tree = await self._off_loop(load)
        if kind == "txt":
            return Reply(200, tree.text.encode(), content_type=TEXT)
        if not tree.html:
            raise PlainError(404, "This message does not contain a HTML part", TEXT)
        markup = tree.html
        for part in tree.parts():
            if part.content_id:
                pattern = re.compile(r"(?i)(=[\"']?)(cid:" + re.escape(part.content_id) + r")([\"|'|\s|/|>|;])")
                url = f"/api/v1/message/{entry.id}/part/{part.part_id}".replace("\\", "\\\\")
                markup = pattern.sub(r"\g<1>" + url + r"\g<3>", markup)
        return Reply(200, markup.encode(), content_type="text/html; charset=utf-8", headers=dict(SANDBOXED))

    # -- MailHog -------------------------------------------------------------------------------
    async def mailhog_messages(self, request: ApiRequest) -> Reply:
        start, limit = _mailhog_start_limit(request)

        def listing() -> dict[str, Any]:
            entries = self.mailbox.entries(request.arg("user") or None)
            page = entries[start : start + limit]
            items = [mailhog.message_json(entry, self.mailbox.raw(entry)) for entry in page]
            return {"total": len(entries), "count": len(items), "start": start, "items": items}

        result = await self._off_loop(listing)
        return Reply(200, json.dumps(result).encode(), content_type="text/json")

    async def mailhog_search(self, request: ApiRequest) -> Reply:
        start, limit = _mailhog_start_limit(request)
        kind, query = request.arg("kind") or "", request.arg("query") or ""
        if kind not in ("from", "to", "containing") or not query:
            return Reply(400, b"", content_type="text/plain")
        test = mailhog.search_test(kind, query)

        def find() -> dict[str, Any]:
            found = []
            for entry in self.mailbox.entries(request.arg("user") or None):
                item = mailhog.message_json(entry, self.mailbox.raw(entry))
                if test(item):
                    found.append(item)
            page = found[start : start + limit]
            return {"total": len(found), "count": len(page), "start": start, "items": page}

        return go_json(await self._off_loop(find))

    async def mailhog_message(self, request: ApiRequest) -> Reply:
        def load() -> dict[str, Any]:
            entry = self._find(request, request.params["id"])
            return mailhog.message_json(entry, self.mailbox.raw(entry))

        return go_json(await self._off_loop(load))

    async def mailhog_delete(self, request: ApiRequest) -> Reply:
        def remove() -> list[str]:
            entry = self._find(request, request.params["id"])
            return self.mailbox.delete([entry])

        self._deleted(await self._off_loop(remove))
        return Reply(200, b"", content_type="text/plain")

    # -- refservers: wait ----------------------------------------------------------------------
    async def wait(self, request: ApiRequest) -> Any:
        """The newest message matching the filters (and ``query``, in Mailpit's search
        syntax), as soon as one is stored; 408 after ``timeout`` seconds."""
        try:
            timeout = min(float(request.arg("timeout") or WAIT_DEFAULT), WAIT_MAX)
        except ValueError:
            raise ApiError(
                400, f"query parameter 'timeout': expected seconds, got {request.arg('timeout')!r}"
            ) from None
        _legacy_filters(request, [])  # bad filters fail now, not after the wait
        loop = asyncio.get_running_loop()
        delivered = asyncio.Event()

        def wake(user: str, folder: str) -> None:
            loop.call_soon_threadsafe(delivered.set)

        def find() -> list[Entry]:
            return _legacy_filters(request, self._matching(request, request.arg("query") or ""))

        unsubscribe = self.store.subscribe(wake)
        deadline = loop.time() + timeout
        try:
            while True:
                delivered.clear()
                found = await self._off_loop(find)
                if found:
                    return go_json(found[0].summary())
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return Reply(408, {"error": f"no matching message within {timeout:g}s"})
                try:
                    await asyncio.wait_for(delivered.wait(), min(remaining, RESCAN_SECONDS))
                except TimeoutError:
                    pass
        finally:
            unsubscribe()


# -- helpers ---------------------------------------------------------------------------------


def _zone(name: str | None) -> datetime.tzinfo | None:
    if not name:
        return None
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None  # Mailpit ignores an invalid timezone (with a warning)


def _start_limit(request: ApiRequest) -> tuple[int, float | None, int]:
    """apiv1 getStartLimit: bad numbers fall back to the defaults, a bad date is ignored."""

    def number(name: str, default: int, minimum: int) -> int:
        try:
            value = int(request.arg(name) or "")
        except ValueError:
            return default
        return value if value >= minimum else default

    before_text = request.arg("before")
    before = parse_date(before_text, None) if before_text else None
    return number("start", 0, 1), before, number("limit", DEFAULT_LIMIT, 0)


def _mailhog_start_limit(request: ApiRequest) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        try:
            value = int(request.arg(name) or "")
        except ValueError:
            return default
        return value if value > 0 else default

    return number("start", 0), min(number("limit", DEFAULT_LIMIT), mailhog.MAX_LIMIT)


def _legacy_filters(request: ApiRequest, entries: list[Entry]) -> list[Entry]:
    """refservers' list filters (case-insensitive substrings; ``since`` epoch or ISO 8601)."""
    to, sender, subject = (request.arg(name) or "" for name in ("to", "from", "subject"))
    since = _parse_since(request.arg("since"))
    found = []
    for entry in entries:
        parsed = entry.parsed
        if to:
            addresses = [a["Address"] for a in (*parsed.to, *parsed.cc)] + entry.envelope_to + entry.users
            if not any(to.lower() in address.lower() for address in addresses):
                continue
        if sender and sender.lower() not in f"{parsed.sender['Name']} <{parsed.sender['Address']}>".lower():
            continue
        if subject and subject.lower() not in parsed.subject.lower():
            continue
        if since is not None and entry.created < since:
            continue
        found.append(entry)
    return found


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


def _basic_user(request: ApiRequest) -> str | None:
    """send.go: the HTTP Basic user, if any, is the message's Username."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        return base64.b64decode(credentials).decode("utf-8").partition(":")[0] or None
    except ValueError:
        return None


def _path_escape(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="!$&'()*+,;=:@")


def _build_message(body: Any, peer: str) -> tuple[EmailMessage, list[str], str]:
    """send.go: a message from {From, To, Cc, Bcc, ReplyTo, Subject, Text, HTML,
    Attachments, Headers, Tags}; returns it with its envelope recipients and sender."""
    if not isinstance(body, dict):
        raise ValueError("json: cannot unmarshal into Go value of type struct")
    sender = field(body, "From") or {}
    sender_email = str(field(sender, "Email") or "")
    if not sender_email or "@" not in email.utils.parseaddr(sender_email)[1]:
        raise ValueError(f"invalid From address: {sender_email}")
    message = EmailMessage()
    message["From"] = email.utils.formataddr((str(field(sender, "Name") or ""), sender_email))
    recipients: list[str] = []
    for name, header in (("To", "To"), ("Cc", "Cc"), ("ReplyTo", "Reply-To")):
        formatted = []
        for item in field(body, name) or []:
            address = str(field(item, "Email") or "")
            if "@" not in email.utils.parseaddr(address)[1]:
                raise ValueError(f"invalid {header} address: {address}")
            formatted.append(email.utils.formataddr((str(field(item, "Name") or ""), address)))
            if name != "ReplyTo":
                recipients.append(address)
        if formatted:
            message[header] = ", ".join(formatted)
    for address in field(body, "Bcc") or []:
        if "@" not in email.utils.parseaddr(str(address))[1]:
            raise ValueError(f"invalid Bcc address: {address}")
        recipients.append(str(address))
    if not recipients:
        raise ValueError("error building message: no recipients")
    message["Subject"] = str(field(body, "Subject") or "")
    message["Date"] = email.utils.formatdate(localtime=True)
    restricted = {"to", "from", "cc", "bcc", "reply-to", "date", "subject", "content-type", "mime-version"}
    tags = field(body, "Tags") or []
    if tags:
        message["X-Tags"] = ", ".join(str(tag) for tag in tags)
        restricted.add("x-tags")
    for name, value in (field(body, "Headers") or {}).items():
        if name.lower() in restricted:
            raise ValueError(f'cannot overwrite header: "{name}"')
        message[name] = str(value)
    if "Message-Id" not in message:
        message["Message-Id"] = f"<{os.urandom(11).hex()}@mailpit>"
    # A trace header unique to this submission: two identical sends stay two messages.
    host = peer or "unknown"
    message["Received"] = (
        f"from [{host}] by refservers with HTTP id {os.urandom(6).hex()}; {email.utils.formatdate(localtime=True)}"
    )
    message.set_content(str(field(body, "Text") or ""))
    html_body = str(field(body, "HTML") or "")
    if html_body:
        message.add_alternative(html_body, subtype="html")
    for attachment in field(body, "Attachments") or []:
        content = data_uri_payload(str(field(attachment, "Content") or ""))
        content_type = str(field(attachment, "ContentType") or "") or _sniff(content)
        maintype, _, subtype = content_type.partition("/")
        filename = str(field(attachment, "Filename") or "")
        content_id = str(field(attachment, "ContentID") or "")
        if content_id:
            message.add_attachment(
                content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=filename,
                disposition="inline",
                cid=f"<{content_id}>",
            )
        else:
            message.add_attachment(content, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
    return message, recipients, sender_email


def _sniff(content: bytes) -> str:
    """A little of http.DetectContentType."""
    signatures = {
        b"\x89PNG": "image/png",
        b"GIF8": "image/gif",
        b"\xff\xd8\xff": "image/jpeg",
        b"%PDF-": "application/pdf",
    }
    for prefix, kind in signatures.items():
        if content.startswith(prefix):
            return kind
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return "application/octet-stream"
    return "text/plain"
