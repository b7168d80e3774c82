"""The methods the JSON-RPC server offers: built-ins, and methods from config.

Built-ins cover the examples of the JSON-RPC 2.0 specification, section 7 (``subtract``
with positional and named params, ``sum``, ``notify_hello``, ``get_data``) and what a
client test needs (``echo``, ``ping``, ``add``, ``fail``, ``notify``). Every method
receives a :class:`CallContext` first (jsonrpcserver passes it), then the params.
``rpc.discover`` describes them all as an OpenRPC document.

Methods from config, each checked at start-up (a bad entry is a one-line ConfigError
naming its key): a fixed result (``methods``), a fixed error (``errors``), a result
templated from the params (``templates``, see :class:`ResultTemplate`: placeholders
are looked up, never evaluated), and a Python callable by dotted path (``callables``,
``"package.module:function"``).
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Number
from typing import Any

from ..core.config import ConfigError

with warnings.catch_warnings():
    # jsonrpcserver 5.0.9 reads its schema with importlib.resources.read_text at import
    # time, deprecated since Python 3.11; the warning is about the library, not us.
    warnings.simplefilter("ignore", DeprecationWarning)
    from jsonrpcserver import Error, InvalidParams, Success

Method = Callable[..., Any]
OPENRPC_VERSION = "1.2.6"


def with_signature_known(method: Method) -> Method:
    """``method`` with its signature stored on it (``__signature__``, PEP 362).

    jsonrpcserver binds every call's params against ``inspect.signature(method)``, worked
    out anew per call: 8% of a ping's time. ``inspect.signature`` returns a stored
    ``__signature__`` at once. Only for refservers' own functions: a configured callable
    is the user's object, and a bound method takes no attributes.
    """
    method.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return method


class MethodError(Exception):
    """Raised by a configured callable to answer with this JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None):
        super().__init__(code, message, data)
        self.code, self.message, self.data = code, message, data


@dataclass(frozen=True)
class CallContext:
    """Who is calling, over what; handed to every method as its first argument."""

    peer: str
    transport: str
    record: Callable[..., None]  # Server.record bound to this server
    sleep_max: float = 0.0
    # Seconds the reply must wait (``sleep``); the transport waits on the reactor, so a
    # sleeping call never blocks other clients.
    delays: list[float] = field(default_factory=list)


def _numbers(*values: Any) -> Any:
    """None when every value is a JSON number, else an Invalid params result."""
    for value in values:
        if isinstance(value, bool) or not isinstance(value, Number):
            return InvalidParams(f"expected numbers, got {value!r}")
    return None


def echo(context: CallContext, *args: Any, **kwargs: Any) -> Any:
    """Return the params as given (the array, or the object)."""
    return Success(kwargs if kwargs else list(args))


def ping(context: CallContext) -> Any:
    """Return "pong"."""
    return Success("pong")


def add(context: CallContext, a: Any, b: Any) -> Any:
    """Return a + b."""
    return _numbers(a, b) or Success(a + b)


def subtract(context: CallContext, minuend: Any, subtrahend: Any) -> Any:
    """Return minuend - subtrahend (positional or named, as in the spec)."""
    return _numbers(minuend, subtrahend) or Success(minuend - subtrahend)


def sum_(context: CallContext, *numbers: Any) -> Any:
    """Return the sum of the positional params."""
    return _numbers(*numbers) or Success(sum(numbers))


def notify_hello(context: CallContext, *args: Any) -> Any:
    """Record a hello in the journal (meant as a notification); returns null."""
    context.record("message", context.peer, method="notify_hello", params=list(args))
    return Success(None)


def notify(context: CallContext, *args: Any, **kwargs: Any) -> Any:
    """Record the params in the journal (meant as a notification); returns null."""
    context.record("message", context.peer, method="notify", params=kwargs if kwargs else list(args))
    return Success(None)


def get_data(context: CallContext) -> Any:
    """Return ["hello", 5], as in the spec's batch example."""
    return Success(["hello", 5])


def sleep(context: CallContext, seconds: Any) -> Any:
    """Answer after that many seconds (capped by sleep_max); returns the seconds slept."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
        return InvalidParams("expected a non-negative number of seconds")
    slept = min(float(seconds), context.sleep_max)
    context.delays.append(slept)
    return Success(slept)


def fail(context: CallContext, code: Any = -32000, message: Any = "Server error", data: Any = None) -> Any:
    """Answer with the error asked for (code, message, optional data)."""
    if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
        return InvalidParams("expected an integer code and a string message")
    return Error(code, message, data) if data is not None else Error(code, message)


_BUILTIN_METHODS: dict[str, Method] = {
    "echo": echo,
    "ping": ping,
    "add": add,
    "subtract": subtract,
    "sum": sum_,
    "notify_hello": notify_hello,
    "notify": notify,
    "get_data": get_data,
    "fail": fail,
    "sleep": sleep,
}
BUILTINS = {name: with_signature_known(method) for name, method in _BUILTIN_METHODS.items()}


def fixed_result(name: str, result: Any) -> Method:
    def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
        return Success(result)

    method.__doc__ = f"Fixed result from config: {json.dumps(result)[:80]}"
    method.__name__ = name
    return method


def methods_from_config(table: Mapping[str, str]) -> dict[str, Method]:
    """``methods`` option (name -> JSON text) to methods; bad JSON is a ConfigError naming the key."""
    methods = {}
    for name, text in table.items():
        if not name or name.startswith("rpc."):
            raise ConfigError(f"[jsonrpc] methods.{name}: names starting with 'rpc.' are reserved by JSON-RPC 2.0")
        try:
            result = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"[jsonrpc] methods.{name}: expected JSON text, got {text!r} ({error})") from None
        methods[name] = fixed_result(name, result)
    return methods


def fixed_error(name: str, code: int, message: str, data: Any) -> Method:
    def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
        return Error(code, message, data) if data is not None else Error(code, message)

    method.__doc__ = f"Fixed error from config: {code} {message}"
    method.__name__ = name
    return method


def errors_from_config(table: Mapping[str, str]) -> dict[str, Method]:
    """``errors`` option (name -> JSON {"code", "message", "data"?}) to methods that always fail."""
    methods = {}
    for name, text in table.items():
        where = f"[jsonrpc] errors.{name}"
        if not name or name.startswith("rpc."):
            raise ConfigError(f"{where}: names starting with 'rpc.' are reserved by JSON-RPC 2.0")
        try:
            spec = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{where}: expected JSON text, got {text!r} ({error})") from None
        code, message = (spec.get("code"), spec.get("message")) if isinstance(spec, dict) else (None, None)
        if isinstance(code, bool) or not isinstance(code, int) or not isinstance(message, str):
            raise ConfigError(f'{where}: expected {{"code": integer, "message": string, "data": optional}}, got {text!r}')
        methods[name] = fixed_error(name, code, message, spec.get("data"))
    return methods


# A placeholder is ``{path}``; ``{{`` and ``}}`` are literal braces; a lone brace is an error.
PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
# What a placeholder may name: param names and array indexes joined by dots, nothing else.
PARAM_PATH = re.compile(r"(?:[A-Za-z_]\w*|\d+)(?:\.(?:[A-Za-z_]\w*|\d+))*", re.ASCII)


class MissingParam(LookupError):
    """A placeholder the call's params do not provide."""


def _look_up(params: Any, path: str) -> Any:
    value = params
    for step in path.split("."):
        if isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            raise MissingParam(path)
    return value


class ResultTemplate:
    """A result from config whose strings name params, as in ``{"greeting": "Hello, {name}!"}``.

    Rules it keeps:

    1. The template is JSON text; only strings in it (values and object keys) are templated.
    2. A placeholder is a path of param names and array indexes joined by dots (``{name}``,
       ``{0}`` for the first positional param, ``{user.email}``, ``{items.0}``). It is looked
       up in the params, never evaluated: no expressions, no attribute access, no format specs.
    3. A string that is exactly one placeholder becomes that param with its JSON type
       (``"{count}"`` gives ``3``, not ``"3"``); inside longer text a string param goes in as
       it is and any other value as its JSON text.
    4. ``{{`` and ``}}`` are literal braces; an unmatched brace or a placeholder that is not a
       path is a ConfigError at start-up; a param the call does not give is Invalid params.
    """

    def __init__(self, where: str, text: str):
        self.where = where
        try:
            self.template = json.loads(text)
        except ValueError as error:
            raise ConfigError(f"{where}: expected JSON text, got {text!r} ({error})") from None
        self.placeholders: list[str] = []
        self._collect(self.template)

    def _collect(self, value: Any) -> None:
        if isinstance(value, str):
            self.placeholders.extend(self._paths(value))
        elif isinstance(value, list):
            for item in value:
                self._collect(item)
        elif isinstance(value, dict):
            for key, item in value.items():
                self._collect(key)
                self._collect(item)

    def _paths(self, text: str) -> list[str]:
        paths = []
        for match in PLACEHOLDER.finditer(text):
            token, path = match.group(0), match.group(1)
            if token in ("{{", "}}"):
                continue
            if path is None:
                raise ConfigError(f"{self.where}: unmatched {token!r} in {text!r} (write {token * 2} for a literal brace)")
            if not PARAM_PATH.fullmatch(path):
                raise ConfigError(
                    f"{self.where}: placeholder {token!r} is not a param name, index or dotted path of them"
                )
            paths.append(path)
        return paths

    def render(self, params: Any) -> Any:
        """The result for these params (a list or an object); raises MissingParam."""
        return self._render(self.template, params)

    def _render(self, value: Any, params: Any) -> Any:
        if isinstance(value, str):
            return self._render_text(value, params, typed=True)
        if isinstance(value, list):
            return [self._render(item, params) for item in value]
        if isinstance(value, dict):
            return {self._render_text(key, params, typed=False): self._render(item, params) for key, item in value.items()}
        return value

    def _render_text(self, text: str, params: Any, typed: bool) -> Any:
        whole = PLACEHOLDER.fullmatch(text)
        if typed and whole is not None and whole.group(1) is not None:
            return _look_up(params, whole.group(1))

        def substitute(match: re.Match[str]) -> str:
            token = match.group(0)
            if token in ("{{", "}}"):
                return token[0]
            value = _look_up(params, match.group(1))
            return value if isinstance(value, str) else json.dumps(value)

        return PLACEHOLDER.sub(substitute, text)


def templated_result(name: str, template: ResultTemplate) -> Method:
    def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return Success(template.render(kwargs if kwargs else list(args)))
        except MissingParam as missing:
            return InvalidParams(f"missing param {missing}")

    method.__doc__ = f"Result templated from the params: {json.dumps(template.template)[:80]}"
    method.__name__ = name
    tops = dict.fromkeys(path.split(".")[0] for path in template.placeholders)
    method.openrpc_params = [{"name": top, "required": True, "schema": {}} for top in tops]  # type: ignore[attr-defined]
    return method


def templates_from_config(table: Mapping[str, str]) -> dict[str, Method]:
    """``templates`` option (name -> JSON text with placeholders) to methods."""
    methods = {}
    for name, text in table.items():
        where = f"[jsonrpc] templates.{name}"
        _check_name(where, name)
        methods[name] = templated_result(name, ResultTemplate(where, text))
    return methods


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def import_callable(where: str, path: str) -> Callable[..., Any]:
    """The function a ``"package.module:function"`` path names, or a ConfigError naming ``where``."""
    module_name, sep, attribute = path.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f'{where}: expected "package.module:function", got {path!r}')
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # importing runs the module's code: whatever it raises, say it on one line
        raise ConfigError(f"{where}: cannot import {module_name!r} ({_one_line(error)})") from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ConfigError(f"{where}: module {module_name!r} has no attribute {attribute!r}") from None
    if not callable(target):
        raise ConfigError(f"{where}: {path!r} is not callable")
    if inspect.iscoroutinefunction(target):
        raise ConfigError(f"{where}: {path!r} is a coroutine function; give a plain function")
    return target  # type: ignore[no-any-return]


def python_callable(name: str, path: str, function: Callable[..., Any]) -> Method:
    """A method calling ``function`` with the params (positional or named).

    Its return value is the result (it must be JSON); raising :class:`MethodError` answers
    with that error; params its signature cannot take are Invalid params; any other
    exception is an Internal error carrying the exception's one-line text as data.
    """
    try:
        signature: inspect.Signature | None = inspect.signature(function)
    except (TypeError, ValueError):  # some builtins have no signature: let the call decide
        signature = None

    def method(context: CallContext, *args: Any, **kwargs: Any) -> Any:
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as error:
                return InvalidParams(str(error))
        try:
            result = function(*args, **kwargs)
        except MethodError as error:
            return Error(error.code, error.message, error.data) if error.data is not None else Error(error.code, error.message)
        except Exception as error:  # the configured code failed; this call fails, the server goes on
            return Error(-32603, "Internal error", f"{path}: {_one_line(error)}")
        try:
            json.dumps(result)
        except (TypeError, ValueError):
            return Error(-32603, "Internal error", f"{path} returned {type(result).__name__}, not JSON")
        return Success(result)

    summary = (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else ""
    method.__doc__ = summary or f"Python callable {path}"
    method.__name__ = name
    method.openrpc_params = _signature_params(list(signature.parameters.values())) if signature else []  # type: ignore[attr-defined]
    return method


def callables_from_config(table: Mapping[str, str]) -> dict[str, Method]:
    """``callables`` option (name -> "package.module:function") to methods; imported at start-up."""
    methods = {}
    for name, path in table.items():
        where = f"[jsonrpc] callables.{name}"
        _check_name(where, name)
        methods[name] = python_callable(name, path, import_callable(where, path))
    return methods


def _check_name(where: str, name: str) -> None:
    if not name or name.startswith("rpc."):
        raise ConfigError(f"{where}: names starting with 'rpc.' are reserved by JSON-RPC 2.0")


def _signature_params(parameters: list[inspect.Parameter]) -> list[dict[str, Any]]:
    return [
        {"name": p.name, "required": p.default is inspect.Parameter.empty, "schema": {}}
        for p in parameters
        if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def openrpc_document(methods: Mapping[str, Method], title: str) -> dict[str, Any]:
    """An OpenRPC (https://spec.open-rpc.org) description of ``methods``."""
    described = []
    for name, function in sorted(methods.items()):
        # Methods made from config say what they take (template placeholders, the
        # callable's own signature); the others are read from their signature.
        params = getattr(function, "openrpc_params", None)
        if params is None:
            params = _signature_params(list(inspect.signature(function).parameters.values())[1:])  # drop the context
        described.append(
            {
                "name": name,
                "summary": (function.__doc__ or "").strip().splitlines()[0] if function.__doc__ else "",
                "params": params,
                "result": {"name": "result", "schema": {}},
            }
        )
    return {"openrpc": OPENRPC_VERSION, "info": {"title": title, "version": "1.0.0"}, "methods": described}
