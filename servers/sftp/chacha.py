"""chacha20-poly1305@openssh.com with two ChaCha20 contexts per SSH packet, not three.

The cipher OpenSSH's clients pick first (PROTOCOL.chacha20poly1305 in OpenSSH's
sources): per packet, the header key encrypts the 4-byte length, and the main key's
keystream gives the Poly1305 key (block 0, first 32 bytes) and then encrypts the payload
(from block 1). asyncssh's ``ChachaCipher`` builds a new cryptography ``Cipher`` for
each of the three, and building one costs about as much as encrypting 10 KiB. Here the
main key's one context yields block 0, then runs on into block 1 for the payload: the
same bytes, one context less on every packet sent and received (a download sends
several per READ request: the reply split to the channel's packet size, and the
SSH_MSG_IGNORE asyncssh puts before each).

asyncssh private: ``asyncssh.crypto.chacha.ChachaCipher`` and its ``_key``/``_adkey``
(checked against the pinned asyncssh 2.24; tests/core/test_library_internals.py fails if
they move). Only its two per-packet methods are replaced, with the same signatures.
"""

from __future__ import annotations

from typing import Any

from asyncssh.crypto.chacha import ChachaCipher
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.algorithms import ChaCha20
from cryptography.hazmat.primitives.poly1305 import Poly1305

_COUNTER_0 = bytes(8)  # ChaCha20's 64-bit block counter (little-endian) before the 64-bit nonce
_BLOCK_0 = bytes(64)  # one ChaCha20 block: the keystream that holds the Poly1305 key
_POLY1305_KEY_BYTES = 32


def _header_keystream(key: bytes, nonce: bytes) -> Any:
    return Cipher(ChaCha20(key, _COUNTER_0 + nonce), mode=None).encryptor()


def _main_keystream(key: bytes, nonce: bytes) -> tuple[Any, bytes]:
    """The main key's context after block 0 (so at block 1), and block 0's Poly1305 key."""
    context = Cipher(ChaCha20(key, _COUNTER_0 + nonce), mode=None).encryptor()
    return context, context.update(_BLOCK_0)[:_POLY1305_KEY_BYTES]


def encrypt_and_sign(self: Any, header: bytes, data: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    header = _header_keystream(self._adkey, nonce).update(header)
    main, poly_key = _main_keystream(self._key, nonce)
    packet = header + main.update(data)
    return packet, Poly1305.generate_tag(poly_key, packet)


def verify_and_decrypt(self: Any, header: bytes, data: bytes, nonce: bytes, tag: bytes) -> bytes | None:
    main, poly_key = _main_keystream(self._key, nonce)
    try:
        Poly1305.verify_tag(poly_key, header + data, tag)
    except InvalidSignature:
        return None
    return main.update(data)


def use_two_contexts_per_packet() -> None:
    """Replace asyncssh's two per-packet methods (idempotent; same bytes on the wire)."""
    ChachaCipher.encrypt_and_sign = encrypt_and_sign  # type: ignore[method-assign]
    ChachaCipher.verify_and_decrypt = verify_and_decrypt  # type: ignore[method-assign]
