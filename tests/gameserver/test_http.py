"""HTTP routing and safe static file serving (no sockets; the e2e tests cover the wire)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gameserver.http import Router


@pytest.fixture
def router(tmp_path: Path) -> Router:
    root = tmp_path / "web"
    (root / "sub").mkdir(parents=True)
    (root / "index.html").write_text("<h1>hi</h1>")
    (root / "app.js").write_text("export const x = 1;")
    (root / "sub" / "style.css").write_text("body{}")
    (tmp_path / "secret.txt").write_text("top secret")
    (root / ".env").write_text("secret=1")
    (root / "node_modules").mkdir()
    (root / "node_modules" / "x.js").write_text("secret")
    os.symlink(tmp_path / "secret.txt", root / "link.txt")
    return Router(static_root=root, metrics=lambda: "m 1\n",
                  rooms=lambda: [{"id": "r1", "game": "g", "players": 1, "capacity": 8}])


def test_routes(router: Router) -> None:
    assert router.route("GET", "/ws", upgrade=True) is None
    r = router.route("GET", "/ws", upgrade=False)
    assert r is not None and r.status == 426
    r = router.route("GET", "/healthz", upgrade=False)
    assert r is not None and r.status == 200 and r.body == b"ok\n"
    r = router.route("GET", "/metrics", upgrade=False)
    assert r is not None and r.body == b"m 1\n" and r.content_type.startswith("text/plain")
    r = router.route("GET", "/rooms?x=1", upgrade=False)
    assert r is not None and json.loads(r.body)[0]["capacity"] == 8
    r = router.route("POST", "/healthz", upgrade=False)
    assert r is not None and r.status == 405 and ("Allow", "GET, HEAD") in r.headers
    r = router.route("HEAD", "/", upgrade=False)  # the wire drops the body (test_static_head)
    assert r is not None and r == router.route("GET", "/", upgrade=False)


def test_static_content_types(router: Router) -> None:
    r = router.route("GET", "/", upgrade=False)
    assert r is not None and r.status == 200 and r.body == b"<h1>hi</h1>"
    assert r.content_type.startswith("text/html")
    r = router.route("GET", "/app.js", upgrade=False)
    assert r is not None and r.content_type.startswith("text/javascript")
    r = router.route("GET", "/sub/style.css", upgrade=False)
    assert r is not None and r.content_type.startswith("text/css")
    r = router.route("GET", "/nope.js", upgrade=False)
    assert r is not None and r.status == 404


@pytest.mark.parametrize("path", [
    "/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E%2Fsecret.txt",
    "/..%2fsecret.txt", "/sub/%2e%2e/index.html", "/link.txt", "/a%00b", "/..\\secret.txt",
    "/%ff%fe", "/.env", "/sub/.hidden", "/node_modules/x.js",
])
def test_no_traversal(router: Router, path: str) -> None:
    r = router.route("GET", path, upgrade=False)
    assert r is not None and r.status == 404, path
    assert b"secret" not in r.body


def test_no_static_root() -> None:
    r = Router(static_root=None, metrics=str, rooms=list)
    reply = r.route("GET", "/", upgrade=False)
    assert reply is not None and reply.status == 404
