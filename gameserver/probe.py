"""``python -m gameserver.probe [URL]``: exit 0 if the server's health endpoint answers 200.

The container's ``HEALTHCHECK`` (python slim images have no curl). Without a URL it asks
``http://127.0.0.1:$GAMESERVER_PORT/healthz`` (port 8000 by default; ``https`` when
``GAMESERVER_TLS_CERT`` is set, without certificate verification: it is our own process).
Bare ``/healthz`` also answers under a ``--path-prefix``. Exit status: 0 healthy, 1 not
(any other status, refused, timeout); one line on stderr says why.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

__all__ = ["default_url", "main", "probe"]


def default_url(env: Mapping[str, str] = os.environ) -> str:
    scheme = "https" if env.get("GAMESERVER_TLS_CERT") else "http"
    return f"{scheme}://127.0.0.1:{env.get('GAMESERVER_PORT') or '8000'}/healthz"


def probe(url: str, timeout: float = 3.0) -> str | None:
    """``None`` if ``url`` answered 200, else why not."""
    ctx = ssl._create_unverified_context() if url.startswith("https:") else None
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=ctx) as r:
            return None if r.status == 200 else f"status {r.status}"
    except urllib.error.HTTPError as exc:
        return f"status {exc.code}"
    except (OSError, ValueError) as exc:
        return str(exc)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    url = args[0] if args else default_url()
    why = probe(url)
    if why is not None:
        print(f"gameserver.probe: {url}: {why}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
