"""Shared stores as parts of their own: config sections, admin routes mounted for the
servers that use them, and the deprecated [smtp]/[ftp] keys that still work."""

from __future__ import annotations

import json
import urllib.request

import pytest

from servers import registry
from servers.core.config import PORT, load_config

PORTS_0 = {"REFSERVERS_ADMIN_PORT": "0", "REFSERVERS_FTP_PASSIVE_PORTS": "0"}


def get(url: str) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.load(error)


def load(env=None, files=(), overrides=()):
    return load_config(registry.schema(), files, env or {}, overrides, renamed=registry.RENAMED_OPTIONS)


def test_files_servers_alone_serve_users_and_files_but_not_messages(cli):
    run = cli("up", "--only", "ftp,sftp", "--set", "ftp.port=0", "--set", "ftp.tls_port=0", "--set", "sftp.port=0", env=PORTS_0)
    admin = run.wait_ready()["admin"]
    status, users = get(admin + "/api/v1/users")
    assert status == 200 and [user["name"] for user in users["users"]] == ["demo"]
    assert "mailbox" not in users["users"][0]  # no mail store in this process
    assert get(admin + "/api/v1/files?user=demo")[0] == 200
    assert get(admin + "/api/v1/messages")[0] == 404


def test_imap_alone_with_admin_serves_the_messages_api(cli):
    run = cli("run", "imap", "--port", "0", "--admin", "--set", "imap.tls_port=0", env=PORTS_0)
    admin = run.wait_ready()["admin"]
    status, _ = get(admin + "/api/v1/messages")
    assert status == 200
    assert get(admin + "/api/v1/users")[0] == 200
    assert get(admin + "/api/v1/files")[0] == 404


def test_store_sections_from_file_and_environment(tmp_path):
    config_file = tmp_path / "stores.toml"
    config_file.write_text('[mail]\nunknown_recipients = "reject"\n[files]\nanonymous = true\n')
    config = load(files=[config_file], env={"REFSERVERS_MAIL_DOMAINS": "corp.test,example.test"})
    assert config["mail"].unknown_recipients == "reject"
    assert config["mail"].domains == ("corp.test", "example.test")
    assert config["files"].anonymous is True
    assert config.deprecations == ()


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("file", "[smtp] domains is deprecated; use [mail] domains (REFSERVERS_MAIL_DOMAINS)"),
        ("env", "REFSERVERS_SMTP_DOMAINS: [smtp] domains is deprecated; use [mail] domains (REFSERVERS_MAIL_DOMAINS)"),
    ],
)
def test_old_keys_still_work_with_one_warning(tmp_path, where, expected):
    config_file = tmp_path / "old.toml"
    config_file.write_text('[smtp]\ndomains = ["old.test"]\n' if where == "file" else "")
    env = {"REFSERVERS_SMTP_DOMAINS": "old.test"} if where == "env" else {}
    config = load(files=[config_file], env=env)
    assert config["mail"].domains == ("old.test",)
    (line,) = config.deprecations
    assert line.endswith(expected)


def test_old_ftp_key_moves_to_files():
    config = load(overrides=["ftp.anonymous=true"])
    assert config["files"].anonymous is True
    assert config.deprecations == ("--set ftp.anonymous: [ftp] anonymous is deprecated; use [files] anonymous (REFSERVERS_FILES_ANONYMOUS)",)


def test_cli_logs_the_deprecation_once(cli):
    run = cli("run", "smtp", "--port", "0", "--set", "smtp.tls_port=0", env={"REFSERVERS_SMTP_UNKNOWN_RECIPIENTS": "reject"})
    run.wait_ready()
    assert run.stop() == 0
    lines = [line for line in run.stderr.splitlines() if "deprecated" in line]
    assert len(lines) == 1 and "use [mail] unknown_recipients (REFSERVERS_MAIL_UNKNOWN_RECIPIENTS)" in lines[0]


def test_bad_store_value_names_the_variable():
    from servers.core import ConfigError

    with pytest.raises(ConfigError) as failure:
        load(env={"REFSERVERS_MAIL_UNKNOWN_RECIPIENTS": "bounce"})
    assert str(failure.value).startswith("REFSERVERS_MAIL_UNKNOWN_RECIPIENTS: expected one of")


def test_every_server_names_known_stores():
    for name in registry.SERVERS:
        for store in registry.server_class(name).stores:
            assert store in registry.STORES, (name, store)


HEAVY_LIBRARIES = ("aiosmtpd", "asyncssh", "pyftpdlib", "dnslib", "jsonrpcserver")
OWN = {"http": (), "jsonrpc": ("jsonrpcserver",), "smtp": ("aiosmtpd",)}  # ...of the heavy ones
# Modules a `run` imports on first use only, not at start-up: a stub's JSONPath, and
# Twisted's HTTP client until a stub proxies; the admin API's metrics and package
# metadata when no admin API runs; autobahn until a WebSocket (JSON-RPC's /ws,
# Mailpit's /api/events) is opened; email.policy until a form or a message is parsed;
# tomllib until a config or scenario file is read; Twisted's static files and CGI until
# /static/ or /cgi-bin/ is asked for; XML, difflib, gzip and brotli until a stub matches
# XML or grades a near miss, or /gzip or /brotli is asked for; mimetypes until a stub is
# recorded; the web console, the admin API's reply schemas and OpenAPI builder when no
# admin API runs.
ON_FIRST_USE = {
    ("http",): (
        "jsonpath",
        "twisted.web.client",
        "twisted.internet.endpoints",
        "prometheus_client",
        "importlib.metadata",
        "email.policy",
        "tomllib",
        "twisted.web.static",
        "twisted.web.twcgi",
        "xml.etree",
        "difflib",
        "gzip",
        "brotli",
        "mimetypes",
        "servers.console",
        "servers.core.schemas",
        "servers.core.openapi",
        "importlib.resources",
    ),
    ("jsonrpc",): ("autobahn",),
    ("smtp", "--admin"): ("autobahn", "importlib.metadata"),
}


@pytest.mark.parametrize("args", ON_FIRST_USE, ids=" ".join)
def test_run_imports_no_other_protocols_library_nor_first_use_modules(cli, args):
    server = args[0]
    ports = [f"{server}.{o.key}=0" for o in registry.server_class(server).options if o.kind is PORT]
    sets = [arg for port in ports for arg in ("--set", port)]
    # PYTHONPROFILEIMPORTTIME makes Python list every module it imports on stderr.
    run = cli("run", *args, *sets, env={**PORTS_0, "PYTHONPROFILEIMPORTTIME": "1"})
    run.wait_ready()
    assert run.stop() == 0
    imported = {line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    assert f"servers.{server}.server" in imported  # the listing is there...
    assert not {name for name in imported if name.split(".")[0] in HEAVY_LIBRARIES and name.split(".")[0] not in OWN[server]}
    deferred = ON_FIRST_USE[args]
    assert not {name for name in imported if any(name == lazy or name.startswith(lazy + ".") for lazy in deferred)}


def test_importing_the_core_installs_no_reactor():
    import subprocess
    import sys

    code = "import sys, servers.core, servers.registry; print('twisted.internet.reactor' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr
