"""No SSH_MSG_IGNORE before each packet when the cipher is not CBC.

Once encryption is on, asyncssh's ``SSHConnection.send_packet`` sends an empty
SSH_MSG_IGNORE before every packet after the key exchange. That is the countermeasure
of RFC 4251 section 9.3.1 against the chosen-plaintext attack on CBC mode (the last
ciphertext block of one packet is the IV of the next, and an IGNORE makes it unknown in
advance). It protects nothing in counter modes and AEAD ciphers, whose keystream does
not depend on earlier ciphertext, and OpenSSH's sshd sends none there. On a download
it doubles the packets: each costs an encryption (two ChaCha20 contexts and a Poly1305
with the cipher OpenSSH's clients pick first) and the client has to decrypt and drop it.

So for ``chacha20-poly1305@openssh.com``, ``aes*-gcm@openssh.com`` and ``aes*-ctr`` the
empty IGNORE asyncssh inserts is not sent; with any other cipher (CBC) it still is. The
other packets and their order are unchanged; RFC 4253 section 11.2: "No implementation
is required to send them."

asyncssh private: ``SSHConnection.send_packet`` is wrapped per connection (same
signature); the insertion is its own recursive ``self.send_packet(MSG_IGNORE,
String(b''))``, which reaches the wrapper. asyncssh sends no other empty IGNORE.
Checked against the pinned asyncssh 2.24 (tests/core/test_library_internals.py).
"""

from __future__ import annotations

from typing import Any

import asyncssh
from asyncssh.constants import MSG_IGNORE
from asyncssh.packet import String

_EMPTY = String(b"")


def needs_ignore_packets(cipher: str) -> bool:
    """Whether ``cipher`` (an SSH encryption algorithm name) is one the IGNORE protects: not
    a counter mode or an AEAD cipher."""
    aead = cipher == "chacha20-poly1305@openssh.com" or (
        cipher.startswith("aes") and cipher.endswith("-gcm@openssh.com")
    )
    return not (aead or cipher.endswith("-ctr"))


def skip_needless_ignores(conn: asyncssh.SSHServerConnection) -> None:
    """Wrap ``conn``'s ``send_packet`` to drop asyncssh's empty IGNORE unless the cipher is CBC
    (call from ``connection_made``)."""
    send_packet = conn.send_packet

    def send_packet_without_needless_ignore(pkttype: int, *args: bytes, handler: Any = None) -> None:
        if (
            pkttype == MSG_IGNORE
            and args == (_EMPTY,)
            and not needs_ignore_packets(conn.get_extra_info("send_cipher", ""))
        ):
            return
        send_packet(pkttype, *args, handler=handler)

    conn.send_packet = send_packet_without_needless_ignore  # type: ignore[method-assign]  # asyncssh private
