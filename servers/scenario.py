"""Scenarios: the start-up state of a test run as one document, applied, exported, reset.

A scenario (TOML or JSON) lists ``users``, ``messages``, ``files``, ``faults``,
``proxies`` and ``stubs`` (WireMock mappings for the HTTP server, servers/http/stubs/):

    {"users":    [{"name": "alice", "password": "pw"}],
     "messages": [{"to": "alice", "from": "x@example.test", "subject": "Hi", "text": "body"}],
     "files":    [{"user": "alice", "path": "docs/a.txt", "text": "..."}],
     "faults":   [{"server": "smtp", "match": "RCPT*", "action": "error", ...}],
     "proxies":  [{"name": "db", "listen": "127.0.0.1:0", "upstream": "127.0.0.1:5432"}],
     "stubs":    [{"request": {"url": "/v1/orders/42"}, "response": {"jsonBody": {"id": 42}}}]}

Rules this module keeps:

1. **Checked whole, then applied.** :func:`parse` refuses a malformed document with one
   line naming the entry and field (``messages[3].to: no such user and
   unknown_recipients=reject``) before anything changes; what only the running servers
   can refuse (a fault rule, a proxy's port) is rolled back if it fails.
2. **Idempotent.** Applying the same scenario twice leaves the same state: users are
   set, files rewritten, fault rules, proxies and stubs replaced by id/name (a stub
   without an id gets one derived from its JSON), and a message is
   delivered once: each carries a Message-ID (its own, or one derived from the entry)
   that is looked up before delivering.
3. **Exported as a scenario.** :func:`export` describes the current state in the same
   form (passwords included: applying it to a fresh instance must reproduce logins).
4. **Reset** drops runtime messages, files, users, fault rules, proxies, stubs (the HTTP
   server's mappings go back to its mapping files, as WireMock's reset) and the journal,
   then re-applies the start scenario.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import email.parser
import email.utils
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .core.config import UserSpec
from .core.users import User

if TYPE_CHECKING:
    from .core.context import Core

SECTIONS = ("users", "messages", "files", "faults", "proxies", "stubs")
FIELDS = {
    "users": {"name", "password", "read_only", "authorized_keys"},
    "messages": {"to", "from", "subject", "text", "html", "eml", "eml_file", "eml_base64", "folder"},
    "files": {"user", "path", "text", "base64", "source"},
    "proxies": {"name", "listen", "upstream"},
}
MESSAGE_BODIES = ("text", "html", "eml", "eml_file", "eml_base64")
FILE_BODIES = ("text", "base64", "source")
DEFAULT_SENDER = "scenario@refservers.test"
INBOX = "INBOX"


class ScenarioError(ValueError):
    """A scenario that cannot be applied; ``str()`` names the entry and field."""


@dataclass
class ScenarioMessage:
    to: str
    folder: str
    data: bytes
    message_id: str
    built: bool = False  # made from text/html fields (else raw RFC 5322 as given)
    sender: str = DEFAULT_SENDER


@dataclass
class ScenarioFile:
    user: str
    path: str
    data: bytes


@dataclass
class Scenario:
    users: list[User] = field(default_factory=list)
    messages: list[ScenarioMessage] = field(default_factory=list)
    files: list[ScenarioFile] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    proxies: list[dict[str, Any]] = field(default_factory=list)
    stubs: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return any((self.users, self.messages, self.files, self.faults, self.proxies, self.stubs))


def load(path: Path) -> Scenario:
    """Read and check a scenario file (``.toml`` or ``.json``); raises ScenarioError."""
    try:
        text = Path(path).read_bytes()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read: {error.strerror}") from None
    import tomllib  # here: `up` and `run` read no scenario file unless one is given or in ./configs

    try:
        document = tomllib.loads(text.decode()) if str(path).endswith(".toml") else json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ScenarioError(f"{path}: not valid {'TOML' if str(path).endswith('.toml') else 'JSON'}: {error}") from None
    try:
        return parse(document, base=Path(path).parent)
    except ScenarioError as error:
        raise ScenarioError(f"{path}: {error}") from None


def parse(document: Any, base: Path | None = None) -> Scenario:
    """Check a scenario document (as JSON or TOML gives it); raises ScenarioError."""
    if not isinstance(document, Mapping):
        raise ScenarioError("expected an object with " + ", ".join(SECTIONS))
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ScenarioError(f"unknown section {unknown[0]!r} (known: {', '.join(SECTIONS)})")
    entries: dict[str, list[Mapping[str, Any]]] = {}
    for section in SECTIONS:
        items = document.get(section, [])
        if not isinstance(items, list):
            raise ScenarioError(f"{section}: expected a list")
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ScenarioError(f"{section}[{index}]: expected an object")
            extra = sorted(set(item) - FIELDS.get(section, set(item)))
            if extra:
                known = ", ".join(sorted(FIELDS[section]))
                raise ScenarioError(f"{section}[{index}].{extra[0]}: unknown field (known: {known})")
        entries[section] = items
    scenario = Scenario()
    scenario.users = [_user(f"users[{i}]", item) for i, item in enumerate(entries["users"])]
    scenario.messages = [_message(f"messages[{i}]", item, base) for i, item in enumerate(entries["messages"])]
    scenario.files = [_file(f"files[{i}]", item, base) for i, item in enumerate(entries["files"])]
    scenario.faults = [dict(item) for item in entries["faults"]]
    scenario.proxies = [_proxy(f"proxies[{i}]", item) for i, item in enumerate(entries["proxies"])]
    scenario.stubs = [_stub(f"stubs[{i}]", item) for i, item in enumerate(entries["stubs"])]
    return scenario


def _stub(where: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """A WireMock mapping, checked now; one without an id gets a stable one (idempotence)."""
    from .http.stubs import StubFormatError
    from .http.stubs.mappings import parse_mapping

    spec = dict(item)
    if not spec.get("id") and not spec.get("uuid"):
        spec["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, "refservers-scenario:" + json.dumps(spec, sort_keys=True)))
    try:
        parse_mapping(spec)
    except StubFormatError as error:
        raise ScenarioError(f"{where}.{error}") from None
    return spec


def _text(where: str, item: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = item.get(key, default)
    if not isinstance(value, str) or (default is None and not value):
        raise ScenarioError(f"{where}.{key}: expected a {'non-empty ' if default is None else ''}string, got {value!r}")
    return value


def _user(where: str, item: Mapping[str, Any]) -> User:
    name = _text(where, item, "name")
    if any(c in name for c in "/\0\r\n") or name.strip() != name:
        raise ScenarioError(f"{where}.name: expected no '/', NUL, CR, LF or outer spaces, got {name!r}")
    password = _text(where, item, "password", "")
    read_only = item.get("read_only", False)
    if not isinstance(read_only, bool):
        raise ScenarioError(f"{where}.read_only: expected true or false, got {read_only!r}")
    keys = item.get("authorized_keys", [])
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        raise ScenarioError(f"{where}.authorized_keys: expected a list of OpenSSH public key lines")
    return User(name, password, read_only, tuple(keys))


def _one_of(where: str, item: Mapping[str, Any], keys: tuple[str, ...], allowed_pairs: tuple[str, ...] = ()) -> list[str]:
    given = [key for key in keys if key in item]
    if not given or (len(given) > 1 and not set(given) <= set(allowed_pairs)):
        raise ScenarioError(f"{where}: expected one of {', '.join(keys)}" + (f", got {', '.join(given)}" if given else ""))
    return given


def _read_source(where: str, key: str, name: Any, base: Path | None) -> bytes:
    if not isinstance(name, str) or not name:
        raise ScenarioError(f"{where}.{key}: expected a file path")
    path = Path(name) if Path(name).is_absolute() or base is None else base / name
    try:
        return path.read_bytes()
    except OSError as error:
        raise ScenarioError(f"{where}.{key}: cannot read {path}: {error.strerror}") from None


def _decode_base64(where: str, key: str, value: Any) -> bytes:
    try:
        return base64.b64decode(value if isinstance(value, str) else "", validate=True)
    except (binascii.Error, ValueError):
        raise ScenarioError(f"{where}.{key}: expected base64") from None


def _message(where: str, item: Mapping[str, Any], base: Path | None) -> ScenarioMessage:
    from email import policy  # here: with its header registry, a visible share of `run http`'s start-up (issue 16)

    to = _text(where, item, "to")
    folder = _text(where, item, "folder", INBOX)
    given = _one_of(where, item, MESSAGE_BODIES, allowed_pairs=("text", "html"))
    if given[0] in ("eml", "eml_file", "eml_base64"):
        for key in ("from", "subject"):
            if key in item:
                raise ScenarioError(f"{where}.{key}: not with {given[0]} (the message carries its own headers)")
        if given[0] == "eml":
            data = _text(where, item, "eml").encode()
        elif given[0] == "eml_file":
            data = _read_source(where, "eml_file", item["eml_file"], base)
        else:
            data = _decode_base64(where, "eml_base64", item["eml_base64"])
        parsed = email.parser.BytesHeaderParser(policy=policy.compat32).parsebytes(data)
        if not parsed.keys():
            raise ScenarioError(f"{where}.{given[0]}: expected an RFC 5322 message (headers, blank line, body)")
        message_id = str(parsed.get("Message-ID", "")).strip() or _derived_id(item)
        if "Message-ID" not in parsed:
            data = f"Message-ID: {message_id}\r\n".encode() + data
        return ScenarioMessage(to, folder, data, message_id)
    message = email.message.EmailMessage()
    message["From"] = _text(where, item, "from", DEFAULT_SENDER)
    message["To"] = to
    message["Subject"] = _text(where, item, "subject", "")
    message_id = _derived_id(item)
    message["Message-ID"] = message_id
    message["Date"] = email.utils.format_datetime(email.utils.localtime())
    if "text" in item:
        message.set_content(_text(where, item, "text", ""))
    if "html" in item:
        html = _text(where, item, "html", "")
        if "text" in item:
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html")
    return ScenarioMessage(to, folder, message.as_bytes(policy=policy.SMTP), message_id, True, str(message["From"]))


def _derived_id(item: Mapping[str, Any]) -> str:
    """A Message-ID that is the same whenever the same entry is applied (idempotence)."""
    digest = hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:32]
    return f"<scenario.{digest}@refservers>"


def _file(where: str, item: Mapping[str, Any], base: Path | None) -> ScenarioFile:
    user = _text(where, item, "user")
    path = _text(where, item, "path")
    (given,) = _one_of(where, item, FILE_BODIES)
    if given == "text":
        data = _text(where, item, "text", "").encode()
    elif given == "base64":
        data = _decode_base64(where, "base64", item["base64"])
    else:
        data = _read_source(where, "source", item["source"], base)
    return ScenarioFile(user, path, data)


def _proxy(where: str, item: Mapping[str, Any]) -> dict[str, Any]:
    name = _text(where, item, "name")
    upstream = _text(where, item, "upstream")
    listen = item.get("listen", 0)
    if isinstance(listen, str):
        host, _, port = listen.rpartition(":")
        listen = int(port) if port.isdigit() else -1
    if isinstance(listen, bool) or not isinstance(listen, int) or not 0 <= listen <= 65535:
        raise ScenarioError(f"{where}.listen: expected a port 0-65535 or host:port, got {item.get('listen')!r}")
    return {"name": name, "listen": listen, "upstream": upstream}


# -- applying -------------------------------------------------------------------------
class ScenarioRunner:
    """Applies, exports and resets scenarios on one Core's stores, faults and proxies
    (one per Core: ``core.shared(ScenarioRunner)``; ``start`` is what a reset re-applies)."""

    @classmethod
    def from_core(cls, core: Core) -> ScenarioRunner:
        return cls(core)

    def __init__(self, core: Core):
        self.core = core
        self.start: Scenario = Scenario()
        # What the config gave, so a reset returns to it.
        self._config_users = {spec.name: _user_of(spec) for spec in core.config.users}
        self._config_faults = [dict(spec) for _, spec in core.config.faults]

    def apply(self, scenario: Scenario) -> dict[str, int]:
        """Apply ``scenario``; raises ScenarioError (nothing half-applied)."""
        self._check_targets(scenario)
        proxy = self._proxy_server() if scenario.proxies else None
        if scenario.proxies and proxy is None:
            raise ScenarioError("proxies[0]: no proxy server runs in this process")
        http: Any = self._http_server() if scenario.stubs else None
        if scenario.stubs and http is None:
            raise ScenarioError("stubs[0]: no http server runs in this process")
        added_faults = []
        try:
            for index, spec in enumerate(scenario.faults):
                spec = {**spec, "id": spec.get("id") or f"scenario-{index + 1}"}
                try:
                    added_faults.append(self.core.faults.add(spec).id)
                except ValueError as error:
                    raise ScenarioError(f"faults[{index}]: {error}") from None
            opened = self._open_proxies(proxy, scenario.proxies) if proxy is not None else 0
        except ScenarioError:
            for rule_id in added_faults:
                self.core.faults.remove(rule_id)
            raise
        for user in scenario.users:
            self.core.users.set(user)
        delivered = self._deliver(scenario.messages)
        files: Any = self.core.store("files") if scenario.files else None
        for entry in scenario.files:
            target = files.resolve(entry.user, entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            files.write_atomic(target, entry.data)
        for spec in scenario.stubs:  # checked by parse(): adding cannot be refused
            http.stubs.engine.add(spec)
        return {
            "users": len(scenario.users),
            "messages": delivered,
            "files": len(scenario.files),
            "faults": len(added_faults),
            "proxies": opened,
            "stubs": len(scenario.stubs),
        }

    def _check_targets(self, scenario: Scenario) -> None:
        mail: Any = self.core.store("mail") if scenario.messages else None
        names = {user.name for user in scenario.users} | set(self.core.users.names())
        for index, message in enumerate(scenario.messages):
            if mail.recipient_of(message.to, names) is None:
                raise ScenarioError(
                    f"messages[{index}].to: no such user and unknown_recipients={mail.unknown_recipients}"
                    if mail.unknown_recipients == "reject"
                    else f"messages[{index}].to: {message.to!r} is not an address this store accepts"
                )
        files: Any = self.core.store("files") if scenario.files else None
        for index, entry in enumerate(scenario.files):
            try:
                files.resolve(entry.user, entry.path)
            except (PermissionError, ValueError) as error:
                raise ScenarioError(f"files[{index}].path: {error}") from None

    def _deliver(self, messages: list[ScenarioMessage]) -> int:
        if not messages:
            return 0
        mail: Any = self.core.store("mail")
        seen: dict[tuple[str, str], set[str]] = {}
        delivered = 0
        for message in messages:
            user = mail.resolve_recipient(message.to)
            place = (user, message.folder)
            if place not in seen:
                seen[place] = _message_ids(mail, user, message.folder)
            if message.message_id in seen[place]:
                continue
            if message.built and message.folder == INBOX:
                # As if received over SMTP: the store adds Return-Path and Delivered-To.
                mail.deliver(user, message.data, {"mail_from": message.sender, "rcpt_to": [message.to]})
            else:  # raw messages are stored byte for byte, so an export applies back unchanged
                if message.folder != INBOX and not mail.folder_exists(user, message.folder):
                    mail.create_folder(user, message.folder)
                mail.append(user, message.folder, message.data)
            seen[place].add(message.message_id)
            delivered += 1
        return delivered

    def _http_server(self) -> Any:
        return next((s for s in self.core.servers if s.name == "http" and s.state == "ready"), None)

    def _proxy_server(self) -> Any:
        return next((s for s in self.core.servers if s.name == "proxy" and s.state == "ready"), None)

    def _open_proxies(self, proxy: Any, entries: list[dict[str, Any]]) -> int:
        from .proxy.tcp import parse_route, parse_upstream

        def open_all() -> int:
            opened: list[str] = []
            try:
                for index, entry in enumerate(entries):
                    existing = proxy.tcp_listeners.get(entry["name"])
                    if existing is not None and existing.route.upstream == entry["upstream"] and (
                        entry["listen"] in (0, existing.route.listen_port)
                    ):
                        continue  # the same proxy: kept, with its connections
                    if existing is not None:
                        proxy.close_tcp_listener(entry["name"])
                    try:
                        parse_upstream(entry["upstream"])
                        route = parse_route(f"{entry['name']}@{entry['listen']}={entry['upstream']}")
                        proxy.open_tcp_listener(route, "scenario")
                    except Exception as error:  # noqa: BLE001 - named in the scenario error
                        raise ScenarioError(f"proxies[{index}]: {error}") from None
                    opened.append(entry["name"])
            except ScenarioError:
                for name in opened:
                    proxy.close_tcp_listener(name)
                raise
            return len(opened)

        result: int = self.core.loop.call(open_all)
        return result

    def export(self) -> dict[str, Any]:
        """The current state as a scenario document (see rule 3)."""
        users = [
            {"name": u.name, "password": u.password, "read_only": u.read_only, "authorized_keys": list(u.authorized_keys)}
            for u in sorted(self.core.users, key=lambda user: user.name)
        ]
        document: dict[str, Any] = {"users": users, "messages": [], "files": [], "faults": [], "proxies": [], "stubs": []}
        mail: Any = self.core.built_store("mail")
        if mail is not None:
            for user in mail.mailbox_users():
                for folder in mail.folders(user):
                    for info in mail.messages(user, folder):
                        entry = {"to": user, **_payload("eml", mail.read(user, info.key, folder))}
                        if folder != INBOX:
                            entry["folder"] = folder
                        document["messages"].append(entry)
        files: Any = self.core.built_store("files")
        if files is not None:
            for user in self.core.users.names():
                for node in files.tree(user):
                    if node.kind == "file":
                        data = files.resolve(user, node.path).read_bytes()
                        document["files"].append({"user": user, "path": node.path.lstrip("/"), **_payload("text", data)})
        keep = ("id", "server", "match", "action", "probability", "seed", "times", "params", "user")
        for rule in self.core.faults.rules():
            data = rule.as_json()
            document["faults"].append({key: data[key] for key in keep if data.get(key) is not None})
        proxy = self._proxy_server()
        if proxy is not None:
            for listener in proxy.tcp_listeners.values():
                route = listener.route
                document["proxies"].append({"name": route.name, "listen": route.listen_port, "upstream": route.upstream})
        http = self._http_server()
        if http is not None:  # stubs from mapping files come back with the files, not the scenario
            document["stubs"] = [stub.as_json() for stub in http.stubs.engine.stubs() if stub.source is None]
        return document

    def reset(self) -> dict[str, int]:
        """Back to the start state (rule 4)."""
        mail: Any = self.core.built_store("mail")
        if mail is not None:
            mail.clear()
        files: Any = self.core.built_store("files")
        if files is not None:
            files.clear_homes()
        for name in self.core.users.names():
            if name not in self._config_users:
                self.core.users.remove(name)
        for user in self._config_users.values():
            self.core.users.set(user)
        self.core.faults.clear()
        for spec in self._config_faults:
            self.core.faults.add(spec)
        proxy = self._proxy_server()
        if proxy is not None:
            runtime = [name for name, listener in proxy.tcp_listeners.items() if listener.source != "config"]
            self.core.loop.call(lambda: [proxy.close_tcp_listener(name) for name in runtime])
        http = self._http_server()
        if http is not None:
            http.stubs.engine.reset()
        self.core.journal.clear()
        return self.apply(self.start)


def _user_of(spec: UserSpec) -> User:
    return User(spec.name, spec.password, spec.read_only, spec.authorized_keys)


def _message_ids(mail: Any, user: str, folder: str) -> set[str]:
    if not mail.folder_exists(user, folder):
        return set()
    from email import policy  # (see _message)

    parser = email.parser.BytesHeaderParser(policy=policy.compat32)
    found = set()
    for info in mail.messages(user, folder):
        with open(info.path, "rb") as handle:
            head = handle.read(16384).split(b"\r\n\r\n", 1)[0]
        message_id = parser.parsebytes(head).get("Message-ID")
        if message_id:
            found.add(str(message_id).strip())
    return found


def _payload(text_key: str, data: bytes) -> dict[str, str]:
    try:
        return {text_key: data.decode("utf-8")}
    except UnicodeDecodeError:
        return {("eml_base64" if text_key == "eml" else "base64"): base64.b64encode(data).decode()}
