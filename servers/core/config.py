"""Configuration: typed options, layered sources, one-line errors.

Rules this module keeps:

1. Precedence is fixed: built-in defaults < TOML files < environment variables
   < command-line ``--set`` overrides. Each layer only replaces the keys it names.
2. Every value is parsed and checked by the :class:`Kind` of its :class:`Option`;
   a failure raises :class:`ConfigError` with one line naming the source
   (``file:[section] key`` or the variable), the key and what was expected.
3. The loader never reads ``os.environ`` itself: the caller passes the environment,
   so the CLI and tests can hand it whatever they like.

Environment variables: ``REFSERVERS_<SECTION>_<KEY>`` for a server option
(``REFSERVERS_HTTP_TLS_PORT=8443``), ``REFSERVERS_<KEY>`` for a core option
(``REFSERVERS_HOST=0.0.0.0``), and ``REFSERVERS_USERS=name:password[:ro],...`` for the
user table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "REFSERVERS_"
# Variables under our prefix that are not configuration (read by the CLI or the tests).
ENV_NOT_CONFIG = ("REFSERVERS_CONFIG", "REFSERVERS_SCENARIO", "REFSERVERS_TARGET", "REFSERVERS_TEST_")


class ConfigError(Exception):
    """A configuration problem; ``str()`` is the one line shown to the user."""


@dataclass(frozen=True)
class Kind:
    """How to read one type of value from TOML and from text (env, CLI)."""

    expected: str
    from_toml: Callable[[Any], Any]
    from_text: Callable[[str], Any]


def _fail() -> Any:
    raise ValueError


def _int_in(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError
        return value

    return check


def _text_to_int(check: Callable[[Any], int]) -> Callable[[str], int]:
    return lambda text: check(int(text.strip()))


def _float_value(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError
    return float(value)


def _bool_value(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError
    return value


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _text_to_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError


def _str_value(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError
    return tuple(value)


def _text_to_str_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


def _str_table(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ValueError
    return dict(value)


def _text_to_str_table(text: str) -> dict[str, str]:
    # "name=value;name2=value2": semicolons because values are often shell commands
    # or sentences containing commas.
    table = {}
    for item in text.split(";"):
        if not item.strip():
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError
        table[name.strip()] = value
    return table


def _port_range(value: Any) -> tuple[int, int]:
    if not isinstance(value, str):
        raise ValueError
    low_text, sep, high_text = value.partition("-")
    low = _int_in(1, 65535)(int(low_text))
    high = _int_in(1, 65535)(int(high_text)) if sep else low
    if high < low:
        raise ValueError
    return (low, high)


def choice(*names: str) -> Kind:
    def check(value: Any) -> str:
        if value not in names:
            raise ValueError
        return str(value)

    return Kind("one of " + ", ".join(names), check, lambda text: check(text.strip()))


def int_range(low: int, high: int) -> Kind:
    check = _int_in(low, high)
    return Kind(f"an integer {low}-{high}", check, _text_to_int(check))


PORT = Kind("a port number 0-65535 (0 picks a free port)", _int_in(0, 65535), _text_to_int(_int_in(0, 65535)))
INT = int_range(0, 2**62)
FLOAT = Kind("a non-negative number", _float_value, lambda text: _float_value(float(text)))
BOOL = Kind("true or false", _bool_value, _text_to_bool)
STR = Kind("a string", _str_value, lambda text: text)
PATH = Kind("a file or directory path", lambda v: Path(_str_value(v)), lambda text: Path(text))
STR_LIST = Kind("a list of strings (comma-separated in text)", _str_list, _text_to_str_list)
STR_TABLE = Kind(
    "a table of strings (name=value;name2=value2 in text)", _str_table, _text_to_str_table
)
PORT_RANGE = Kind("a port range such as 30000-30009", _port_range, _port_range)


@dataclass(frozen=True)
class Option:
    key: str
    kind: Kind
    default: Any
    help: str


@dataclass(frozen=True)
class UserSpec:
    name: str
    password: str
    read_only: bool = False
    authorized_keys: tuple[str, ...] = ()

    def __repr__(self) -> str:  # never show the password, even in tracebacks
        return f"UserSpec(name={self.name!r}, read_only={self.read_only})"


class Settings:
    """The resolved options of one section, read as attributes (``settings.port``)."""

    def __init__(self, section: str, values: dict[str, Any], sources: dict[str, str]):
        self._section = section
        self._values = values
        self._sources = sources

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"[{self._section}] has no option {key!r}") from None

    def source(self, key: str) -> str:
        """Where the value came from: 'default', a file:key or a variable name."""
        return self._sources.get(key, "default")

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)

    def replace(self, **changes: Any) -> Settings:
        return Settings(self._section, {**self._values, **changes}, self._sources)


CORE_OPTIONS = (
    Option("host", STR, "127.0.0.1", "address every server binds unless its own host is set"),
    Option("data_dir", PATH, Path("var"), "where servers persist mail, files, keys and certificates"),
    Option("log_level", choice("debug", "info", "warning", "error"), "info", "log level"),
    Option("log_format", choice("text", "json"), "text", "log line format"),
    Option("trace", BOOL, False, "log every protocol line received and sent (credentials masked)"),
    Option("journal_size", int_range(1, 10_000_000), 10_000, "events kept in memory"),
    Option("tls_names", STR_LIST, (), "extra DNS names or IPs for the generated certificate"),
    Option("tls_cert", PATH, None, "use this PEM certificate (chain) instead of the generated one"),
    Option("tls_key", PATH, None, "private key for tls_cert"),
    Option("probe_timeout", FLOAT, 10.0, "seconds start() waits for its readiness probe"),
)

DEFAULT_USERS = (UserSpec("demo", "demo"),)


@dataclass
class Config:
    core: Settings
    users: tuple[UserSpec, ...]
    sections: dict[str, Settings] = field(default_factory=dict)
    # Fault rules as given ([[faults]] tables, REFSERVERS_FAULTS JSON), with their source;
    # validated by the FaultBook, which knows each server's actions.
    faults: tuple[tuple[str, dict[str, Any]], ...] = ()
    # One line per deprecated key that was used (the CLI logs them as warnings).
    deprecations: tuple[str, ...] = ()

    def __getitem__(self, section: str) -> Settings:
        return self.sections[section]


Schema = Mapping[str, Iterable[Option]]


def load_config(
    schema: Schema,
    files: Iterable[Path] = (),
    env: Mapping[str, str] | None = None,
    overrides: Iterable[str] = (),
    renamed: Mapping[tuple[str, str], tuple[str, str]] | None = None,
    unloaded: Iterable[str] = (),
) -> Config:
    """Resolve every layer into a :class:`Config`, or raise :class:`ConfigError`.

    ``schema`` maps section names to their options (the core section is added here);
    ``overrides`` are ``section.key=value`` strings from the command line. ``renamed``
    maps deprecated (section, key) pairs to where they moved: still accepted, each use
    noted in ``Config.deprecations``. ``unloaded`` names sections that exist but whose
    options were not loaded (servers this process does not start): their keys are
    skipped, not refused.
    """
    unloaded = set(unloaded) - set(schema)
    renamed = dict(renamed or {})
    deprecations: list[str] = []
    options = {"core": {o.key: o for o in CORE_OPTIONS}}
    options.update({name: {o.key: o for o in opts} for name, opts in schema.items()})
    values = {name: {k: o.default for k, o in opts.items()} for name, opts in options.items()}
    sources: dict[str, dict[str, str]] = {name: {} for name in options}
    users: tuple[UserSpec, ...] = DEFAULT_USERS
    faults: list[tuple[str, dict[str, Any]]] = []

    def put(section: str, key: str, raw: Any, source: str, from_text: bool) -> None:
        if (section, key) in renamed:
            new_section, new_key = renamed[section, key]
            variable = f"{ENV_PREFIX}{new_section}_{new_key}".upper()
            deprecations.append(
                f"{source}: [{section}] {key} is deprecated; use [{new_section}] {new_key} ({variable})"
            )
            section, key = new_section, new_key
        if section in unloaded:
            return
        # A file names the key inside it; a variable or flag already names it.
        where = source if from_text else f"{source}: [{section}] {key}"
        if section not in options:
            known = ", ".join(sorted(options))
            raise ConfigError(f"{source}: unknown section [{section}] (known: {known})")
        option = options[section].get(key)
        if option is None:
            known = ", ".join(sorted(options[section]))
            raise ConfigError(f"{where}: unknown key {key!r} (known: {known})")
        parse = option.kind.from_text if from_text else option.kind.from_toml
        try:
            values[section][key] = parse(raw)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: expected {option.kind.expected}, got {raw!r}") from None
        sources[section][key] = source

    for path in files:
        document = _read_toml(Path(path))
        for section, table in document.items():
            if section == "users":
                users = _users_from_toml(table, str(path))
                continue
            if section == "faults":
                if not isinstance(table, list) or not all(isinstance(rule, dict) for rule in table):
                    raise ConfigError(f"{path}: faults: expected [[faults]] tables")
                faults += [(f"{path}: faults[{i}]", rule) for i, rule in enumerate(table)]
                continue
            if not isinstance(table, dict):
                raise ConfigError(f"{path}: {section}: expected a [{section}] table")
            for key, raw in table.items():
                put(section, key, raw, str(path), from_text=False)

    for name, raw in sorted((env or {}).items()):
        if not name.startswith(ENV_PREFIX) or name.startswith(ENV_NOT_CONFIG):
            continue
        if name == ENV_PREFIX + "USERS":
            users = _users_from_text(raw, name)
            continue
        if name == ENV_PREFIX + "FAULTS":
            faults += _faults_from_json(raw, name)
            continue
        found, key = _split_env_name(name[len(ENV_PREFIX) :].lower(), {**dict.fromkeys(unloaded), **options}, renamed)
        if found is None:
            raise ConfigError(f"{name}: not a known setting (expected {ENV_PREFIX}<SERVER>_<KEY>)")
        put(found, key, raw, name, from_text=True)

    for item in overrides:
        dotted, sep, raw = item.partition("=")
        section, dot, key = dotted.partition(".")
        if not sep or not dot:
            raise ConfigError(f"--set {item}: expected SECTION.KEY=VALUE")
        put(section, key, raw, f"--set {dotted}", from_text=True)

    settings = {name: Settings(name, values[name], sources[name]) for name in options}
    core = settings.pop("core")
    if (core.tls_cert is None) != (core.tls_key is None):
        raise ConfigError("[core] tls_cert and tls_key: expected both or neither")
    return Config(core=core, users=users, sections=settings, faults=tuple(faults), deprecations=tuple(deprecations))


def _faults_from_json(text: str, source: str) -> list[tuple[str, dict[str, Any]]]:
    import json

    try:
        rules = json.loads(text)
    except ValueError:
        raise ConfigError(f"{source}: expected a JSON list of fault rules, got invalid JSON") from None
    if isinstance(rules, dict):
        rules = [rules]
    if not isinstance(rules, list) or not all(isinstance(rule, dict) for rule in rules):
        raise ConfigError(f"{source}: expected a JSON list of fault rule objects")
    return [(f"{source}[{i}]", rule) for i, rule in enumerate(rules)]


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # here: a start without config files (containers, tests) never needs it

    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror}") from None


def _split_env_name(
    rest: str, options: Mapping[str, Any], renamed: Mapping[tuple[str, str], tuple[str, str]]
) -> tuple[str | None, str]:
    for section, key in renamed:  # REFSERVERS_SMTP_DOMAINS, before [smtp] would claim it
        if rest == f"{section}_{key}":
            return section, key
    # Section names may contain underscores ("proxy_tcp"), so try the longest first.
    for section in sorted(options, key=len, reverse=True):
        if section == "core":
            continue
        if rest.startswith(section + "_"):
            return section, rest[len(section) + 1 :]
    if rest in options["core"]:
        return "core", rest
    return None, rest


def _users_from_toml(table: Any, source: str) -> tuple[UserSpec, ...]:
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: users: expected a [users] table")
    users = []
    for name, entry in table.items():
        where = f"{source}: [users] {name}"
        if isinstance(entry, str):
            users.append(UserSpec(name, entry))
            continue
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a password string or a table")
        unknown = set(entry) - {"password", "read_only", "authorized_keys"}
        if unknown:
            raise ConfigError(
                f"{where}: unknown key {sorted(unknown)[0]!r} "
                "(known: authorized_keys, password, read_only)"
            )
        password = entry.get("password", "")
        read_only = entry.get("read_only", False)
        keys = entry.get("authorized_keys", [])
        if not isinstance(password, str):
            raise ConfigError(f"{where}.password: expected a string")
        if not isinstance(read_only, bool):
            raise ConfigError(f"{where}.read_only: expected true or false")
        try:
            key_tuple = _str_list(keys)
        except ValueError:
            raise ConfigError(f"{where}.authorized_keys: expected a list of strings") from None
        users.append(UserSpec(name, password, read_only, key_tuple))
    return tuple(users)


def _users_from_text(text: str, source: str) -> tuple[UserSpec, ...]:
    users = []
    for item in text.split(","):
        if not item.strip():
            continue
        parts = item.strip().split(":")
        if len(parts) not in (2, 3) or not parts[0] or (len(parts) == 3 and parts[2] not in ("ro", "rw")):
            raise ConfigError(f"{source}: expected name:password[:ro|rw],... got entry {parts[0]!r}")
        users.append(UserSpec(parts[0], parts[1], len(parts) == 3 and parts[2] == "ro"))
    return tuple(users)
