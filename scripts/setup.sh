#!/usr/bin/env bash
# Create .venv and install MetaScope into it (skipped when requirements are unchanged).
# Usage: scripts/setup.sh [dev]   -- "dev" adds the test tools and Chromium for the browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
files=(requirements.txt pyproject.toml)
[ "${1:-}" = dev ] && files+=(requirements-dev.txt)
stamp=".venv/.installed-$(cat "${files[@]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "Installing MetaScope into .venv (first time: a few minutes) ..."
  reqs=(-r requirements.txt)
  [ "${1:-}" = dev ] && reqs+=(-r requirements-dev.txt)
  .venv/bin/python -m pip install -q --disable-pip-version-check "${reqs[@]}" -e .
  touch "$stamp"
fi
if [ "${1:-}" = dev ]; then
  # the browser tests drive Debian's Chromium (without it they are skipped with a reason); the font draws
  # the Chinese lesson text in their screenshots
  missing=()
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || missing+=(fonts-wqy-microhei)
  if [ ${#missing[@]} -gt 0 ] && command -v apt-get >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
      (timeout 600 apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
        || { timeout 300 apt-get update -qq && timeout 600 apt-get install -y -qq "${missing[@]}"; }) || echo "warning: could not install ${missing[*]}"
    elif sudo -n true 2>/dev/null; then
      (timeout 300 sudo apt-get update -qq && timeout 600 sudo apt-get install -y -qq "${missing[@]}") || echo "warning: could not install ${missing[*]}"
    else
      echo "note: ${missing[*]} not installed and this user cannot install it; browser tests need chromium"
    fi
  fi
fi
