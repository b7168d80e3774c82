"""servers.sftp.chacha against asyncssh's own chacha20-poly1305@openssh.com functions.

The replacement must give byte for byte what asyncssh's ``ChachaCipher`` gives (the
module functions ``chacha20`` and ``poly1305`` it is built from stay asyncssh's), and
refuse what it refuses. OpenSSH's clients pick this cipher first, so the interop tests
(test_sftp_openssh.py) check it on the wire as well.
"""

from __future__ import annotations

import os

import pytest
from asyncssh.crypto.chacha import ChachaCipher, chacha20, poly1305

from servers.sftp import chacha

SIZES = [0, 1, 4, 28, 63, 64, 65, 1000, 32768 + 13]


def _reference_encrypt(key: bytes, header: bytes, data: bytes, nonce: bytes) -> tuple[bytes, bytes]:
    # asyncssh's ChachaCipher.encrypt_and_sign, spelled out from its module functions.
    main_key, header_key = key[:32], key[32:]
    packet = chacha20(header_key, header, nonce, 0) + chacha20(main_key, data, nonce, 1)
    return packet, poly1305(main_key, packet, nonce)


@pytest.mark.parametrize("size", SIZES)
def test_encrypt_and_sign_gives_asyncssh_bytes(size: int) -> None:
    key, header, data = os.urandom(64), os.urandom(4), os.urandom(size)
    for sequence in (0, 1, 2**32 - 1):
        nonce = sequence.to_bytes(8, "big")
        assert chacha.encrypt_and_sign(ChachaCipher(key), header, data, nonce) == _reference_encrypt(
            key, header, data, nonce
        )


@pytest.mark.parametrize("size", SIZES)
def test_verify_and_decrypt_opens_what_asyncssh_seals_and_refuses_tampering(size: int) -> None:
    key, header, data, nonce = os.urandom(64), os.urandom(4), os.urandom(size), (7).to_bytes(8, "big")
    packet, tag = _reference_encrypt(key, header, data, nonce)
    sealed_header, sealed_data = packet[:4], packet[4:]
    cipher = ChachaCipher(key)
    assert chacha.verify_and_decrypt(cipher, sealed_header, sealed_data, nonce, tag) == data
    bad_tag = bytes([tag[0] ^ 1]) + tag[1:]
    assert chacha.verify_and_decrypt(cipher, sealed_header, sealed_data, nonce, bad_tag) is None
    assert chacha.verify_and_decrypt(cipher, sealed_header, sealed_data, (8).to_bytes(8, "big"), tag) is None
    if size:
        flipped = bytes([sealed_data[0] ^ 1]) + sealed_data[1:]
        assert chacha.verify_and_decrypt(cipher, sealed_header, flipped, nonce, tag) is None


def test_the_running_server_uses_the_replacement(refservers_sftp: object) -> None:
    assert ChachaCipher.encrypt_and_sign is chacha.encrypt_and_sign
    assert ChachaCipher.verify_and_decrypt is chacha.verify_and_decrypt
