#!/usr/bin/env bash
# Install what is needed and open the MetaScope dashboard on the built-in glyphs dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m dashboard "$@"
