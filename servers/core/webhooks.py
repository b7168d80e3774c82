"""Webhooks: POST journal events as JSON to URLs, for chosen event kinds.

Mailpit's webhook (``--webhook-url``: a POST for each new message), generalised to every
protocol: the admin server's ``webhooks`` option (``REFSERVERS_ADMIN_WEBHOOKS``) lists
entries, each ``URL`` (``message`` events, as Mailpit's) or ``KIND+KIND=URL`` (``*``
for every kind), e.g. ``message+file=http://127.0.0.1:9000/hook``. In TOML an entry may
also be a table ``{url = "...", kinds = ["message", "file"]}``. A bad entry is a one-line
ConfigError at start naming the key.

The body is the event as ``GET /api/v1/events`` shows it: ``{"id", "time", "server",
"kind", "peer", "details"}``.

Rules it keeps:
1. A protocol never waits for a webhook. The journal observer only puts the event on
   the URL's bounded queue (``webhook_queue``); when the queue is full the event is
   dropped and counted (``refservers_webhook_events_total{outcome="dropped"}``).
2. One worker thread per URL, so a slow receiver delays only its own events, in order.
3. A delivery is tried ``1 + webhook_retries`` times, waiting ``webhook_backoff``
   seconds before the first retry and twice as long before each next one; a 2xx reply
   is success, anything else (a status, a refused connection, ``webhook_timeout``
   elapsed) a failure.
4. The first failure of a URL is logged once (as a warning); later ones are only counted.
   A URL's ``user:password@`` is sent as HTTP Basic credentials, and never shown in
   logs or metric labels.
"""

from __future__ import annotations

import base64
import json
import logging
import queue
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from .config import Kind
from .journal import Event, EventJournal

if TYPE_CHECKING:
    from .metrics import ServerMetrics

DEFAULT_KINDS = frozenset({"message"})  # a bare URL: Mailpit's "new message" webhook
EVERY_KIND = "*"
_KIND_NAME = re.compile(r"^(\*|[a-z][a-z0-9_-]*)$")
_STOP = object()


@dataclass(frozen=True)
class WebhookTarget:
    """One configured webhook: where to POST, and for which event kinds."""

    url: str
    kinds: frozenset[str] = DEFAULT_KINDS

    def wants(self, event: Event) -> bool:
        return EVERY_KIND in self.kinds or event.kind in self.kinds

    @property
    def shown(self) -> str:
        """The URL without credentials: what is logged, labelled and requested."""
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit((parts.scheme, host, parts.path, parts.query, ""))

    @property
    def headers(self) -> dict[str, str]:
        """HTTP Basic credentials of a ``http://user:password@host/`` URL, as a header."""
        parts = urlsplit(self.url)
        headers = {"Content-Type": "application/json", "User-Agent": "refservers-webhook"}
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        return headers


def _target(url: str, kinds: Iterable[str]) -> WebhookTarget:
    url, kinds = url.strip(), frozenset(kind.strip() for kind in kinds)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(url)
    if not kinds or not all(_KIND_NAME.match(kind) for kind in kinds):
        raise ValueError(kinds)
    return WebhookTarget(url, kinds)


def _entry_from_text(text: str) -> WebhookTarget:
    kinds_text, sep, url = text.partition("=")
    if not sep or "://" in kinds_text:  # a bare URL (which may itself hold '=')
        return _target(text, DEFAULT_KINDS)
    return _target(url, kinds_text.split("+"))


def _entries_from_toml(value: Any) -> tuple[WebhookTarget, ...]:
    if not isinstance(value, list):
        raise ValueError(value)
    targets = []
    for entry in value:
        if isinstance(entry, str):
            targets.append(_entry_from_text(entry))
        elif isinstance(entry, dict) and set(entry) <= {"url", "kinds"} and isinstance(entry.get("url"), str):
            kinds = entry.get("kinds", sorted(DEFAULT_KINDS))
            if not isinstance(kinds, list) or not all(isinstance(kind, str) for kind in kinds):
                raise ValueError(entry)
            targets.append(_target(entry["url"], kinds))
        else:
            raise ValueError(entry)
    return tuple(targets)


def _entries_from_text(text: str) -> tuple[WebhookTarget, ...]:
    return tuple(_entry_from_text(item) for item in text.split(",") if item.strip())


WEBHOOKS = Kind(
    "a list of webhooks, each URL (message events) or KIND+KIND=URL (* for every kind), "
    "http or https; comma-separated in text",
    _entries_from_toml,
    _entries_from_text,
)


@dataclass(frozen=True)
class DeliveryPolicy:
    retries: int = 3
    backoff: float = 0.5  # seconds before the first retry; doubled for each next one
    timeout: float = 5.0  # seconds for one POST
    queue_size: int = 1000  # events waiting per URL before new ones are dropped


class WebhookSender:
    """The queue and worker thread of one URL."""

    def __init__(self, target: WebhookTarget, policy: DeliveryPolicy, outcomes: Any, log: logging.Logger):
        self.target = target
        self.policy = policy
        self._outcomes = outcomes  # refservers_webhook_events_total, labelled (url, outcome)
        self._log = log
        self._queue: queue.Queue[Any] = queue.Queue(policy.queue_size)
        self._stopping = threading.Event()
        self._failed_before = False
        self._thread = threading.Thread(target=self._run, name=f"webhook {target.shown}", daemon=True)
        self._thread.start()

    def offer(self, event: Event) -> None:
        """Queue ``event`` without waiting; drop and count it when the queue is full."""
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self._count("dropped")

    def stop(self, timeout: float) -> None:
        self._stopping.set()
        try:
            self._queue.put_nowait(_STOP)
        except queue.Full:
            pass  # the worker sees _stopping before its next event
        self._thread.join(timeout)

    def _count(self, outcome: str) -> None:
        self._outcomes.labels(self.target.shown, outcome).inc()

    def _run(self) -> None:
        while not self._stopping.is_set():
            event = self._queue.get()
            if event is _STOP:
                return
            self._deliver(event)

    def _deliver(self, event: Event) -> None:
        body = json.dumps(event.as_json(), default=str).encode()
        delay = self.policy.backoff
        for attempt in range(1 + self.policy.retries):
            if attempt:
                self._count("retried")
                if self._stopping.wait(delay):
                    return
                delay *= 2
            problem = self._post(body)
            if problem is None:
                self._count("delivered")
                return
        self._count("failed")
        if not self._failed_before:
            self._failed_before = True
            self._log.warning(
                "webhook %s: event %d not delivered after %d attempts (%s); "
                "further failures of this URL are counted in refservers_webhook_events_total, not logged",
                self.target.shown,
                event.id,
                1 + self.policy.retries,
                problem,
            )

    def _post(self, body: bytes) -> str | None:
        """POST once; None on a 2xx reply, else what went wrong in a few words."""
        request = urllib.request.Request(self.target.shown, data=body, method="POST", headers=self.target.headers)
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout) as reply:
                reply.read()
                return None
        except urllib.error.HTTPError as error:
            error.close()
            return f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            return str(getattr(error, "reason", error))


class Webhooks:
    """Every configured webhook of a Core, fed by its journal while running."""

    def __init__(
        self,
        targets: Iterable[WebhookTarget],
        policy: DeliveryPolicy,
        journal: EventJournal,
        metrics: ServerMetrics,
        log: logging.Logger,
    ):
        self.senders = [WebhookSender(target, policy, metrics.webhook_events, log) for target in targets]
        self._unsubscribe = journal.subscribe(self._observe) if self.senders else None

    def _observe(self, event: Event) -> None:
        for sender in self.senders:
            if sender.target.wants(event):
                sender.offer(event)

    def stop(self) -> None:
        """Stop following the journal; each worker gets its current POST's timeout to end."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        for sender in self.senders:
            sender.stop(sender.policy.timeout + 1)
