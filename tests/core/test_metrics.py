"""GET /metrics on the admin port: Prometheus counters per server, from real traffic.

Each test reads the exposition before and after driving real clients (smtplib, ftplib,
urllib) and checks the difference. Counters are read after the server has journalled
a later event of the same connection (its ``disconnect``): a server records its events
in order, and each is counted before the next is recorded.
"""

from __future__ import annotations

import ftplib
import io
import json
import smtplib
import urllib.request
from email.message import EmailMessage
from typing import Any

import prometheus_client
from prometheus_client.parser import text_string_to_metric_families

from servers.core.journal import EventJournal
from servers.core.metrics import ServerMetrics
from servers.smtp.server import R_FAULT

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(admin: Any) -> Samples:
    with urllib.request.urlopen(admin.url + "/metrics", timeout=10) as reply:
        assert reply.headers.get_content_type() == "text/plain"
        text = reply.read().decode()
    return parse(text)


def parse(text: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    return after.get(key, 0.0) - before.get(key, 0.0)


def post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.load(reply)


def test_smtp_connections_commands_messages_bytes_and_faults_are_counted(refservers_smtp, refservers_admin):
    post_json(
        refservers_admin.url + "/api/v1/faults",
        {"server": "smtp", "action": "error", "match": "NOOP*", "times": 1},
    )
    before = scrape(refservers_admin)
    since = refservers_smtp.journal.last_id
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@example.com", "demo@localhost", "counted"
    message.set_content("x" * 2000)
    with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=10) as client:
        assert client.noop()[0] == int(R_FAULT[:3])  # the fault fired
        client.send_message(message)  # EHLO, MAIL, RCPT, DATA
    received = refservers_smtp.journal.wait_for(server="smtp", kind="message", since=since)
    refservers_smtp.journal.wait_for(server="smtp", kind="disconnect", since=since)
    after = scrape(refservers_admin)

    assert delta(before, after, "refservers_connections_total", server="smtp") == 1
    assert delta(before, after, "refservers_commands_total", server="smtp") == 6  # NOOP EHLO MAIL RCPT DATA QUIT
    assert delta(before, after, "refservers_messages_total", server="smtp", action="received") == 1
    assert delta(before, after, "refservers_bytes_total", server="smtp", direction="received") == received.details["size"]
    assert received.details["size"] > 2000
    assert delta(before, after, "refservers_faults_fired_total", server="smtp", action="error") == 1
    assert delta(before, after, "refservers_events_total", server="smtp", kind="connect") == 1


def test_ftp_logins_and_transferred_bytes_are_counted_each_way(refservers_ftp, refservers_admin):
    before = scrape(refservers_admin)
    since = refservers_ftp.journal.last_id
    payload = bytes(range(256)) * 40  # 10240 bytes
    with ftplib.FTP() as client:
        client.connect(refservers_ftp.probe_host, refservers_ftp.port, timeout=10)
        try:
            client.login("demo", "wrong")
        except ftplib.error_perm:
            pass
        client.login("demo", "demo")
        client.storbinary("STOR counted.bin", io.BytesIO(payload))
        downloaded = io.BytesIO()
        client.retrbinary("RETR counted.bin", downloaded.write)
        client.quit()
    assert downloaded.getvalue() == payload
    refservers_ftp.journal.wait_for(server="ftp", kind="disconnect", since=since)
    after = scrape(refservers_admin)

    assert delta(before, after, "refservers_connections_total", server="ftp") == 1
    assert delta(before, after, "refservers_logins_total", server="ftp", outcome="ok") == 1
    assert delta(before, after, "refservers_logins_total", server="ftp", outcome="failed") == 1
    assert delta(before, after, "refservers_bytes_total", server="ftp", direction="received") == len(payload)
    assert delta(before, after, "refservers_bytes_total", server="ftp", direction="sent") == len(payload)


def test_http_requests_and_reply_bytes_are_counted(refservers_http, refservers_admin):
    before = scrape(refservers_admin)
    since = refservers_http.journal.last_id
    with urllib.request.urlopen(refservers_http.url + "/bytes/700", timeout=10) as reply:
        assert len(reply.read()) == 700
    # The HTTP server and the admin API share the reactor thread: the request is
    # journalled (and counted) before the next admin request is read.
    refservers_http.journal.wait_for(server="http", kind="request", since=since)
    after = scrape(refservers_admin)
    assert delta(before, after, "refservers_requests_total", server="http") == 1
    assert delta(before, after, "refservers_bytes_total", server="http", direction="sent") == 700


def test_each_core_has_its_own_registry_and_the_global_one_is_untouched():
    first, second = EventJournal(), EventJournal()
    first.record("smtp", "connect", "127.0.0.1:1")  # before the metrics: replayed
    first_metrics, second_metrics = ServerMetrics(first), ServerMetrics(second)
    first.record("smtp", "connect", "127.0.0.1:2")  # after: observed
    counted = parse(first_metrics.exposition().decode())
    assert counted[("refservers_connections_total", (("server", "smtp"),))] == 2
    assert ("refservers_connections_total", (("server", "smtp"),)) not in parse(second_metrics.exposition().decode())
    assert not any(family.name.startswith("refservers_") for family in prometheus_client.REGISTRY.collect())
    first_metrics.close()
    second_metrics.close()
    first.record("smtp", "connect", "127.0.0.1:3")  # closed: no longer followed
    assert parse(first_metrics.exposition().decode())[("refservers_connections_total", (("server", "smtp"),))] == 2
