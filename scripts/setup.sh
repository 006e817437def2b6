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
if [ "${1:-}" = dev ] && ! command -v chromium >/dev/null 2>&1; then
  # the browser journey drives Debian's Chromium; without root it is skipped with a reason
  if [ "$(id -u)" = 0 ]; then
    (apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei; }) || echo "warning: could not install chromium"
  elif sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo apt-get install -y -qq chromium fonts-wqy-microhei || echo "warning: could not install chromium"
  else
    echo "note: chromium is not installed and this user cannot install it; browser tests will be skipped"
  fi
fi
