#!/usr/bin/env bash
# Runs every test of the project: the Rust workspace, then the conformance tests that
# drive the emulator with Google's own Python client libraries. Sets up what it needs
# (the pinned Python virtualenv in .venv) on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh

venv=.venv
if [ ! -x "$venv/bin/python" ] || ! cmp -s tests/conformance/requirements.txt "$venv/.installed-requirements"; then
  echo "== setting up $venv from tests/conformance/requirements.txt"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r tests/conformance/requirements.txt
  cp tests/conformance/requirements.txt "$venv/.installed-requirements"
fi

e2e=crates/tributary-server/e2e
if [ -f "$e2e/package-lock.json" ] && ! cmp -s "$e2e/package-lock.json" "$e2e/node_modules/.installed-lock"; then
  echo "== installing the browser tests' pinned playwright-core (npm ci in $e2e)"
  npm ci --prefix "$e2e" --no-audit --no-fund --loglevel=error
  cp "$e2e/package-lock.json" "$e2e/node_modules/.installed-lock"
fi

echo "== cargo test (workspace)"
cargo test --workspace --locked

echo "== conformance tests (google-auth, google-api-python-client against the emulator)"
cargo build --locked -p tributary
"$venv/bin/python" -m pytest -q tests/conformance
