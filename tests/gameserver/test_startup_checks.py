"""A game class with an invalid schema is refused when ``gameserver serve`` starts.

The process exits with status 2 and names the class and the problem on stderr (no traceback),
instead of serving and answering the first player's HELLO with 4006. A valid game next to it
in the same module still starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gameserver.config import ConfigError, ServerConfig

GAMES = textwrap.dedent('''
    from gameserver.rules import F, I, Game, InputSchema

    class Good(Game):
        name = "good"
        fields = {"x": F.float32(quant=0.01, lo=0, hi=100)}
        inputs = InputSchema({"dx": I.float32(-1, 1)})

    class BadField(Game):
        name = "badfield"
        fields = {"x": F.float32(quant=-1.0, lo=0, hi=100)}   # quant must be > 0
        inputs = InputSchema({"dx": I.float32(-1, 1)})

    class BadInputs(Game):
        name = "badinputs"
        fields = {"x": F.float32(quant=0.01, lo=0, hi=100)}
        inputs = {"dx": I.float32(-1, 1)}                     # not an InputSchema

    class BadRates(Game):
        name = "badrates"
        fields = {"x": F.uint8()}
        inputs = InputSchema({})
        tick_rate = 30
        send_rate = 60                                        # above the tick rate
''')

BROKEN_MODULE = textwrap.dedent('''
    from gameserver.rules import F, I, Game, InputSchema

    class Broken(Game):
        name = "broken"
        fields = {"x": F.uint8()}
        inputs = InputSchema({"dx": I.float32(5, -5)})        # empty range: raises at import
''')


def serve(tmp_path: Path, *specs: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "harden_games.py").write_text(GAMES)
    (tmp_path / "harden_broken.py").write_text(BROKEN_MODULE)
    env = dict(os.environ,
               PYTHONPATH=f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    return subprocess.run([sys.executable, "-m", "gameserver", "serve", *specs, "--port", "0"],
                          capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(("spec", "words"), [
    ("harden_games:BadField", ["badfield", "BadField", "quant"]),
    ("harden_games:BadInputs", ["badinputs", "inputs", "InputSchema"]),
    ("harden_games:BadRates", ["badrates", "send_rate"]),
    ("harden_broken:Broken", ["harden_broken", "ValueError", "float32 input bounds"]),
])
def test_invalid_game_refused_at_startup(tmp_path: Path, spec: str, words: list[str]) -> None:
    r = serve(tmp_path, "harden_games:Good", spec)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "gameserver: error:" in r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert "Traceback" not in r.stderr
    assert "serving" not in r.stdout  # never started listening


def test_config_check_refuses_it_programmatically(tmp_path: Path) -> None:
    sys.path.insert(0, str(tmp_path))
    try:
        (tmp_path / "harden_games2.py").write_text(GAMES)
        import harden_games2 as g

        ServerConfig(games={"good": g.Good}).check()
        with pytest.raises(ConfigError, match=r"BadField.*quant"):
            ServerConfig(games={"good": g.Good, "badfield": g.BadField}).check()
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("harden_games2", None)
