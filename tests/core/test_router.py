"""One router for both HTTP surfaces (admin API and HTTP server): the same matching rules
and the same error replies, checked on the table and over the wire on both."""

from __future__ import annotations

import pytest
import requests

from servers.core.web import HttpError, Route, Router


def handler(_request):
    return {}


ROUTER = Router(
    [
        Route("GET", "/items/{id}", handler, "one item"),
        Route(("PUT", "DELETE"), "/items/{id}", handler, "change one"),
        Route("GET", "/files/{path*}", handler, "the rest of the path"),
        Route("GET", "/items/{id}", handler, "a duplicate row is kept once"),
    ]
)


def test_matching_rules():
    route, params = ROUTER.match("GET", "/items/42")
    assert (route.summary, params) == ("one item", {"id": "42"})
    assert ROUTER.match("HEAD", "/items/42")[0].summary == "one item"  # HEAD is served by GET
    assert ROUTER.match("DELETE", "/items/7")[0].methods == ("PUT", "DELETE")
    assert ROUTER.match("GET", "/files/a/b/c.txt")[1] == {"path": "a/b/c.txt"}
    assert len(ROUTER.routes) == 3


@pytest.mark.parametrize(("method", "path", "status", "allow"), [("POST", "/items/1", 405, "DELETE, GET, PUT"), ("GET", "/nothing", 404, None)])
def test_errors(method, path, status, allow):
    with pytest.raises(HttpError) as error:
        ROUTER.match(method, path)
    assert error.value.status == status
    assert dict(error.value.headers).get("Allow") == allow


@pytest.mark.parametrize(("method", "path"), [("DELETE", "/health"), ("GET", "/no/such/thing")])
def test_both_surfaces_answer_alike(refservers_http, refservers_admin, method, path):
    http = requests.request(method, refservers_http.url + (path if path != "/health" else "/get"), timeout=10)
    admin = requests.request(method, refservers_admin.url + path, timeout=10)
    assert http.status_code == admin.status_code
    assert http.json()["error"].split(" ")[:2] == admin.json()["error"].split(" ")[:2]
    assert ("Allow" in http.headers) == ("Allow" in admin.headers)
