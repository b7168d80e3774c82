"""JSON Schemas (draft 2020-12) of the admin API's bodies, for the routes' declarations.

Plain data: a :class:`~.web.Route` names one of these as its ``body`` or ``reply``, and
the OpenAPI document (openapi.py) carries them. They describe what the handlers send
(tests/core/test_openapi.py checks real replies against them); keys a schema does not
name are allowed, as clients of a JSON API must ignore keys they do not know.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
INTEGER: Schema = {"type": "integer"}
NUMBER: Schema = {"type": "number"}
BOOLEAN: Schema = {"type": "boolean"}


def nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(required: tuple[str, ...] | None = None, **properties: Schema) -> Schema:
    """An object with these properties (all of them required unless ``required`` says which)."""
    return {"type": "object", "properties": properties, "required": list(properties if required is None else required)}


EVENT = obj(
    id=INTEGER,
    time={"type": "number", "description": "Unix time"},
    server=STRING,
    kind={"type": "string", "description": "connect, disconnect, command, auth, message, file, request, fault..."},
    peer=STRING,
    details={"type": "object", "description": "what the server recorded, per kind"},
)
EVENTS = obj(events=array(EVENT), last_id=INTEGER)

SERVER = obj(
    name=STRING,
    state={"enum": ["stopped", "starting", "ready", "failed"]},
    host=STRING,
    listeners={"type": "object", "additionalProperties": INTEGER},
    url=nullable(STRING),
)
SERVERS = obj(servers=array(SERVER))
HEALTH = obj(status={"enum": ["ok", "unavailable"]}, servers=array(SERVER))

FAULT_SPEC = obj(
    ("server", "action"),
    server=STRING,
    action=STRING,
    match={"type": "string", "description": "glob on the server's subject (default *)"},
    user=nullable(STRING),
    probability={"type": "number", "minimum": 0, "maximum": 1},
    seed=nullable(INTEGER),
    times=nullable(INTEGER),
    params={"type": "object"},
)
FAULT_RULE = obj(
    id=STRING,
    server=STRING,
    action=STRING,
    match=STRING,
    user=nullable(STRING),
    probability=NUMBER,
    seed=nullable(INTEGER),
    times=nullable(INTEGER),
    params={"type": "object"},
    fired=INTEGER,
)
FAULT_RULES = obj(faults=array(FAULT_RULE))
FAULT_SPECS: Schema = {"anyOf": [FAULT_SPEC, array(FAULT_SPEC)]}
FAULT_ACTIONS = obj(rule_fields={"type": "object"}, servers={"type": "object"})

SCENARIO = obj(
    (),
    users=array({"type": "object"}),
    messages=array({"type": "object"}),
    files=array({"type": "object"}),
    faults=array(FAULT_SPEC),
    proxies=array({"type": "object"}),
)
APPLIED = obj(applied={"type": "object", "additionalProperties": INTEGER})
RESET = obj(reset={"const": True}, applied={"type": "object", "additionalProperties": INTEGER})
CLEARED = obj(cleared={"const": True})
REMOVED = obj(removed=STRING)

USER = obj(("name", "read_only"), name=STRING, read_only=BOOLEAN, mailbox=BOOLEAN)
USERS = obj(users=array(USER))
MAILBOXES = obj(mailboxes=array(obj(name=STRING, account=BOOLEAN)))
NEW_USER = obj(("name", "password"), name=STRING, password=STRING, read_only=BOOLEAN)

FILE_ENTRY = obj(path=STRING, type={"enum": ["file", "dir", "link"]}, size=INTEGER, mtime=NUMBER)
FILE_TREE: Schema = {
    "anyOf": [
        obj(user=STRING, files=array(FILE_ENTRY)),
        obj(users={"type": "object", "additionalProperties": array(FILE_ENTRY)}),
    ]
}
DIRECTORY = obj(user=STRING, path=STRING, files=array(FILE_ENTRY))
FILE_WRITTEN = obj(user=STRING, path=STRING, bytes=INTEGER)
FILE_REMOVED = obj(user=STRING, removed=STRING)
DIRECTORY_MADE = obj(user=STRING, path=STRING, type={"const": "dir"})
FILES_REMOVED = obj(user=STRING, removed={"type": "integer", "description": "entries removed from the home"})

# Mailpit's shapes (server/apiv1/structs.go, internal/storage/structs.go), with
# refservers' additions (Users, Envelope) where the messages API adds them.
ADDRESS = obj(Name=STRING, Address=STRING)
ADDRESSES = nullable(array(ADDRESS))
MESSAGE_SUMMARY = obj(
    ("ID", "MessageID", "Read", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Created", "Tags", "Size", "Attachments", "Snippet"),
    ID=STRING,
    MessageID=STRING,
    Read=BOOLEAN,
    From=nullable(ADDRESS),
    To=ADDRESSES,
    Cc=ADDRESSES,
    Bcc=ADDRESSES,
    ReplyTo=ADDRESSES,
    Subject=STRING,
    Created={"type": "string", "format": "date-time"},
    Username=STRING,
    Tags=array(STRING),
    Size=INTEGER,
    Attachments=INTEGER,
    Snippet=STRING,
    Users={"type": "array", "items": STRING, "description": "refservers: the mailboxes it was delivered to"},
    Envelope={"type": "object", "description": "refservers: SMTP envelope (From, To)"},
)
MESSAGES = obj(
    total=INTEGER,
    unread=INTEGER,
    count=INTEGER,
    messages_count=INTEGER,
    messages_unread=INTEGER,
    start=INTEGER,
    tags=array(STRING),
    messages=array(MESSAGE_SUMMARY),
)
ATTACHMENT = obj(
    ("PartID", "FileName", "ContentType", "ContentID", "Size"),
    PartID=STRING,
    FileName=STRING,
    ContentType=STRING,
    ContentID=STRING,
    Size=INTEGER,
    Checksums=obj(MD5=STRING, SHA1=STRING, SHA256=STRING),
)
MESSAGE = obj(
    ("ID", "MessageID", "From", "To", "Cc", "Bcc", "ReplyTo", "Subject", "Date", "Tags", "Text", "HTML", "Size", "Inline", "Attachments"),
    ID=STRING,
    MessageID=STRING,
    Read=BOOLEAN,
    From=nullable(ADDRESS),
    To=ADDRESSES,
    Cc=ADDRESSES,
    Bcc=ADDRESSES,
    ReplyTo=ADDRESSES,
    ReturnPath=STRING,
    Subject=STRING,
    ListUnsubscribe={"type": "object"},
    Date={"type": "string", "format": "date-time"},
    Tags=array(STRING),
    Username=STRING,
    Text=STRING,
    HTML=STRING,
    Size=INTEGER,
    Inline=array(ATTACHMENT),
    Attachments=array(ATTACHMENT),
)
MESSAGE_IDS = obj((), IDs=array(STRING))
