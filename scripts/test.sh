#!/usr/bin/env bash
# The whole test suite, from a fresh machine with only Python, pip and apt.
# Installs what the tests need (Python extras, Debian's chromium for the browser test,
# the web client's node packages), then runs ruff, mypy and pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install -q --disable-pip-version-check -e '.[test]'

# Debian's chromium drives the browser end-to-end test (a browser download does not work
# on these machines, so Playwright is pointed at /usr/bin/chromium); Debian's redis-server
# backs the cluster tests (each test starts its own on a free port).
apt_missing=()
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || apt_missing+=(redis-server)
# nginx-light runs the README's reverse-proxy example in front of the server (test_nginx.py)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_missing+=(nginx-light)
if [ ${#apt_missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}") \
        || echo "warning: could not install ${apt_missing[*]}; tests needing them will skip" >&2
fi

# The web client's dev dependencies (esbuild, @msgpack/msgpack) for the node tests.
if [ -f clients/web/package-lock.json ] && command -v npm >/dev/null 2>&1; then
    (cd clients/web && npm ci --no-audit --no-fund --silent) \
        || echo "warning: npm ci failed; node tests will skip" >&2
fi

echo "== ruff"; python -m ruff check .
echo "== mypy"; python -m mypy
echo "== pytest"; python -m pytest -q "$@"
