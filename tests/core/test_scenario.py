"""Scenarios over real servers: applied from the API, the CLI and the pytest plugin, checked
with real clients (POP3, FTP, SMTP), idempotent, exported and re-applied, reset."""

from __future__ import annotations

import ftplib
import io
import json
import poplib
import smtplib
import socket

import pytest
import requests

SCENARIO = {
    "users": [{"name": "alice", "password": "pw"}],
    "messages": [
        {"to": "alice", "from": "x@example.test", "subject": "Hi", "text": "body"},
        {"to": "alice", "eml": "From: y@example.test\r\nSubject: Raw\r\nMessage-ID: <raw-1@example.test>\r\n\r\nraw body\r\n"},
    ],
    "files": [{"user": "alice", "path": "docs/a.txt", "text": "hello"}],
    "faults": [{"server": "smtp", "match": "RCPT TO:<blocked@*", "action": "error", "params": {"reply": "550 5.7.1 blocked"}}],
}


def api(admin) -> str:
    return admin.url + "/api/v1"


def pop3_subjects(pop3, user: str, password: str) -> list[str]:
    client = poplib.POP3("127.0.0.1", pop3.port, timeout=10)
    try:
        client.user(user)
        client.pass_(password)
        subjects = []
        for index in range(1, len(client.list()[1]) + 1):
            lines = client.retr(index)[1]
            subjects += [line.decode()[9:] for line in lines if line.startswith(b"Subject: ")]
        return subjects
    finally:
        client.quit()


def ftp_read(ftp, user: str, password: str, path: str) -> bytes:
    with ftplib.FTP(timeout=10) as client:
        client.connect("127.0.0.1", ftp.port)
        client.login(user, password)
        out = io.BytesIO()
        client.retrbinary(f"RETR {path}", out.write)
        return out.getvalue()


@pytest.fixture
def servers(refservers_start):
    return {name: refservers_start(name) for name in ("smtp", "pop3", "ftp", "admin")}


def test_applied_over_the_api_and_seen_by_real_clients(servers):
    reply = requests.post(api(servers["admin"]) + "/scenario", json=SCENARIO, timeout=30)
    assert reply.status_code == 200, reply.text
    assert reply.json()["applied"] == {"users": 1, "messages": 2, "files": 1, "faults": 1, "proxies": 0, "stubs": 0}
    assert sorted(pop3_subjects(servers["pop3"], "alice", "pw")) == ["Hi", "Raw"]
    assert ftp_read(servers["ftp"], "alice", "pw", "docs/a.txt") == b"hello"
    with smtplib.SMTP("127.0.0.1", servers["smtp"].port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
            client.sendmail("a@example.test", ["blocked@example.test"], b"Subject: x\r\n\r\nx\r\n")
    assert refused.value.recipients["blocked@example.test"][0] == 550


def test_applying_twice_leaves_the_same_state(servers):
    for _ in range(2):
        assert requests.post(api(servers["admin"]) + "/scenario", json=SCENARIO, timeout=30).status_code == 200
    assert sorted(pop3_subjects(servers["pop3"], "alice", "pw")) == ["Hi", "Raw"]
    faults = requests.get(api(servers["admin"]) + "/faults", timeout=10).json()["faults"]
    assert len(faults) == 1
    changed = {**SCENARIO, "files": [{"user": "alice", "path": "docs/a.txt", "text": "rewritten"}]}
    assert requests.post(api(servers["admin"]) + "/scenario", json=changed, timeout=30).status_code == 200
    assert ftp_read(servers["ftp"], "alice", "pw", "docs/a.txt") == b"rewritten"


def test_export_applied_to_a_fresh_instance_reproduces_it(servers, refservers_core, tmp_path_factory):
    admin = api(servers["admin"])
    assert requests.post(admin + "/scenario", json=SCENARIO, timeout=30).status_code == 200
    exported = requests.get(admin + "/scenario", timeout=30).json()
    assert {user["name"] for user in exported["users"]} == {"alice", "demo"}

    from servers import registry
    from servers.core import load_config
    from servers.core.config import PORT

    schema = registry.schema()
    ports = [f"{section}.{o.key}=0" for section, options in schema.items() for o in options if o.kind is PORT]
    fresh_dir = tmp_path_factory.mktemp("fresh")
    config = load_config(schema, env={}, overrides=[f"core.data_dir={fresh_dir}", "ftp.passive_ports=0", *ports])
    fresh = _core(config)
    try:
        pop3 = registry.server_class("pop3")(fresh.config["pop3"], fresh).start()
        smtp = registry.server_class("smtp")(fresh.config["smtp"], fresh).start()
        ftp = registry.server_class("ftp")(fresh.config["ftp"], fresh).start()
        fresh_admin = registry.server_class("admin")(fresh.config["admin"], fresh).start()
        applied = requests.post(api(fresh_admin) + "/scenario", json=exported, timeout=30)
        assert applied.status_code == 200, applied.text
        assert sorted(pop3_subjects(pop3, "alice", "pw")) == ["Hi", "Raw"]
        assert ftp_read(ftp, "alice", "pw", "docs/a.txt") == b"hello"
        assert smtp.state == "ready"
        again = requests.get(api(fresh_admin) + "/scenario", timeout=30).json()
        assert again == exported
    finally:
        fresh.stop_all()


def _core(config):
    from servers import registry

    return registry.make_core(config)


def test_bad_entry_is_named_and_nothing_is_applied(servers, refservers_store):
    refservers_store("mail", unknown_recipients="reject")
    bad = {
        "users": [{"name": "carol", "password": "pw"}],
        "messages": [{"to": "carol", "text": "ok"}, {"to": "nobody@example.com", "text": "x"}],
        "faults": [{"server": "smtp", "action": "delay", "params": {"seconds": 0.1}}],
    }
    reply = requests.post(api(servers["admin"]) + "/scenario", json=bad, timeout=30)
    assert reply.status_code == 400
    assert reply.json()["error"] == "messages[1].to: no such user and unknown_recipients=reject"
    users = requests.get(api(servers["admin"]) + "/users", timeout=10).json()["users"]
    assert "carol" not in [user["name"] for user in users]
    assert requests.get(api(servers["admin"]) + "/faults", timeout=10).json()["faults"] == []


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"mesages": []}, "unknown section 'mesages' (known: users, messages, files, faults, proxies, stubs)"),
        ({"users": [{"name": "x", "pasword": "p"}]}, "users[0].pasword: unknown field (known: authorized_keys, name, password, read_only)"),
        ({"messages": [{"to": "demo"}]}, "messages[0]: expected one of text, html, eml, eml_file, eml_base64"),
        ({"files": [{"user": "demo", "path": "a", "base64": "%%"}]}, "files[0].base64: expected base64"),
        ({"faults": [{"server": "smtp", "action": "delay", "params": {"seconds": "soon"}}]}, "faults[0]: params.seconds"),
        ({"proxies": [{"name": "db", "upstream": "127.0.0.1:1"}]}, "proxies[0]: no proxy server runs in this process"),
        ({"files": [{"user": "demo", "path": "../../etc/passwd", "text": "x"}]}, "files[0].path: "),
    ],
)
def test_malformed_scenarios_get_400_naming_entry_and_field(servers, document, message):
    reply = requests.post(api(servers["admin"]) + "/scenario", json=document, timeout=30)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith(message)


def test_reset_returns_to_the_start_scenario(cli, tmp_path):
    start = tmp_path / "scenario.toml"
    start.write_text(
        '[[users]]\nname = "alice"\npassword = "pw"\n'
        '[[messages]]\nto = "alice"\nsubject = "Welcome"\ntext = "hi"\n'
        '[[files]]\nuser = "alice"\npath = "seed.txt"\ntext = "seeded"\n'
    )
    env = {"REFSERVERS_ADMIN_PORT": "0", "REFSERVERS_SMTP_PORT": "0", "REFSERVERS_SMTP_TLS_PORT": "0",
           "REFSERVERS_POP3_PORT": "0", "REFSERVERS_POP3_TLS_PORT": "0"}
    run = cli("up", "--only", "smtp,pop3", "--scenario", str(start), env=env)
    table = run.wait_ready()
    admin = table["admin"] + "/api/v1"
    smtp_port = int(table["smtp"].rsplit(":", 1)[1])
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
        for index in range(30):
            client.sendmail("a@example.test", ["alice", "bob@example.test"], f"Subject: runtime {index}\r\n\r\nx\r\n".encode())
    requests.post(admin + "/users", json={"name": "zed", "password": "z"}, timeout=10)
    requests.post(admin + "/faults", json={"server": "smtp", "action": "delay", "params": {"seconds": 0.1}}, timeout=10)
    assert len(requests.get(admin + "/messages?user=alice", timeout=10).json()["messages"]) == 31

    reply = requests.post(admin + "/reset", timeout=30)
    assert reply.status_code == 200, reply.text
    messages = requests.get(admin + "/messages", timeout=10).json()["messages"]
    assert [m["Subject"] for m in messages] == ["Welcome"]
    users = {u["name"] for u in requests.get(admin + "/users", timeout=10).json()["users"]}
    assert users == {"demo", "alice"}
    assert requests.get(admin + "/faults", timeout=10).json()["faults"] == []
    assert requests.get(admin + "/events", timeout=10).json()["events"] == []


def test_bad_start_scenario_fails_with_one_line(cli_env, tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"messages": [{"to": "demo", "text": "x", "eml": "y"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "servers", "run", "smtp", "--port", "0", "--set", "smtp.tls_port=0", "--scenario", str(bad)],
        env=cli_env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"refservers: scenario error: {bad}: messages[0]: expected one of text, html, eml, eml_file, eml_base64, got text, eml"


@pytest.mark.parametrize("refservers_scenario", [{"users": [{"name": "erin", "password": "e"}], "files": [{"user": "erin", "path": "x.bin", "base64": "AAEC"}]}])
def test_plugin_fixture_argument(refservers_scenario, refservers_start):
    ftp = refservers_start("ftp")
    assert ftp_read(ftp, "erin", "e", "x.bin") == b"\x00\x01\x02"


def test_proxies_are_made_and_kept_by_name(refservers_start):
    proxy = refservers_start("proxy")
    admin = refservers_start("admin")
    with socket.socket() as upstream:
        upstream.bind(("127.0.0.1", 0))
        upstream.listen()
        document = {"proxies": [{"name": "db", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream.getsockname()[1]}"}]}
        assert requests.post(api(admin) + "/scenario", json=document, timeout=30).json()["applied"]["proxies"] == 1
        port = proxy.listeners["db"]
        assert requests.post(api(admin) + "/scenario", json=document, timeout=30).json()["applied"]["proxies"] == 0
        assert proxy.listeners["db"] == port  # unchanged: kept, not reopened
        exported = requests.get(api(admin) + "/scenario", timeout=30).json()["proxies"]
        assert exported == [{"name": "db", "listen": port, "upstream": document["proxies"][0]["upstream"]}]


def test_stubs_are_added_once_exported_and_reset(refservers_start):
    http = refservers_start("http")
    admin = refservers_start("admin")
    document = {"stubs": [{"request": {"method": "GET", "url": "/v1/orders/42"}, "response": {"jsonBody": {"id": 42}}}]}
    for _ in range(2):  # idempotent: the same stub (a stable id derived from its JSON), not two
        assert requests.post(api(admin) + "/scenario", json=document, timeout=30).json()["applied"]["stubs"] == 1
    assert requests.get(http.url + "/v1/orders/42", timeout=10).json() == {"id": 42}
    assert len(http.stubs.engine.stubs()) == 1
    exported = requests.get(api(admin) + "/scenario", timeout=30).json()["stubs"]
    assert [s["request"] for s in exported] == [document["stubs"][0]["request"]]
    bad = requests.post(api(admin) + "/scenario", json={"stubs": [{"request": {"url": 5}}]}, timeout=30)
    assert bad.status_code == 400 and "stubs[0].request.url: expected a string" in bad.text
    assert requests.post(api(admin) + "/reset", timeout=30).status_code == 200
    assert requests.get(http.url + "/v1/orders/42", timeout=10).status_code == 404  # httpbin again
