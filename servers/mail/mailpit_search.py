"""Mailpit's search syntax (internal/storage/search.go, tools.ArgsParser), over MailpitView entries.

Words are split on spaces outside double quotes; each is a filter, all must match. A
leading ``-`` or ``!`` negates. Filters: ``to:``, ``from:``, ``cc:``, ``bcc:``,
``reply-to:``, ``addressed:``, ``subject:``, ``message-id:``, ``tag:``, ``is:read``,
``is:unread``, ``is:tagged``, ``has:attachment(s)``, ``has:inline(s)``, ``after:``,
``before:``, ``larger:``, ``smaller:``; any other word is a substring of the search
text (headers and the stripped HTML or the text, as Mailpit indexes it). Mailpit
compares the address filters against its stored JSON, case-insensitively; this
compares against "name address" of each address, which matches the same words.
Unparseable dates are ignored, as Mailpit does (it logs a warning).
"""

from __future__ import annotations

import datetime
import email.utils
import re
from collections.abc import Callable
from typing import Any

from .mailpit import Entry, search_clean

Predicate = Callable[[Entry], bool]


def split_words(query: str) -> list[str]:
    """tools.ArgsParser: split on spaces outside quotes, then drop the quotes."""
    words, current, quoted = [], "", False
    for char in query:
        if char == '"':
            quoted = not quoted
            current += char
        elif char == " " and not quoted:
            word = current.replace('"', "").strip()
            if word:
                words.append(word)
            current = ""
        else:
            current += char
    word = current.replace('"', "").strip()
    if word:
        words.append(word)
    return words


def _addresses_text(addresses: Any) -> str:
    if isinstance(addresses, dict):
        addresses = [addresses]
    return " ".join(f"{a.get('Name', '')} {a.get('Address', '')}" for a in addresses or []).lower()


def _size(text: str) -> int:
    found = re.fullmatch(r"(\d+)(\.\d+)?\s?([a-z]{1,2})?", text.lower())
    if not found:
        return 0
    value = float(found.group(1) + (found.group(2) or ""))
    unit = found.group(3) or ""
    factor = {"": 1, "k": 1024, "kb": 1024, "m": 1024 * 1024, "mb": 1024 * 1024}.get(unit)
    return int(value * factor) if factor else 0


def parse_date(text: str, zone: datetime.tzinfo | None) -> float | None:
    """A subset of dateparse: ISO dates and times, RFC 2822 dates, epoch seconds."""
    text = text.strip()
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone) if zone else moment.astimezone()
    return moment.timestamp()


def compile_query(query: str, zone: datetime.tzinfo | None = None) -> Predicate:
    """One predicate for the whole query (every word must hold)."""
    tests: list[Predicate] = []
    for word in split_words(query):
        if search_clean(word) == "":
            continue
        exclude = len(word) > 1 and word[0] in "-!"
        if exclude:
            word = word[1:]
        test = _word_test(word, zone)
        if test is None:
            continue
        tests.append((lambda t: lambda entry: not t(entry))(test) if exclude else test)
    return lambda entry: all(test(entry) for test in tests)


def _field_test(value: str, field: Callable[[Entry], str]) -> Predicate | None:
    return None if not value else (lambda entry: value in field(entry))


def _word_test(word: str, zone: datetime.tzinfo | None) -> Predicate | None:  # noqa: PLR0911 - one branch per filter, as search.go
    lower = word.lower()
    address_fields: dict[str, Callable[[Entry], str]] = {
        "to:": lambda e: _addresses_text(e.parsed.to),
        "from:": lambda e: _addresses_text(e.parsed.sender),
        "cc:": lambda e: _addresses_text(e.parsed.cc),
        "bcc:": lambda e: _addresses_text(e.parsed.bcc),
        "reply-to:": lambda e: _addresses_text(e.parsed.reply_to),
        "addressed:": lambda e: _addresses_text(
            [*e.parsed.to, e.parsed.sender, *e.parsed.cc, *e.parsed.bcc, *e.parsed.reply_to]
        ),
    }
    for prefix, field in address_fields.items():
        if lower.startswith(prefix):
            return _field_test(search_clean(word[len(prefix) :]), field)
    if lower.startswith("subject:"):
        return _field_test(word[8:].lower(), lambda e: e.parsed.subject.lower())
    if lower.startswith("message-id:"):
        return _field_test(search_clean(word[11:]), lambda e: e.parsed.message_id.lower())
    if lower.startswith("tag:"):
        tag = search_clean(word[4:])
        return None if not tag else (lambda e: tag in (t.lower() for t in e.tags))
    simple: dict[str, Predicate] = {
        "is:read": lambda e: e.read,
        "is:unread": lambda e: not e.read,
        "is:tagged": lambda e: bool(e.tags),
        "has:inline": lambda e: e.parsed.inlines > 0,
        "has:inlines": lambda e: e.parsed.inlines > 0,
        "has:attachment": lambda e: e.parsed.attachments > 0,
        "has:attachments": lambda e: e.parsed.attachments > 0,
    }
    if lower in simple:
        return simple[lower]
    if lower.startswith(("after:", "before:")):
        name, _, value = lower.partition(":")
        moment = parse_date(search_clean(value).upper(), zone)
        if moment is None:
            return None
        after = name == "after"
        return lambda e: (e.created >= moment) if after else (e.created <= moment)
    if lower.startswith("larger:") and _size(search_clean(word[7:])) > 0:
        limit = _size(search_clean(word[7:]))
        return lambda e: e.size > limit
    if lower.startswith("smaller:") and _size(search_clean(word[8:])) > 0:
        limit = _size(search_clean(word[8:]))
        return lambda e: e.size < limit
    text = search_clean(lower)
    return lambda e: text in e.parsed.search_text
