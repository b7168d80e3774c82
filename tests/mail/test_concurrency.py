"""Many SMTP clients at once: every acknowledged message stored exactly once."""

from __future__ import annotations

import concurrent.futures
import smtplib
from typing import Any

from servers.mail.store import MailStore

CLIENTS = 20
PER_CLIENT = 5


def test_parallel_smtp_clients_store_each_message_once(refservers_smtp: Any, mail_store: MailStore) -> None:
    def client(number: int) -> list[str]:
        keys = []
        with smtplib.SMTP(refservers_smtp.probe_host, refservers_smtp.port, timeout=30) as session:
            session.ehlo()
            for index in range(PER_CLIENT):
                body = f"Subject: c{number}-m{index}\r\n\r\nfrom client {number}\r\n".encode()
                assert session.mail("load@example.com")[0] == 250
                assert session.rcpt("demo@example.com")[0] == 250
                code, reply = session.data(body)
                assert code == 250
                keys.append(reply.split()[-1].decode())
        return keys

    with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
        acknowledged = [key for keys in pool.map(client, range(CLIENTS)) for key in keys]
    stored = mail_store.messages("demo")
    assert len(acknowledged) == len(set(acknowledged)) == CLIENTS * PER_CLIENT
    assert sorted(m.key for m in stored) == sorted(acknowledged)
    subjects = sorted(s.subject for s in mail_store.summaries("demo"))
    assert subjects == sorted(f"c{n}-m{i}" for n in range(CLIENTS) for i in range(PER_CLIENT))
    assert sorted(m.uid for m in stored) == list(range(1, CLIENTS * PER_CLIENT + 1))
