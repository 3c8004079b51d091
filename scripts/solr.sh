# shellcheck shell=bash
# Local Apache Solr 9.10 for CKAN, without Docker or the Solr tarball.
#
# SOURCE this file (it is safe under `set -euo pipefail`); it defines:
#   solr_install             gather Solr's jars once (Maven Central) into
#                            ${LGDP_CACHE:-$HOME/.cache/lgdp}/solr-9.10.1/lib; installs Java/Maven
#                            with apt-get if missing. No-op when already complete.
#   solr_prepare_core NAME   create/refresh $LGDP_STATE/solr/home/{solr.xml,NAME/} with conf from
#                            solr/conf and CKAN's schema.xml from the ckan package in $LGDP_VENV
#                            (as conf/managed-schema.xml). The index (NAME/data) is kept.
#   solr_start               start Solr on 127.0.0.1:$LGDP_SOLR_PORT (default 8983), context /solr,
#                            and wait until every core answers /admin/ping. Idempotent.
#   solr_stop                SIGTERM (clean shutdown), SIGKILL after a timeout.
#   solr_status              print state; returns 0 only if running and every core answers.
# All return non-zero with a message on stderr on failure.
#
# Variables: LGDP_STATE (required, absolute), LGDP_VENV (for solr_prepare_core),
#   LGDP_SOLR_PORT (8983), LGDP_CACHE ($HOME/.cache/lgdp), LGDP_SOLR_HEAP (512m),
#   LGDP_SOLR_START_TIMEOUT (90 s), LGDP_SOLR_STOP_TIMEOUT (30 s), LGDP_SOLR_JAVA_OPTS (extra JVM
#   options, split on spaces).
# Files: $LGDP_STATE/run/solr.pid, $LGDP_STATE/logs/solr.log (previous start: solr.log.1).
# CKAN: solr_url = http://127.0.0.1:$LGDP_SOLR_PORT/solr/NAME

LGDP_SOLR_VERSION=9.10.1
_LGDP_SOLR_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")/../solr" && pwd)"

_solr_err() { echo "solr: $*" >&2; }

_solr_state() {
  if [[ -z "${LGDP_STATE:-}" || "${LGDP_STATE}" != /* ]]; then
    _solr_err "LGDP_STATE must be set to an absolute path (got '${LGDP_STATE:-}')"
    return 1
  fi
}

_solr_port() { echo "${LGDP_SOLR_PORT:-8983}"; }
_solr_lib() { echo "${LGDP_CACHE:-$HOME/.cache/lgdp}/solr-${LGDP_SOLR_VERSION}/lib"; }
_solr_home() { echo "$LGDP_STATE/solr/home"; }
_solr_pidfile() { echo "$LGDP_STATE/run/solr.pid"; }
_solr_logfile() { echo "$LGDP_STATE/logs/solr.log"; }

_solr_java_major() {
  local v
  v="$(java -version 2>&1)" || return 1
  [[ $v =~ version\ \"([0-9]+)(\.([0-9]+))? ]] || return 1
  if [[ ${BASH_REMATCH[1]} == 1 ]]; then echo "${BASH_REMATCH[3]}"; else echo "${BASH_REMATCH[1]}"; fi
}

_solr_need_tools() {
  local need=() major=""
  if command -v java >/dev/null 2>&1; then major="$(_solr_java_major || true)"; fi
  if [[ -z $major ]] || ((major < 11)); then need+=(default-jdk-headless); fi
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  command -v curl >/dev/null 2>&1 || need+=(curl)
  ((${#need[@]} == 0)) && return 0
  echo "solr: installing ${need[*]} with apt-get" >&2
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { _solr_err "need root (or sudo) to install ${need[*]}"; return 1; }
    sudo=(sudo)
  fi
  if ! { "${sudo[@]}" apt-get update -qq >&2 &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need[@]}" >&2; }; then
    _solr_err "apt-get install ${need[*]} failed"
    return 1
  fi
  major="$(_solr_java_major || true)"
  if [[ -z $major ]] || ((major < 11)); then
    _solr_err "Java 11+ is needed (java -version: $(java -version 2>&1 | tr '\n' ' '))"
    return 1
  fi
}

# The jar set is complete when its marker holds the hash of the pom that produced it.
_solr_lib_ok() {
  local lib stamp
  lib="$(_solr_lib)"
  stamp="$(sha256sum "$_LGDP_SOLR_SRC/pom.xml")"
  [[ -f "$lib/.complete" && "$(cat "$lib/.complete")" == "${stamp%% *}" ]]
}

solr_install() {
  _solr_need_tools || return 1
  _solr_lib_ok && return 0
  local lib tmp stamp
  lib="$(_solr_lib)"
  tmp="$lib.tmp.$$"
  stamp="$(sha256sum "$_LGDP_SOLR_SRC/pom.xml")"
  echo "solr: gathering Solr ${LGDP_SOLR_VERSION} jars from Maven Central into $lib" >&2
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if ! mvn -B -q -Dstyle.color=never -f "$_LGDP_SOLR_SRC/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$tmp" >&2; then
    rm -rf "$tmp"
    _solr_err "mvn dependency:copy-dependencies failed (is Maven Central reachable?)"
    return 1
  fi
  rm -rf "$lib"
  mv "$tmp" "$lib"
  echo "${stamp%% *}" >"$lib/.complete"
}

solr_prepare_core() {
  local name="${1:-}"
  _solr_state || return 1
  if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]]; then
    _solr_err "usage: solr_prepare_core NAME (letters, digits, _ . -); got '$name'"
    return 1
  fi
  if [[ -z "${LGDP_VENV:-}" || ! -x "${LGDP_VENV}/bin/python" ]]; then
    _solr_err "LGDP_VENV must point to a virtualenv with ckan installed (got '${LGDP_VENV:-}')"
    return 1
  fi
  local ckan_dir schema home core f
  ckan_dir="$("$LGDP_VENV/bin/python" -c 'import ckan, os; print(os.path.dirname(ckan.__file__))')" ||
    { _solr_err "cannot import ckan with $LGDP_VENV/bin/python"; return 1; }
  schema="$ckan_dir/config/solr/schema.xml"
  [[ -f $schema ]] || { _solr_err "CKAN's Solr schema not found at $schema"; return 1; }
  home="$(_solr_home)"
  core="$home/$name"
  mkdir -p "$core/data" || return 1
  cp "$_LGDP_SOLR_SRC/solr.xml" "$home/solr.xml" || return 1
  # conf/ is rebuilt each time (matches the installed CKAN); data/ is left alone.
  rm -rf "$core/conf.new"
  mkdir "$core/conf.new" || return 1
  for f in "$_LGDP_SOLR_SRC"/conf/*; do
    [[ $(basename "$f") == log4j2.xml ]] && continue # JVM logging config, not core conf
    cp "$f" "$core/conf.new/" || return 1
  done
  # solrconfig.xml uses ManagedIndexSchemaFactory (immutable) with exactly this one schema file.
  cp "$schema" "$core/conf.new/managed-schema.xml" || return 1
  rm -rf "$core/conf"
  mv "$core/conf.new" "$core/conf"
  printf 'name=%s\n' "$name" >"$core/core.properties"
}

# Cores = folders of the solr home that hold a core.properties.
_solr_cores() {
  local f home
  home="$(_solr_home)"
  for f in "$home"/*/core.properties; do
    [[ -f $f ]] && basename "$(dirname "$f")"
  done
  return 0
}

# Pid of our running launcher, from the pid file (ignores stale files and reused pids).
_solr_pid() {
  local pidf pid cmd
  pidf="$(_solr_pidfile)"
  [[ -f $pidf ]] || return 1
  pid="$(cat "$pidf" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ $cmd == *Launcher.java* ]] || return 1
  echo "$pid"
}

# Fingerprint of what a running Solr has read at start-up: port, solr.xml, cores and their conf.
_solr_stamp() { # port core...
  local home c f
  home="$(_solr_home)"
  {
    echo "port $1"
    shift
    cat "$home/solr.xml"
    for c in "$@"; do
      echo "core $c"
      for f in "$home/$c/core.properties" "$home/$c"/conf/*; do
        [[ -f $f && $(basename "$f") != _* ]] || continue # _rest_managed*.json: Solr's own
        echo "file $f"
        cat "$f"
      done
    done
  } | sha256sum | cut -d' ' -f1
}

_solr_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

_solr_ping() { # port core
  local out
  out="$(curl -sS --max-time 5 "http://127.0.0.1:$1/solr/$2/admin/ping?wt=json" 2>/dev/null)" || return 1
  [[ $out == *'"status":"OK"'* ]]
}

_solr_ping_all() { # port core...
  local port="$1" c
  shift
  for c in "$@"; do _solr_ping "$port" "$c" || return 1; done
}

_solr_show_failure() { # logfile
  local logf="$1"
  _solr_err "---- last lines of $logf ----"
  tail -n 40 "$logf" >&2 2>/dev/null || true
  if grep -q 'solr-launcher: ERROR' "$logf" 2>/dev/null; then
    _solr_err "---- launcher error ----"
    awk '/solr-launcher: ERROR/ {p = 1; print; next} p && /^[ \t]/ {print; next} {p = 0}' \
      "$logf" >&2 || true
  fi
}

solr_start() {
  _solr_state || return 1
  local port home pidf stampf stamp logf lib pid started=0 rc deadline cores=()
  port="$(_solr_port)"
  home="$(_solr_home)"
  pidf="$(_solr_pidfile)"
  stampf="$LGDP_STATE/run/solr.stamp"
  logf="$(_solr_logfile)"
  [[ -f "$home/solr.xml" ]] || { _solr_err "no $home/solr.xml: run solr_prepare_core NAME first"; return 1; }
  mapfile -t cores < <(_solr_cores)
  ((${#cores[@]})) || { _solr_err "no core under $home: run solr_prepare_core NAME first"; return 1; }

  stamp="$(_solr_stamp "$port" "${cores[@]}")"
  if pid="$(_solr_pid)" && [[ "$(cat "$stampf" 2>/dev/null || true)" != "$stamp" ]]; then
    # Cores are discovered, and their conf read, only at start-up.
    echo "solr: the cores, their conf or the port changed since pid $pid started; restarting" >&2
    solr_stop || return 1
  fi
  if pid="$(_solr_pid)"; then
    if _solr_ping_all "$port" "${cores[@]}"; then
      echo "solr: already running (pid $pid) on http://127.0.0.1:$port/solr" >&2
      return 0
    fi
    echo "solr: pid $pid is running but not answering yet; waiting" >&2
  else
    rm -f "$pidf" "$stampf"
    if _solr_port_in_use "$port"; then
      _solr_err "port $port on 127.0.0.1 is already in use by another process (not this project's" \
        "Solr, no live pid in $pidf); stop it or set LGDP_SOLR_PORT"
      return 1
    fi
    solr_install || return 1
    lib="$(_solr_lib)"
    local extra=()
    read -r -a extra <<<"${LGDP_SOLR_JAVA_OPTS:-}"
    mkdir -p "$LGDP_STATE/run" "$LGDP_STATE/logs"
    [[ -f $logf ]] && mv -f "$logf" "$logf.1"
    # Launcher's own stdout/stderr and Solr's log4j file appender both append to solr.log.
    nohup java -Xms64m -Xmx"${LGDP_SOLR_HEAP:-512m}" -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true -Dfile.encoding=UTF-8 "${extra[@]}" \
      -Dsolr.log.dir="$LGDP_STATE/logs" \
      -Dlog4j2.configurationFile="$_LGDP_SOLR_SRC/conf/log4j2.xml" \
      -cp "$lib/*" "$_LGDP_SOLR_SRC/Launcher.java" "$home" "$port" \
      >>"$logf" 2>&1 </dev/null &
    pid=$!
    started=1
    echo "$pid" >"$pidf"
    echo "$stamp" >"$stampf"
    echo "solr: starting Solr ${LGDP_SOLR_VERSION} (pid $pid) on 127.0.0.1:$port, log $logf" >&2
  fi

  deadline=$((SECONDS + ${LGDP_SOLR_START_TIMEOUT:-90}))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rc="?"
      if ((started)); then
        rc=0
        wait "$pid" 2>/dev/null || rc=$?
      fi
      rm -f "$pidf" "$stampf"
      _solr_err "Solr exited during start-up (exit code $rc)"
      _solr_show_failure "$logf"
      return 1
    fi
    if _solr_ping_all "$port" "${cores[@]}"; then
      echo "solr: up on http://127.0.0.1:$port/solr (cores: ${cores[*]})" >&2
      return 0
    fi
    if ((SECONDS >= deadline)); then
      _solr_err "Solr did not answer /admin/ping for every core within ${LGDP_SOLR_START_TIMEOUT:-90} s; stopping it"
      _solr_show_failure "$logf"
      solr_stop || true
      return 1
    fi
    sleep 0.5
  done
}

solr_stop() {
  _solr_state || return 1
  local pid pidf i timeout
  pidf="$(_solr_pidfile)"
  if ! pid="$(_solr_pid)"; then
    rm -f "$pidf"
    echo "solr: not running" >&2
    return 0
  fi
  timeout="${LGDP_SOLR_STOP_TIMEOUT:-30}"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 5; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    _solr_err "pid $pid did not stop within ${timeout} s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 25; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
  fi
  rm -f "$pidf" "$LGDP_STATE/run/solr.stamp"
  echo "solr: stopped (pid $pid)" >&2
}

solr_status() {
  _solr_state || return 1
  local pid port c ok=0 cores=()
  port="$(_solr_port)"
  if ! pid="$(_solr_pid)"; then
    echo "solr: not running (port $port)"
    return 1
  fi
  echo "solr: running (pid $pid) on http://127.0.0.1:$port/solr"
  mapfile -t cores < <(_solr_cores)
  for c in "${cores[@]}"; do
    if _solr_ping "$port" "$c"; then
      echo "  core $c: OK"
    else
      echo "  core $c: not answering"
      ok=1
    fi
  done
  return "$ok"
}
