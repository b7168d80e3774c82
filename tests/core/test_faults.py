"""Fault rules are checked when they are added: through the admin API (400 naming the
param), from config (one line naming the source), and against each server's declared
actions, whose schema the admin API serves. Plus the FaultBook's own rules: seeded
probability, ``times``, and user-scoped matching."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from servers import registry
from servers.core import Core, load_config
from servers.core.config import ConfigError
from servers.core.faults import (
    DELAY,
    INTEGER,
    SMTP_REPLY,
    STRING,
    FaultAction,
    FaultBook,
    FaultError,
    FaultTable,
    Param,
)
from servers.core.journal import EventJournal
from servers.smtp.server import R_FAULT

from .conftest import call

# -- through the admin API ------------------------------------------------------------

BAD_RULES = [
    # (rule, the 400 message after "rule 0: ")
    ({"server": "http", "action": "delay", "params": {"seconds": "soon"}}, "params.seconds: expected a number 0-600, got 'soon'"),
    ({"server": "http", "action": "delay", "params": {"secs": 1}}, "params.secs: unknown parameter for delay (known: seconds)"),
    ({"server": "http", "action": "delay", "params": {"seconds": 601}}, "params.seconds: expected a number 0-600, got 601"),
    ({"server": "http", "action": "delay", "params": {"seconds": True}}, "params.seconds: expected a number 0-600, got True"),
    ({"server": "proxy", "action": "bandwidth", "params": {"rate": float("inf")}}, "params.rate: expected a number >= 0, got inf"),
    ({"server": "http", "action": "status", "params": {"code": 600}}, "params.code: expected an integer 100-599, got 600"),
    ({"server": "http", "action": "status", "params": {"code": "500"}}, "params.code: expected an integer 100-599, got '500'"),
    ({"server": "dns", "action": "drop", "params": {"seconds": 1}}, "params.seconds: unknown parameter for drop (known: none)"),
    (
        {"server": "smtp", "action": "error", "params": {"reply": "250 OK"}},
        "params.reply: expected an SMTP reply: a 4xx or 5xx code, a space and text (e.g. '451 4.3.0 try later'), got '250 OK'",
    ),
    ({"server": "smtp", "action": "error", "params": {"reply": "451"}}, "params.reply: expected an SMTP reply"),
    ({"server": "smtp", "action": "error", "params": {"reply": "451 a\r\n250 b"}}, "params.reply: expected an SMTP reply"),
    ({"server": "smtp", "action": "error", "params": {"close": "yes"}}, "params.close: expected true or false, got 'yes'"),
    ({"server": "pop3", "action": "error", "params": {"reply": "+OK fine"}}, "params.reply: expected a POP3 error: -ERR"),
    ({"server": "imap", "action": "error", "params": {"reply": "OK fine"}}, "params.reply: expected an IMAP reply without its tag"),
    ({"server": "imap", "action": "error", "params": {"reply": "a1 NO busy"}}, "params.reply: expected an IMAP reply"),
    ({"server": "ftp", "action": "error", "params": {"reply": "226 Transfer complete"}}, "params.reply: expected an FTP reply"),
    ({"server": "ftp", "action": "error", "params": {"reply": "Local error"}}, "params.reply: expected an FTP reply"),
    ({"server": "sftp", "action": "error", "params": {"status": "broken"}}, "params.status: expected an SFTP status"),
    ({"server": "telnet", "action": "error", "params": {"status": 256}}, "params.status: expected an integer 0-255, got 256"),
    ({"server": "jsonrpc", "action": "error", "params": {"code": 1.5}}, "params.code: expected an integer"),
    ({"server": "proxy", "action": "latency", "params": {"stream": "sideways"}}, "params.stream: expected one of upstream, downstream"),
    ({"server": "smtp", "action": "error", "user": ""}, "user: expected a user name or mail address, got ''"),
    ({"server": "smtp", "action": "error", "user": ["a", "b"]}, "user: expected a user name or mail address"),
    ({"server": "http", "action": "delay", "user": "alice"}, "user: http has no users (user-scoped rules: ftp, imap, nntp, pop3, sftp, smtp, telnet)"),
]


@pytest.mark.parametrize(("rule", "message"), BAD_RULES, ids=[m.split(":")[0] + "-" + r["server"] for r, m in BAD_RULES])
def test_a_bad_rule_is_refused_with_400_naming_the_param(refservers_admin, rule, message):
    base = refservers_admin.url + "/api/v1/faults"
    status, body = call(base, "POST", rule)
    assert status == 400
    assert body["error"].startswith(f"rule 0: {message}")
    assert call(base)[1]["faults"] == []  # nothing half-added


def test_a_list_is_refused_as_a_whole_when_one_rule_is_bad(refservers_admin):
    base = refservers_admin.url + "/api/v1/faults"
    status, body = call(base, "POST", [{"server": "http", "action": "delay"}, {"server": "http", "action": "delay", "params": {"x": 1}}])
    assert status == 400 and body["error"].startswith("rule 1: params.x: unknown parameter")
    assert call(base)[1]["faults"] == []


def test_a_good_rule_is_kept_with_its_defaults_filled_in(refservers_admin):
    base = refservers_admin.url + "/api/v1/faults"
    status, body = call(base, "POST", [
        {"server": "smtp", "action": "error", "match": "RCPT*", "user": "a@example.test"},
        {"server": "imap", "action": "error", "params": {"reply": "bad [CLIENTBUG] nope"}},
        {"server": "sftp", "action": "error", "params": {"status": "NO_SUCH_FILE"}},
        {"server": "http", "action": "delay", "params": {"seconds": 2}},
    ])
    assert status == 201, body
    smtp, imap, sftp, http = body["faults"]
    assert smtp["params"] == {"reply": R_FAULT, "close": False} and smtp["user"] == "a@example.test"
    assert imap["params"] == {"reply": "bad [CLIENTBUG] nope"}
    assert sftp["params"]["status"] == "no_such_file"
    assert http["params"] == {"seconds": 2.0} and http["user"] is None
    assert [rule["id"] for rule in call(base)[1]["faults"]] == [smtp["id"], imap["id"], sftp["id"], http["id"]]


def test_the_action_schema_is_served_for_every_server(refservers_admin):
    status, body = call(refservers_admin.url + "/api/v1/faults/actions")
    assert status == 200
    # Every server with fault actions (toxiproxy has none: its toxics are its own API).
    with_actions = {name for name, table in registry.fault_tables().items() if table.actions}
    assert set(body["servers"]) == with_actions and with_actions == set(registry.SERVERS) - {"toxiproxy"}
    assert set(body["rule_fields"]) == {"server", "match", "action", "user", "probability", "seed", "times", "params", "id"}
    http = body["servers"]["http"]
    assert (http["subject"], http["user"]) == ('the request path ("/get")', None)
    assert body["servers"]["smtp"]["user"].startswith("the recipient at RCPT")
    seconds = http["actions"]["delay"]["params"][0]
    assert seconds == {
        "name": "seconds", "type": "number", "expected": "a number 0-600", "required": False,
        "help": "how long to hold the step", "low": 0, "high": 600, "default": 1.0,
    }
    reply = body["servers"]["smtp"]["actions"]["error"]["params"][0]
    assert (reply["name"], reply["type"], reply["default"]) == ("reply", "smtp reply", R_FAULT)
    assert reply["expected"].startswith("an SMTP reply: a 4xx or 5xx code")
    assert body["servers"]["proxy"]["actions"]["latency"]["params"][-1]["choices"] == ["upstream", "downstream"]
    assert all(table["subject"] for table in body["servers"].values())
    assert all(action["help"] for table in body["servers"].values() for action in table["actions"].values())

    status, one = call(refservers_admin.url + "/api/v1/faults/actions?server=dns")
    assert status == 200 and list(one["servers"]) == ["dns"]
    assert set(one["servers"]["dns"]["actions"]) == {"servfail", "nxdomain", "delay", "drop"}
    status, body = call(refservers_admin.url + "/api/v1/faults/actions?server=gopher")
    assert status == 404 and "gopher" in body["error"]


def test_every_declared_table_is_plain_data():
    # JSON round trip: names, numbers and strings only (no callables, no library types).
    for name, table in registry.fault_tables().items():
        assert table.actions or name == "toxiproxy", f"{name} declares no fault actions"
        assert all(isinstance(declared, FaultAction) for declared in table.actions.values()), name
        assert json.loads(json.dumps(table.as_json())) == table.as_json()


# -- from config ------------------------------------------------------------------------


def test_a_bad_rule_in_a_toml_file_fails_at_start_with_one_line(tmp_path: Path):
    config_file = tmp_path / "faults.toml"
    config_file.write_text(
        '[[faults]]\nserver = "smtp"\naction = "delay"\n\n'
        '[[faults]]\nserver = "smtp"\naction = "error"\nparams = { reply = "250 all fine" }\n'
    )
    config = load_config(registry.schema(), files=[config_file], env={}, overrides=[f"core.data_dir={tmp_path}"])
    with pytest.raises(ConfigError) as refused:
        registry.make_core(config)
    assert str(refused.value) == (
        f"{config_file}: faults[1]: params.reply: expected an SMTP reply: a 4xx or 5xx code, a space and text"
        " (e.g. '451 4.3.0 try later'), got '250 all fine'"
    )


def test_a_bad_rule_in_the_environment_stops_refservers_up_with_one_line(tmp_path: Path):
    env = {
        "PATH": "/usr/bin:/bin",
        "REFSERVERS_DATA_DIR": str(tmp_path / "data"),
        "REFSERVERS_FAULTS": '[{"server": "http", "action": "delay", "params": {"secs": 1}}]',
    }
    result = subprocess.run(
        [sys.executable, "-m", "servers", "up", "--only", "http"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "refservers: config error: REFSERVERS_FAULTS[0]: params.secs: unknown parameter for delay (known: seconds)"
    )


# -- the book's own rules ---------------------------------------------------------------

MAIL_ACTIONS = {
    "smtp": FaultTable(
        {
            "error": FaultAction("answer params.reply", (Param("reply", SMTP_REPLY, default="451 4.3.0 busy"),)),
            "delay": DELAY,
        },
        user="the recipient",
    ),
    "ftp": FaultTable({"error": FaultAction("fail", (Param("note", STRING), Param("count", INTEGER, 1, 9, required=True)))}),
}


def test_fault_probability_with_seed_is_reproducible_and_times_is_honoured():
    def firings(seed: int) -> list[bool]:
        book = FaultBook(EventJournal(), MAIL_ACTIONS)
        book.add({"server": "smtp", "action": "error", "match": "rcpt*", "probability": 0.5, "seed": seed})
        return [book.check("smtp", "RCPT TO:<a@b>") is not None for _ in range(40)]

    assert firings(7) == firings(7)
    assert 5 < sum(firings(7)) < 35
    book = FaultBook(EventJournal(), MAIL_ACTIONS)
    book.add({"server": "smtp", "action": "error", "times": 2})
    assert [book.check("smtp", "DATA") is not None for _ in range(4)] == [True, True, False, False]
    assert book.check("pop3", "DATA") is None
    with pytest.raises(FaultError, match="action: ftp supports error; got 'delay'"):
        book.add({"server": "ftp", "action": "delay"})


def test_required_params_and_params_without_a_default():
    book = FaultBook(EventJournal(), MAIL_ACTIONS)
    with pytest.raises(FaultError, match=r"^params.count: required for error \(an integer 1-9\)$"):
        book.add({"server": "ftp", "action": "error"})
    assert book.add({"server": "ftp", "action": "error", "params": {"count": 3}}).params == {"count": 3}


def test_a_declaration_with_an_unknown_type_or_a_bad_default_fails_at_once():
    with pytest.raises(TypeError, match="unknown type 'colour'"):
        FaultAction("x", (Param("shade", "colour"),))
    with pytest.raises(FaultError, match="params.reply: expected an SMTP reply"):
        FaultAction("x", (Param("reply", SMTP_REPLY, default="250 ok"),))


def test_a_user_scoped_rule_fires_only_for_steps_about_that_user():
    journal = EventJournal()
    book = FaultBook(journal, MAIL_ACTIONS)
    book.add({"server": "smtp", "action": "error", "match": "RCPT*", "user": "A@Example.Test", "id": "mail"})
    book.add({"server": "smtp", "action": "delay", "match": "AUTH*", "user": "alice", "id": "login"})
    assert book.check("smtp", "RCPT TO:<b@example.test>", users=["b@example.test"]) is None
    assert book.check("smtp", "RCPT TO:<a@example.test>") is None  # a step about nobody
    assert book.check("smtp", "RCPT TO:<a@example.test>", users=[None, "a@example.test"]).id == "mail"
    assert book.check("smtp", "RCPT TO:<A@EXAMPLE.TEST>", users=["A@EXAMPLE.TEST"]).id == "mail"
    # Login names are exact: "Alice" is another account.
    assert book.check("smtp", "AUTH PLAIN", users=["Alice"]) is None
    assert book.check("smtp", "AUTH PLAIN", users=["alice"]).id == "login"
    assert journal.events(kind="fault")[-1].details == {
        "rule": "login", "action": "delay", "subject": "AUTH PLAIN", "user": "alice"
    }
    book.add({"server": "smtp", "action": "error", "match": "DATA", "id": "anyone"})
    assert book.check("smtp", "DATA", users=["b@example.test"]).id == "anyone"


ROOT = Path(__file__).resolve().parents[2]


def test_the_commented_fault_examples_in_configs_are_valid(tmp_path: Path):
    examples = []
    for path in sorted((ROOT / "configs").glob("*.toml")):
        lines = path.read_text().splitlines()
        for index, line in enumerate(lines):
            if line.strip() == "# [[faults]]":
                block = ["[[faults]]"]
                for following in lines[index + 1:]:
                    text = following.removeprefix("# ").split("  #")[0]
                    if not following.startswith("# ") or "=" not in text:
                        break
                    block.append(text)
                examples.append((path.name, "\n".join(block)))
    assert len(examples) >= 6
    for name, block in examples:
        example = tmp_path / name
        example.write_text(block + "\n")
        config = load_config(registry.schema(), files=[example], env={}, overrides=[f"core.data_dir={tmp_path}"])
        Core(config, fault_tables=registry.fault_tables())  # raises ConfigError if one is bad


def test_docs_list_every_server_and_action():
    text = (ROOT / "docs" / "faults.md").read_text()
    for server, table in registry.fault_tables().items():
        if not table.actions:
            continue
        assert f"| `{server}` |" in text, server
        for action in table.actions:
            assert f"`{action}`" in text, (server, action)


def test_the_declaration_module_imports_only_the_standard_library():
    # `up` builds the FaultBook from every server's table, and a lazy-loading registry
    # will read the tables without importing each protocol's library: the declaration
    # types must stay as light as the tables (stdlib, plus the journal it records to).
    import ast

    for name, allowed in (("faults.py", {"journal"}), ("journal.py", set())):
        tree = ast.parse((ROOT / "servers" / "core" / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.module in allowed, (name, node.module)
            elif isinstance(node, ast.ImportFrom):
                assert node.module.split(".")[0] in sys.stdlib_module_names | {"__future__"}, (name, node.module)
            elif isinstance(node, ast.Import):
                assert all(alias.name.split(".")[0] in sys.stdlib_module_names for alias in node.names), name
