"""The OpenAPI 3.1 document of a route table, generated from its :class:`~.web.Route` rows.

Follows OpenAPI 3.1.0 (https://spec.openapis.org/oas/v3.1.0), whose schemas are JSON
Schema draft 2020-12. The admin API serves it at ``/api/v1/openapi.json`` (and at
Mailpit's ``/api/v1/swagger.json``), built on each request from the routes it is
serving at that moment, so a path appears exactly when it is routed.

What each row gives: the path (``{name}`` is a path parameter; a ``{name*}`` rest of
path becomes ``{name}`` too, described as possibly holding slashes, which OpenAPI
templating cannot say), the method, the summary, and, where the row declares them, its
query parameters, request body schema, success status, reply media type and schema.
Replies a row does not describe are documented as the success status alone. Errors of
refservers' own routes are ``{"error": "..."}`` (components/schemas/Error); Mailpit's
and MailHog's routes answer errors as plain text, like the originals.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from .web import Route

OPENAPI_VERSION = "3.1.0"
_PLACEHOLDER = re.compile(r"\{(\w+)(\*?)\}")
_STATUS_TEXT = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 302: "Found"}

# The error body of refservers' own routes (web.ApiError).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "what was wrong, in one line"}},
    "required": ["error"],
}


def openapi_path(pattern: str) -> str:
    """``/api/v1/files/{user}/{path*}`` -> ``/api/v1/files/{user}/{path}``."""
    return _PLACEHOLDER.sub(lambda found: "{" + found.group(1) + "}", pattern)


def operation_id(method: str, pattern: str) -> str:
    """A unique, stable id: the method and the pattern's words (``get_api_v1_message_id_raw``)."""
    return "_".join([method.lower(), *re.findall(r"[A-Za-z0-9]+", pattern)])


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    for name, rest in _PLACEHOLDER.findall(route.pattern):
        parameter: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        if rest:
            parameter["description"] = "the rest of the path: may hold slashes"
        parameters.append(parameter)
    for query in route.query:
        entry: dict[str, Any] = {"name": query.name, "in": "query", "schema": {"type": query.type}}
        if query.help:
            entry["description"] = query.help
        if query.required:
            entry["required"] = True
        parameters.append(entry)
    return parameters


def _operation(method: str, route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": operation_id(method, route.pattern), "summary": route.summary or route.pattern}
    parameters = _parameters(route)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        # A DELETE's body narrows what it deletes (Mailpit's {IDs}); without one, it is all.
        required = method != "DELETE"
        operation["requestBody"] = {"required": required, "content": {"application/json": {"schema": dict(route.body)}}}
    success: dict[str, Any] = {"description": _STATUS_TEXT.get(route.status, "success")}
    if route.reply is not None:
        success["content"] = {route.media_type: {"schema": dict(route.reply)}}
    operation["responses"] = {str(route.status): success}
    return operation


def openapi_document(routes: Iterable[Route], title: str, version: str, description: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes`` (the first row of a method and path wins, as in dispatch)."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operations = paths.setdefault(openapi_path(route.pattern), {})
        for method in route.methods:
            operations.setdefault(method.lower(), _operation(method, route))
    info: dict[str, Any] = {"title": title, "version": version}
    if description:
        info["description"] = description
    return {
        "openapi": OPENAPI_VERSION,
        "info": info,
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
    }
