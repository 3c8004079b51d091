# PostgreSQL and Redis, from Debian's packages, run as the project's own
# instances under $LGDP_STATE. Sourced by platform.sh, never run.

# Database roles and names. The passwords only guard a server bound to loopback.
LGDP_DB_USER=ckan_default
LGDP_DB_PASS=ckan_default
LGDP_DS_READ_USER=datastore_default
LGDP_DS_READ_PASS=datastore_default

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
    [ -n "$d" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
    echo "$d"
}

# The cluster's files must belong to a non-root user: postgres refuses to run as root.
pg_owner() {
    if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_datadir() {
    local d=$LGDP_STATE/postgres
    # The postgres user must be able to reach the folder; a clone inside a
    # private home directory is not reachable, so fall back to /var/tmp.
    if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$LGDP_STATE" 2>/dev/null; then
        d=/var/tmp/lgdp-postgres-$(echo "$LGDP_STATE" | sha256sum | cut -c1-10)
    fi
    echo "$d"
}

pg_socketdir() { echo "$(pg_datadir)/socket"; }

psql_super() {
    as_pg "$(pg_bindir)/psql" -h "$(pg_socketdir)" -p "$LGDP_PG_PORT" -U "$(pg_owner)" \
        -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

pg_ready() {
    "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$LGDP_PG_PORT"
}

pg_start() {
    local bin data pidf
    bin=$(pg_bindir)
    data=$(pg_datadir)
    pidf=$data/data/postmaster.pid
    if [ -f "$pidf" ] && as_pg "$bin/pg_ctl" -D "$data/data" status >/dev/null 2>&1; then
        pg_ready || wait_for "PostgreSQL" 30 pg_ready || die "PostgreSQL is running but not answering (log: $LGDP_LOGS/postgres.log)"
        return 0
    fi
    if port_busy "$LGDP_PG_PORT"; then
        die "port $LGDP_PG_PORT is already in use by another program ($(port_owner "$LGDP_PG_PORT")). Stop it, or choose another port: LGDP_PG_PORT=5433 $0 ..."
    fi
    mkdir -p "$data"
    if [ ! -f "$data/data/PG_VERSION" ]; then
        say "creating the PostgreSQL cluster in $data"
        [ "$(id -u)" -ne 0 ] || chown postgres: "$data"
        as_pg "$bin/initdb" -D "$data/data" -U "$(pg_owner)" -E UTF8 --locale=C.UTF-8 \
            --auth-local=peer --auth-host=scram-sha-256 >"$LGDP_LOGS/initdb.log" 2>&1 \
            || { cat "$LGDP_LOGS/initdb.log"; die "initdb failed"; }
    fi
    mkdir -p "$data/socket"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$data/socket"
    touch "$LGDP_LOGS/postgres.log"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$LGDP_LOGS/postgres.log"
    say "starting PostgreSQL on 127.0.0.1:$LGDP_PG_PORT"
    as_pg "$bin/pg_ctl" -D "$data/data" -l "$LGDP_LOGS/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $LGDP_PG_PORT -c unix_socket_directories=$data/socket -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null \
        || { tail -20 "$LGDP_LOGS/postgres.log"; die "PostgreSQL did not start (log: $LGDP_LOGS/postgres.log)"; }
    wait_for "PostgreSQL" 30 pg_ready || die "PostgreSQL did not answer on port $LGDP_PG_PORT (log: $LGDP_LOGS/postgres.log)"
    ln -sf "$data/data/postmaster.pid" "$LGDP_RUN/postgres.pid"
}

pg_stop() {
    local bin data
    bin=$(pg_bindir)
    data=$(pg_datadir)
    if [ -f "$data/data/postmaster.pid" ]; then
        say "stopping PostgreSQL"
        as_pg "$bin/pg_ctl" -D "$data/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -f "$LGDP_RUN/postgres.pid"
}

# pg_role NAME PASSWORD: create or update a login role.
pg_role() {
    psql_super -c "DO \$\$ BEGIN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$1') THEN
            CREATE ROLE $1 LOGIN PASSWORD '$2';
        ELSE
            ALTER ROLE $1 LOGIN PASSWORD '$2';
        END IF; END \$\$;" >/dev/null
}

# pg_database NAME OWNER: create the database when it is missing.
pg_database() {
    if [ -z "$(psql_super -c "SELECT 1 FROM pg_database WHERE datname = '$1'")" ]; then
        say "creating database $1"
        psql_super -c "CREATE DATABASE $1 OWNER $2 ENCODING 'UTF8' TEMPLATE template0" >/dev/null
    fi
}

pg_drop_database() {
    psql_super -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null
}

# pg_prepare DB DATASTORE_DB: roles and databases for one CKAN site.
pg_prepare() {
    pg_role "$LGDP_DB_USER" "$LGDP_DB_PASS"
    pg_role "$LGDP_DS_READ_USER" "$LGDP_DS_READ_PASS"
    pg_database "$1" "$LGDP_DB_USER"
    pg_database "$2" "$LGDP_DB_USER"
}

# ---------------------------------------------------------------- redis

redis_ping() {
    [ "$(redis-cli -h 127.0.0.1 -p "$LGDP_REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

redis_start() {
    local pidf=$LGDP_RUN/redis.pid
    if pid_alive "$pidf" && redis_ping; then return 0; fi
    if port_busy "$LGDP_REDIS_PORT"; then
        die "port $LGDP_REDIS_PORT is already in use by another program ($(port_owner "$LGDP_REDIS_PORT")). Stop it, or choose another port: LGDP_REDIS_PORT=6380 $0 ..."
    fi
    mkdir -p "$LGDP_STATE/redis"
    say "starting Redis on 127.0.0.1:$LGDP_REDIS_PORT"
    redis-server --bind 127.0.0.1 --port "$LGDP_REDIS_PORT" --daemonize yes \
        --pidfile "$pidf" --logfile "$LGDP_LOGS/redis.log" --dir "$LGDP_STATE/redis" \
        --appendonly yes --protected-mode yes \
        || die "Redis did not start (log: $LGDP_LOGS/redis.log)"
    wait_for "Redis" 20 redis_ping || { tail -20 "$LGDP_LOGS/redis.log"; die "Redis did not answer on port $LGDP_REDIS_PORT"; }
}

redis_stop() {
    stop_pidfile Redis "$LGDP_RUN/redis.pid"
}
