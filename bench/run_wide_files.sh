#!/usr/bin/env bash
# Intake against files over its limits (wide, long cells) and a normal 1M-row file.
#
#   bench/run_wide_files.sh
#
# Pure Python, no services: runs bench/wide_files.py with the
# project's virtualenv (LGDP_VENV, default .venv). See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LGDP_VENV:-$here/.venv}
cd "$here"
exec "$venv/bin/python" "$here/bench/wide_files.py" "$@"
