"""OpenSshClient: OpenSSH's ssh, sftp and scp pointed at a running SftpServer, strictly.

For tests (ours and those of projects using the pytest plugin) that drive the server
with the real OpenSSH clients: it writes a ``known_hosts`` pinning the server's host
key at its bound port and runs the clients with ``StrictHostKeyChecking=yes`` and
``BatchMode=yes``, ignoring the user's ``~/.ssh/config`` and agent keys, so a changed
host key, a refused key or any prompt fails instead of hanging or silently trusting.

    client = OpenSshClient.for_server(refservers_sftp, tmp_path, key=tmp_path / "id")
    client.scp("local.bin", client.remote("copy.bin")).returncode == 0
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import SftpServer

TIMEOUT = 60.0


def generate_key(path: Path) -> str:
    """Make an ed25519 key pair with ssh-keygen at ``path``; return the public key line."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    return path.with_name(path.name + ".pub").read_text().strip()


@dataclass(frozen=True)
class OpenSshClient:
    host: str
    port: int
    known_hosts: Path
    key: Path
    work: Path

    @classmethod
    def for_server(cls, server: SftpServer, work: Path, key: Path) -> OpenSshClient:
        """Pin ``server``'s host key in ``work/known_hosts``; log in with ``key``."""
        known_hosts = Path(work) / "known_hosts"
        known_hosts.write_text(server.known_hosts_line())
        return cls(server.probe_host, server.port, known_hosts, Path(key), Path(work))

    def options(self, key: Path | None = None) -> list[str]:
        return [
            "-F", "/dev/null",
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none",
            "-o", "LogLevel=ERROR",
            "-i", str(key or self.key),
        ]  # fmt: skip

    def remote(self, path: str, user: str = "demo") -> str:
        """``user@host:path`` as scp takes it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{user}@{host}:{path}"

    def ssh(
        self,
        *command: str,
        user: str = "demo",
        extra: Sequence[str] = (),
        stdin: str | None = None,
        key: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return self._run(["ssh", *self.options(key), "-p", str(self.port), *extra, f"{user}@{self.host}", *command], stdin)

    def sftp_batch(self, batch: str, user: str = "demo", extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
        """``sftp -b``: runs ``batch`` line by line, exits non-zero at the first failure.
        ``extra`` options come before the pinned ones, so ``-o`` in it wins (ssh keeps the first)."""
        batch_file = self.work / "sftp-batch.txt"
        batch_file.write_text(batch)
        command = ["sftp", *extra, *self.options(), "-P", str(self.port), "-b", str(batch_file), f"{user}@{self.host}"]
        return self._run(command)

    def scp(self, *arguments: str, legacy: bool = False) -> subprocess.CompletedProcess[str]:
        """OpenSSH 9's scp (over SFTP), or the legacy scp protocol with ``legacy=True`` (``-O``)."""
        mode = ["-O"] if legacy else []
        return self._run(["scp", *mode, *self.options(), "-P", str(self.port), *arguments])

    def _run(self, command: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=TIMEOUT)
