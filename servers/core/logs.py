"""Logging: one stdlib logger per server (``refservers.<server>``), text or JSON lines,
an optional wire trace, and credential masking applied to every record.

Masking happens in a handler filter, so it also covers messages from libraries
(Twisted, aiosmtpd, pyftpdlib, asyncssh) that log what clients sent.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = "refservers"

# (pattern, replacement): each keeps the verb and hides the secret part.
_SECRET_PATTERNS = [
    (re.compile(r"(?im)^(\s*(?:\S+\s+)?PASS\s+)\S.*$"), r"\1****"),  # FTP, POP3
    (re.compile(r"(?im)^(\s*(?:\S+\s+)?AUTH(?:ENTICATE)?\s+\S+\s+)\S+"), r"\1****"),  # SASL initial response
    (re.compile(r"(?im)^(\s*AUTHINFO\s+SASL\s+\S+\s+)\S+"), r"\1****"),  # NNTP SASL initial response
    (re.compile(r"(?im)^(\s*\S+\s+LOGIN\s+\S+\s+)\S.*$"), r"\1****"),  # IMAP LOGIN user pass
    (re.compile(r"(?im)^(\s*APOP\s+\S+\s+)\S+"), r"\1****"),
    (re.compile(r"(?im)((?:proxy-)?authorization:\s*\S+\s+)\S+"), r"\1****"),
    (re.compile(r"(?i)(password[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"), r"\1****"),
]
# Every pattern above needs one of these words, matched with the same case folding
# (re's, not str.lower(): under IGNORECASE "ſ" matches "s"). Most lines hold none, and
# one search is far cheaper than seven substitutions on every command of every session.
_MAY_HOLD_SECRET = re.compile(r"(?i)pass|auth|login|apop")


def mask_credentials(text: str) -> str:
    """Hide passwords and tokens in a protocol line or log message."""
    if _MAY_HOLD_SECRET.search(text) is None:
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class CredentialMaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_credentials(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("peer", "direction"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str = "info", fmt: str = "text", stream: Any = None) -> None:
    """Set up the ``refservers`` logger tree once per process (idempotent)."""
    root = logging.getLogger(ROOT)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(CredentialMaskFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # Twisted narrates every factory start/stop and, for web sites, every request at
    # info; our servers journal and log what matters, so its chatter waits for debug.
    logging.getLogger(ROOT + ".twisted").setLevel("DEBUG" if level.lower() == "debug" else "WARNING")
    _route_twisted_logs()


def _route_twisted_logs() -> None:
    # Twisted buffers its log events until someone begins logging; send them to
    # stdlib so unhandled errors in Deferreds show up in our log instead of vanishing.
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    if not getattr(_route_twisted_logs, "done", False):
        globalLogBeginner.beginLoggingTo(
            [STDLibLogObserver(name=ROOT + ".twisted")], redirectStandardIO=False  # type: ignore[list-item]
        )
        _route_twisted_logs.done = True  # type: ignore[attr-defined]


def server_logger(server: str) -> logging.Logger:
    return logging.getLogger(f"{ROOT}.{server}")


class WireTrace:
    """Logs protocol lines in and out with the peer, when tracing is on.

    Protocols call ``received``/``sent`` unconditionally; the check is here. Pass
    ``secret=True`` for lines that are credentials by position (the base64 lines after
    ``AUTH LOGIN``), which no pattern can recognize. ``journal(peer, direction, line)``,
    when given, also gets every masked line: the web console's traffic view shows them.
    """

    def __init__(
        self,
        logger: logging.Logger,
        enabled: bool,
        journal: Callable[[str, str, str], None] | None = None,
    ):
        self.enabled = enabled
        self._log = logger.getChild("wire")
        self._journal = journal

    def received(self, peer: str, data: bytes | str, secret: bool = False) -> None:
        if self.enabled:
            self._emit("<<", peer, data, secret)

    def sent(self, peer: str, data: bytes | str, secret: bool = False) -> None:
        if self.enabled:
            self._emit(">>", peer, data, secret)

    def _emit(self, direction: str, peer: str, data: bytes | str, secret: bool) -> None:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        for line in text.splitlines() or [""]:
            shown = "****" if secret else mask_credentials(line)
            self._log.info(
                "%s %s %s", peer, direction, shown, extra={"peer": peer, "direction": direction}
            )
            if self._journal is not None:
                self._journal(peer, "in" if direction == "<<" else "out", shown)
