"""Config loader: precedence and every error path, with the message text asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from servers.core.config import (
    BOOL,
    PORT,
    PORT_RANGE,
    STR_LIST,
    STR_TABLE,
    ConfigError,
    Option,
    UserSpec,
    load_config,
)

SCHEMA = {
    "web": (
        Option("port", PORT, 8080, "port"),
        Option("tls_port", PORT, 8443, "tls port"),
        Option("verbose", BOOL, False, "chatty"),
        Option("names", STR_LIST, (), "names"),
        Option("commands", STR_TABLE, {}, "fixed outputs"),
        Option("passive", PORT_RANGE, (30000, 30009), "passive range"),
    ),
    "proxy_tcp": (Option("port", PORT, 9000, "port"),),
}


def write(tmp_path: Path, text: str, name: str = "c.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_defaults_when_nothing_is_given():
    config = load_config(SCHEMA, env={})
    assert config["web"].port == 8080
    assert config["web"].source("port") == "default"
    assert config.core.host == "127.0.0.1"
    assert config.users == (UserSpec("demo", "demo"),)


def test_precedence_file_then_env_then_flags(tmp_path):
    path = write(tmp_path, "[web]\nport = 1000\ntls_port = 1001\nverbose = true\n[core]\nhost = '0.0.0.0'\n")
    env = {"REFSERVERS_WEB_TLS_PORT": "2001", "REFSERVERS_HOST": "::1"}
    config = load_config(SCHEMA, [path], env, ["web.verbose=false"])
    assert config["web"].port == 1000
    assert config["web"].source("port") == f"{path}"
    assert config["web"].tls_port == 2001
    assert config["web"].source("tls_port") == "REFSERVERS_WEB_TLS_PORT"
    assert config["web"].verbose is False
    assert config.core.host == "::1"


def test_later_files_override_earlier(tmp_path):
    first = write(tmp_path, "[web]\nport = 1\n", "a.toml")
    second = write(tmp_path, "[web]\nport = 2\n", "b.toml")
    assert load_config(SCHEMA, [first, second], {})["web"].port == 2


def test_text_kinds_parse_from_environment():
    env = {
        "REFSERVERS_WEB_NAMES": "a, b,,c",
        "REFSERVERS_WEB_COMMANDS": "show version=IOS 15, really;uptime=1 day",
        "REFSERVERS_WEB_PASSIVE": "40000-40009",
        "REFSERVERS_WEB_VERBOSE": "yes",
        "REFSERVERS_PROXY_TCP_PORT": "9100",
    }
    config = load_config(SCHEMA, env=env)
    assert config["web"].names == ("a", "b", "c")
    assert config["web"].commands == {"show version": "IOS 15, really", "uptime": "1 day"}
    assert config["web"].passive == (40000, 40009)
    assert config["web"].verbose is True
    assert config["proxy_tcp"].port == 9100


def test_users_from_file_and_environment(tmp_path):
    path = write(tmp_path, '[users]\nalice = "a1"\n[users.bob]\npassword = "b2"\nread_only = true\n')
    config = load_config(SCHEMA, [path], {})
    assert [(u.name, u.password, u.read_only) for u in config.users] == [("alice", "a1", False), ("bob", "b2", True)]
    config = load_config(SCHEMA, [path], {"REFSERVERS_USERS": "carol:c3:ro,dave:d4"})
    assert [(u.name, u.read_only) for u in config.users] == [("carol", True), ("dave", False)]


def test_user_spec_repr_hides_password():
    assert "secret" not in repr(UserSpec("alice", "secret"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[web]\nport = 70000\n", "{path}: [web] port: expected a port number 0-65535 (0 picks a free port), got 70000"),
        ("[web]\nport = '80'\n", "{path}: [web] port: expected a port number 0-65535 (0 picks a free port), got '80'"),
        ("[web]\ncolour = 1\n", "{path}: [web] colour: unknown key 'colour' (known: commands, names, passive, port, tls_port, verbose)"),
        ("[nope]\nport = 1\n", "{path}: unknown section [nope] (known: core, proxy_tcp, web)"),
        ("[web]\nverbose = 'yes'\n", "{path}: [web] verbose: expected true or false, got 'yes'"),
        ("[web]\npassive = '9-1'\n", "{path}: [web] passive: expected a port range such as 30000-30009, got '9-1'"),
        ("[web\n", "{path}: not valid TOML: "),
        ("web = 3\n", "{path}: web: expected a [web] table"),
        ("[users.x]\npassword = 1\n", "{path}: [users] x.password: expected a string"),
        ("[users.x]\npasswd = 'a'\n", "{path}: [users] x: unknown key 'passwd' (known: authorized_keys, password, read_only)"),
        ("faults = 3\n", "{path}: faults: expected [[faults]] tables"),
    ],
)
def test_file_errors_name_file_key_and_expectation(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(SCHEMA, [path], {})
    assert str(caught.value).startswith(message.format(path=path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFSERVERS_WEB_PORT": "abc"}, "REFSERVERS_WEB_PORT: expected a port number 0-65535 (0 picks a free port), got 'abc'"),
        ({"REFSERVERS_WEB_PORT": "-1"}, "REFSERVERS_WEB_PORT: expected a port number 0-65535 (0 picks a free port), got '-1'"),
        ({"REFSERVERS_WEB_PROT": "1"}, "REFSERVERS_WEB_PROT: unknown key 'prot' (known: commands, names, passive, port, tls_port, verbose)"),
        ({"REFSERVERS_FOO": "1"}, "REFSERVERS_FOO: not a known setting (expected REFSERVERS_<SERVER>_<KEY>)"),
        ({"REFSERVERS_WEB_VERBOSE": "maybe"}, "REFSERVERS_WEB_VERBOSE: expected true or false, got 'maybe'"),
        ({"REFSERVERS_WEB_COMMANDS": "novalue"}, "REFSERVERS_WEB_COMMANDS: expected a table of strings"),
        ({"REFSERVERS_USERS": "alice"}, "REFSERVERS_USERS: expected name:password[:ro|rw],... got entry 'alice'"),
        ({"REFSERVERS_LOG_LEVEL": "loud"}, "REFSERVERS_LOG_LEVEL: expected one of debug, info, warning, error, got 'loud'"),
        ({"REFSERVERS_FAULTS": "{"}, "REFSERVERS_FAULTS: expected a JSON list of fault rules, got invalid JSON"),
    ],
)
def test_environment_errors_name_the_variable(env, message):
    with pytest.raises(ConfigError) as caught:
        load_config(SCHEMA, env=env)
    assert str(caught.value).startswith(message)


def test_environment_ignores_other_variables_and_non_config_names():
    config = load_config(SCHEMA, env={"HOME": "/root", "REFSERVERS_CONFIG": "x.toml", "REFSERVERS_TARGET": "container"})
    assert config["web"].port == 8080


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=rf"^{missing}: config file not found$"):
        load_config(SCHEMA, [missing], {})


def test_flag_errors_name_the_flag():
    with pytest.raises(ConfigError, match=r"^--set web\.port: expected a port number"):
        load_config(SCHEMA, env={}, overrides=["web.port=x"])
    with pytest.raises(ConfigError, match=r"^--set port8080: expected SECTION\.KEY=VALUE$"):
        load_config(SCHEMA, env={}, overrides=["port8080"])


def test_tls_cert_needs_key():
    with pytest.raises(ConfigError, match=r"tls_cert and tls_key: expected both or neither"):
        load_config(SCHEMA, env={"REFSERVERS_TLS_CERT": "/x.pem"})


def test_faults_from_file_and_environment_keep_their_source(tmp_path):
    path = write(tmp_path, '[[faults]]\nserver = "web"\naction = "delay"\n')
    config = load_config(SCHEMA, [path], {"REFSERVERS_FAULTS": '{"server": "web", "action": "error"}'})
    assert config.faults == (
        (f"{path}: faults[0]", {"server": "web", "action": "delay"}),
        ("REFSERVERS_FAULTS[0]", {"server": "web", "action": "error"}),
    )
