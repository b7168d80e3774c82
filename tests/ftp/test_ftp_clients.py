"""FTP and FTPS with other real clients: curl (ftp://, explicit and implicit ftps) and
lftp (mirror a directory tree up and down, over TLS)."""

from __future__ import annotations

import filecmp
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from servers.core import Server
from servers.files.root import FileRoot

TIMEOUT = 60

needs_curl = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
needs_lftp = pytest.mark.skipif(shutil.which("lftp") is None, reason="lftp is not installed")


def run(*command: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 0, f"{command[0]} exited {result.returncode}: {result.stderr}"
    return result


def home(server: Server) -> Path:
    return server.core.shared(FileRoot).home("demo")


@needs_curl
@pytest.mark.parametrize("active", [False, True], ids=["passive", "active"])
def test_curl_ftp_upload_and_download(refservers_ftp: Server, tmp_path: Path, active: bool) -> None:
    source = tmp_path / "up.bin"
    source.write_bytes(os.urandom(500_000))
    mode = ["--ftp-port", "127.0.0.1"] if active else []
    url = f"ftp://127.0.0.1:{refservers_ftp.port}"
    run("curl", "-sS", *mode, "--user", "demo:demo", "-T", str(source), f"{url}/incoming/", "--ftp-create-dirs")
    assert (home(refservers_ftp) / "incoming" / "up.bin").read_bytes() == source.read_bytes()
    run("curl", "-sS", *mode, "--user", "demo:demo", "-o", str(tmp_path / "down.bin"), f"{url}/incoming/up.bin")
    assert (tmp_path / "down.bin").read_bytes() == source.read_bytes()
    listing = run("curl", "-sS", "--user", "demo:demo", "--list-only", f"{url}/incoming/").stdout
    assert listing.split() == ["up.bin"]


@needs_curl
def test_curl_wrong_password_fails(refservers_ftp: Server) -> None:
    result = subprocess.run(
        ["curl", "-sS", "--user", "demo:wrong", f"ftp://127.0.0.1:{refservers_ftp.port}/"],
        capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert result.returncode == 67  # CURLE_LOGIN_DENIED


@needs_curl
@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_curl_ftps(refservers_ftp: Server, tmp_path: Path, mode: str) -> None:
    ca = str(refservers_ftp.core.tls.ca_file)
    if mode == "explicit":
        url, tls = f"ftp://127.0.0.1:{refservers_ftp.port}", ["--ssl-reqd"]
    else:
        url, tls = f"ftps://127.0.0.1:{refservers_ftp.listeners['tls']}", []
    source = tmp_path / f"{mode}.bin"
    source.write_bytes(os.urandom(300_000))
    run("curl", "-sS", *tls, "--cacert", ca, "--user", "demo:demo", "-T", str(source), f"{url}/")
    assert (home(refservers_ftp) / source.name).read_bytes() == source.read_bytes()
    out = tmp_path / "back.bin"
    run("curl", "-sS", *tls, "--cacert", ca, "--user", "demo:demo", "-o", str(out), f"{url}/{source.name}")
    assert out.read_bytes() == source.read_bytes()
    upload = refservers_ftp.core.journal.wait_for(
        lambda e: e.details.get("path") == f"/{source.name}" and e.details["direction"] == "upload",
        server="ftp", kind="file",
    )
    assert upload.details["complete"] is True and upload.details["bytes"] == 300_000


def make_tree(root: Path) -> None:
    (root / "a" / "b").mkdir(parents=True)
    (root / "top.txt").write_text("top\n")
    (root / "a" / "one.bin").write_bytes(os.urandom(70_000))
    (root / "a" / "b" / "two.txt").write_text("two ✓\n")


def assert_same_tree(left: Path, right: Path) -> None:
    comparison = filecmp.dircmp(left, right)
    assert not comparison.left_only and not comparison.right_only and not comparison.diff_files, comparison.report()
    for name in comparison.common_dirs:
        assert_same_tree(left / name, right / name)


@needs_lftp
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_lftp_mirrors_a_tree_up_and_down(refservers_ftp: Server, tmp_path: Path, tls: bool) -> None:
    local = tmp_path / "local"
    make_tree(local)
    back = tmp_path / "back"
    settings = [
        "set net:max-retries 1",
        "set net:timeout 10",
        "set cmd:fail-exit true",
        f"set ftp:ssl-allow {'true' if tls else 'false'}",
    ]
    if tls:
        settings += [
            f"set ssl:ca-file {refservers_ftp.core.tls.ca_file}",
            "set ftp:ssl-force true",
            "set ftp:ssl-protect-data true",
            "set ssl:verify-certificate true",
        ]
    script = "; ".join(
        [
            *settings,
            f"open -u demo,demo -p {refservers_ftp.port} ftp://127.0.0.1",
            f"mirror -R {local} mirrored",
            f"mirror mirrored {back}",
        ]
    )
    run("lftp", "-c", script)
    assert_same_tree(local, home(refservers_ftp) / "mirrored")
    assert_same_tree(local, back)
