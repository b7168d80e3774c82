"""FaultBook: declarative fault rules every server consults, set from config or the API.

A :class:`FaultRule` names a server, a glob matched against what the server is handling
(an SMTP verb line, an HTTP path, a DNS name, a proxy target), an action, optionally
the one ``user`` it is about, and how often it fires (``probability`` with an optional
``seed`` for repeatable runs, ``times`` to fire only N times).

Rules this module keeps:

1. **Every action declares its parameters.** Each server lists the actions it carries
   out in ``Server.fault_actions``, a table of :class:`FaultAction` (help text and
   :class:`Param` declarations: name, type, range, default, required), and says what
   ``match`` sees (``fault_subject``) and who ``user`` names (``fault_user``; empty: the
   server has no users). Together they are its :class:`FaultTable`: plain data (names,
   numbers, strings), so it can be read, served as JSON (:meth:`FaultBook.schema`,
   ``GET /api/v1/faults/actions``) and moved without importing a protocol's library.
2. **A rule is checked once, when it is added.** :meth:`FaultBook.add` refuses an
   unknown server, action, field or parameter, a value of the wrong type or out of
   range, and a reply that is not a valid reply line of its protocol
   (:data:`PARAM_TYPES`); the :class:`FaultError` names the field or ``params.<name>``.
   The rule keeps its params with the defaults filled in, so a protocol reads
   ``rule.params["seconds"]`` and never meets a bad value at run time.
3. **A user-scoped rule is about one user.** A rule with ``user`` fires only when the
   server says the step is about that user (``check(..., users=...)``: the login, an
   SMTP recipient); a step about nobody, or someone else, never fires it. Names with an
   ``@`` (mail addresses) compare case-insensitively, login names exactly.

Servers call :meth:`FaultBook.check` at their decision points and carry the action out
themselves (an error reply, a delay, a dropped connection, a proxy toxic), because
only the protocol knows what an error reply looks like. Every firing is journalled.
"""

from __future__ import annotations

import fnmatch
import itertools
import math
import random
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .journal import EventJournal

# The fields of a rule, with what each means (served with the action schema).
RULE_FIELD_HELP = {
    "server": "the server the rule is for (its config section name)",
    "action": "one of the server's fault actions",
    "match": "glob matched, case-insensitively, against what the server is handling (default *)",
    "user": "fire only for steps about this user: the login, an SMTP recipient (default: anyone)",
    "probability": "chance 0-1 that a matching step fires it (default 1)",
    "seed": "seed of the probability draws, for repeatable runs",
    "times": "fire at most this many times (default: no limit)",
    "params": "the action's parameters",
    "id": "the rule's id (default: f1, f2...)",
}
RULE_FIELDS = set(RULE_FIELD_HELP)


class FaultError(ValueError):
    """A rule that cannot be accepted; the message names the field."""


# -- parameter types ------------------------------------------------------------------
# A Param's type is a plain name; PARAM_TYPES below says what each accepts.
NUMBER = "number"  # an int or float (stored as float)
INTEGER = "integer"
BOOLEAN = "boolean"
STRING = "string"
STRING_TABLE = "string table"  # an object of string -> string (e.g. headers)
JSON_VALUE = "json"  # any JSON value (a JSON-RPC error's data)
SMTP_REPLY = "smtp reply"  # RFC 5321 4.2: a 4yz/5yz code, a space, text
POP3_ERROR = "pop3 error"  # RFC 1939 3: "-ERR", a space, text
IMAP_REPLY = "imap reply"  # RFC 3501 7.1: "NO" or "BAD", a space, text (the tag is the server's)
FTP_REPLY = "ftp reply"  # RFC 959 4.2: a 4yz/5yz code, a space, text
NNTP_REPLY = "nntp reply"  # RFC 3977 3.2: a 4xx/5xx code, a space, text
SFTP_STATUS = "sftp status"  # an SSH_FX_* number, or its name ("no_such_file")

# SSH_FX_* status names of draft-ietf-secsh-filexfer-13 section 9.1 (asyncssh's FX_*),
# here so that checking a rule needs no SSH library.
SFTP_STATUS_NAMES = {
    "ok": 0, "eof": 1, "no_such_file": 2, "permission_denied": 3, "failure": 4,
    "bad_message": 5, "no_connection": 6, "connection_lost": 7, "op_unsupported": 8,
    "invalid_handle": 9, "no_such_path": 10, "file_already_exists": 11, "write_protect": 12,
    "no_media": 13, "no_space_on_filesystem": 14, "quota_exceeded": 15,
    "unknown_principal": 16, "lock_conflict": 17, "dir_not_empty": 18, "not_a_directory": 19,
    "invalid_filename": 20, "link_loop": 21, "cannot_delete": 22, "invalid_parameter": 23,
    "file_is_a_directory": 24, "byte_range_lock_conflict": 25, "byte_range_lock_refused": 26,
    "delete_pending": 27, "file_corrupt": 28, "owner_invalid": 29, "group_invalid": 30,
    "no_matching_byte_range_lock": 31,
}  # fmt: skip

# One reply line: printable text, no CR/LF (a reply is sent as one line), at most
# 510 characters (RFC 5321 4.5.3.1.5: 512 with CRLF).
_LINE_TEXT = r"[^\r\n\x00]{1,505}"
_REPLY_PATTERNS = {
    SMTP_REPLY: (re.compile(rf"[45][0-5][0-9] {_LINE_TEXT}"), "an SMTP reply: a 4xx or 5xx code, a space and text (e.g. '451 4.3.0 try later')"),
    POP3_ERROR: (re.compile(rf"-ERR {_LINE_TEXT}"), "a POP3 error: -ERR, a space and text (e.g. '-ERR [SYS/TEMP] busy')"),
    IMAP_REPLY: (re.compile(rf"(?i:NO|BAD) {_LINE_TEXT}"), "an IMAP reply without its tag: NO or BAD, a space and text (e.g. 'NO [UNAVAILABLE] try later')"),
    FTP_REPLY: (re.compile(rf"[45][0-5][0-9] {_LINE_TEXT}"), "an FTP reply: a 4xx or 5xx code, a space and text (e.g. '451 Local error')"),
    NNTP_REPLY: (re.compile(rf"[45][0-9][0-9] {_LINE_TEXT}"), "an NNTP reply: a 4xx or 5xx code, a space and text (e.g. '400 service temporarily unavailable')"),
}  # fmt: skip


def _plain_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _check_number(value: Any) -> float:
    # NaN and infinities pass any bound check, and JSON (Python's) and TOML can spell them.
    if not _plain_number(value) or not math.isfinite(value):
        raise ValueError
    return float(value)


def _check_integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError
    return value


def _check_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


def _check_string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _check_string_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ValueError
    return dict(value)


def _check_sftp_status(value: Any) -> int | str:
    if isinstance(value, str) and value.lower() in SFTP_STATUS_NAMES:
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 255:
        return value
    raise ValueError


def _reply_check(kind: str) -> Callable[[Any], str]:
    pattern = _REPLY_PATTERNS[kind][0]

    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise ValueError
        return value

    return check


# type name -> (what it accepts, in words; the check: returns the stored value or raises ValueError)
PARAM_TYPES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    NUMBER: ("a number", _check_number),
    INTEGER: ("an integer", _check_integer),
    BOOLEAN: ("true or false", _check_boolean),
    STRING: ("a string", _check_string),
    STRING_TABLE: ("an object of string values", _check_string_table),
    JSON_VALUE: ("any JSON value", lambda value: value),
    SFTP_STATUS: (
        "an SFTP status: a number 1-255 or a name such as 'no_such_file', 'permission_denied', 'failure'",
        _check_sftp_status,
    ),
    **{kind: (expected, _reply_check(kind)) for kind, (_, expected) in _REPLY_PATTERNS.items()},
}


@dataclass(frozen=True)
class Param:
    """One parameter of a fault action (``params.<name>`` in a rule).

    ``low``/``high`` bound numbers; ``choices`` lists the accepted strings; ``below``
    names another param this one must stay smaller than; ``default`` is used when the
    rule leaves the param out (a required param has none).
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    below: str | None = None
    help: str = ""

    @property
    def expected(self) -> str:
        """What the param accepts, in words (error messages and the schema)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        words = PARAM_TYPES[self.type][0]
        if self.low is not None and self.high is not None:
            between = " to " if self.low < 0 else "-"  # "-2147483648 to 2147483647", not "...-2147..."
            return f"{words} {_show(self.low)}{between}{_show(self.high)}"
        if self.low is not None:
            return f"{words} >= {_show(self.low)}"
        if self.high is not None:
            return f"{words} <= {_show(self.high)}"
        return words

    def check(self, value: Any) -> Any:
        """The value as the rule keeps it; raises FaultError naming ``params.<name>``."""
        try:
            checked = PARAM_TYPES[self.type][1](value)
            if self.choices and checked not in self.choices:
                raise ValueError
            if self.low is not None and checked < self.low:
                raise ValueError
            if self.high is not None and checked > self.high:
                raise ValueError
        except (ValueError, TypeError):
            raise FaultError(f"params.{self.name}: expected {self.expected}, got {value!r}") from None
        return checked

    def as_json(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "expected": self.expected,
            "required": self.required,
            "help": self.help,
        }
        for key in ("low", "high", "below"):
            if getattr(self, key) is not None:
                described[key] = getattr(self, key)
        if self.choices:
            described["choices"] = list(self.choices)
        if not self.required and self.default is not None:
            described["default"] = self.default
        return described


def _show(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


@dataclass(frozen=True)
class FaultAction:
    """One action a server carries out for a fault rule: what it does and its params."""

    help: str
    params: tuple[Param, ...] = ()

    def __post_init__(self) -> None:
        # A declaration mistake fails on import, not when a user meets it.
        names = [param.name for param in self.params]
        for param in self.params:
            if param.type not in PARAM_TYPES:
                raise TypeError(f"param {param.name}: unknown type {param.type!r} (known: {', '.join(PARAM_TYPES)})")
            if param.below is not None and param.below not in names:
                raise TypeError(f"param {param.name}: below names no param {param.below!r}")
            if not param.required and param.default is not None:
                param.check(param.default)

    def resolve(self, action: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """Check a rule's ``params`` and fill in the defaults; raises FaultError."""
        known = {param.name: param for param in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            listed = ", ".join(known) or "none"
            raise FaultError(f"params.{unknown[0]}: unknown parameter for {action} (known: {listed})")
        resolved: dict[str, Any] = {}
        for param in self.params:
            if param.name in params:
                resolved[param.name] = param.check(params[param.name])
            elif param.required:
                raise FaultError(f"params.{param.name}: required for {action} ({param.expected})")
            elif param.default is not None:  # None: the protocol's own behaviour, left out
                resolved[param.name] = param.check(param.default)  # a copy of a table default
        for param in self.params:
            if param.below is not None and param.name in resolved and param.below in resolved:
                if not resolved[param.name] < resolved[param.below]:
                    raise FaultError(f"params.{param.name}: must be smaller than params.{param.below}")
        return resolved

    def as_json(self) -> dict[str, Any]:
        return {"help": self.help, "params": [param.as_json() for param in self.params]}


# The actions most protocols share; a server lists them in its own table, with its own
# error action beside them (only the protocol knows what its error reply looks like).
DELAY = FaultAction(
    "hold this step for params.seconds, then carry on; input sent meanwhile waits in order",
    (Param("seconds", NUMBER, 0, 600, default=1.0, help="how long to hold the step"),),
)
DISCONNECT = FaultAction("drop the connection without a reply")


def reply_error(reply_type: str, default: str, reply_help: str) -> FaultAction:
    """The "error" action of a line protocol (SMTP, POP3, NNTP): ``params.reply`` is sent
    instead of handling the command (at connect: as the greeting), then maybe a close."""
    return FaultAction(
        "answer params.reply instead of handling the command (at connect: as the greeting)",
        (
            Param("reply", reply_type, default=default, help=reply_help),
            Param("close", BOOLEAN, default=False, help="close the connection after the reply"),
        ),
    )


@dataclass(frozen=True)
class FaultTable:
    """One server's fault declaration: its actions, what ``match`` is matched against,
    and who a rule's ``user`` names there (empty: no users, so ``user`` is refused)."""

    actions: Mapping[str, FaultAction]
    subject: str = ""
    user: str = ""

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "user": self.user or None,
            "actions": {name: action.as_json() for name, action in self.actions.items()},
        }


# -- rules and the book -----------------------------------------------------------------


def _same_user(wanted: str, given: str) -> bool:
    # Mail addresses are compared case-insensitively (domains are, and the mail store
    # folds local parts too); login names exactly, as the user table compares them.
    return wanted.casefold() == given.casefold() if "@" in wanted else wanted == given


@dataclass
class FaultRule:
    id: str
    server: str
    action: str
    match: str = "*"
    user: str | None = None
    probability: float = 1.0
    seed: int | None = None
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def matches(self, subject: str) -> bool:
        return fnmatch.fnmatchcase(subject.lower(), self.match.lower())

    def concerns(self, users: Iterable[str]) -> bool:
        """Whether a step about ``users`` is one this rule may fire for."""
        return self.user is None or any(_same_user(self.user, given) for given in users)

    def roll(self) -> bool:
        return self.probability >= 1.0 or self._random.random() < self.probability

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_random", None)
        return data


class FaultBook:
    def __init__(self, journal: EventJournal, tables: Mapping[str, FaultTable]):
        """``tables`` maps each server name to its :class:`FaultTable`."""
        self._journal = journal
        self._tables = tables  # may load each table on first use (registry.FaultTables)
        self._rules: dict[str, FaultRule] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def schema(self, server: str | None = None) -> dict[str, Any]:
        """Every server's table as JSON: subject, user, actions and their params (a console
        builds its forms from it)."""
        return {
            name: table.as_json()
            for name, table in sorted(self._tables.items())
            if (server is None and table.actions) or name == server
        }

    def add(self, spec: Mapping[str, Any]) -> FaultRule:
        """Validate ``spec`` (as JSON or TOML gives it) and add it; raises FaultError."""
        return self._insert([self._checked(spec)])[0]

    def add_all(self, specs: Iterable[Any]) -> list[FaultRule]:
        """Add every rule of ``specs``, or none: raises FaultError("rule N: ...") for the first bad one."""
        checked = []
        for index, spec in enumerate(specs):
            if not isinstance(spec, Mapping):
                raise FaultError(f"rule {index}: expected an object")
            try:
                checked.append(self._checked(spec))
            except FaultError as error:
                raise FaultError(f"rule {index}: {error}") from None
        return self._insert(checked)

    def _insert(self, rules: list[FaultRule]) -> list[FaultRule]:
        with self._lock:
            for rule in rules:
                rule.id = rule.id or f"f{next(self._ids)}"
                self._rules[rule.id] = rule
        return rules

    def _checked(self, spec: Mapping[str, Any]) -> FaultRule:
        """The rule ``spec`` describes (id empty unless given), or FaultError naming the field."""
        unknown = set(spec) - RULE_FIELDS
        if unknown:
            raise FaultError(f"unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(RULE_FIELDS))})")
        server = spec.get("server")
        if not isinstance(server, str) or server not in self._tables:
            raise FaultError(f"server: expected one of {', '.join(sorted(self._tables))}, got {server!r}")
        action = spec.get("action")
        table = self._tables[server]
        if not isinstance(action, str) or action not in table.actions:
            known = ", ".join(sorted(table.actions)) or "none"
            raise FaultError(f"action: {server} supports {known}; got {action!r}")
        probability = spec.get("probability", 1.0)
        if not _plain_number(probability) or not 0 <= probability <= 1:  # NaN fails the range
            raise FaultError(f"probability: expected a number 0-1, got {probability!r}")
        for name in ("seed", "times"):
            value = spec.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise FaultError(f"{name}: expected a non-negative integer, got {value!r}")
        match = spec.get("match", "*")
        if not isinstance(match, str):
            raise FaultError(f"match: expected a glob string, got {match!r}")
        user = spec.get("user")
        if user is not None and (not isinstance(user, str) or not user.strip()):
            raise FaultError(f"user: expected a user name or mail address, got {user!r}")
        if user is not None and not table.user:
            scoped = ", ".join(name for name, other in sorted(self._tables.items()) if other.user)
            raise FaultError(f"user: {server} has no users (user-scoped rules: {scoped})")
        params = spec.get("params", {})
        if not isinstance(params, dict):
            raise FaultError(f"params: expected an object, got {params!r}")
        resolved = table.actions[action].resolve(action, params)
        rule_id = spec.get("id")
        if rule_id is not None and (not isinstance(rule_id, (str, int)) or isinstance(rule_id, bool) or not str(rule_id)):
            raise FaultError(f"id: expected a string, got {rule_id!r}")
        return FaultRule(
            id=str(rule_id or ""),
            server=server,
            action=action,
            match=match,
            user=user,
            probability=float(probability),
            seed=spec.get("seed"),
            times=spec.get("times"),
            params=resolved,
        )

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            return self._rules.pop(rule_id, None) is not None

    def clear(self, server: str | None = None) -> None:
        with self._lock:
            for rule_id, rule in list(self._rules.items()):
                if server is None or rule.server == server:
                    del self._rules[rule_id]

    def rules(self, server: str | None = None) -> list[FaultRule]:
        with self._lock:
            return [r for r in self._rules.values() if server is None or r.server == server]

    def check(
        self,
        server: str,
        subject: str,
        peer: str = "",
        actions: Iterable[str] | None = None,
        users: Iterable[str | None] = (),
    ) -> FaultRule | None:
        """The first rule for ``server`` matching ``subject`` that fires now, or None.

        ``actions`` limits the rules considered (a protocol asking "any delay here?").
        ``users`` are who this step is about (the login, an SMTP recipient); a rule with
        a ``user`` fires only when it is one of them, rules without one as before.
        """
        if not self._rules:  # the usual case, asked on every request: no lock, no sets
            return None
        wanted = set(actions) if actions is not None else None
        about = [user for user in users if user]
        with self._lock:
            for rule in self._rules.values():
                if rule.server != server or (wanted is not None and rule.action not in wanted):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.matches(subject) and rule.concerns(about) and rule.roll():
                    rule.fired += 1
                    break
            else:
                return None
        details = {"user": rule.user} if rule.user is not None else {}
        self._journal.record(server, "fault", peer, rule=rule.id, action=rule.action, subject=subject, **details)
        return rule
