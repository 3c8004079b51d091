#!/usr/bin/env bash
# One RQ worker of the platform, as supervisord starts it (scripts/supervisor.sh):
#
#   scripts/worker.sh INI
#
# First the sweep: uploads whose validation stopped when a worker died are
# queued again (or marked interrupted), accepted submissions missing from
# their table are consolidated. It runs at every start, so a worker that
# supervisord restarts after a crash recovers what the crash left behind.
# The sweeps of several workers take turns (a lock under $LGDP_RUN), so two
# never queue the same upload twice. A sweep that fails (PostgreSQL down)
# does not keep the worker from starting.
#
# Then the worker itself replaces this shell (exec), so supervisord's TERM
# reaches it directly: the job in hand finishes, then it exits.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
source "$here/common.sh"

ini=${1:?usage: scripts/worker.sh INI}
state_dirs
ckan=$LGDP_VENV/bin/ckan

echo "[lgdp] sweep before the worker starts"
flock -w 600 "$LGDP_RUN/sweep.lock" "$ckan" -c "$ini" lgdp sweep </dev/null \
    || echo "[lgdp] the sweep failed (exit $?); starting the worker anyway"

# jobs run in the worker's own process (no fork and no reload of CKAN per
# job); validation is served before consolidation and QA
exec "$ckan" -c "$ini" lgdp worker lgdp:validation default
