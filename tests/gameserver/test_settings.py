"""Settings from the command line, GAMESERVER_* environment variables and a TOML file."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gameserver.cli import build_config, main, parse_settings
from gameserver.settings import SettingsError, add_settings_options, parse_layered

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "gs.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_precedence_cli_over_env_over_file_over_default(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'port = 7001\ntick-rate = 20\nhost = "0.0.0.0"\nresume_grace = 3\n'
                          'origin = ["http://file"]\nroom_config = {critters = 5}\n')
    env = {"GAMESERVER_PORT": "7002", "GAMESERVER_TICK_RATE": "40",
           "GAMESERVER_ORIGIN": "http://env1, http://env2"}
    res = parse_settings(["--config", str(cfg), "--port", "7003"], env)
    ns = res.namespace
    assert ns.port == 7003 and res.sources["port"] == "command line"
    assert ns.tick_rate == 40 and res.sources["tick_rate"] == "environment GAMESERVER_TICK_RATE"
    assert ns.host == "0.0.0.0" and res.sources["host"] == f"config file {cfg}"
    assert ns.resume_grace == 3.0 and isinstance(ns.resume_grace, float)  # int for a float
    assert ns.origin == ["http://env1", "http://env2"]  # env list replaces the file's
    assert ns.room_config == {"critters": 5}  # a TOML table for a JSON option
    assert ns.hello_timeout == 10.0 and res.sources["hello_timeout"] == "default"
    # A repeatable option on the command line replaces the layered list (does not extend it).
    ns2 = parse_settings(["--config", str(cfg), "--origin", "http://cli"], env).namespace
    assert ns2.origin == ["http://cli"]
    config = build_config(ns2)
    assert config.origins == ("http://cli",) and config.port == 7002
    assert config.room_config == {"critters": 5} and config.host == "0.0.0.0"


def test_config_file_from_env_and_gameserver_table(tmp_path: Path) -> None:
    cfg = write(tmp_path, '[gameserver]\nmax-players = 3\ntrusted_proxy = "10.0.0.0/8"\n')
    ns = parse_settings(["serve", "examples.arena:Arena"], {"GAMESERVER_CONFIG": str(cfg)})\
        .namespace
    assert ns.games == ["examples.arena:Arena"]
    assert ns.max_players == 3 and ns.trusted_proxy == ["10.0.0.0/8"]


def test_generic_over_options_added_later() -> None:
    """Options another module adds (flags, typed, repeatable, choices) need no extra code."""
    def positive(text: str) -> int:
        value = int(text)
        if value < 1:
            raise argparse.ArgumentTypeError("must be >= 1")
        return value

    p = argparse.ArgumentParser()
    p.add_argument("--workers", type=positive, default=1)
    p.add_argument("--redis", default=None)
    p.add_argument("--record", action="store_true")
    p.add_argument("--deflate", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--tag", action="append", type=int, default=[9])
    p.add_argument("--mode", choices=("a", "b"), default="a")
    add_settings_options(p)
    env = {"GAMESERVER_WORKERS": "4", "GAMESERVER_RECORD": "yes",
           "GAMESERVER_DEFLATE": "off", "GAMESERVER_TAG": "1,2", "GAMESERVER_MODE": "b",
           "GAMESERVER_REDIS": "redis://r:6379/0"}
    ns = parse_layered(p, [], env).namespace
    assert (ns.workers, ns.record, ns.deflate, ns.tag, ns.mode, ns.redis) == \
        (4, True, False, [1, 2], "b", "redis://r:6379/0")
    assert parse_layered(p, ["--tag", "5"], env).namespace.tag == [5]
    assert parse_layered(p, ["--tag", "5"], {}).namespace.tag == [5]  # not [9, 5]
    assert parse_layered(p, [], {}).namespace.tag == [9]
    for bad_env, needle in (({"GAMESERVER_WORKERS": "0"}, "GAMESERVER_WORKERS"),
                            ({"GAMESERVER_RECORD": "maybe"}, "boolean"),
                            ({"GAMESERVER_MODE": "c"}, "not one of"),
                            ({"GAMESERVER_TAG": "1,x"}, "GAMESERVER_TAG[1]")):
        with pytest.raises(SettingsError, match=needle.replace("[", r"\[")):
            parse_layered(p, [], bad_env)


def test_toml_types_checked(tmp_path: Path) -> None:
    cases = [('port = "80"', None), ('port = 80.5', "expected an integer"),
             ('port = true', "expected an integer"), ('host = 5', "expected a string"),
             ('log_level = "LOUD"', "not one of"), ('origin = [1]', r"origin'\[0\]"),
             ('tick_rate = [1]', "got an array")]
    for text, needle in cases:
        cfg = write(tmp_path, text + "\n")
        if needle is None:
            assert parse_settings(["--config", str(cfg)], {}).namespace.port == 80
        else:
            with pytest.raises(SettingsError, match=needle):
                parse_settings(["--config", str(cfg)], {})


def test_bad_key_and_bad_values_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write(tmp_path, "port = 8000\ntick_rat = 30\n")
    assert main(["--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'tick_rat'" in err and str(cfg) in err
    assert main(["--config", str(tmp_path / "missing.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert main(["--config", str(write(tmp_path, "port = [\n"))]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    monkeypatch.setenv("GAMESERVER_PORT", "eighty")
    assert main(["--print-config"]) == 2
    err = capsys.readouterr().err
    assert "environment GAMESERVER_PORT" in err and "'eighty'" in err


def test_unknown_env_variable_warns(capsys: pytest.CaptureFixture[str]) -> None:
    ns = parse_settings([], {"GAMESERVER_PORTT": "1", "GAMESERVER_NO_UVLOOP": "1",
                             "GAMESERVER_DELTA_FIXTURE": "x"}).namespace
    assert ns.port == 8000
    err = capsys.readouterr().err
    assert "unknown environment variable GAMESERVER_PORTT ignored (did you mean " \
           "GAMESERVER_PORT?)" in err
    assert "NO_UVLOOP" not in err and "FIXTURE" not in err


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GAMESERVER_")}
    return subprocess.run([sys.executable, "-m", "gameserver", *args], cwd=ROOT,
                          env={**clean, **env}, capture_output=True, text=True, timeout=60)


def test_print_config_subprocess_round_trip(tmp_path: Path) -> None:
    cfg = write(tmp_path, 'port = 7001\norigin = ["http://a", "http://b"]\n'
                          'room_config = {critters = 5, name = "x\\"y"}\n')
    r = _run(["--config", str(cfg), "--print-config", "--tick-rate", "60"],
             {"GAMESERVER_MAX_CONNECTIONS_PER_IP": "8",
              "GAMESERVER_TRUSTED_PROXY": "10.0.0.0/8,::1"})
    assert r.returncode == 0, r.stderr
    data = tomllib.loads(r.stdout)
    assert data["port"] == 7001 and data["tick_rate"] == 60
    assert data["origin"] == ["http://a", "http://b"]
    assert data["room_config"] == {"critters": 5, "name": 'x"y'}
    assert data["max_connections_per_ip"] == 8
    assert data["trusted_proxy"] == ["10.0.0.0/8", "::1"]
    assert "tls_cert" not in data  # unset: a comment line
    assert "# environment GAMESERVER_MAX_CONNECTIONS_PER_IP" in r.stdout
    assert "# command line" in r.stdout and "examples.arena:Arena" in r.stdout
    # What --print-config writes, --config reads back to the same settings.
    again = write(tmp_path, r.stdout, "printed.toml")
    r2 = _run(["serve", "examples.arena:Arena", "--config", str(again), "--print-config=json"],
              {})
    assert r2.returncode == 0, r2.stderr
    obj = json.loads(r2.stdout)
    assert obj["games"] == ["examples.arena:Arena"]
    for key, value in data.items():
        assert obj[key] == value, key
    assert obj["tls_cert"] is None


def test_print_config_bad_key_subprocess(tmp_path: Path) -> None:
    cfg = write(tmp_path, "bogus = 1\n")
    r = _run(["--config", str(cfg), "--print-config"], {})
    assert r.returncode == 2 and "unknown key 'bogus'" in r.stderr and r.stdout == ""
