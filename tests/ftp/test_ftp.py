"""FTP with ftplib: transfers both modes, RFC 3659 commands, resume, rename, chmod,
UTF-8 names, permissions, journal, faults and a clean stop."""

from __future__ import annotations

import ftplib
import hashlib
import io
import os
import socket
import stat
from pathlib import Path

import pytest

from servers.core import Server, User
from servers.core.durable import WRITEBACK_STEP
from servers.files.root import FileRoot

TIMEOUT = 15


def root_of(server: Server) -> FileRoot:
    return server.core.shared(FileRoot)


def fetch(client: ftplib.FTP, name: str, rest: int | None = None) -> bytes:
    out = io.BytesIO()
    client.retrbinary(f"RETR {name}", out.write, rest=rest)
    return out.getvalue()


@pytest.mark.parametrize("passive", [True, False], ids=["passive", "active"])
def test_binary_round_trip_of_a_random_file(refservers_ftp: Server, ftp_login, passive: bool) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    client = ftp_login(passive=passive)
    assert client.storbinary("STOR random.bin", io.BytesIO(data)).startswith("226")
    # The 226 came after the file was complete on disk, not merely queued.
    on_disk = root_of(refservers_ftp).home("demo") / "random.bin"
    assert hashlib.sha256(on_disk.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert hashlib.sha256(fetch(client, "random.bin")).digest() == hashlib.sha256(data).digest()


def test_mlsd_mlst_size_mdtm(refservers_ftp: Server, ftp_login) -> None:
    home = root_of(refservers_ftp).home("demo")
    (home / "docs").mkdir()
    (home / "docs" / "a.txt").write_bytes(b"12345")
    os.utime(home / "docs" / "a.txt", (1_600_000_000, 1_600_000_000))
    client = ftp_login()
    facts = dict(client.mlsd("docs", facts=["type", "size", "modify", "perm"]))
    assert facts["a.txt"]["type"] == "file"
    assert facts["a.txt"]["size"] == "5"
    assert facts["a.txt"]["modify"] == "20200913122640"
    assert "w" in facts["a.txt"]["perm"]
    mlst = client.sendcmd("MLST docs/a.txt")
    assert mlst.startswith("250-") and "size=5;" in mlst and "/docs/a.txt" in mlst
    with pytest.raises(ftplib.error_perm, match="^550 SIZE not allowed in ASCII"):
        client.size("docs/a.txt")  # MLSD switched to ASCII; sizes are binary sizes (RFC 3659 4.1)
    client.voidcmd("TYPE I")
    assert client.size("docs/a.txt") == 5
    assert client.sendcmd("MDTM docs/a.txt") == "213 20200913122640"
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.size("docs/missing.txt")


def test_rest_resumes_downloads(refservers_ftp: Server, ftp_login) -> None:
    data = os.urandom(200_000)
    (root_of(refservers_ftp).home("demo") / "big.bin").write_bytes(data)
    client = ftp_login()
    assert fetch(client, "big.bin", rest=150_000) == data[150_000:]
    with pytest.raises(ftplib.error_perm, match="^554"):
        fetch(client, "big.bin", rest=300_000)


def test_rest_resumes_uploads_and_appe_appends(refservers_ftp: Server, ftp_login) -> None:
    data = os.urandom(100_000)
    target = root_of(refservers_ftp).home("demo") / "partial.bin"
    target.write_bytes(data[:40_000])  # what an interrupted upload left
    client = ftp_login()
    client.storbinary("STOR partial.bin", io.BytesIO(data[40_000:]), rest=40_000)
    assert target.read_bytes() == data
    client.storbinary("APPE partial.bin", io.BytesIO(b"tail"))
    assert target.read_bytes() == data + b"tail"


def test_uploads_larger_than_a_writeback_step_arrive_whole(refservers_ftp: Server, ftp_login) -> None:
    # Several EarlyWriteback steps run during each transfer, a resumed one included.
    data = os.urandom(3 * WRITEBACK_STEP + 12_345)
    target = root_of(refservers_ftp).home("demo") / "large.bin"
    client = ftp_login()
    client.storbinary("STOR large.bin", io.BytesIO(data), blocksize=1 << 20)
    assert target.read_bytes() == data
    client.storbinary("STOR large.bin", io.BytesIO(data[WRITEBACK_STEP:]), blocksize=1 << 20, rest=WRITEBACK_STEP)
    assert target.read_bytes() == data


def test_rename_mkdir_rmdir_delete_and_chmod(refservers_ftp: Server, ftp_login) -> None:
    home = root_of(refservers_ftp).home("demo")
    client = ftp_login()
    assert client.mkd("new dir") == "/new dir"
    client.storbinary("STOR new dir/f.txt", io.BytesIO(b"x"))
    client.rename("new dir/f.txt", "new dir/g.txt")
    assert (home / "new dir" / "g.txt").read_bytes() == b"x"
    assert not (home / "new dir" / "f.txt").exists()
    assert client.sendcmd("SITE CHMOD 640 new dir/g.txt").startswith("200")
    assert stat.S_IMODE((home / "new dir" / "g.txt").stat().st_mode) == 0o640
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.rmd("new dir")  # not empty
    client.delete("new dir/g.txt")
    client.rmd("new dir")
    assert not (home / "new dir").exists()
    client.cwd("/")
    assert client.pwd() == "/"


def test_utf8_names(refservers_ftp: Server, ftp_login) -> None:
    client = ftp_login()
    assert "UTF8" in client.sendcmd("FEAT")
    name = "Grüße – 日本語.txt"
    client.storbinary(f"STOR {name}", io.BytesIO("ünïcödé".encode()))
    assert (root_of(refservers_ftp).home("demo") / name).read_text() == "ünïcödé"
    assert name in client.nlst()
    assert name in dict(client.mlsd())


@pytest.mark.parametrize(
    "path",
    ["../../../../etc/passwd", "/../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "..%2f..%2fetc%2fpasswd", "/etc/passwd"],
)
def test_traversal_is_refused(ftp_login, path: str) -> None:
    client = ftp_login()
    with pytest.raises(ftplib.error_perm, match="^550"):
        fetch(client, path)
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.size(path)
    assert client.pwd() == "/"
    client.voidcmd("NOOP")  # the session survives the refusal


def test_cwd_above_the_home_is_refused(ftp_login) -> None:
    client = ftp_login()
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.cwd("..")
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.cwd("../..")
    assert client.pwd() == "/"


def test_symlinks_out_of_the_home_are_refused(refservers_ftp: Server, ftp_login, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    home = root_of(refservers_ftp).home("demo")
    (home / "secret_link").symlink_to(outside / "secret.txt")
    (home / "outside_dir").symlink_to(outside)
    client = ftp_login()
    with pytest.raises(ftplib.error_perm, match="^550"):
        fetch(client, "secret_link")
    with pytest.raises(ftplib.error_perm, match="^550"):
        fetch(client, "outside_dir/secret.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.storbinary("STOR outside_dir/planted.txt", io.BytesIO(b"planted"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.cwd("outside_dir")
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.mkd("outside_dir/sub")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    # Listing the home must not reveal the size of the link's target.
    listed = dict(client.mlsd(facts=["size"]))
    assert listed.get("secret_link", {}).get("size") != str(len("secret"))


def test_read_only_user_cannot_write(refservers_ftp: Server, ftp_login) -> None:
    refservers_ftp.core.users.add(User("viewer", "viewer-pw", read_only=True))
    home = root_of(refservers_ftp).home("viewer")
    (home / "readme.txt").write_text("read me")
    client = ftp_login("viewer", "viewer-pw")
    assert fetch(client, "readme.txt") == b"read me"
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.storbinary("STOR new.txt", io.BytesIO(b"x"))
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.delete("readme.txt")
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.mkd("dir")
    with pytest.raises(ftplib.error_perm, match="^550"):
        client.rename("readme.txt", "other.txt")
    assert sorted(os.listdir(home)) == ["readme.txt"]


def test_wrong_password_is_refused_and_journalled_without_the_password(refservers_ftp: Server) -> None:
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", refservers_ftp.port)
        with pytest.raises(ftplib.error_perm, match="^530"):
            client.login("demo", "not-the-password")
    event = refservers_ftp.core.journal.wait_for(
        lambda e: e.kind == "auth" and not e.details["ok"], server="ftp", timeout=TIMEOUT
    )
    assert event.details["user"] == "demo"
    journal_text = repr([e.as_json() for e in refservers_ftp.core.journal.events()])
    assert "not-the-password" not in journal_text


def test_anonymous_is_off_by_default(refservers_ftp: Server) -> None:
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", refservers_ftp.port)
        with pytest.raises(ftplib.error_perm, match="^530"):
            client.login()  # ftplib's anonymous login


def test_anonymous_switch_gives_read_only_public_dir(refservers_start, refservers_store) -> None:
    refservers_store("files", anonymous="true")
    server = refservers_start("ftp")
    public = root_of(server).public_dir
    (public / "pub.txt").write_text("public")
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", server.port)
        assert client.login().startswith("230")
        client.voidcmd("TYPE I")
        assert fetch(client, "pub.txt") == b"public"
        with pytest.raises(ftplib.error_perm, match="^550"):
            client.storbinary("STOR upload.txt", io.BytesIO(b"x"))
        with pytest.raises(ftplib.error_perm, match="^550"):
            client.cwd("../home")
    assert sorted(os.listdir(public)) == ["pub.txt"]


def test_interrupted_upload_is_journalled_incomplete(refservers_ftp: Server, ftp_login) -> None:
    journal = refservers_ftp.core.journal
    since = journal.last_id
    client = ftp_login()
    data_socket = client.transfercmd("STOR cut.bin")
    data_socket.sendall(os.urandom(256 * 1024))
    client.sock.shutdown(socket.SHUT_RDWR)  # the control connection dies mid-upload
    event = journal.wait_for(lambda e: e.details.get("path") == "/cut.bin", kind="file", since=since, timeout=TIMEOUT)
    data_socket.close()
    assert event.details["complete"] is False
    assert event.details["direction"] == "upload"
    assert event.details["user"] == "demo"


def test_complete_transfers_are_journalled(refservers_ftp: Server, ftp_login) -> None:
    journal = refservers_ftp.core.journal
    since = journal.last_id
    client = ftp_login()
    client.storbinary("STOR done.bin", io.BytesIO(b"z" * 5000))
    fetch(client, "done.bin")
    upload = journal.wait_for(lambda e: e.details.get("direction") == "upload", kind="file", since=since)
    download = journal.wait_for(lambda e: e.details.get("direction") == "download", kind="file", since=since)
    assert upload.details == {"user": "demo", "path": "/done.bin", "bytes": 5000, "direction": "upload", "complete": True}
    assert download.details["bytes"] == 5000 and download.details["complete"] is True


def test_bad_command_gets_500_while_another_client_keeps_working(ftp_login) -> None:
    first = ftp_login()
    second = ftp_login()
    with pytest.raises(ftplib.error_perm, match="^500"):
        first.sendcmd("FROBNICATE now")
    with pytest.raises(ftplib.error_perm, match="^501"):
        first.sendcmd("RETR")
    second.storbinary("STOR ok.txt", io.BytesIO(b"ok"))
    assert fetch(second, "ok.txt") == b"ok"
    first.voidcmd("NOOP")


def test_fault_rules_error_delay_disconnect(refservers_ftp: Server, ftp_login) -> None:
    faults = refservers_ftp.core.faults
    client = ftp_login()
    client.storbinary("STOR f.txt", io.BytesIO(b"f"))
    faults.add({"server": "ftp", "match": "RETR *", "action": "error", "params": {"reply": "451 Local error"}, "times": 1})
    with pytest.raises(ftplib.error_temp, match="^451 Local error"):
        fetch(client, "f.txt")
    assert fetch(client, "f.txt") == b"f"  # times=1: the next one passes
    faults.add({"server": "ftp", "match": "SIZE *", "action": "delay", "params": {"seconds": 0.2}, "times": 1})
    assert client.size("f.txt") == 1
    faults.add({"server": "ftp", "match": "NOOP", "action": "disconnect", "times": 1})
    with pytest.raises((EOFError, OSError)):
        client.voidcmd("NOOP")
    fired = [e.details["action"] for e in refservers_ftp.core.journal.events(server="ftp", kind="fault")]
    assert fired == ["error", "delay", "disconnect"]


def test_masquerade_address_is_announced_in_pasv(refservers_start) -> None:
    server = refservers_start("ftp", masquerade_address="10.1.2.3")
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", server.port)
        client.login("demo", "demo")
        assert client.sendcmd("PASV").startswith("227 Entering passive mode (10,1,2,3,")


def test_passive_port_range_is_used(refservers_start) -> None:
    # A free port found by the kernel, used as a one-port range (parallel-safe).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = refservers_start("ftp", passive_ports=f"{port}-{port}")
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", server.port)
        client.login("demo", "demo")
        host, announced = ftplib.parse227(client.sendcmd("PASV"))
        assert host == "127.0.0.1"
        assert announced == port


def test_throttled_transfers_still_complete(refservers_start) -> None:
    server = refservers_start("ftp", download_limit="4000000", upload_limit="4000000")
    data = os.urandom(300_000)
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", server.port)
        client.login("demo", "demo")
        client.storbinary("STOR slow.bin", io.BytesIO(data))
        assert fetch(client, "slow.bin") == data


def test_stop_drops_connections_and_frees_the_ports(refservers_ftp: Server, ftp_login) -> None:
    client = ftp_login()
    ports = dict(refservers_ftp.listeners)
    refservers_ftp.stop()
    with pytest.raises((EOFError, OSError)):
        client.voidcmd("NOOP")
    for port in ports.values():
        with socket.socket() as again:
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))


def test_seed_dir_is_copied_into_homes(refservers_start, refservers_store, tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    (seed / "docs").mkdir(parents=True)
    (seed / "docs" / "guide.txt").write_text("seeded")
    refservers_store("files", seed_dir=str(seed))
    server = refservers_start("ftp")
    with ftplib.FTP(timeout=TIMEOUT) as client:
        client.connect("127.0.0.1", server.port)
        client.login("demo", "demo")
        client.voidcmd("TYPE I")
        assert fetch(client, "docs/guide.txt") == b"seeded"
        client.storbinary("STOR docs/guide.txt", io.BytesIO(b"mine"))  # seeded files are writable
    assert (seed / "docs" / "guide.txt").read_text() == "seeded"


def test_bad_settings_fail_at_start_with_one_line(refservers_start) -> None:
    from servers.core import ConfigError

    with pytest.raises(ConfigError) as failure:
        refservers_start("ftp", masquerade_address="not-an-ip")
    assert str(failure.value).startswith("[ftp] masquerade_address: expected an IPv4 address")
    assert "\n" not in str(failure.value)


@pytest.mark.parametrize("refservers_settings", [["files.seed_dir=/nonexistent/seed"]])
def test_bad_store_setting_fails_at_start_with_one_line(refservers_start, refservers_settings) -> None:
    from servers.core import ConfigError

    with pytest.raises(ConfigError) as failure:
        refservers_start("ftp")
    assert str(failure.value) == "[files] seed_dir: /nonexistent/seed is not a directory"


@pytest.mark.parametrize(("text", "ports"), [("0", None), ("30000-30009", (30000, 30009)), ("2121", (2121, 2121))])
def test_passive_ports_option(text: str, ports: tuple[int, int] | None) -> None:
    from servers.ftp.server import PASSIVE_PORTS

    assert PASSIVE_PORTS.from_text(text) == ports
    for bad in ("9-2", "0-70000", "x"):
        with pytest.raises(ValueError):
            PASSIVE_PORTS.from_text(bad)


def test_stop_during_a_delay_fault_closes_the_paused_connection(refservers_ftp: Server, ftp_login) -> None:
    client = ftp_login()
    refservers_ftp.core.faults.add({"server": "ftp", "match": "NOOP", "action": "delay", "params": {"seconds": 30}})
    since = refservers_ftp.core.journal.last_id
    client.sock.sendall(b"NOOP\r\n")
    refservers_ftp.core.journal.wait_for(lambda e: e.details.get("action") == "delay", kind="fault", since=since)
    refservers_ftp.stop()
    assert client.sock.recv(100) == b""  # closed, not left hanging for 30 s


def test_wire_trace_masks_the_password(refservers_start) -> None:
    import logging

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    wire = logging.getLogger("refservers.ftp.wire")
    handler = Collect()
    wire.addHandler(handler)
    previous = wire.level
    wire.setLevel(logging.INFO)
    try:
        server = refservers_start("ftp")
        server.wire.enabled = True
        with ftplib.FTP(timeout=TIMEOUT) as client:
            client.connect("127.0.0.1", server.port)
            client.login("demo", "demo")
            with pytest.raises(ftplib.error_perm, match="^503"):
                client.sendcmd("PASS demo")  # again, after login: refused, still masked
    finally:
        wire.removeHandler(handler)
        wire.setLevel(previous)
    text = "\n".join(records)
    assert "<< USER demo" in text and "230 Login successful." in text
    assert "PASS demo" not in text
    assert text.count("<< ****") == 2
