"""Stub mappings in WireMock 3's JSON: parsing, checking and the response definition.

A mapping (wiremock.org/docs/stubbing) is ``{"request": {...}, "response": {...}}`` plus
``id``/``uuid``, ``name``, ``priority`` (1 is highest, default 5), ``persistent``,
``scenarioName``/``requiredScenarioState``/``newScenarioState`` and ``metadata``.
The response definition (:class:`ResponseDefinition`) names the status, headers, one
body source (``body``, ``jsonBody``, ``base64Body``, ``bodyFileName``), delays
(``fixedDelayMilliseconds``, ``delayDistribution``, ``chunkedDribbleDelay``), a
``fault``, or ``proxyBaseUrl``; ``transformers: ["response-template"]`` turns on
templating for that stub, as in WireMock 3's default (non-global) templating mode.

:func:`parse_mapping` checks everything once and raises :class:`StubFormatError` naming
the field; the original JSON is kept so the admin API returns what was sent.
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .matching import RequestPattern, StubFormatError, parse_request_pattern

DEFAULT_PRIORITY = 5
STARTED = "Started"  # WireMock's initial scenario state
FAULTS = ("CONNECTION_RESET_BY_PEER", "EMPTY_RESPONSE", "MALFORMED_RESPONSE_CHUNK", "RANDOM_DATA_THEN_CLOSE")
TEMPLATE_TRANSFORMER = "response-template"

MAPPING_KEYS = {
    "id", "uuid", "name", "request", "response", "priority", "persistent", "scenarioName",
    "requiredScenarioState", "newScenarioState", "metadata", "postServeActions", "serveEventListeners", "insertionIndex",
}  # fmt: skip
RESPONSE_KEYS = {
    "status", "statusMessage", "headers", "body", "jsonBody", "base64Body", "bodyFileName",
    "fixedDelayMilliseconds", "delayDistribution", "chunkedDribbleDelay", "fault", "proxyBaseUrl",
    "proxyUrlPrefixToRemove", "additionalProxyRequestHeaders", "removeProxyRequestHeaders",
    "transformers", "transformerParameters", "fromConfiguredStub",
}  # fmt: skip


@dataclass
class Delay:
    """``fixedDelayMilliseconds`` plus a ``delayDistribution``, sampled per request."""

    fixed_ms: float = 0.0
    distribution: dict[str, Any] | None = None

    def sample_seconds(self, rng: random.Random) -> float:
        extra = 0.0
        spec = self.distribution
        if spec is not None:
            kind = spec["type"]
            if kind == "uniform":
                extra = rng.uniform(float(spec["lower"]), float(spec["upper"]))
            elif kind == "lognormal":
                extra = rng.lognormvariate(0.0, float(spec["sigma"])) * float(spec["median"])
                if "maxValue" in spec:
                    extra = min(extra, float(spec["maxValue"]))
            else:  # fixed
                extra = float(spec["milliseconds"])
        return (self.fixed_ms + extra) / 1000.0


@dataclass
class ResponseDefinition:
    json: dict[str, Any]
    status: int = 200
    status_message: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | str | None = None  # str when it may be templated
    body_file: str | None = None
    delay: Delay = field(default_factory=Delay)
    dribble: tuple[int, float] | None = None  # (chunks, total seconds)
    fault: str | None = None
    proxy_base_url: str | None = None
    templated: bool = False


@dataclass
class StubMapping:
    json: dict[str, Any]
    id: str
    request: RequestPattern
    response: ResponseDefinition
    priority: int = DEFAULT_PRIORITY
    scenario: str | None = None
    required_state: str | None = None
    new_state: str | None = None
    persistent: bool = False
    # Where it was loaded from or saved to (None: memory only), and whether that file
    # belongs to a read-only stub pack (configs/stubs/) that the engine must never write.
    source: Path | None = None
    read_only: bool = False
    files_dir: Path | None = None
    insertion: int = 0

    @property
    def name(self) -> str | None:
        value = self.json.get("name")
        return value if isinstance(value, str) else None

    def as_json(self) -> dict[str, Any]:
        """The mapping as WireMock returns it: what was sent, with ``id``/``uuid`` set."""
        out = {"id": self.id, **{k: v for k, v in self.json.items() if k not in ("id", "uuid", "insertionIndex")}}
        out["uuid"] = self.id
        return out


def _number(where: str, value: Any, low: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise StubFormatError(where, f"expected a number >= {low:g}, got {json.dumps(value)}")
    return float(value)


def _headers(where: str, spec: Any) -> list[tuple[str, str]]:
    if not isinstance(spec, dict):
        raise StubFormatError(where, "expected an object of name -> value or [values]")
    headers = []
    for name, value in spec.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, (dict, list)) or item is None:
                raise StubFormatError(f"{where}.{name}", "expected a string or a list of strings")
            text = item if isinstance(item, str) else json.dumps(item)
            if "\n" in text or "\r" in text:
                raise StubFormatError(f"{where}.{name}", "header values cannot contain line breaks")
            headers.append((name, text))
    return headers


def parse_response(where: str, spec: Any) -> ResponseDefinition:
    if not isinstance(spec, dict):
        raise StubFormatError(where, "expected an object")
    unknown = sorted(set(spec) - RESPONSE_KEYS)
    if unknown:
        raise StubFormatError(f"{where}.{unknown[0]}", f"unknown response field; expected one of {', '.join(sorted(RESPONSE_KEYS))}")
    status = spec.get("status", 200)
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise StubFormatError(f"{where}.status", f"expected an HTTP status code, got {json.dumps(status)}")
    transformers = spec.get("transformers", [])
    if not isinstance(transformers, list) or not all(isinstance(t, str) for t in transformers):
        raise StubFormatError(f"{where}.transformers", "expected a list of transformer names")
    response = ResponseDefinition(spec, status=status, templated=TEMPLATE_TRANSFORMER in transformers)
    if "statusMessage" in spec:
        if not isinstance(spec["statusMessage"], str):
            raise StubFormatError(f"{where}.statusMessage", "expected a string")
        response.status_message = spec["statusMessage"]
    if "headers" in spec:
        response.headers = _headers(f"{where}.headers", spec["headers"])
    bodies = [k for k in ("body", "jsonBody", "base64Body", "bodyFileName") if k in spec]
    if len(bodies) > 1:
        raise StubFormatError(f"{where}.{bodies[1]}", f"only one body source allowed, also got {bodies[0]}")
    if "body" in spec:
        if not isinstance(spec["body"], str):
            raise StubFormatError(f"{where}.body", "expected a string (use jsonBody for JSON values)")
        response.body = spec["body"]
    elif "jsonBody" in spec:
        # Jackson's default writer in WireMock: compact, keys in the order given.
        response.body = json.dumps(spec["jsonBody"], separators=(",", ":"), ensure_ascii=False)
    elif "base64Body" in spec:
        try:
            response.body = base64.b64decode(spec["base64Body"], validate=True)
        except (ValueError, TypeError):
            raise StubFormatError(f"{where}.base64Body", "expected base64 text") from None
    elif "bodyFileName" in spec:
        name = spec["bodyFileName"]
        if not isinstance(name, str) or not name:
            raise StubFormatError(f"{where}.bodyFileName", "expected a file name under __files/")
        if not response.templated and (name.startswith("/") or ".." in Path(name).parts):
            raise StubFormatError(f"{where}.bodyFileName", f"{name!r} leaves __files/")
        response.body_file = name
    if "fixedDelayMilliseconds" in spec:
        response.delay.fixed_ms = _number(f"{where}.fixedDelayMilliseconds", spec["fixedDelayMilliseconds"])
    if "delayDistribution" in spec:
        response.delay.distribution = parse_distribution(f"{where}.delayDistribution", spec["delayDistribution"])
    if "chunkedDribbleDelay" in spec:
        dribble = spec["chunkedDribbleDelay"]
        if not isinstance(dribble, dict):
            raise StubFormatError(f"{where}.chunkedDribbleDelay", "expected {numberOfChunks, totalDuration}")
        chunks = _number(f"{where}.chunkedDribbleDelay.numberOfChunks", dribble.get("numberOfChunks"), 1)
        total = _number(f"{where}.chunkedDribbleDelay.totalDuration", dribble.get("totalDuration"))
        response.dribble = (int(chunks), total / 1000.0)
    if "fault" in spec:
        if spec["fault"] not in FAULTS:
            raise StubFormatError(f"{where}.fault", f"expected one of {', '.join(FAULTS)}")
        response.fault = spec["fault"]
    if "proxyBaseUrl" in spec:
        base = spec["proxyBaseUrl"]
        if not isinstance(base, str) or not base.startswith(("http://", "https://")):
            raise StubFormatError(f"{where}.proxyBaseUrl", "expected an http:// or https:// URL")
        response.proxy_base_url = base.rstrip("/")
        for key in ("additionalProxyRequestHeaders",):
            if key in spec:
                _headers(f"{where}.{key}", spec[key])
    return response


def parse_distribution(where: str, spec: Any) -> dict[str, Any]:
    if not isinstance(spec, dict):
        raise StubFormatError(where, "expected an object with a type")
    needs = {"lognormal": ("median", "sigma"), "uniform": ("lower", "upper"), "fixed": ("milliseconds",)}
    kind = spec.get("type")
    if kind not in needs:
        raise StubFormatError(f"{where}.type", f"expected one of {', '.join(needs)}")
    for key in needs[kind]:
        _number(f"{where}.{key}", spec.get(key))
    return spec


def parse_mapping(spec: Any, where: str = "") -> StubMapping:
    """One mapping from WireMock JSON; raises :class:`StubFormatError` naming the field."""
    prefix = f"{where}." if where else ""
    if not isinstance(spec, dict):
        raise StubFormatError(where or "mapping", "expected a JSON object")
    unknown = sorted(set(spec) - MAPPING_KEYS)
    if unknown:
        raise StubFormatError(f"{prefix}{unknown[0]}", "unknown mapping field")
    stub_id = spec.get("id") or spec.get("uuid") or str(uuid.uuid4())
    try:
        stub_id = str(uuid.UUID(str(stub_id)))
    except ValueError:
        raise StubFormatError(f"{prefix}id", f"expected a UUID, got {stub_id!r}") from None
    if "request" not in spec:
        raise StubFormatError(f"{prefix}request", "missing")
    request = parse_request_pattern(f"{prefix}request", spec["request"])
    response = parse_response(f"{prefix}response", spec.get("response", {}))
    priority = spec.get("priority", DEFAULT_PRIORITY)
    if priority is None:
        priority = DEFAULT_PRIORITY
    if isinstance(priority, bool) or not isinstance(priority, int) or priority < 1:
        raise StubFormatError(f"{prefix}priority", "expected an integer >= 1")
    for key in ("name", "scenarioName", "requiredScenarioState", "newScenarioState"):
        if key in spec and spec[key] is not None and not isinstance(spec[key], str):
            raise StubFormatError(f"{prefix}{key}", "expected a string")
    if "metadata" in spec and not isinstance(spec["metadata"], dict):
        raise StubFormatError(f"{prefix}metadata", "expected an object")
    if "persistent" in spec and not isinstance(spec["persistent"], bool):
        raise StubFormatError(f"{prefix}persistent", "expected true or false")
    body = dict(spec)
    body.pop("uuid", None)
    body["id"] = stub_id
    return StubMapping(
        json=body,
        id=stub_id,
        request=request,
        response=response,
        priority=priority,
        scenario=spec.get("scenarioName"),
        required_state=spec.get("requiredScenarioState"),
        new_state=spec.get("newScenarioState"),
        persistent=spec.get("persistent") is True,
    )


def mappings_in_document(document: Any) -> list[tuple[str, Any]]:
    """A mapping file holds one mapping or ``{"mappings": [...]}``; (field path, JSON) pairs."""
    if isinstance(document, dict) and isinstance(document.get("mappings"), list):
        return [(f"mappings[{i}]", item) for i, item in enumerate(document["mappings"])]
    return [("", document)]
