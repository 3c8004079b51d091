# CKAN itself: configuration, databases, the RQ worker and the web server.
# Sourced by platform.sh, never run.

ckan_cli() { "$LGDP_VENV/bin/ckan" "$@"; }

RUN_INI=$LGDP_STATE/ckan.ini
TEST_INI=$LGDP_ROOT/test.ini
RUN_DB=lgdp
RUN_DS_DB=lgdp_datastore
TEST_DB=lgdp_test
TEST_DS_DB=lgdp_test_datastore

pg_url() { echo "postgresql://$1:$2@127.0.0.1:$LGDP_PG_PORT/$3"; }

# The run configuration: CKAN's own generated file (fresh secrets), our
# settings merged in from config/platform.ini, then this machine's URLs.
ckan_config_run() {
    if [ ! -f "$RUN_INI" ]; then
        say "writing $RUN_INI"
        ckan_cli generate config "$RUN_INI" >/dev/null
    fi
    ckan_cli config-tool "$RUN_INI" -f "$LGDP_ROOT/config/platform.ini" >/dev/null
    # An empty cookie domain makes clients such as python-requests drop the
    # session cookie: leave the domain unset (host-only cookie).
    sed -i '/^SESSION_COOKIE_DOMAIN *= *$/d' "$RUN_INI"
    # No interactive debugger, even on loopback.
    ckan_cli config-tool "$RUN_INI" -s DEFAULT "debug = false" >/dev/null
    ckan_cli config-tool "$RUN_INI" \
        "ckan.site_id=lgdp" \
        "ckan.site_url=http://127.0.0.1:$LGDP_CKAN_PORT" \
        "sqlalchemy.url=$(pg_url "$LGDP_DB_USER" "$LGDP_DB_PASS" "$RUN_DB")" \
        "ckan.datastore.write_url=$(pg_url "$LGDP_DB_USER" "$LGDP_DB_PASS" "$RUN_DS_DB")" \
        "ckan.datastore.read_url=$(pg_url "$LGDP_DS_READ_USER" "$LGDP_DS_READ_PASS" "$RUN_DS_DB")" \
        "solr_url=http://127.0.0.1:$LGDP_SOLR_PORT/solr/ckan" \
        "ckan.redis.url=redis://127.0.0.1:$LGDP_REDIS_PORT/0" \
        "ckan.storage_path=$LGDP_STATE/storage" >/dev/null
    mkdir -p "$LGDP_STATE/storage"
}

# The environment variables CKAN reads for its service URLs.
CKAN_URL_VARS=(CKAN_SQLALCHEMY_URL CKAN_DATASTORE_WRITE_URL CKAN_DATASTORE_READ_URL CKAN_SOLR_URL CKAN_REDIS_URL)

# The platform's URLs are the ones written in its ckan.ini: CKAN's
# environment overrides (those the test suite sets, for one) would point the
# server and the worker at other databases or cores without a word.
ckan_run_env() {
    local var
    for var in "${CKAN_URL_VARS[@]}" CKAN_SITE_URL; do
        if [ -n "${!var:-}" ]; then
            say "ignoring $var from the environment (the platform uses $RUN_INI)"
            unset "$var"
        fi
    done
}

# The test suite reads test.ini; when the ports are not the defaults the
# URLs in it are overridden through the environment variables CKAN reads.
ckan_test_env() {
    export "${CKAN_URL_VARS[@]}"
    CKAN_SQLALCHEMY_URL=$(pg_url "$LGDP_DB_USER" "$LGDP_DB_PASS" "$TEST_DB")
    CKAN_DATASTORE_WRITE_URL=$(pg_url "$LGDP_DB_USER" "$LGDP_DB_PASS" "$TEST_DS_DB")
    CKAN_DATASTORE_READ_URL=$(pg_url "$LGDP_DS_READ_USER" "$LGDP_DS_READ_PASS" "$TEST_DS_DB")
    CKAN_SOLR_URL=http://127.0.0.1:$LGDP_SOLR_PORT/solr/ckan-test
    CKAN_REDIS_URL=redis://127.0.0.1:$LGDP_REDIS_PORT/1
}

# ckan_migrate INI DATASTORE_DB: core, plugin and DataStore schema, idempotent.
ckan_migrate() {
    local ini=$1 dsdb=$2
    say "applying database migrations ($(basename "$ini"))"
    # `db init` applies CKAN's migrations and those of every enabled plugin
    # (activity, lgdp_validation: the validation table, lgdp: our tables).
    ckan_cli -c "$ini" db init >"$LGDP_LOGS/db-init.log" 2>&1 \
        || { tail -20 "$LGDP_LOGS/db-init.log"; die "ckan db init failed (log: $LGDP_LOGS/db-init.log)"; }
    ckan_cli -c "$ini" datastore set-permissions 2>>"$LGDP_LOGS/db-init.log" | psql_super -d "$dsdb" >/dev/null \
        || die "could not set the DataStore permissions on $dsdb"
}

ckan_api_ready() {
    curl -fs -m 5 "http://127.0.0.1:$LGDP_CKAN_PORT/api/3/action/status_show" >/dev/null
}

worker_start() {
    local ini=$1 pidf=$LGDP_RUN/worker.pid
    if pid_alive "$pidf"; then return 0; fi
    say "starting the worker"
    # jobs run in the worker's own process (no fork and no reload of CKAN
    # per job); validation is served before consolidation and QA
    nohup setsid "$LGDP_VENV/bin/ckan" -c "$ini" lgdp worker lgdp:validation default \
        >>"$LGDP_LOGS/worker.log" 2>&1 </dev/null &
    echo $! >"$pidf"
    sleep 1
    pid_alive "$pidf" || { tail -20 "$LGDP_LOGS/worker.log"; die "the worker did not start (log: $LGDP_LOGS/worker.log)"; }
    # uploads a previous worker left half-validated are retried (or marked interrupted)
    "$LGDP_VENV/bin/ckan" -c "$ini" lgdp sweep >>"$LGDP_LOGS/worker.log" 2>&1 || true
}

worker_stop() { stop_pidfile "RQ worker" "$LGDP_RUN/worker.pid"; }

web_start() {
    local ini=$1 pidf=$LGDP_RUN/ckan.pid
    if pid_alive "$pidf" && ckan_api_ready; then return 0; fi
    stop_pidfile CKAN "$pidf"
    if port_busy "$LGDP_CKAN_PORT"; then
        die "port $LGDP_CKAN_PORT is already in use by another program ($(port_owner "$LGDP_CKAN_PORT")). Stop it, or choose another port: LGDP_CKAN_PORT=5001 $0 run"
    fi
    say "starting CKAN on http://127.0.0.1:$LGDP_CKAN_PORT"
    # a thread per request: uploads wait on PostgreSQL, Solr and the disk
    # much of the time, so concurrent clients overlap instead of queueing.
    # No reloader: it polls every source file (a third of a core here) and a
    # reload in the middle of a run drops the requests in flight.
    nohup setsid "$LGDP_VENV/bin/ckan" -c "$ini" run --threaded --disable-reloader -H 127.0.0.1 -p "$LGDP_CKAN_PORT" \
        >>"$LGDP_LOGS/ckan.log" 2>&1 </dev/null &
    echo $! >"$pidf"
    if ! wait_for "CKAN" 90 ckan_api_ready; then
        tail -30 "$LGDP_LOGS/ckan.log"
        die "CKAN did not answer on port $LGDP_CKAN_PORT (log: $LGDP_LOGS/ckan.log)"
    fi
    # One authorised call before any other: CKAN gathers its auth functions
    # on first use, and a concurrent request meanwhile may not find ours.
    curl -fs -m 30 "http://127.0.0.1:$LGDP_CKAN_PORT/api/3/action/site_read" >/dev/null || true
}

web_stop() { stop_pidfile CKAN "$LGDP_RUN/ckan.pid"; }

# The sysadmin of a local platform; the password is made once and kept in the
# state folder so that every run prints the same login.
ckan_sysadmin() {
    local ini=$1 pwfile=$LGDP_STATE/admin-password
    [ -s "$pwfile" ] || (umask 077; "$LGDP_VENV/bin/python" -c 'import secrets; print(secrets.token_urlsafe(12))' >"$pwfile")
    if ! ckan_cli -c "$ini" user show admin 2>/dev/null | grep -q "name=admin"; then
        ckan_cli -c "$ini" user add admin email=admin@lgdp.localhost password="$(cat "$pwfile")" \
            fullname="Platform administrator" >>"$LGDP_LOGS/ckan-cli.log" 2>&1 \
            || { tail -10 "$LGDP_LOGS/ckan-cli.log"; die "could not create the sysadmin user"; }
    fi
    ckan_cli -c "$ini" sysadmin add admin >>"$LGDP_LOGS/ckan-cli.log" 2>&1 </dev/null || true
}
