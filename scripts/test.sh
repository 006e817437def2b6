#!/usr/bin/env bash
# Install what is needed (with test tools and Chromium) and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
export METASCOPE_OMNIGLOT_TEST_DIR="${METASCOPE_OMNIGLOT_TEST_DIR:-$(cd .. && pwd)/shared/data/omniglot}"
exec .venv/bin/python -m pytest "$@"
