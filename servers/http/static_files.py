"""The /static/ and /cgi-bin/ resources: Twisted's File and CGI runner.

A module of its own, imported on the first request to either (site.py): Twisted's
static and CGI modules were a visible share of `run http`'s start-up (issue 16).
"""

from __future__ import annotations

import warnings
from typing import Any

with warnings.catch_warnings():
    # twisted.web.static builds its 404 pages at import time with a class Twisted
    # deprecated in 22.10; the warning is about Twisted's code, not ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    from twisted.web import static, twcgi

CGIDirectory = twcgi.CGIDirectory


class _SmallBody(static.StaticProducer):
    """A body of at most one read buffer, written and finished in ``start()``."""

    def __init__(self, request: Any, file_object: Any, offset: int, size: int):
        super().__init__(request, file_object)
        self.offset = offset
        self.size = size

    def start(self) -> None:
        try:
            self.fileObject.seek(self.offset)
            data = self.fileObject.read(self.size)
        finally:
            self.fileObject.close()
        if self.request._disconnected:  # a delayed (fault rule) request whose client left
            return
        self.request.write(data)
        self.request.finish()


class StaticFiles(static.File):
    """Twisted's File (listings, Range, If-Modified-Since, content types) with small
    bodies written at once.

    Twisted's file producers are pull producers, which Twisted web drives from a
    cooperator task: every response waited for cooperator ticks (reactor.callLater),
    two for a file of one buffer. That halved static files' rate next to /get. A body
    (or single range) of at most one buffer, which Twisted would read in one piece
    anyway, is written in render instead: same bytes and headers, no extra turns.
    Bigger bodies and multipart ranges keep Twisted's producers (flow control).
    """

    def makeProducer(self, request: Any, fileForReading: Any) -> Any:
        producer = super().makeProducer(request, fileForReading)
        limit = static.StaticProducer.bufferSize
        if type(producer) is static.NoRangeStaticProducer and self.getsize() <= limit:
            return _SmallBody(request, fileForReading, 0, self.getsize())
        if type(producer) is static.SingleRangeStaticProducer and producer.size <= limit:
            return _SmallBody(request, fileForReading, producer.offset, producer.size)
        return producer
