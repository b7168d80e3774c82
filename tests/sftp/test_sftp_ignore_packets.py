"""servers.sftp.ignore_packets: which ciphers keep asyncssh's SSH_MSG_IGNORE before each packet.

The running server is checked with paramiko (test_sftp_paramiko.py): no IGNORE reaches
it with a counter-mode or AEAD cipher. CBC ciphers are not offered by the server
(asyncssh leaves them off by default), so their side is checked here by name.
"""

from __future__ import annotations

import pytest

from servers.sftp.ignore_packets import needs_ignore_packets


@pytest.mark.parametrize(
    "cipher",
    ["chacha20-poly1305@openssh.com", "aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr"],
)
def test_counter_and_aead_ciphers_need_no_ignore_packets(cipher: str) -> None:
    assert not needs_ignore_packets(cipher)


@pytest.mark.parametrize(
    "cipher", ["aes128-cbc", "aes256-cbc", "3des-cbc", "blowfish-cbc", "seed-cbc@ssh.com", "arcfour", ""]
)
def test_cbc_and_unknown_ciphers_keep_them(cipher: str) -> None:
    assert needs_ignore_packets(cipher)
