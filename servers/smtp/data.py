"""SMTP message data (RFC 5321 4.1.1.4, 4.5.2) read in bulk, with aiosmtpd 1.4.6's rules.

What this module owns: finding the end of the data (a line holding only ``.``), undoing
dot-stuffing, and refusing data the way aiosmtpd's ``SMTP.smtp_DATA`` does, from chunks
of any size instead of one ``readuntil`` per line (on a 15 MiB message, 200,000 lines,
that per-line loop was most of the time to the 250). It does no I/O: the SMTP protocol
feeds it what it receives and gives back what follows the terminator.

Rules kept from aiosmtpd, so clients see the same replies:
- Lines end with CRLF only; a bare LF or CR is data. The terminator is ``.`` CRLF at the
  start of a line (or of the data); what follows it is the client's next command.
- A line longer than ``line_limit`` (CRLF and stuffing dot included) makes the whole
  message "500 Line too long"; data beyond ``size_limit`` bytes (counted as sent, CRLFs
  and stuffing dots included, terminator excluded) makes it "552 Too much mail data".
  Whichever happens first in the data wins; the reply comes only after the terminator
  (RFC 5321 4.2.5), and refused data is not kept.
- Within one line, aiosmtpd's stream limit decides the tie: a line that overran its
  ``StreamReader`` limit (longer than ``line_limit + 2`` with CRLF) is "too long" before
  its bytes are counted; a line just over ``line_limit`` is counted first.
"""

from __future__ import annotations

import re

R_LINE_TOO_LONG = "500 Line too long (see RFC5321 4.5.3.1.6)"
R_TOO_MUCH_DATA = "552 Error: Too much mail data"

CRLF = b"\r\n"
_DOT_LINE = re.compile(rb"\r\n\.")  # a line that starts with a dot
CR = 0x0D


class MessageDataParser:
    """Message data fed in chunks as they arrive; :meth:`feed` says where it ended."""

    def __init__(self, line_limit: int, size_limit: int | None):
        self.line_limit = line_limit  # longest line accepted, with its CRLF
        self.size_limit = size_limit  # None or 0: no limit, as in aiosmtpd
        self.size = 0  # data bytes taken so far, as sent
        self.error: str | None = None  # the reply that refuses the message, once decided
        self._pieces: list[memoryview] = []  # accepted lines, still dot-stuffed
        self._stuffed = False  # some line starts with a dot
        self._partial = b""  # the unfinished line at the end of the last chunk
        self._in_long_line = False  # inside a too-long line whose first bytes were dropped

    def feed(self, chunk: bytes) -> int | None:
        """Take the next bytes received. Once the terminator is among them, return how
        many bytes of ``chunk`` belong to the data, terminator included; else None."""
        carried = len(self._partial)
        data = self._partial + chunk if carried else chunk
        self._partial = b""
        start = 0
        if self._in_long_line:
            end = data.find(CRLF)
            if end < 0:
                self._drop_long_line_part(data)
                return None
            self.size += end + 2
            start = end + 2
            self._in_long_line = False
        stop = self._find_terminator(data, start)
        if stop >= 0:
            self._take_lines(data, start, stop)
            return stop + 3 - carried
        last = data.rfind(CRLF, start)
        end = start if last < 0 else last + 2
        self._take_lines(data, start, end)
        if len(data) - end > self.line_limit + 2:
            # Longer than aiosmtpd's stream limit already: refuse now, keep nothing of it.
            if self.error is None:
                self.error = R_LINE_TOO_LONG
                self._pieces.clear()
            self._in_long_line = True
            self._drop_long_line_part(data[end:])
        else:
            self._partial = data[end:]
        return None

    @property
    def content(self) -> bytes:
        """The message as the client meant it: dot-stuffing undone, terminator removed."""
        raw = b"".join(self._pieces)
        if not self._stuffed:
            return raw
        if raw.startswith(b"."):
            raw = raw[1:]
        return raw.replace(b"\r\n.", CRLF)

    def _find_terminator(self, data: bytes, start: int) -> int:
        """Index of the terminator line at or after ``start`` (a line start), or -1.
        Notes on the way whether a line starts with a dot (then :attr:`content` unstuffs)."""
        if data.find(b".", start) < 0:
            return -1  # one memchr pass: base64 bodies, most of a big message, have no dot
        line = start
        while line >= 0:
            if data.startswith(b".", line):
                if data.startswith(b".\r\n", line):
                    return line
                self._stuffed = True
            found = _DOT_LINE.search(data, line)  # sre's literal search beats bytes.find here
            line = -1 if found is None else found.start() + 2
        return -1

    def _take_lines(self, data: bytes, start: int, end: int) -> None:
        """Complete lines ``data[start:end]``: counted, checked, kept while nothing is refused."""
        if end <= start:
            return
        if self.error is None:
            self.error = self._refusal(data, start, end)
            if self.error is None:
                self._pieces.append(memoryview(data)[start:end])
            else:
                self._pieces.clear()
        self.size += end - start

    def _refusal(self, data: bytes, start: int, end: int) -> str | None:
        long_line = self._first_long_line(data, start, end)
        over_size = self.size_limit and self.size + end - start > self.size_limit
        if not over_size:
            return None if long_line < 0 else R_LINE_TOO_LONG
        assert self.size_limit
        # The line holding the first byte beyond the limit.
        crossing = data.rfind(CRLF, start, start + self.size_limit - self.size)
        crossing = start if crossing < 0 else crossing + 2
        if long_line < 0 or long_line > crossing:
            return R_TOO_MUCH_DATA
        if long_line < crossing:
            return R_LINE_TOO_LONG
        length = data.find(CRLF, long_line) + 2 - long_line
        return R_LINE_TOO_LONG if length > self.line_limit + 2 else R_TOO_MUCH_DATA

    def _first_long_line(self, data: bytes, start: int, end: int) -> int:
        """Start of the first line in ``data[start:end]`` (complete lines) longer than
        ``line_limit``, or -1. Jumps to the last line end within reach of each line start,
        so short lines cost one backward search per ``line_limit`` bytes, not one each."""
        limit = self.line_limit
        position = start
        while position < end:
            reach = min(position + limit, end)
            line_feed = data.rfind(b"\n", position, reach)  # a one-byte search is memrchr
            if line_feed <= position or data[line_feed - 1] != CR:
                line_feed = data.rfind(CRLF, position, reach) + 1  # a bare LF: look again
                if line_feed <= 0:
                    return position
            position = line_feed + 1
        return -1

    def _drop_long_line_part(self, data: bytes) -> None:
        """Count and forget bytes of a too-long line; a final CR may begin its CRLF."""
        kept = 1 if data.endswith(b"\r") else 0
        self.size += len(data) - kept
        self._partial = data[len(data) - kept :]
