# CKAN itself: configuration and databases (its processes: scripts/supervisor.sh).
# Sourced by platform.sh, never run.

ckan_cli() { "$LGDP_VENV/bin/ckan" "$@"; }

RUN_INI=$LGDP_STATE/ckan.ini
TEST_INI=$LGDP_ROOT/test.ini
RUN_DB=lgdp
RUN_DS_DB=lgdp_datastore
TEST_DB=lgdp_test
TEST_DS_DB=lgdp_test_datastore
# emptied at each test run: tests/test_wheel.py migrates it from an installed wheel
TEST_WHEEL_DB=lgdp_test_wheel

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
#
# It runs in LGDP_TEST_PROCESSES processes (pytest-xdist, default: the
# machine's cores, at most 4), each in a slot of its own: databases, Solr
# core, Redis database and file store. Slot 0 is test.ini's (lgdp_test,
# ckan-test, Redis 1); slot i the same names with _w<i> / -w<i> and Redis
# 1+2i (each slot leaves the next Redis database free for
# tests/test_supervisor.py's stack). tests/conftest.py gives pytest-xdist's
# worker gw<i> the environment of slot i, from LGDP_TEST_ENV_<i>.
test_processes() {
    local n=${LGDP_TEST_PROCESSES:-$(nproc 2>/dev/null || echo 1)}
    [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "LGDP_TEST_PROCESSES must be a whole number of processes, 1 or more (got '$n')"
    [ "$n" -le 4 ] || n=4
    echo "$n"
}

# test_cores: the Solr cores of every slot (`run` prepares them too, so
# that Solr is not restarted between `run` and `test`).
test_cores() {
    local i n
    n=$(test_processes)
    echo ckan-test
    for ((i = 1; i < n; i++)); do echo "ckan-test-w$i"; done
}

# ckan_test_env [SLOT]: export the CKAN_* variables of a slot (default 0);
# sets SLOT_DB and SLOT_DS_DB.
ckan_test_env() {
    local slot=${1:-0} suffix="" core=ckan-test
    if [ "$slot" -gt 0 ]; then suffix=_w$slot; core=ckan-test-w$slot; fi
    SLOT_DB=$TEST_DB$suffix
    SLOT_DS_DB=$TEST_DS_DB
    [ "$slot" -eq 0 ] || SLOT_DS_DB=${SLOT_DB}_datastore
    export "${CKAN_URL_VARS[@]}" CKAN_STORAGE_PATH
    CKAN_SQLALCHEMY_URL=$(pg_url "$LGDP_DB_USER" "$LGDP_DB_PASS" "$SLOT_DB")
    CKAN_DATASTORE_WRITE_URL=$(pg_url "$LGDP_DB_USER" "$LGDP_DB_PASS" "$SLOT_DS_DB")
    CKAN_DATASTORE_READ_URL=$(pg_url "$LGDP_DS_READ_USER" "$LGDP_DS_READ_PASS" "$SLOT_DS_DB")
    CKAN_SOLR_URL=http://127.0.0.1:$LGDP_SOLR_PORT/solr/$core
    CKAN_REDIS_URL=redis://127.0.0.1:$LGDP_REDIS_PORT/$((1 + 2 * slot))
    CKAN_STORAGE_PATH=$LGDP_STATE/test-storage${suffix}
    mkdir -p "$CKAN_STORAGE_PATH"
}

# test_slot_env: the variables ckan_test_env exported last, as one line
# (NAME=VALUE ...) for LGDP_TEST_ENV_<SLOT>.
test_slot_env() {
    local var out=""
    for var in "${CKAN_URL_VARS[@]}" CKAN_STORAGE_PATH; do out+="$var=${!var} "; done
    echo "${out% }"
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
