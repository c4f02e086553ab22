"""Settings from the command line, the environment and a TOML file, generic over argparse.

Every option of a parser (its ``--long-name`` actions; positionals and ``--help`` excepted)
can also be given

* as an environment variable ``GAMESERVER_<DEST>``: the option's ``dest`` upper-cased
  (``--tick-rate`` -> ``GAMESERVER_TICK_RATE``);
* as a key of a TOML file named by ``--config FILE`` (or ``GAMESERVER_CONFIG``): the ``dest``
  or the long option name without dashes, with ``_`` or ``-`` (``tick_rate = 60`` or
  ``tick-rate = 60``). Keys may sit at the top level or in a ``[gameserver]`` table.

Precedence: command line > environment > config file > the parser's defaults. Values are
converted by the option's own ``type`` and checked against its ``choices``:

* environment values are strings; a repeatable (``append``) or multi-value (``nargs``) option
  takes a comma-separated list; a flag (``store_true`` / ``store_false`` /
  ``BooleanOptionalAction``) takes ``1/true/yes/on`` or ``0/false/no/off``;
* TOML values keep their TOML type: strings go through ``type``; integers and floats must
  match an ``int`` / ``float`` option (an integer is accepted for a float); flags need a TOML
  boolean; a repeatable option takes an array (or one value); a table or array for an option
  whose ``type`` parses text (``--room-config``'s ``json.loads``) is passed as its JSON text.

A repeatable option given on the command line replaces (not extends) the environment's or
file's list. An unknown TOML key or a bad value anywhere raises :class:`SettingsError`
naming the key and its source; the CLI prints it and exits with status 2. An unknown
``GAMESERVER_*`` variable is ignored (others share the prefix: ``GAMESERVER_NO_UVLOOP``);
one that looks like a misspelt option gets a warning on stderr.

Because the work is driven by the parser's actions, an option added to the parser later gets
environment and TOML support with no extra code. :func:`render_toml` prints the resulting
settings (``gameserver --print-config``) in a form ``--config`` reads back.
"""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ENV_PREFIX",
    "SKIP_DESTS",
    "Layered",
    "SettingsError",
    "add_settings_options",
    "env_name",
    "parse_layered",
    "render_json",
    "render_toml",
]

#: Prefix of the environment variables (``GAMESERVER_PORT``).
ENV_PREFIX = "GAMESERVER_"
#: Destinations that are about reading settings, not settings themselves.
SKIP_DESTS = frozenset({"help", "config", "print_config", "version"})
#: Variables with the prefix that are not options (read elsewhere; never warned about).
NOT_OPTIONS = frozenset({"GAMESERVER_NO_UVLOOP"})
#: TOML files larger than this are refused (a config file is a few hundred bytes).
MAX_CONFIG_BYTES = 1 << 20

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})


class SettingsError(ValueError):
    """A bad setting from the environment or a config file: the operator's mistake.

    The message names the source (``config file x.toml`` / ``environment``) and the key.
    """


@dataclass
class Layered:
    """Result of :func:`parse_layered`: the namespace and where each value came from."""

    namespace: argparse.Namespace
    #: dest -> "command line" | "environment GAMESERVER_X" | "config file F" | "default"
    sources: dict[str, str] = field(default_factory=dict)
    #: the option actions that are settings, in parser order
    actions: list[argparse.Action] = field(default_factory=list)


def env_name(dest: str) -> str:
    """``tick_rate`` -> ``GAMESERVER_TICK_RATE``."""
    return ENV_PREFIX + dest.upper()


def add_settings_options(p: argparse.ArgumentParser) -> None:
    """Add ``--config FILE`` and ``--print-config [toml|json]`` to a parser."""
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="TOML file of settings (keys = option names); precedence: command "
                        f"line > environment ({ENV_PREFIX}<OPTION>) > this file > defaults")
    p.add_argument("--print-config", nargs="?", const="toml", default=None,
                   choices=("toml", "json"),
                   help="print the resulting settings (TOML, or JSON) and exit 0")


# --------------------------------------------------------------------------- the actions


def _setting_actions(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions
            if a.option_strings and a.dest not in SKIP_DESTS
            and not isinstance(a, argparse._HelpAction | argparse._VersionAction)]


def _is_flag(a: argparse.Action) -> bool:
    return isinstance(a, argparse._StoreTrueAction | argparse._StoreFalseAction
                      | argparse.BooleanOptionalAction)


def _is_list(a: argparse.Action) -> bool:
    if isinstance(a, argparse._AppendAction | argparse._ExtendAction):
        return True
    return a.nargs in ("+", "*") or (isinstance(a.nargs, int) and a.nargs > 1)


def _key_index(actions: Sequence[argparse.Action]) -> dict[str, argparse.Action]:
    """Every accepted spelling (dest and long names, ``_`` and ``-``) -> its action."""
    out: dict[str, argparse.Action] = {}
    for a in actions:
        names = {a.dest, *(s.lstrip("-") for s in a.option_strings if s.startswith("--"))}
        for n in names:
            out[n.replace("-", "_")] = a
    return out


# ----------------------------------------------------------------------- value conversion


def _convert_one(a: argparse.Action, value: Any, where: str) -> Any:
    """One element of a setting, typed like the command line would type it."""
    conv: Callable[[Any], Any] | None = a.type  # type: ignore[assignment]
    simple = conv in (None, int, float, str, Path)
    if isinstance(value, dict | list) and not simple:
        value = json.dumps(value)  # a table / array for an option that parses JSON text
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise SettingsError(f"{where}: expected {_expected(a)}, got {_tname(value)}")
    out: Any
    if isinstance(value, str):
        try:
            out = conv(value) if conv is not None else value
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise SettingsError(f"{where}: invalid value {value!r} ({exc})") from None
    elif conv is int:
        if not isinstance(value, int):
            raise SettingsError(f"{where}: expected an integer, got {value!r}")
        out = value
    elif conv is float:
        out = float(value)
    elif not simple and conv is not None:
        try:  # a custom converter (e.g. a positive-int checker) reads the number's text
            out = conv(str(value))
        except (ValueError, TypeError, argparse.ArgumentTypeError) as exc:
            raise SettingsError(f"{where}: invalid value {value!r} ({exc})") from None
    else:
        raise SettingsError(f"{where}: expected {_expected(a)}, got {_tname(value)}")
    if a.choices is not None and out not in a.choices:
        choices = ", ".join(map(repr, a.choices))
        raise SettingsError(f"{where}: {out!r} is not one of {choices}")
    return out


def _expected(a: argparse.Action) -> str:
    t = a.type
    if t is int:
        return "an integer"
    if t is float:
        return "a number"
    return "a string"


def _tname(value: Any) -> str:
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {value!r}"


def _flag_value(a: argparse.Action, value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise SettingsError(f"{where}: expected a boolean (true/false), got {value!r}")


def _convert(a: argparse.Action, value: Any, where: str, *, from_env: bool) -> Any:
    if _is_flag(a):
        # The dest's value itself: ``deflate = false`` for a ``--no-deflate`` store_false.
        return _flag_value(a, value, where)
    if isinstance(a, argparse._CountAction):
        if from_env and isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                raise SettingsError(f"{where}: expected an integer, got {value!r}") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise SettingsError(f"{where}: expected an integer, got {_tname(value)}")
    if _is_list(a):
        if from_env:
            items: list[Any] = [s.strip() for s in str(value).split(",") if s.strip()]
        else:
            items = value if isinstance(value, list) else [value]
        return [_convert_one(a, v, f"{where}[{i}]") for i, v in enumerate(items)]
    return _convert_one(a, value, where)


# -------------------------------------------------------------------------------- sources


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"config file {path}: cannot read: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise SettingsError(f"config file {path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SettingsError(f"config file {path}: not valid TOML: {exc}") from None
    table = data.pop("gameserver", None)
    if isinstance(table, dict):
        for k, v in table.items():
            if k in data:
                raise SettingsError(f"config file {path}: key {k!r} given twice")
            data[k] = v
    elif table is not None:
        data["gameserver"] = table
    return data


def _config_path(argv: Sequence[str], env: Mapping[str, str]) -> Path | None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(list(argv))
    if known.config is not None:
        return Path(known.config)
    value = env.get(env_name("config"))
    return Path(value) if value else None


def parse_layered(p: argparse.ArgumentParser, argv: Sequence[str],
                  env: Mapping[str, str] | None = None) -> Layered:
    """Parse ``argv`` with ``p`` after layering the config file and environment under it.

    Raises :class:`SettingsError` for a bad file, key or value; argparse's own errors
    (command-line mistakes) exit with status 2 as usual.
    """
    env = os.environ if env is None else env
    actions = _setting_actions(p)
    sources: dict[str, str] = {a.dest: "default" for a in actions}
    layered: dict[str, Any] = {}

    path = _config_path(argv, env)
    if path is not None:
        index = _key_index(actions)
        for key, value in _read_toml(path).items():
            a = index.get(key.replace("-", "_"))
            if a is None:
                raise SettingsError(f"config file {path}: unknown key {key!r}")
            layered[a.dest] = _convert(a, value, f"config file {path}: key {key!r}",
                                       from_env=False)
            sources[a.dest] = f"config file {path}"

    known = {env_name(a.dest): a for a in actions}
    for name in sorted(env):
        if not name.startswith(ENV_PREFIX) or name == env_name("config"):
            continue
        a = known.get(name)
        if a is None:
            # Other variables share the prefix (GAMESERVER_NO_UVLOOP, test fixtures): only
            # a near-miss of an option's name is worth a warning (a typo).
            close = difflib.get_close_matches(name, known, n=1, cutoff=0.85)
            if close and name not in NOT_OPTIONS:
                print(f"gameserver: warning: unknown environment variable {name} ignored "
                      f"(did you mean {close[0]}?)", file=sys.stderr)
            continue
        layered[a.dest] = _convert(a, env[name], f"environment {name}", from_env=True)
        sources[a.dest] = f"environment {name}"

    # Repeatable options: argparse appends command-line values to a list default, so lists
    # are parsed from None and the layered (or default) list applies only when the command
    # line gave none: a command-line list replaces, never extends.
    lists = {a.dest for a in actions if _is_list(a)}
    originals = {a.dest: a.default for a in actions if a.dest in lists}
    p.set_defaults(**{k: v for k, v in layered.items() if k not in lists},
                   **dict.fromkeys(lists))
    try:
        ns = p.parse_args(list(argv))
    finally:
        p.set_defaults(**originals)
    for dest in lists:
        if getattr(ns, dest) is None:
            value = layered.get(dest, originals[dest])
            setattr(ns, dest, list(value) if isinstance(value, list | tuple) else value)
        else:
            sources[dest] = "command line"
    given = _given_on_command_line(p, argv)
    for dest in given:
        sources[dest] = "command line"
    return Layered(ns, sources, actions)


def _given_on_command_line(p: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """Destinations whose option string appears in ``argv`` (for the provenance comments)."""
    by_string: dict[str, str] = {}
    for a in _setting_actions(p):
        for s in a.option_strings:
            by_string[s] = a.dest
    out: set[str] = set()
    for arg in argv:
        if arg == "--":
            break
        name = arg.split("=", 1)[0]
        if name in by_string:
            out.add(by_string[name])
        elif name.startswith("--") and len(name) > 2:  # argparse accepts unique prefixes
            hits = {d for s, d in by_string.items() if s.startswith(name)}
            if len(hits) == 1:
                out |= hits
    return out


# ------------------------------------------------------------------------------ printing


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _toml_string(s: str) -> str:
    # JSON string escapes are TOML basic-string escapes; TOML also wants DEL escaped, and
    # non-ASCII is written as is (JSON's surrogate pairs are not valid TOML escapes).
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value if v is not None) + "]"
    if isinstance(value, dict):
        items = (f"{_toml_string(k)} = {_toml_value(v)}" for k, v in value.items()
                 if v is not None)
        return "{" + ", ".join(items) + "}"
    return _toml_string(str(value))


def render_toml(result: Layered, extra: Mapping[str, Any] | None = None) -> str:
    """The settings as TOML that ``--config`` reads back; unset (None) options are comments.

    Each line ends with a comment naming the value's source. ``extra`` (e.g. the game
    classes of ``serve``, which are positional) is written as leading comments.
    """
    lines = ["# gameserver settings (command line > environment > config file > defaults)"]
    for k, v in (extra or {}).items():
        lines.append(f"# {k}: {json.dumps(_plain(v))}")
    for a in result.actions:
        value = _plain(getattr(result.namespace, a.dest, None))
        src = result.sources.get(a.dest, "default")
        if value is None:
            lines.append(f"# {a.dest} = (unset; {src})")
        else:
            lines.append(f"{a.dest} = {_toml_value(value)}  # {src}")
    return "\n".join(lines) + "\n"


def render_json(result: Layered, extra: Mapping[str, Any] | None = None) -> str:
    """The settings as one JSON object (``null`` for unset options), plus ``extra``."""
    obj: dict[str, Any] = {k: _plain(v) for k, v in (extra or {}).items()}
    for a in result.actions:
        value = _plain(getattr(result.namespace, a.dest, None))
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        obj[a.dest] = value
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"
