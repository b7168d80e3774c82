"""``/upload`` bodies that did not all arrive: never stored, never answered as success.

Raw sockets, because every real client library finishes what it starts:
- a body shorter than its ``Content-Length``, then a reset or an orderly close (a
  FIN; on TLS after close_notify), plain and TLS;
- a chunked body cut mid-chunk;
- a ``Content-Length`` smaller than the body actually sent, so the server reads a
  multipart body cut before its close delimiter (RFC 2046 5.1.1): ``400``, nothing stored.
"""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

import pytest

TIMEOUT = 10
BOUNDARY = "cutboundary"


def multipart(data: bytes, name: str = "cut.bin") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


def head(length: int | None, chunked: bool = False) -> bytes:
    lines = [
        "POST /upload HTTP/1.1",
        "Host: localhost",
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
        "Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def connect(server, tls: bool) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", server.listeners["tls" if tls else "main"]), timeout=TIMEOUT)
    if not tls:
        return raw
    return server.core.tls.client_context().wrap_socket(raw, server_hostname="localhost")


def read_response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def uploads(server) -> list[str]:
    directory = Path(server.data_dir) / "uploads"
    return sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []



@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
@pytest.mark.parametrize("how", ["reset", "fin"])
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_upload_cut_short_is_not_stored(refservers_http, tls: bool, how: str, chunked: bool) -> None:
    body = multipart(b"x" * 200_000)
    sent = body[: len(body) // 2]
    sock = connect(refservers_http, tls)
    since = refservers_http.core.journal.last_id
    if chunked:
        sock.sendall(head(None, chunked=True) + f"{len(body):x}\r\n".encode() + sent)
    else:
        sock.sendall(head(len(body)) + sent)
    if how == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    else:
        # An orderly end of the stream: close_notify on TLS, then the TCP FIN.
        (sock.unwrap() if isinstance(sock, ssl.SSLSocket) else sock).shutdown(socket.SHUT_WR)
    if how == "fin":
        assert read_response(sock) == b""  # the connection ends with no answer at all
    sock.close()
    # A whole upload after the cut one: once it is answered, the cut one was handled.
    whole = multipart(b"whole", name="whole.bin")
    with connect(refservers_http, tls) as next_client:
        next_client.sendall(head(len(whole)) + whole)
        assert read_response(next_client).startswith(b"HTTP/1.1 201 ")
    assert uploads(refservers_http) == ["whole.bin"]
    assert [e.details["filename"] for e in refservers_http.core.journal.events(server="http", kind="file", since=since)] == ["whole.bin"]


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_content_length_shorter_than_the_body_gets_400(refservers_http, tls: bool) -> None:
    body = multipart(b"y" * 50_000)
    since = refservers_http.core.journal.last_id
    with connect(refservers_http, tls) as sock:
        # The server reads Content-Length bytes: a multipart body without its end.
        sock.sendall(head(len(body) - 100) + body[: len(body) - 100])
        response = read_response(sock)
    assert response.startswith(b"HTTP/1.1 400 "), response[:200]
    assert uploads(refservers_http) == []
    assert refservers_http.core.journal.events(server="http", kind="file", since=since) == []
