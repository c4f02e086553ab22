"""Command-line parsing and configuration building."""

from __future__ import annotations

import pytest

from gameserver.cli import DEFAULT_GAME, build_config, main, parse_args
from gameserver.config import ConfigError, ServerConfig, load_game_class


def test_bare_form_defaults_to_example() -> None:
    ns = parse_args(["--host", "0.0.0.0", "--port", "9000"])
    assert ns.games == [DEFAULT_GAME] and ns.host == "0.0.0.0" and ns.port == 9000


def test_serve_form() -> None:
    ns = parse_args(["serve", "a.b:C", "x:Y", "--tick-rate", "60", "--send-rate", "20",
                     "--max-players", "4", "--origin", "http://a", "--origin", "http://b",
                     "--tls-cert", "c.pem", "--tls-key", "k.pem"])
    assert ns.games == ["a.b:C", "x:Y"]
    assert ns.tick_rate == 60 and ns.send_rate == 20 and ns.max_players == 4
    assert ns.origin == ["http://a", "http://b"]
    assert str(ns.tls_cert) == "c.pem"


def test_load_game_class_errors() -> None:
    assert load_game_class("collections:OrderedDict").__name__ == "OrderedDict"
    for bad in ("nocolon", "no_such_module_xyz:A", "collections:Nope", "collections:abc"):
        with pytest.raises(ConfigError):
            load_game_class(bad)


def test_auth_hook_option() -> None:
    ns = parse_args(["serve", "examples.arena:Arena", "--auth", "os.path:isabs"])
    cfg = build_config(ns)
    assert cfg.auth is not None and cfg.auth("/x") and not cfg.auth("x")
    with pytest.raises(ConfigError):
        build_config(parse_args(["serve", "examples.arena:Arena", "--auth", "collections:abc"]))


def test_config_check() -> None:
    with pytest.raises(ConfigError):
        ServerConfig().check()  # no game
    with pytest.raises(ConfigError):
        ServerConfig(games={"g": object}, tick_rate=0).check()
    with pytest.raises(ConfigError):
        ServerConfig(games={"g": object}, tls_cert=None, tls_key=__import__("pathlib").Path("k"))\
            .check()


def test_main_bad_config_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "no_such_module_xyz:Game"]) == 2
    assert "cannot import" in capsys.readouterr().err


def test_history_option() -> None:
    assert build_config(parse_args(["serve", "examples.arena:Arena"])).history is None
    cfg = build_config(parse_args(["serve", "examples.arena:Arena", "--history", "0.5"]))
    assert cfg.history == 0.5
    with pytest.raises(ConfigError, match="history"):
        build_config(parse_args(["serve", "examples.arena:Arena", "--history", "11"]))
