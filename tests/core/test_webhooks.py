"""Webhooks (admin.webhooks): real SMTP and FTP traffic POSTed to a real local receiver.

The receiver is http.server on port 0 in a thread; its behaviour per test: answer 204,
fail a number of times first, or hang. Waiting is on the receiver's queue of requests
(a real signal), and on the protocols' replies, never on a sleep.
"""

from __future__ import annotations

import ftplib
import io
import json
import logging
import queue
import smtplib
import threading
import urllib.request
from collections.abc import Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from servers import registry
from servers.core import ConfigError, load_config
from servers.core.webhooks import WEBHOOKS, WebhookTarget

WAIT = 15  # seconds a test waits for a POST it expects; a bound, not a speed claim


class Receiver:
    """A local HTTP server recording each POST as (path, JSON body)."""

    def __init__(self) -> None:
        self.posts: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.failures_left = 0  # answer 500 this many times first
        self.hang = threading.Event()  # set: hold every request until released
        self.released = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["authorization"] = self.headers["Authorization"]  # for the test to read
                receiver.posts.put((self.path, body))
                if receiver.hang.is_set():
                    receiver.released.wait(WAIT * 4)
                if receiver.failures_left > 0:
                    receiver.failures_left -= 1
                    self.send_response(500)
                else:
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def next_post(self) -> tuple[str, Any]:
        return self.posts.get(timeout=WAIT)

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(WAIT)


@pytest.fixture
def receiver(refservers_core: Any) -> Iterator[Receiver]:
    # Depends on the core, so it is torn down first: a hanging request is released
    # before the admin server stops its webhook workers.
    receiver = Receiver()
    yield receiver
    receiver.close()


def send_mail(smtp_server: Any, subject: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@example.com", "demo@localhost", subject
    message.set_content("hello")
    with smtplib.SMTP(smtp_server.probe_host, smtp_server.port, timeout=WAIT) as client:
        client.send_message(message)


def scrape(admin: Any) -> str:
    with urllib.request.urlopen(admin.url + "/metrics", timeout=WAIT) as reply:
        return reply.read().decode()


def test_message_and_file_events_are_posted_for_the_kinds_chosen(refservers_start, receiver):
    smtp_server, ftp_server = refservers_start("smtp"), refservers_start("ftp")
    admin = refservers_start("admin", webhooks=f"{receiver.url}/mail,file={receiver.url}/files")
    send_mail(smtp_server, "hooked")
    path, event = receiver.next_post()
    assert path == "/mail"  # a bare URL: message events, as Mailpit's webhook
    assert (event["server"], event["kind"]) == ("smtp", "message")
    assert event["details"]["to"] == ["demo@localhost"] and event["details"]["size"] > 0
    # The smallest of its Maildir keys is the message's ID in the Mailpit API.
    with urllib.request.urlopen(f"{admin.url}/api/v1/message/{min(event['details']['keys'])}", timeout=WAIT) as reply:
        assert json.load(reply)["Subject"] == "hooked"
    with ftplib.FTP() as client:
        client.connect(ftp_server.probe_host, ftp_server.port, timeout=WAIT)
        client.login("demo", "demo")
        client.storbinary("STOR hooked.txt", io.BytesIO(b"12345"))
        client.quit()
    path, event = receiver.next_post()
    assert path == "/files" and (event["server"], event["kind"]) == ("ftp", "file")
    assert event["details"] | {"bytes": 5, "direction": "upload", "path": "/hooked.txt"} == event["details"]
    # Nothing else was posted: no connect, command or auth events (not chosen).
    assert receiver.posts.empty()


def test_a_failing_receiver_gets_retries_until_it_answers(refservers_start, receiver):
    smtp_server = refservers_start("smtp")
    refservers_start("admin", webhooks=f"message={receiver.url}/hook", webhook_retries=3, webhook_backoff=0.01)
    receiver.failures_left = 2
    send_mail(smtp_server, "retried")
    attempts = [receiver.next_post()[1] for _ in range(3)]  # 500, 500, then 204
    assert len({event["id"] for event in attempts}) == 1
    assert attempts[0]["details"]["to"] == ["demo@localhost"]
    send_mail(smtp_server, "next")  # the next event is posted once: the first was delivered
    assert receiver.next_post()[1]["id"] > attempts[0]["id"]


def test_retries_are_bounded_and_a_failing_url_is_logged_once_without_its_password(
    refservers_start, receiver, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.WARNING, logger="refservers.admin")
    smtp_server = refservers_start("smtp")
    hooked = receiver.url.replace("http://", "http://hook:s3cret@") + "/hook"
    admin = refservers_start("admin", webhooks=hooked, webhook_retries=1, webhook_backoff=0.01)
    receiver.failures_left = 1000
    send_mail(smtp_server, "first")
    send_mail(smtp_server, "second")
    posts = [receiver.next_post()[1] for _ in range(4)]  # each event: 1 try + 1 retry
    ids = [post["id"] for post in posts]
    assert ids[0] == ids[1] and ids[2] == ids[3] and ids[0] != ids[2]
    assert posts[0]["authorization"] == "Basic aG9vazpzM2NyZXQ="  # hook:s3cret
    admin.stop()  # waits for the worker: every failure is counted and logged by now
    assert receiver.posts.empty()
    warnings = [record.getMessage() for record in caplog.records if "webhook" in record.getMessage()]
    assert len(warnings) == 1 and "s3cret" not in warnings[0] and "2 attempts" in warnings[0]


def test_a_hanging_receiver_never_delays_the_protocol_and_overflow_is_dropped_and_counted(
    refservers_start, receiver
):
    smtp_server = refservers_start("smtp")
    admin = refservers_start("admin", webhooks=f"*={receiver.url}/all", webhook_queue=1, webhook_timeout=WAIT * 8)
    receiver.hang.set()
    with smtplib.SMTP(smtp_server.probe_host, smtp_server.port, timeout=WAIT) as client:
        receiver.next_post()  # the connect event: the worker is now held by the receiver
        # Each command is an event; with one slot of queue the rest are dropped, and
        # every reply still comes back (smtplib would time out otherwise).
        for _ in range(5):
            assert client.noop()[0] == 250
        assert client.ehlo()[0] == 250
    (dropped,) = [
        sample.value
        for family in text_string_to_metric_families(scrape(admin))
        for sample in family.samples
        if sample.name == "refservers_webhook_events_total" and sample.labels["outcome"] == "dropped"
    ]
    assert dropped >= 5


@pytest.mark.parametrize(
    "value",
    ["ftp://127.0.0.1/hook", "message=", "Bad Kind=http://127.0.0.1/hook", "message=http://", "not a url"],
)
def test_a_bad_webhook_entry_is_a_one_line_config_error_naming_the_variable(value):
    with pytest.raises(ConfigError) as caught:
        load_config(registry.schema(), env={"REFSERVERS_ADMIN_WEBHOOKS": value})
    message = str(caught.value)
    assert message.startswith("REFSERVERS_ADMIN_WEBHOOKS: expected a list of webhooks") and "\n" not in message


def test_entries_from_text_and_from_toml_tables():
    assert WEBHOOKS.from_text("http://h/a?x=1, message+file=https://h/b,*=http://h/c") == (
        WebhookTarget("http://h/a?x=1", frozenset({"message"})),
        WebhookTarget("https://h/b", frozenset({"message", "file"})),
        WebhookTarget("http://h/c", frozenset({"*"})),
    )
    assert WEBHOOKS.from_toml([{"url": "http://h/d", "kinds": ["auth"]}, "http://h/e"]) == (
        WebhookTarget("http://h/d", frozenset({"auth"})),
        WebhookTarget("http://h/e", frozenset({"message"})),
    )
    with pytest.raises(ValueError):
        WEBHOOKS.from_toml([{"url": "http://h/d", "colour": "red"}])


def test_refservers_up_posts_http_requests_to_a_webhook_from_the_environment(cli):
    receiver = Receiver()
    try:
        run = cli(
            "up",
            "--only",
            "http",
            env={
                "REFSERVERS_HTTP_PORT": "0",
                "REFSERVERS_HTTP_TLS_PORT": "0",
                "REFSERVERS_ADMIN_PORT": "0",
                "REFSERVERS_ADMIN_WEBHOOKS": f"request={receiver.url}/requests",
            },
        )
        table = run.wait_ready()
        with urllib.request.urlopen(table["http"] + "/status/203", timeout=WAIT) as reply:
            assert reply.status == 203
        # The start-up probe's GET /get may come first, if the admin server started first.
        posts = [receiver.next_post()]
        while posts[-1][1]["details"]["path"] == "/get" and len(posts) < 3:
            posts.append(receiver.next_post())
        path, event = posts[-1]
        assert path == "/requests" and (event["server"], event["kind"]) == ("http", "request")
        assert event["details"]["path"] == "/status/203" and event["details"]["status"] == 203
    finally:
        receiver.close()
