#!/usr/bin/env bash
# Builds the console into OUT_DIR (CMake: build/bin/console, next to twinhubd, which serves it).
# Installs the pinned packages first when node_modules is missing or older than package-lock.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
TWINHUB_CONSOLE_OUT="$out" node node_modules/vite/bin/vite.js build --logLevel warn
touch "$out/index.html"
