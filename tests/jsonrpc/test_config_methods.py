"""Methods from config: results templated from the params, and Python callables by dotted path."""

from __future__ import annotations

import textwrap

import jsonrpcclient
import pytest
import requests

from servers.core import ConfigError


def call(server, method, params=None, id_=1):
    message = {"jsonrpc": "2.0", "method": method, "id": id_}
    if params is not None:
        message["params"] = params
    return requests.post(server.url, json=message, timeout=10).json()


TEMPLATES = {
    "greet": '{"greeting": "Hello, {name}!", "name": "{name}", "literal": "{{name}}"}',
    "typed": '{"count": "{count}", "tags": "{tags}", "first_tag": "{tags.0}", "email": "{user.email}"}',
    "positional": '["{1}", "{0}", "{0} and {1}"]',
    "keyed": '{"{key}": "{value}"}',
}


@pytest.fixture
def templated(refservers_start):
    return refservers_start("jsonrpc", templates=TEMPLATES)


def test_named_params_are_substituted_into_text(templated):
    assert call(templated, "greet", {"name": "Ada"})["result"] == {
        "greeting": "Hello, Ada!", "name": "Ada", "literal": "{name}"
    }


def test_a_whole_placeholder_keeps_the_param_type_and_paths_reach_inside(templated):
    params = {"count": 3, "tags": ["a", "b"], "user": {"email": "ada@example.test"}}
    assert call(templated, "typed", params)["result"] == {
        "count": 3, "tags": ["a", "b"], "first_tag": "a", "email": "ada@example.test"
    }


def test_positional_params_by_index_and_non_strings_as_json_text_inside_text(templated):
    assert call(templated, "positional", ["x", 2])["result"] == [2, "x", "x and 2"]
    assert call(templated, "keyed", {"key": "k", "value": None})["result"] == {"k": None}


def test_a_missing_param_is_invalid_params_naming_it(templated):
    reply = call(templated, "typed", {"count": 1, "tags": [], "user": {}})
    assert reply["error"]["code"] == -32602 and reply["error"]["data"] == "missing param tags.0"
    parsed = jsonrpcclient.parse(call(templated, "greet"))
    assert isinstance(parsed, jsonrpcclient.Error) and parsed.code == -32602


def test_expressions_are_not_evaluated(refservers_start):
    # Python's str.format would reach attributes and conversions; a template only looks params up.
    for text in ('"{name!r}"', '"{name:>10}"', '"{1+1}"', '"{}"', '"{a[0]}"'):
        with pytest.raises(ConfigError, match=r"^\[jsonrpc\] templates\.t: placeholder .* is not a param name"):
            refservers_start("jsonrpc", templates={"t": text})
    server = refservers_start("jsonrpc", templates={"kind": '"{name.__class__}"'})
    assert call(server, "kind", {"name": "Ada"})["error"]["data"] == "missing param name.__class__"
    assert call(server, "kind", {"name": {"__class__": "plain key"}})["result"] == "plain key"


@pytest.mark.parametrize(
    "text, expected",
    [
        ('"Hello {name"', r"unmatched '\{' in"),
        ('"}"', r"unmatched '\}' in"),
        ("{nope", "expected JSON text"),
    ],
)
def test_bad_templates_fail_at_startup_naming_the_key(refservers_start, text, expected):
    with pytest.raises(ConfigError, match=r"^\[jsonrpc\] templates\.t: " + expected):
        refservers_start("jsonrpc", templates={"t": text})


CALLABLES_MODULE = textwrap.dedent(
    '''
    """Methods for the refservers JSON-RPC tests."""
    from servers.jsonrpc import MethodError

    def greet(name, punctuation="!"):
        """Greet someone by name."""
        return f"Hello, {name}{punctuation}"

    def withdraw(amount):
        if amount > 100:
            raise MethodError(-32050, "insufficient funds", {"balance": 100})
        return 100 - amount

    def broken():
        return 1 / 0

    def not_json():
        return object()
    '''
)


@pytest.fixture
def with_callables(refservers_start, tmp_path, monkeypatch, request):
    # A module name of this test's own, so parallel tests never share a cached module.
    module = f"rpc_methods_{abs(hash(request.node.nodeid))}"
    (tmp_path / f"{module}.py").write_text(CALLABLES_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return refservers_start(
        "jsonrpc",
        callables={
            "greet": f"{module}:greet",
            "withdraw": f"{module}:withdraw",
            "broken": f"{module}:broken",
            "not_json": f"{module}:not_json",
            "hypot": "math:hypot",
            "join": "os.path:join",
        },
    )


def test_callables_get_positional_and_named_params(with_callables):
    assert call(with_callables, "greet", ["Ada"])["result"] == "Hello, Ada!"
    assert call(with_callables, "greet", {"name": "Ada", "punctuation": "?"})["result"] == "Hello, Ada?"
    assert call(with_callables, "hypot", [3, 4])["result"] == 5.0
    assert call(with_callables, "join", ["a", "b"])["result"] == "a/b"


def test_callable_errors(with_callables):
    assert call(with_callables, "withdraw", [50])["result"] == 50
    assert call(with_callables, "withdraw", [500]) == {
        "jsonrpc": "2.0", "error": {"code": -32050, "message": "insufficient funds", "data": {"balance": 100}}, "id": 1
    }
    wrong = call(with_callables, "greet", {"nobody": 1})["error"]
    assert wrong["code"] == -32602
    broken = call(with_callables, "broken")["error"]
    assert broken["code"] == -32603 and "ZeroDivisionError" in broken["data"]
    assert call(with_callables, "not_json")["error"]["code"] == -32603
    assert call(with_callables, "ping")["result"] == "pong"  # the server keeps serving


def test_rpc_discover_lists_templates_and_callables(with_callables, refservers_start):
    document = call(with_callables, "rpc.discover")["result"]
    by_name = {method["name"]: method for method in document["methods"]}
    assert by_name["greet"]["summary"] == "Greet someone by name."
    assert [(p["name"], p["required"]) for p in by_name["greet"]["params"]] == [("name", True), ("punctuation", False)]
    assert {"withdraw", "broken", "hypot", "join", "ping", "rpc.discover"} <= set(by_name)
    templated = refservers_start("jsonrpc", templates=TEMPLATES)
    by_name = {m["name"]: m for m in call(templated, "rpc.discover")["result"]["methods"]}
    assert [p["name"] for p in by_name["typed"]["params"]] == ["count", "tags", "user"]
    assert [p["name"] for p in by_name["positional"]["params"]] == ["1", "0"]


@pytest.mark.parametrize(
    "path, expected",
    [
        ("no_colon_here", r'expected "package\.module:function", got \'no_colon_here\''),
        ("no_such_module_xyz:f", r"cannot import 'no_such_module_xyz' \(ModuleNotFoundError: "),
        ("math:no_such_function", r"module 'math' has no attribute 'no_such_function'"),
        ("math:pi", r"'math:pi' is not callable"),
        ("asyncio:sleep", r"'asyncio:sleep' is a coroutine function; give a plain function"),
    ],
)
def test_a_bad_callable_path_fails_at_startup_in_one_line_naming_the_key(refservers_start, path, expected):
    with pytest.raises(ConfigError, match=r"^\[jsonrpc\] callables\.f: " + expected) as caught:
        refservers_start("jsonrpc", callables={"f": path})
    assert "\n" not in str(caught.value)


def test_one_name_in_two_tables_fails_at_startup(refservers_start):
    with pytest.raises(ConfigError, match=r"^\[jsonrpc\] templates\.v: already defined in methods$"):
        refservers_start("jsonrpc", methods={"v": "1"}, templates={"v": '"{0}"'})


def test_callables_from_the_environment_text_form(refservers_start):
    server = refservers_start("jsonrpc", callables="hypot=math:hypot;gcd=math:gcd")
    assert call(server, "gcd", [12, 18])["result"] == 6


def test_own_methods_carry_their_signature_and_callables_are_left_alone(with_callables):
    # jsonrpcserver asks inspect.signature on every call; refservers' own functions have
    # it stored (__signature__), what config imports from the user is not touched.
    methods = with_callables.methods
    assert all("__signature__" in vars(methods[name]) for name in ("ping", "add", "echo"))
    assert not any("__signature__" in vars(methods[name]) for name in ("greet", "withdraw"))
    assert call(with_callables, "add", [1, 2, 3])["error"]["code"] == -32602  # binding still checked
