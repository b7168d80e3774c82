"""FaultBook: declarative fault rules every server consults, set from config or the API.

A :class:`FaultRule` names a server, a glob matched against what the server is handling
(an SMTP verb line, an HTTP path, a DNS name, a proxy target), an action, and how often
it fires (``probability`` with an optional ``seed`` for repeatable runs, ``times`` to
fire only N times). Each server declares the actions it understands in
``Server.fault_actions``; the book rejects others, so a typo fails loudly.

Servers call :meth:`FaultBook.check` at their decision points and carry the action out
themselves (an error reply, a delay, a dropped connection, a proxy toxic), because
only the protocol knows what an error reply looks like. Every firing is journalled.
"""

from __future__ import annotations

import fnmatch
import itertools
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .journal import EventJournal

RULE_FIELDS = {"server", "match", "action", "probability", "seed", "times", "params", "id"}


class FaultError(ValueError):
    """A rule that cannot be accepted; the message names the field."""


@dataclass
class FaultRule:
    id: str
    server: str
    action: str
    match: str = "*"
    probability: float = 1.0
    seed: int | None = None
    times: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fired: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    def matches(self, subject: str) -> bool:
        return fnmatch.fnmatchcase(subject.lower(), self.match.lower())

    def roll(self) -> bool:
        return self.probability >= 1.0 or self._random.random() < self.probability

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_random", None)
        return data


class FaultBook:
    def __init__(self, journal: EventJournal, actions: Mapping[str, Iterable[str]]):
        """``actions`` maps each server name to the fault actions it implements."""
        self._journal = journal
        self._actions = {server: set(names) for server, names in actions.items()}
        self._rules: dict[str, FaultRule] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def add(self, spec: Mapping[str, Any]) -> FaultRule:
        """Validate ``spec`` (as JSON or TOML gives it) and add it; raises FaultError."""
        unknown = set(spec) - RULE_FIELDS
        if unknown:
            raise FaultError(f"unknown field {sorted(unknown)[0]!r} (known: {', '.join(sorted(RULE_FIELDS))})")
        server = spec.get("server")
        if server not in self._actions:
            raise FaultError(f"server: expected one of {', '.join(sorted(self._actions))}, got {server!r}")
        action = spec.get("action")
        if action not in self._actions[server]:
            known = ", ".join(sorted(self._actions[server])) or "none"
            raise FaultError(f"action: {server} supports {known}; got {action!r}")
        probability = spec.get("probability", 1.0)
        if isinstance(probability, bool) or not isinstance(probability, (int, float)) or not 0 <= probability <= 1:
            raise FaultError(f"probability: expected a number 0-1, got {probability!r}")
        for name in ("seed", "times"):
            value = spec.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise FaultError(f"{name}: expected a non-negative integer, got {value!r}")
        match = spec.get("match", "*")
        params = spec.get("params", {})
        if not isinstance(match, str):
            raise FaultError(f"match: expected a glob string, got {match!r}")
        if not isinstance(params, dict):
            raise FaultError(f"params: expected an object, got {params!r}")
        with self._lock:
            rule_id = str(spec.get("id") or f"f{next(self._ids)}")
            rule = FaultRule(
                id=rule_id,
                server=server,
                action=action,
                match=match,
                probability=float(probability),
                seed=spec.get("seed"),
                times=spec.get("times"),
                params=dict(params),
            )
            self._rules[rule_id] = rule
        return rule

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

    def check(self, server: str, subject: str, peer: str = "", actions: Iterable[str] | None = None) -> FaultRule | None:
        """The first rule for ``server`` matching ``subject`` that fires now, or None.

        ``actions`` limits the rules considered (a protocol asking "any delay here?").
        """
        wanted = set(actions) if actions is not None else None
        with self._lock:
            for rule in self._rules.values():
                if rule.server != server or (wanted is not None and rule.action not in wanted):
                    continue
                if rule.times is not None and rule.fired >= rule.times:
                    continue
                if rule.matches(subject) and rule.roll():
                    rule.fired += 1
                    break
            else:
                return None
        self._journal.record(server, "fault", peer, rule=rule.id, action=rule.action, subject=subject)
        return rule
