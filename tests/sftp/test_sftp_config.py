"""SFTP server configuration and lifecycle: one-line errors for bad settings, a
configured host key, stop() that drops clients and frees the port."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncssh
import paramiko
import pytest

from servers import registry
from servers.core import Core, Server, load_config
from servers.core.config import ConfigError
from servers.core.users import User
from servers.sftp import SftpServer


def test_bad_authorized_key_line_stops_start_up(refservers_core: Core, refservers_start: Callable[..., Server]) -> None:
    refservers_core.users.add(User("mallory", "pw", authorized_keys=("ssh-ed25519 not-base64!",)))
    with pytest.raises(ConfigError, match=r"^\[users\.mallory\] authorized_keys: "):
        refservers_start("sftp")


def test_missing_authorized_keys_dir_stops_start_up(refservers_start: Callable[..., Server], tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="authorized_keys_dir: .* is not a directory"):
        refservers_start("sftp", authorized_keys_dir=str(tmp_path / "nowhere"))


def test_host_key_that_is_not_a_key_stops_start_up(refservers_start: Callable[..., Server], tmp_path: Path) -> None:
    not_a_key = tmp_path / "key.txt"
    not_a_key.write_text("hello\n")
    with pytest.raises(ConfigError, match="sftp host key .*key.txt: cannot read a private key"):
        refservers_start("sftp", host_key=str(not_a_key))


def test_configured_host_key_is_used(refservers_start: Callable[..., Server], tmp_path: Path) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519")
    key.write_private_key(tmp_path / "my_host_key")
    server = refservers_start("sftp", host_key=str(tmp_path / "my_host_key"))
    assert server.host_key_fingerprint == key.get_fingerprint("sha256")  # type: ignore[attr-defined]
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.start_client(timeout=10)
        served = transport.get_remote_server_key()
    finally:
        transport.close()
    assert served.asbytes() == key.public_data


def test_device_commands_from_a_toml_file(tmp_path: Path) -> None:
    config_file = tmp_path / "sftp.toml"
    config_file.write_text('[sftp]\nport = 2022\n[sftp.commands]\n"show version" = "IOS 15"\n')
    config = load_config(registry.schema(), files=[config_file], env={})
    assert config["sftp"].commands == {"show version": "IOS 15"}
    assert config["sftp"].port == 2022


def test_stop_drops_clients_and_frees_the_port(refservers_start: Callable[..., Server], tmp_path: Path) -> None:
    server: SftpServer = refservers_start("sftp")  # type: ignore[assignment]
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(server.known_hosts_line())
    client = paramiko.SSHClient()
    client.load_host_keys(str(known_hosts))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect("127.0.0.1", server.port, "demo", "demo", look_for_keys=False, allow_agent=False)
    try:
        port = server.port
        channel = client.get_transport().open_session()  # type: ignore[union-attr]
        server.stop()
        # The server aborted the connection: the client's channel sees end of stream.
        channel.settimeout(10)
        assert channel.recv(1) == b""
        assert not client.get_transport().is_active()  # type: ignore[union-attr]
    finally:
        client.close()
    # The port is free again: a new server binds it (as a restarted process would).
    again = SftpServer(server.settings.replace(port=port), server.core).start()
    try:
        assert again.port == port
    finally:
        again.stop()


def test_password_auth_can_be_switched_off(refservers_start: Callable[..., Server], tmp_path: Path) -> None:
    server: SftpServer = refservers_start("sftp", password_auth="false")  # type: ignore[assignment]
    transport = paramiko.Transport(("127.0.0.1", server.port))
    try:
        transport.start_client(timeout=10)
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            transport.auth_password("demo", "demo")
        assert refused.value.allowed_types == ["publickey"]  # no password, no keyboard-interactive
    finally:
        transport.close()
