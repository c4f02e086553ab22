"""The committed browser bundle (clients/web/dist/gameclient.js) is current.

The server serves the bundle as is (no build step at start), so it must be exactly what
``node build.mjs`` produces from ``src/`` with the pinned esbuild: rebuild into a temp file
with the same script (same options) and compare bytes. Skips when node or node_modules are
missing. Also checks the files the server must serve exist and reference each other.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "clients" / "web"
BUNDLE = WEB / "dist" / "gameclient.js"
SERVED = ("index.html", "demo.js", "demo.css", "dist/gameclient.js")


def test_served_files_exist_and_link() -> None:
    for name in SERVED:
        assert (WEB / name).is_file(), f"clients/web/{name} missing"
    html = (WEB / "index.html").read_text()
    assert 'src="demo.js"' in html and 'href="demo.css"' in html
    demo = (WEB / "demo.js").read_text()
    assert re.search(r'from "\./dist/gameclient\.js"', demo), "demo.js must import the bundle"
    # the bundle is self-contained: no bare imports left for the browser to resolve
    bundle = BUNDLE.read_text()
    assert not re.search(r'^\s*import\s.*from\s+"[^./]', bundle, re.M)


def test_bundle_is_current(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot rebuild the bundle to compare")
    esbuild_pkg = WEB / "node_modules" / "esbuild" / "package.json"
    if not esbuild_pkg.is_file():
        pytest.skip("clients/web/node_modules missing (run `npm ci` in clients/web)")
    lock = json.loads((WEB / "package-lock.json").read_text())
    pinned = lock["packages"]["node_modules/esbuild"]["version"]
    installed = json.loads(esbuild_pkg.read_text())["version"]
    assert installed == pinned, f"installed esbuild {installed} != locked {pinned}: run npm ci"
    out = tmp_path / "gameclient.js"
    proc = subprocess.run([node, "build.mjs", "--outfile", str(out)], cwd=WEB,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    fresh, committed = out.read_bytes(), BUNDLE.read_bytes()
    assert fresh == committed, (
        "clients/web/dist/gameclient.js is stale: run `node build.mjs` in clients/web and commit it"
    )


def _tsc() -> Path:
    if shutil.which("node") is None:
        pytest.skip("node is not installed: cannot run the TypeScript compiler")
    tsc = WEB / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.is_file():
        pytest.skip("clients/web/node_modules missing (run `npm ci` in clients/web)")
    return tsc


def test_type_declarations_compile(tmp_path: Path) -> None:
    """index.d.ts type-checks a usage example (strict), and rejects a wrong one."""
    tsc = _tsc()
    node = shutil.which("node")
    assert node is not None
    ok = subprocess.run([node, str(tsc), "-p", "test/types"], cwd=WEB,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = tmp_path / "bad.ts"
    bad.write_text(
        f'import {{ GameClient }} from "{(WEB / "index").as_posix()}";\n'
        'new GameClient("wss://x/ws").sendInput({ dx: {} });\n'
    )
    wrong = subprocess.run(
        [node, str(tsc), "--noEmit", "--strict", "--target", "es2020", "--module", "esnext",
         "--moduleResolution", "bundler", "--lib", "es2020,dom", str(bad)],
        cwd=WEB, capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "InputValue" in wrong.stdout, wrong.stdout + wrong.stderr
