#!/usr/bin/env bash
# The Local Government Data Platform on this machine, with its services.
#
#   ./platform.sh run      install what is missing, start PostgreSQL, Redis,
#                          Solr, then the web (gunicorn), the RQ worker(s)
#                          and the scheduler under supervisord, load the
#                          demo, and serve http://127.0.0.1:5000
#   ./platform.sh test     the same services with separate test databases and
#                          Solr core, then the whole test suite (pytest args
#                          may follow, e.g. ./platform.sh test -k access)
#   ./platform.sh test --solrcloud [pytest args]
#                          the search and access tests (or those named)
#                          against a SolrCloud of two nodes on loopback:
#                          one collection per slot, 2 shards x 2 replicas
#   ./platform.sh stop     stop everything this script started
#   ./platform.sh status   what is running, then `ckan lgdp status`
#   ./platform.sh service stop|start postgres|redis|solr
#                          one service alone (troubleshooting, outage tests)
#
# Everything it writes at run time is under .state/ (LGDP_STATE), its logs
# under .state/logs; downloaded Solr jars are cached in ~/.cache/lgdp
# (LGDP_CACHE).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=scripts/common.sh
source "$here/scripts/common.sh"
# shellcheck source=scripts/services.sh
source "$here/scripts/services.sh"
# shellcheck source=scripts/solr.sh
source "$here/scripts/solr.sh"
# shellcheck source=scripts/solrcloud.sh
source "$here/scripts/solrcloud.sh"
# shellcheck source=scripts/ckan.sh
source "$here/scripts/ckan.sh"
# shellcheck source=scripts/supervisor.sh
source "$here/scripts/supervisor.sh"

# install_all [test]: everything the platform (with "test": and its test
# suite) needs.
install_all() {
    state_dirs
    install_system "${1:-}"
    install_python
    install_assets
    solr_install
}

start_services() {
    pg_start
    redis_start
    local core
    for core in "$@"; do solr_prepare_core "$core"; done
    solr_start
}

cmd_run() {
    ckan_run_env
    install_all
    # shellcheck disable=SC2046 # one core name per word
    start_services ckan $(test_cores)
    pg_prepare "$RUN_DB" "$RUN_DS_DB"
    ckan_config_run
    ckan_migrate "$RUN_INI" "$RUN_DS_DB"
    ckan_sysadmin "$RUN_INI"
    procs_start "$RUN_INI"
    say "loading the demo data"
    ckan_cli -c "$RUN_INI" lgdp demo 2>>"$LGDP_LOGS/ckan-cli.log" \
        || { tail -20 "$LGDP_LOGS/ckan-cli.log"; die "loading the demo failed (log: $LGDP_LOGS/ckan-cli.log)"; }
    cat <<MSG

  The Local Government Data Platform is running at http://127.0.0.1:$LGDP_CKAN_PORT
  Log in as:   admin
  Password:    $(cat "$LGDP_STATE/admin-password")
  API:         http://127.0.0.1:$LGDP_CKAN_PORT/api/3/action/lgdp_status_show
  Logs:        $LGDP_LOGS/ (web.log, worker-0.log, scheduler.log, supervisord.log)
  Status:      ./platform.sh status
  Stop with:   ./platform.sh stop

MSG
}

# The tests `test --solrcloud` runs when none are named: every test that
# reads search results or decides access, then, alone (it stops a node),
# the cluster's own.
SOLRCLOUD_TESTS=(tests/test_access.py tests/test_access_gate.py tests/test_submission_state.py
    tests/test_register.py)

cmd_test() {
    if [ "${1:-}" = --solrcloud ]; then
        shift
        cmd_test_solrcloud "$@"
        return
    fi
    install_all test
    local n slot rc=0 shared=0 exclusive=0
    n=$(test_processes)
    # shellcheck disable=SC2046 # one core name per word
    start_services ckan $(test_cores)
    for ((slot = n - 1; slot >= 0; slot--)); do
        ckan_test_env "$slot"
        pg_prepare "$SLOT_DB" "$SLOT_DS_DB"
        ckan_migrate "$TEST_INI" "$SLOT_DS_DB"
        [ "$slot" -eq 0 ] || export "LGDP_TEST_ENV_$slot=$(test_slot_env)"
    done
    pg_drop_database "$TEST_WHEEL_DB"
    pg_database "$TEST_WHEEL_DB" "$LGDP_DB_USER"
    ckan_test_env 0
    cd "$LGDP_ROOT"
    # the browser tests fail, rather than skip, when Chromium is missing
    export LGDP_REQUIRE_BROWSER=1
    if [ "$n" -eq 1 ]; then
        say "running the test suite"
        "$LGDP_VENV/bin/python" -m pytest "$@" || rc=$?
        # pytest's 5 means "no tests ran": a failure here, never a silent pass.
        [ "$rc" -eq 0 ] || die "the test suite failed (pytest exit code $rc)"
        return 0
    fi
    # Two runs: the tests that share nothing across the slots in n processes,
    # then, alone, the tests that stop and start the services themselves
    # (marked `services`; tests/conftest.py's --lgdp-phase). Alone, not beside
    # the first run on services of their own: under that load a job the worker
    # ran just after a Redis restart was seen to stay "queued" in RQ
    # (tests/test_health.py), and the outage tests time what they see.
    say "running the test suite in $n processes (LGDP_TEST_PROCESSES), then the tests that stop services, alone"
    "$LGDP_VENV/bin/python" -m pytest -n "$n" --dist worksteal --lgdp-phase shared "$@" || shared=$?
    "$LGDP_VENV/bin/python" -m pytest --lgdp-phase exclusive "$@" || exclusive=$?
    # pytest's 5 means "no tests ran": fine for one of the two runs (a
    # selection may fall in one), a failure when it is both.
    for rc in "$shared" "$exclusive"; do
        [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || die "the test suite failed (pytest exit codes $shared and $exclusive)"
    done
    [ "$shared" -eq 0 ] || [ "$exclusive" -eq 0 ] || die "no test ran (pytest exit code 5 in both runs)"
}

# The same slots as cmd_test, each with a collection of the two-node cluster
# for its Solr core. The tests that stop services are left out (they stop
# the standalone Solr); the cluster's own test stops and restarts a node.
cmd_test_solrcloud() {
    install_all test
    local n slot c rc=0 collections=()
    n=$(test_processes)
    [ "$n" -le 2 ] || n=2
    for ((slot = 0; slot < n; slot++)); do
        collections+=("ckan-test$([ "$slot" -eq 0 ] || echo "-w$slot")")
    done
    pg_start
    redis_start
    solrcloud_start "${collections[@]}" || die "the SolrCloud cluster did not start (logs: $LGDP_LOGS/solrcloud-*.log)"
    for ((slot = n - 1; slot >= 0; slot--)); do
        ckan_test_env "$slot"
        CKAN_SOLR_URL=http://127.0.0.1:$(_solrcloud_port 1)/solr/${collections[$slot]}
        pg_prepare "$SLOT_DB" "$SLOT_DS_DB"
        ckan_migrate "$TEST_INI" "$SLOT_DS_DB"
        [ "$slot" -eq 0 ] || export "LGDP_TEST_ENV_$slot=$(test_slot_env)"
    done
    ckan_test_env 0
    CKAN_SOLR_URL=http://127.0.0.1:$(_solrcloud_port 1)/solr/${collections[0]}
    export LGDP_SOLRCLOUD=1
    cd "$LGDP_ROOT"
    local alone=()
    if [ "$#" -eq 0 ]; then
        set -- "${SOLRCLOUD_TESTS[@]}"
        alone=(tests/test_solrcloud.py)
    fi
    say "running $* against SolrCloud (2 nodes, ${collections[*]}: 2 shards x 2 replicas) in $n processes"
    solrcloud_status
    "$LGDP_VENV/bin/python" -m pytest -n "$n" --dist worksteal -m "not services" "$@" || rc=$?
    if [ "$rc" -eq 0 ] && [ "${#alone[@]}" -gt 0 ]; then
        say "running ${alone[*]} alone (it stops and starts node 2)"
        "$LGDP_VENV/bin/python" -m pytest "${alone[@]}" || rc=$?
    fi
    solrcloud_status || true
    solrcloud_stop
    [ "$rc" -eq 0 ] || die "the tests against SolrCloud failed (pytest exit code $rc)"
}

cmd_stop() {
    state_dirs
    procs_stop
    solrcloud_stop
    solr_stop
    redis_stop
    pg_stop
}

cmd_status() {
    ckan_run_env
    state_dirs
    local ok=0 rc=0
    pg_ready && say "PostgreSQL  up   127.0.0.1:$LGDP_PG_PORT" || { say "PostgreSQL  down"; ok=1; }
    redis_ping && say "Redis       up   127.0.0.1:$LGDP_REDIS_PORT" || { say "Redis       down"; ok=1; }
    solr_status && say "Solr        up   http://127.0.0.1:$LGDP_SOLR_PORT/solr" || { say "Solr        down"; ok=1; }
    ckan_api_ready && say "CKAN        up   http://127.0.0.1:$LGDP_CKAN_PORT" || { say "CKAN        down"; ok=1; }
    procs_status || ok=1
    # the platform's own report: workers, scheduler, queues (its exit code is ours)
    if [ -f "$RUN_INI" ] && [ -x "$LGDP_VENV/bin/ckan" ]; then
        ckan_cli -c "$RUN_INI" lgdp status || rc=$?
    else
        say "no $RUN_INI yet (./platform.sh run writes it)"
        ok=1
    fi
    [ "$rc" -eq 0 ] || return "$rc"
    return $ok
}

cmd_service() {
    state_dirs
    local verb=${1:-} name=${2:-}
    case "$verb:$name" in
        stop:postgres) pg_stop ;;
        stop:redis) redis_stop ;;
        stop:solr) solr_stop ;;
        start:postgres) pg_start ;;
        start:redis) redis_start ;;
        start:solr) solr_start ;;
        *) die "usage: $0 service stop|start postgres|redis|solr" ;;
    esac
}

case "${1:-}" in
    run) shift; cmd_run "$@" ;;
    test) shift; cmd_test "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    install) install_all ;;
    service) shift; cmd_service "$@" ;;
    *)
        sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
        exit 2
        ;;
esac
