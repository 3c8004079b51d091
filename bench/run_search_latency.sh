#!/usr/bin/env bash
# package_search latency of the platform's plugins against stock CKAN.
#
#   bench/run_search_latency.sh [--n 10000] [--queries 400] [--reseed] ...
#                               run bench/search_latency.py (--help for all options)
#   bench/run_search_latency.sh --clean
#                               drop the bench databases, Solr cores and files
#
# Makes sure the services are up the way ./platform.sh does (PostgreSQL,
# Redis, Solr with the bench cores bench-ours and bench-stock) and that the
# bench databases exist, then hands over to bench/search_latency.py.
#
# Solr reads its cores only at start-up: the first run (and --clean) restarts
# it once, which interrupts search for a few seconds for the dev server and
# any test suite using it. The script waits for a running test suite to end
# first (at most LGDP_BENCH_WAIT seconds, default 900). Later runs find the
# cores loaded and restart nothing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/common.sh
source "$here/scripts/common.sh"
# shellcheck source=../scripts/services.sh
source "$here/scripts/services.sh"
# shellcheck source=../scripts/solr.sh
source "$here/scripts/solr.sh"
# shellcheck source=../scripts/ckan.sh
source "$here/scripts/ckan.sh"

BENCH_CORES=(bench-ours bench-stock)
BENCH_DBS=(lgdp_bench_ours lgdp_bench_ours_datastore lgdp_bench_stock)
BENCH_STATE=$LGDP_STATE/bench

# True when Solr has loaded every bench core.
bench_cores_loaded() {
    local status core
    status=$(curl -fsS --max-time 10 \
        "http://127.0.0.1:$LGDP_SOLR_PORT/solr/admin/cores?action=STATUS&wt=json" 2>/dev/null) || return 1
    for core in "${BENCH_CORES[@]}"; do
        [[ $status == *"\"name\":\"$core\""* ]] || return 1
    done
}

tests_running() { pgrep -f -- '(-m pytest|bin/pytest)( |$)' >/dev/null 2>&1; }

# Wait for a running test suite to end before Solr is restarted under it.
wait_for_tests() {
    local secs=${LGDP_BENCH_WAIT:-900} waited=0
    if ! solr_status >/dev/null 2>&1; then return 0; fi
    while tests_running; do
        if ((waited == 0)); then say "a test suite is running; waiting for it before restarting Solr"; fi
        if ((waited >= secs)); then
            warn "the test suite is still running after ${secs} s; restarting Solr anyway"
            return 0
        fi
        sleep 5
        waited=$((waited + 5))
    done
}

bench_clean() {
    local db core
    state_dirs
    pg_start
    for db in "${BENCH_DBS[@]}"; do
        say "dropping database $db"
        pg_drop_database "$db"
    done
    for core in "${BENCH_CORES[@]}"; do rm -rf "$(_solr_home)/$core"; done
    rm -rf "$BENCH_STATE"
    if solr_status >/dev/null 2>&1; then
        wait_for_tests
        solr_start # the set of cores changed: Solr restarts without the bench cores
    fi
    say "bench databases, cores and files removed (results in bench/results/ are kept)"
}

if [ "${1:-}" = "--clean" ]; then
    bench_clean
    exit 0
fi
for arg in "$@"; do
    case "$arg" in -h | --help)
        sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
        exec "$LGDP_VENV/bin/python" "$here/bench/search_latency.py" --help
        ;;
    esac
done

state_dirs
[ -x "$LGDP_VENV/bin/ckan" ] || die "no CKAN in $LGDP_VENV: run ./platform.sh install (or run) first"
pg_start
redis_start
if ! bench_cores_loaded; then wait_for_tests; fi
for core in "${BENCH_CORES[@]}"; do solr_prepare_core "$core"; done
solr_start

pg_role "$LGDP_DB_USER" "$LGDP_DB_PASS"
pg_role "$LGDP_DS_READ_USER" "$LGDP_DS_READ_PASS"
for db in "${BENCH_DBS[@]}"; do pg_database "$db" "$LGDP_DB_USER"; done

# The ini files, then the DataStore permissions of our site (its plugins
# include datastore, which checks them at start-up).
"$LGDP_VENV/bin/python" "$here/bench/search_latency.py" --write-configs >/dev/null
mkdir -p "$BENCH_STATE/logs"
env -u CKAN_SQLALCHEMY_URL -u CKAN_DATASTORE_WRITE_URL -u CKAN_DATASTORE_READ_URL \
    -u CKAN_SOLR_URL -u CKAN_REDIS_URL -u CKAN_INI \
    "$LGDP_VENV/bin/ckan" -c "$BENCH_STATE/ours.ini" datastore set-permissions \
    2>>"$BENCH_STATE/logs/ckan-ours.log" | psql_super -d lgdp_bench_ours_datastore >/dev/null \
    || die "could not set the DataStore permissions on lgdp_bench_ours_datastore (log: $BENCH_STATE/logs/ckan-ours.log)"

cd "$here"
exec "$LGDP_VENV/bin/python" "$here/bench/search_latency.py" "$@"
