#!/usr/bin/env bash
# Installs the system packages the tests need when they are missing: Python's venv
# module (the conformance tests' virtualenv), Node.js with npm (playwright-core) and
# Debian's Chromium (the console's browser tests; never a downloaded browser).
# Used by scripts/test.sh and .ci/run. Installing needs root (or sudo); without it, it
# says which packages to install and fails.
set -euo pipefail

missing=()
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
  # Debian's system Python ships venv's ensurepip separately.
  missing+=(python3-venv)
fi
if ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
if [ ! -x /usr/bin/chromium ]; then
  missing+=(chromium)
fi
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  sudo=(sudo)
else
  echo "The tests need these Debian packages: ${missing[*]}." >&2
  echo "Install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "== installing ${missing[*]} (apt-get)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
