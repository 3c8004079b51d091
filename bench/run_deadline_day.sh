#!/usr/bin/env bash
# Deadline-day load: 32 councils x 20 returns (640 uploads of 10k rows) pushed
# concurrently through the API against the running platform (./platform.sh run).
#
#   bench/run_deadline_day.sh                                 # full size, 1 worker
#   bench/run_deadline_day.sh --workers 2                     # 2 RQ workers in all
#   bench/run_deadline_day.sh --councils 4 --returns 2 --rows 1000
#   bench/run_deadline_day.sh --clean                         # purge the bench's data
#   bench/run_deadline_day.sh --help
#
# Runs bench/deadline_day.py with the project's virtualenv (LGDP_VENV,
# default .venv). See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LGDP_VENV:-$here/.venv}
cd "$here"
exec "$venv/bin/python" "$here/bench/deadline_day.py" "$@"
