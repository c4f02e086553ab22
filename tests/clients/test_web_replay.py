"""The browser demo against `gameserver replay FILE --serve` (headless chromium, Playwright).

The page must show the playback controls (the WELCOME game is ``replay``), and its pause,
seek and speed controls must act on the playback (observed in the ``replay`` status events
the page renders). Skips when chromium or playwright is missing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.gameserver.test_replay import record

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(scope="module")
def replay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed")
    pytest.importorskip("playwright.sync_api")
    path = tmp_path_factory.mktemp("web") / "m.gsreplay"
    record(path, ticks=300)
    proc = subprocess.Popen([sys.executable, "-m", "gameserver", "replay", str(path),
                             "--serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.search(r"at (http://\S+) ", line)
        assert m, line
        yield m.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


def test_demo_shows_and_drives_playback(replay_server: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 720})
            errors: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(replay_server)

            def wait(js: str, arg: Any = None) -> Any:
                return page.wait_for_function(js, arg=arg, timeout=15_000).json_value()

            wait("() => window.gameDemo?.replay !== null && window.gameDemo.replay.tick > 3")
            assert page.locator("#playback").is_visible()
            assert not page.locator("#help").is_visible()
            assert page.locator("#game-name").inner_text().lower() == "replay"
            # the arena's world is drawn: critters in the scene
            assert wait("() => (window.gameDemo.scene?.count ?? 0) > 50")
            # pause
            page.locator("#pb-play").click()
            wait("() => window.gameDemo.replay.paused")
            t = page.evaluate("() => window.gameDemo.replay.tick")
            page.wait_for_timeout(600)
            assert page.evaluate("() => window.gameDemo.replay.tick") == t
            assert page.locator("#pb-play").get_attribute("aria-label") == "play"
            # seek with the slider
            page.evaluate("""() => { const s = document.getElementById('pb-seek');
                s.value = '150'; s.dispatchEvent(new Event('change')); }""")
            wait("() => window.gameDemo.replay.tick === 150 && !window.gameDemo.replay.seeking")
            assert page.locator("#pb-tick").get_attribute("data-tick") == "150"
            # speed 4x, then play
            page.locator("#pb-speed").select_option("4")
            wait("() => window.gameDemo.replay.speed === 4")
            page.locator("#pb-play").click()
            wait("() => !window.gameDemo.replay.paused && window.gameDemo.replay.tick > 170")
            assert errors == []
        finally:
            browser.close()
