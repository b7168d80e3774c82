"""The admin API's OpenAPI document: valid OpenAPI 3.1, complete, and true to real replies.

Every store in use (mail through SMTP, files through FTP, users) and the contributed
routes (TCP proxies, news), all started in-process; the document is checked with
openapi-spec-validator, compared with the routes the admin API serves, and its declared
reply schemas are checked against real replies with jsonschema.
"""

from __future__ import annotations

import ftplib
import io
import json
import re
import smtplib
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

from servers.core.openapi import openapi_path

EVERY_KIND_OF_ROUTE = ("smtp", "ftp", "proxy", "nntp")


def fetch(url: str, method: str = "GET", body: Any = None) -> tuple[int, str, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.headers.get_content_type(), reply.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get_content_type(), error.read()


def document(admin: Any, path: str = "/api/v1/openapi.json") -> dict[str, Any]:
    status, content_type, body = fetch(admin.url + path)
    assert (status, content_type) == (200, "application/json")
    return json.loads(body)  # type: ignore[no-any-return]


@pytest.fixture
def everything(refservers_start):
    servers = {name: refservers_start(name) for name in EVERY_KIND_OF_ROUTE}
    servers["admin"] = refservers_start("admin")
    return servers


def send_mail(smtp_server: Any, subject: str) -> None:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "alice@example.com", "demo@localhost", subject
    message.set_content("hello from the OpenAPI test")
    with smtplib.SMTP(smtp_server.probe_host, smtp_server.port, timeout=10) as client:
        client.send_message(message)


def test_the_document_is_valid_openapi_3_1_at_both_paths(everything):
    spec = document(everything["admin"])
    validate(spec)  # raises OpenAPIValidationError, naming the place, when invalid
    assert spec["openapi"] == "3.1.0"
    assert document(everything["admin"], "/api/v1/swagger.json") == spec


def test_every_route_served_is_in_the_document_with_its_path_parameters(everything):
    admin = everything["admin"]
    spec = document(admin)
    status, _, index = fetch(admin.url + "/api/v1")
    served = [
        (method, entry["path"])
        for entry in json.loads(index)["endpoints"]
        for method in ([entry["method"]] if isinstance(entry["method"], str) else entry["method"])
    ]
    # One route of each family: the admin's own, each store's, each contributed one.
    for expected in [
        ("GET", "/api/v1/events"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/message/{id}/part/{part}"),
        ("PUT", "/api/v1/files/{user}/{path*}"),
        ("DELETE", "/api/v1/proxies/{name}"),
        ("GET", "/api/v1/news/{group}/{number}"),
    ]:
        assert expected in served
    for method, pattern in served:
        operation = spec["paths"][openapi_path(pattern)][method.lower()]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(re.findall(r"\{(\w+)\*?\}", pattern)), (method, pattern)
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert documented == {(method, openapi_path(pattern)) for method, pattern in served}


def test_the_document_follows_the_servers_running_now(refservers_start):
    admin = refservers_start("admin")
    assert "/api/v1/messages" not in document(admin)["paths"]
    refservers_start("smtp")
    paths = document(admin)["paths"]
    assert "/api/v1/messages" in paths and "/api/v1/users" in paths
    assert "/api/v1/files" not in paths  # no file server runs


def test_declared_query_parameters_and_bodies_are_in_the_document(everything):
    paths = document(everything["admin"])["paths"]
    events = {p["name"]: p["schema"]["type"] for p in paths["/api/v1/events"]["get"]["parameters"]}
    assert events == {"server": "string", "kind": "string", "since": "integer", "limit": "integer"}
    search = {p["name"]: p for p in paths["/api/v1/search"]["get"]["parameters"]}
    assert search["query"]["required"] is True and search["start"]["schema"]["type"] == "integer"
    add_fault = paths["/api/v1/faults"]["post"]
    assert "201" in add_fault["responses"] and "requestBody" in add_fault
    assert "text/plain" in paths["/metrics"]["get"]["responses"]["200"]["content"]


def reply_schema(spec: dict[str, Any], method: str, pattern: str, status: int) -> dict[str, Any]:
    response = spec["paths"][openapi_path(pattern)][method.lower()]["responses"][str(status)]
    return response["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def test_real_replies_match_the_declared_schemas(everything):
    admin, smtp_server, ftp_server = everything["admin"], everything["smtp"], everything["ftp"]
    send_mail(smtp_server, "schema check")
    smtp_server.journal.wait_for(server="smtp", kind="message")
    with ftplib.FTP() as client:
        client.connect(ftp_server.probe_host, ftp_server.port, timeout=10)
        client.login("demo", "demo")
        client.storbinary("STOR schema.txt", io.BytesIO(b"schema"))
    spec = document(admin)
    # Calls whose replies must match: (method, route pattern, concrete path, body, status).
    calls: list[tuple[str, str, str, Any, int]] = [
        ("POST", "/api/v1/faults", "/api/v1/faults", {"server": "smtp", "action": "delay", "match": "NOOP*"}, 201),
        ("POST", "/api/v1/users", "/api/v1/users", {"name": "carol", "password": "pw"}, 201),
        ("GET", "/api/v1/message/{id}", "/api/v1/message/latest", None, 200),
        ("GET", "/api/v1/search", "/api/v1/search?query=subject:schema", None, 200),
        ("GET", "/api/v1/messages/wait", "/api/v1/messages/wait?subject=schema&timeout=5", None, 200),
        ("GET", "/api/v1/files/{user}/{path*}", "/api/v1/files/demo/", None, 200),
        ("PUT", "/api/v1/files/{user}/{path*}", "/api/v1/files/demo/new.txt", "seeded", 201),
        ("GET", "/api/v1/files", "/api/v1/files?user=demo", None, 200),
        ("POST", "/api/v1/files/{user}/{path*}", "/api/v1/files/demo/made/here", {}, 201),
        ("DELETE", "/api/v1/files/{user}/{path*}", "/api/v1/files/demo/new.txt", None, 200),
        ("DELETE", "/api/v1/users/{name}", "/api/v1/users/carol", None, 200),
    ]
    # Every GET without a path or required parameter that declares a JSON reply.
    for path, item in spec["paths"].items():
        get = item.get("get")
        if (
            get
            and "{" not in path
            and not any(parameter.get("required") for parameter in get.get("parameters", []))
            and "application/json" in get["responses"].get("200", {}).get("content", {})
        ):
            calls.append(("GET", path, path, None, 200))
    # Last, as a reset drops the mail and files above.
    calls += [
        ("POST", "/api/v1/scenario", "/api/v1/scenario", {"users": [{"name": "dave", "password": "pw"}]}, 200),
        ("POST", "/api/v1/reset", "/api/v1/reset", None, 200),
    ]
    checked = set()
    for method, pattern, path, body, status in calls:
        got_status, content_type, raw = fetch(admin.url + path, method, body)
        assert (got_status, content_type) == (status, "application/json"), (method, path, raw[:200])
        jsonschema.validate(json.loads(raw), reply_schema(spec, method, pattern, status))
        checked.add(pattern)
    for main in ("/health", "/api/v1/events", "/api/v1/faults", "/api/v1/scenario", "/api/v1/messages", "/api/v1/users"):
        assert main in checked
