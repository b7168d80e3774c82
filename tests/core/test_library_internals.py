"""The private internals of our libraries that refservers still relies on, checked by name.

Each one has no public equivalent (the use site says why). The pinned set in
requirements/ is what they were checked against; a newer release that moves one fails
here by name, under `make test-latest`, before users meet it as a strange runtime error.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect

import pytest

# (module, dotted attribute, where refservers uses it and why there is no public way)
INTERNALS = [
    ("aiosmtpd.smtp", "SMTP._handle_client", "smtp.py: a connect-time fault rule runs before the 220 greeting"),
    ("aiosmtpd.smtp", "SMTP._cb_client_connected", "smtp.py: the wire trace wraps the stream reader"),
    ("aiosmtpd.smtp", "SMTP._set_post_data_state", "smtp.py: smtp_DATA resets the envelope as aiosmtpd's does"),
    ("aiosmtpd.smtp", "SMTP._getaddr", "smtp.py: MAIL/RCPT address parses remembered across connections"),
    ("aiosmtpd.smtp", "_AuthMechAttr", "smtp.py: the AUTH table SMTP.__init__ would build, built per class"),
    ("twisted.mail.imap4", "IMAP4Server.blocked", "imap.py: lines queued during a fault delay or a streamed FETCH"),
    ("twisted.mail.imap4", "IMAP4Server._unblock", "imap.py: replaying those queued lines"),
    ("twisted.mail.imap4", "IMAP4Server.spew_body", "imap.py: byte-exact BODY[] sections (Twisted's were wrong)"),
    ("twisted.mail.imap4", "IMAP4Server.spew_rfc822", "imap.py: RFC822 fetch items from the store's bytes"),
    ("twisted.mail.imap4", "IMAP4Server._IMAP4Server__ebDispatch", "imap.py: commands run without Deferreds answer errors as Twisted does"),
    ("twisted.mail.imap4", "_FetchParser", "imap.py: FETCH items parsed once per text, and the FLAGS item \\Seen adds"),
    ("twisted.mail.imap4", "_parseMbox", "imap.py: mailbox names decoded (modified UTF-7) as Twisted does"),
    ("twisted.mail.pop3", "POP3._cbMailbox", "pop3.py: the login journal entry once the mailbox is open"),
    ("twisted.web.http", "Request._disconnected", "core/web.py, http/: no write to a request whose client left"),
    ("pyftpdlib.exceptions", "_RetryError", "ftp/channels.py: a TLS read that must be retried, not taken as EOF"),
    ("asyncssh.crypto.chacha", "ChachaCipher.encrypt_and_sign", "sftp/chacha.py: replaced, one ChaCha20 context less"),
    ("asyncssh.crypto.chacha", "ChachaCipher.verify_and_decrypt", "sftp/chacha.py: replaced, one ChaCha20 context less"),
    ("asyncssh.connection", "SSHConnection._send", "sftp/batched_writes.py: replaced per connection, one write per turn"),
    ("asyncssh.connection", "SSHConnection.send_packet", "sftp/ignore_packets.py: wrapped per connection, no needless IGNORE"),
    ("ctypes.util", "_findSoname_ldconfig", "sftp/__init__.py: asyncssh's liboqs lookup without linking with gcc"),
]


@pytest.mark.parametrize(("module", "attribute", "use"), INTERNALS, ids=[f"{m}.{a}" for m, a, _ in INTERNALS])
def test_private_internal_still_exists(module, attribute, use):
    target = importlib.import_module(module)
    for part in attribute.split("."):
        assert hasattr(target, part), f"{module}.{attribute} is gone; refservers uses it in {use}"
        target = getattr(target, part)


def test_aiosmtpd_session_still_has_its_command_table():
    """smtp.py wraps every ``smtp_<VERB>`` method once through ``SMTP._smtp_methods``, and
    reads ``_tls_protocol`` to know a session is secure; both are set in ``__init__``."""
    from aiosmtpd.smtp import SMTP

    loop = asyncio.new_event_loop()
    try:
        session = SMTP(handler=object(), loop=loop)
        assert "EHLO" in session._smtp_methods and "DATA" in session._smtp_methods
        assert hasattr(session, "_tls_protocol")
    finally:
        loop.close()


@pytest.mark.parametrize("name", ["_in_dtp_queue", "_out_dtp_queue", "_dtp_acceptor", "_dtp_connector"])
def test_pyftpdlib_control_channel_still_keeps_its_data_channel_state(name):
    """ftp/channels.py answers a STOR whose data connection died before pyftpdlib took it
    (425/426, not silence): it reads these FTPHandler attributes, set in ``__init__``
    (checked against the pinned pyftpdlib 2.2.0)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # pyftpdlib imports asyncore
        from pyftpdlib.handlers import FTPHandler

    assert f"self.{name} = " in inspect.getsource(FTPHandler.__init__), f"pyftpdlib's FTPHandler no longer sets {name}"


def test_jsonrpcserver_public_dispatch_gives_plain_dicts():
    """protocol.py reads results through ``dispatch_to_serializable`` (public), not the
    ``_value`` of jsonrpcserver's Either results it once used."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from jsonrpcserver import Success, dispatch_to_serializable

    def ping() -> object:
        return Success("pong")

    reply = dispatch_to_serializable('{"jsonrpc": "2.0", "method": "ping", "id": 1}', {"ping": ping})
    assert reply == {"jsonrpc": "2.0", "result": "pong", "id": 1}


def test_twisted_write_buffer_attributes_still_tell_an_empty_buffer():
    """core/twisted_listen.py ``write_now`` and ``send_file`` write to the socket
    themselves only when Twisted's write buffer is empty: ``dataBuffer``/``offset`` and
    the private ``_tempDataLen`` (set in ``__init__``, so checked on an instance), as
    ``FileDescriptor.doWrite`` reads them."""
    from twisted.internet.abstract import FileDescriptor

    descriptor = FileDescriptor(reactor=object())
    assert (descriptor.dataBuffer, descriptor.offset, descriptor._tempDataLen) == (b"", 0, 0)


def test_twisted_http_channel_still_writes_the_header_block_the_http_site_builds():
    """servers/core/twisted_web.py ``PromptReplyChannel.writeHeaders`` (the channel of
    the HTTP and JSON-RPC sites) builds the status line and header block itself (to
    send it with the body in one piece), as Twisted's
    ``HTTPChannel.writeHeaders`` writes it; a Twisted that writes it otherwise fails here."""
    from twisted.internet.testing import StringTransport
    from twisted.web.http import HTTPChannel
    from twisted.web.http_headers import Headers

    from servers.core.twisted_web import PromptReplyChannel

    headers = Headers({b"Content-Type": [b"application/json"], b"Set-Cookie": [b"a=1", b"b=2; Path=/"]})
    headers.addRawHeader(b"x-lower-case", b"value")
    twisted_channel, ours = HTTPChannel(), PromptReplyChannel()
    twisted_channel.transport, ours.transport = StringTransport(), StringTransport()
    twisted_channel.writeHeaders(b"HTTP/1.1", b"200", b"OK", headers)
    ours._rendering = True  # a reply made while rendering: kept, not written yet
    ours.writeHeaders(b"HTTP/1.1", b"200", b"OK", headers)
    written = twisted_channel.transport.value()
    assert written.startswith(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    assert ours._unsent is not None and b"".join(ours._unsent) == written
    assert ours.transport.value() == b""


def test_asyncio_stream_reader_keeps_its_limit_in_an_attribute():
    """smtp.py raises ``StreamReader._limit`` while message data arrives, so the reader
    does not pause the socket at every chunk (one line is its usual limit). The reader
    pauses its transport when its buffer passes twice that attribute."""
    loop = asyncio.new_event_loop()
    try:
        reader = asyncio.StreamReader(limit=100, loop=loop)
        assert reader._limit == 100

        class Transport(asyncio.Transport):
            paused = False

            def pause_reading(self) -> None:
                self.paused = True

        transport = Transport()
        reader.set_transport(transport)
        reader._limit = 1000
        reader.feed_data(b"x" * 1500)
        assert not transport.paused
        reader._limit = 100
        reader.feed_data(b"x")
        assert transport.paused
    finally:
        loop.close()


def test_asyncssh_chacha_cipher_still_splits_its_key_the_same_way():
    """sftp/chacha.py's per-packet methods read ``_key`` (the first 32 bytes: payload and
    Poly1305) and ``_adkey`` (the last 32: the length) of asyncssh's ``ChachaCipher``
    (checked against the pinned asyncssh 2.24)."""
    from asyncssh.crypto.chacha import ChachaCipher

    key = bytes(range(64))
    cipher = ChachaCipher(key)
    assert (cipher._key, cipher._adkey) == (key[:32], key[32:])


def test_asyncssh_connection_still_writes_through_send_and_aborts_later():
    """sftp/batched_writes.py replaces ``SSHConnection._send`` per connection and reads
    ``_transport`` (None once closed). It relies on every packet going through ``_send``,
    and on ``_force_close`` scheduling the transport's ``abort`` with ``call_soon`` (so a
    flush scheduled before it, e.g. for a DISCONNECT, still runs first); checked against
    the pinned asyncssh 2.24."""
    from asyncssh.connection import SSHConnection

    assert "self._transport: Optional[asyncio.Transport] = None" in inspect.getsource(SSHConnection.__init__)
    assert "self._send(packet + mac)" in inspect.getsource(SSHConnection.send_packet)
    assert "call_soon(self._transport.abort)" in inspect.getsource(SSHConnection._force_close)
    assert "self._transport.write(" in inspect.getsource(SSHConnection._send)


def test_asyncssh_still_inserts_its_ignore_packets_through_send_packet():
    """sftp/ignore_packets.py drops the empty SSH_MSG_IGNORE asyncssh puts before each
    packet: it wraps ``send_packet`` on the connection, which works while the insertion is
    asyncssh's own recursive call through ``self.send_packet`` with an empty string, and
    reads the cipher from the public ``send_cipher`` extra info (pinned asyncssh 2.24)."""
    from asyncssh.connection import SSHConnection

    source = inspect.getsource(SSHConnection.send_packet)
    assert "self.send_packet(MSG_IGNORE, String(b''))" in source
    assert "handler: Optional[SSHPacketLogger] = None" in source
    assert "send_cipher=" in inspect.getsource(SSHConnection.send_newkeys)
