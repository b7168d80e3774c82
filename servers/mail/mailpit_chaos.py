"""Mailpit's chaos triggers (internal/smtpd/chaos) as fault rules of the ``smtp`` server.

Mailpit has three triggers, each an SMTP error code (400-599) and a probability in
percent: ``Sender`` fails MAIL FROM, ``Recipient`` fails RCPT TO, ``Authentication``
fails AUTH, with the reply ``<code> Chaos <sender|recipient|authentication> error``.
Here each trigger is one fault rule with a fixed id (``mailpit-chaos-sender``...), so
``/api/v1/faults`` and the scenario file see and can change the same state; a
probability of 0 removes the rule. Unlike Mailpit (``--enable-chaos``), chaos is always
available.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.faults import FaultBook, FaultError


@dataclass(frozen=True)
class Trigger:
    name: str  # Mailpit's key in ChaosTriggers
    rule_id: str
    match: str  # glob over the SMTP command line the server checks faults against
    default_code: int
    reply_word: str


TRIGGERS = (
    Trigger("Sender", "mailpit-chaos-sender", "MAIL *", 451, "sender"),
    Trigger("Recipient", "mailpit-chaos-recipient", "RCPT *", 451, "recipient"),
    Trigger("Authentication", "mailpit-chaos-authentication", "AUTH *", 535, "authentication"),
)
SMTP_SERVER = "smtp"


class ChaosError(ValueError):
    """Bad triggers; the message is Mailpit's."""


def current(faults: FaultBook) -> dict[str, dict[str, int]]:
    """chaos.Config as GET /api/v1/chaos returns it, read back from the fault rules."""
    rules = {rule.id: rule for rule in faults.rules(SMTP_SERVER)}
    config = {}
    for trigger in TRIGGERS:
        rule = rules.get(trigger.rule_id)
        if rule is None:
            config[trigger.name] = {"ErrorCode": trigger.default_code, "Probability": 0}
            continue
        reply = str(rule.params.get("reply", ""))
        code = int(reply[:3]) if reply[:3].isdigit() else trigger.default_code
        config[trigger.name] = {"ErrorCode": code, "Probability": round(rule.probability * 100)}
    return config


def apply(faults: FaultBook, body: Any) -> dict[str, dict[str, int]]:
    """chaos.SetFromStruct: every trigger is set (a missing one to code default, 0%)."""
    if not isinstance(body, dict):
        raise ChaosError("json: cannot unmarshal into Go value of type chaos.Triggers")
    wanted = []
    for trigger in TRIGGERS:
        given = _field(body, trigger.name) or {}
        if not isinstance(given, dict):
            raise ChaosError(f"json: cannot unmarshal into Go struct field Triggers.{trigger.name}")
        code, probability = _field(given, "ErrorCode") or 0, _field(given, "Probability") or 0
        if not isinstance(code, int) or not isinstance(probability, int):
            raise ChaosError(f"json: cannot unmarshal into Go struct field Triggers.{trigger.name} of type int")
        code = code or trigger.default_code
        if not 400 <= code <= 599:
            raise ChaosError("error code must be between 400 and 599")
        if not 0 <= probability <= 100:
            raise ChaosError("probability must be between 0 and 100")
        wanted.append((trigger, code, probability))
    for trigger, code, probability in wanted:
        faults.remove(trigger.rule_id)
        if probability == 0:
            continue
        try:
            faults.add(
                {
                    "id": trigger.rule_id,
                    "server": SMTP_SERVER,
                    "match": trigger.match,
                    "action": "error",
                    "probability": probability / 100,
                    "params": {"reply": f"{code} Chaos {trigger.reply_word} error"},
                }
            )
        except FaultError as error:
            raise ChaosError(str(error)) from None
    return current(faults)


def _field(body: dict[str, Any], name: str) -> Any:
    """Go's encoding/json matches field names case-insensitively."""
    for key, value in body.items():
        if key.lower() == name.lower():
            return value
    return None
