# The platform's own processes (the web, the workers and the scheduler)
# under supervisord, which restarts any that dies. Sourced by platform.sh,
# never run.
#
# supervisord comes from PyPI (requirements.txt) and runs from the venv; its
# configuration is generated into $LGDP_STATE/supervisord.conf from the
# variables below at every `./platform.sh run`, its control socket is
# $LGDP_RUN/supervisor.sock, and every log is under $LGDP_LOGS:
#
#   web.log          gunicorn: its access log and CKAN's log
#   worker-N.log     worker N (N from 0): its sweep at start, then its jobs
#   scheduler.log    the scheduler
#   supervisord.log  starts, exits and restarts of all of them
#
# Settings (environment variables of `./platform.sh run`):
#   LGDP_WORKERS        RQ workers, each on lgdp:validation then default (1)
#   LGDP_WORKER_GRACE   seconds a stopped worker has to finish its job (120)
#   LGDP_WEB_WORKERS, LGDP_WEB_THREADS, LGDP_WEB_TIMEOUT,
#   LGDP_WEB_GRACEFUL_TIMEOUT, LGDP_WEB_MAX_REQUESTS
#                       the web server's (ckanext/lgdp/ops/gunicorn_conf.py)

SUPERVISOR_CONF=$LGDP_STATE/supervisord.conf
SUPERVISOR_SOCK=$LGDP_RUN/supervisor.sock
SUPERVISOR_PID=$LGDP_RUN/supervisord.pid

# Restarts: a process that dies after running its startsecs (long enough to
# load CKAN, and for a worker to sweep) is started again at once; one that
# dies sooner is tried again up to 60 times, each wait a second longer than
# the one before (half an hour in all, a minute apart at the end), then left
# FATAL until the next `./platform.sh run`.
SUPERVISOR_STARTRETRIES=60

# whole_number NAME DEFAULT MIN: the value of variable NAME (DEFAULT when
# unset), which must be a whole number of at least MIN.
whole_number() {
    local name=$1 value=${!1:-$2}
    [[ "$value" =~ ^[0-9]+$ ]] && [ "$value" -ge "$3" ] \
        || die "$name=$value: a whole number of at least $3 is needed"
    echo "$value"
}

# supervisor's configuration files interpolate %(name)s: a literal % is %%
sv_escape() { printf '%s' "${1//%/%%}"; }

supervisorctl_() {
    "$LGDP_VENV/bin/supervisorctl" -c "$SUPERVISOR_CONF" "$@"
}

supervisord_running() {
    pid_alive "$SUPERVISOR_PID" && [ -S "$SUPERVISOR_SOCK" ] && supervisorctl_ pid >/dev/null 2>&1
}

# supervisor_conf INI: write $SUPERVISOR_CONF for the platform of INI.
supervisor_conf() {
    local ini workers grace web_workers web_threads web_timeout web_graceful web_max tmp
    ini=$(sv_escape "$1")
    workers=$(whole_number LGDP_WORKERS 1 1)
    grace=$(whole_number LGDP_WORKER_GRACE 120 1)
    web_workers=$(whole_number LGDP_WEB_WORKERS 2 1)
    web_threads=$(whole_number LGDP_WEB_THREADS 8 1)
    web_timeout=$(whole_number LGDP_WEB_TIMEOUT 60 1)
    web_graceful=$(whole_number LGDP_WEB_GRACEFUL_TIMEOUT 30 1)
    web_max=$(whole_number LGDP_WEB_MAX_REQUESTS 0 0)
    local root venv state logs run
    root=$(sv_escape "$LGDP_ROOT")
    venv=$(sv_escape "$LGDP_VENV")
    state=$(sv_escape "$LGDP_STATE")
    logs=$(sv_escape "$LGDP_LOGS")
    run=$(sv_escape "$LGDP_RUN")
    tmp=$SUPERVISOR_CONF.tmp
    cat >"$tmp" <<CONF
; Written by platform.sh (scripts/supervisor.sh) at every run: edit that, not this.

[unix_http_server]
file=$run/supervisor.sock
chmod=0700

[supervisorctl]
serverurl=unix://$run/supervisor.sock

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisord]
logfile=$logs/supervisord.log
logfile_maxbytes=10MB
logfile_backups=3
pidfile=$run/supervisord.pid
childlogdir=$logs
directory=$root
identifier=lgdp-$LGDP_CKAN_PORT
environment=LGDP_ROOT="$root",LGDP_STATE="$state",LGDP_VENV="$venv",LGDP_CACHE="$(sv_escape "$LGDP_CACHE")",LGDP_PG_PORT="$LGDP_PG_PORT",LGDP_REDIS_PORT="$LGDP_REDIS_PORT",LGDP_SOLR_PORT="$LGDP_SOLR_PORT",LGDP_CKAN_PORT="$LGDP_CKAN_PORT",CKAN_INI="$ini"

; Started first and stopped last (priority): the workers, then the
; scheduler, then the web.

[program:worker]
command=$root/scripts/worker.sh $ini
process_name=worker-%(process_num)d
numprocs=$workers
priority=100
autostart=true
autorestart=true
startsecs=20
startretries=$SUPERVISOR_STARTRETRIES
; RQ's warm shutdown: the job in hand finishes, then the worker exits
stopsignal=TERM
stopwaitsecs=$grace
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$logs/worker-%(process_num)d.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5

[program:scheduler]
command=$venv/bin/ckan -c $ini lgdp scheduler
priority=200
autostart=true
autorestart=true
startsecs=20
startretries=$SUPERVISOR_STARTRETRIES
stopsignal=TERM
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$logs/scheduler.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5

[program:web]
command=$venv/bin/gunicorn -c python:ckanext.lgdp.ops.gunicorn_conf --bind 127.0.0.1:$LGDP_CKAN_PORT
environment=LGDP_WEB_WORKERS="$web_workers",LGDP_WEB_THREADS="$web_threads",LGDP_WEB_TIMEOUT="$web_timeout",LGDP_WEB_GRACEFUL_TIMEOUT="$web_graceful",LGDP_WEB_MAX_REQUESTS="$web_max"
priority=300
autostart=true
autorestart=true
startsecs=15
startretries=$SUPERVISOR_STARTRETRIES
; gunicorn's graceful stop: no new connections, the requests in flight finish
stopsignal=TERM
stopwaitsecs=$((web_graceful + 10))
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$logs/web.log
stdout_logfile_maxbytes=20MB
stdout_logfile_backups=5
CONF
    if cmp -s "$tmp" "$SUPERVISOR_CONF"; then
        rm -f "$tmp"
    else
        mv "$tmp" "$SUPERVISOR_CONF"
    fi
}

# The processes of an earlier version of platform.sh (pid files, no supervisor).
procs_stop_unsupervised() {
    stop_pidfile CKAN "$LGDP_RUN/ckan.pid"
    stop_pidfile "RQ worker" "$LGDP_RUN/worker.pid"
}

# procs_start INI: the web, the workers and the scheduler under supervisord,
# started when they are not running; when supervisord already runs, the
# configuration's changes (e.g. LGDP_WORKERS) are applied and what stopped is
# started again, and nothing else happens.
procs_start() {
    local ini=$1
    supervisor_conf "$ini"
    procs_stop_unsupervised
    if supervisord_running; then
        say "supervisord is running: applying its configuration"
        supervisorctl_ update >/dev/null || die "supervisorctl update failed (log: $LGDP_LOGS/supervisord.log)"
        supervisorctl_ start all >/dev/null 2>&1 || true
    else
        rm -f "$SUPERVISOR_SOCK"
        if port_busy "$LGDP_CKAN_PORT"; then
            die "port $LGDP_CKAN_PORT is already in use by another program ($(port_owner "$LGDP_CKAN_PORT")). Stop it, or choose another port: LGDP_CKAN_PORT=5001 $0 run"
        fi
        say "starting the web, the workers and the scheduler under supervisord"
        "$LGDP_VENV/bin/supervisord" -c "$SUPERVISOR_CONF" \
            || die "supervisord did not start (log: $LGDP_LOGS/supervisord.log)"
        wait_for "supervisord" 20 supervisord_running \
            || { tail -20 "$LGDP_LOGS/supervisord.log"; die "supervisord did not answer (log: $LGDP_LOGS/supervisord.log)"; }
    fi
    # The web answers once one of its processes has loaded CKAN; each process
    # gathers CKAN's action and auth functions before it accepts a request
    # (ckanext/lgdp/ops/wsgi.py), so the first requests find them all.
    if ! wait_for "CKAN" 120 ckan_api_ready; then
        tail -30 "$LGDP_LOGS/web.log"
        die "CKAN did not answer on port $LGDP_CKAN_PORT (log: $LGDP_LOGS/web.log)"
    fi
    procs_check
}

# procs_check: every program RUNNING, or a warning with the end of its log;
# a worker that gave up (FATAL) is an error: nothing would be validated.
# Programs still starting (loading CKAN, a worker sweeping) are waited for,
# up to a minute and a half, unless they have failed once meanwhile.
procs_check() {
    local name state i log out starting failing=" "
    for i in $(seq 1 90); do
        # (supervisorctl status exits non-zero unless every program is RUNNING)
        out=$(supervisorctl_ status 2>/dev/null) || true
        starting=0
        while read -r name state _; do
            case $state in
                BACKOFF | FATAL | EXITED) failing+="$name " ;;
                # one that failed once already is not waited for again
                STARTING) [[ "$failing" == *" $name "* ]] || starting=1 ;;
            esac
        done <<<"$out"
        [ "$starting" -eq 1 ] || break
        sleep 1
    done
    while read -r name state _; do
        [ -n "$name" ] || continue
        [ "$state" = RUNNING ] && continue
        log=$LGDP_LOGS/${name#*:}.log
        warn "$name is $state (log: $log)"
        [ -f "$log" ] && tail -5 "$log" >&2
        case $name:$state in worker:*:FATAL) die "the worker did not start (log: $log)" ;; esac
    done <<<"$out"
    return 0
}

# procs_stop: the programs stopped in turn (each within its grace period),
# then supervisord itself.
procs_stop() {
    procs_stop_unsupervised
    if supervisord_running; then
        say "stopping the web, the scheduler and the workers"
        supervisorctl_ stop all >/dev/null || true
        supervisorctl_ shutdown >/dev/null || true
    fi
    if pid_alive "$SUPERVISOR_PID"; then
        local pid i
        pid=$(cat "$SUPERVISOR_PID")
        for i in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && stop_pidfile supervisord "$SUPERVISOR_PID"
    fi
    rm -f "$SUPERVISOR_PID" "$SUPERVISOR_SOCK"
}

# procs_status: each program's state; false unless all are RUNNING.
procs_status() {
    local out
    if ! supervisord_running; then
        say "supervisord not running: no web, worker or scheduler (./platform.sh run starts them)"
        return 1
    fi
    out=$(supervisorctl_ status 2>&1) || true
    printf '%s\n' "$out"
    [ -n "$out" ] && ! printf '%s\n' "$out" | awk '$2 != "RUNNING" { bad = 1 } END { exit !bad }'
}
