# A local SolrCloud cluster of two nodes on loopback, for `./platform.sh test
# --solrcloud` and the bench's cloud mode. Sourced (after solr.sh), never run.
#
#   solrcloud_start COLLECTION...  start node 1 (with the cluster's embedded
#                                  ZooKeeper, and CKAN's schema uploaded as the
#                                  configset "ckan") and node 2, then create each
#                                  collection with 2 shards x 2 replicas (one
#                                  replica of each shard on each node) and wait
#                                  until every replica is active. Idempotent.
#   solrcloud_stop [NODE]          stop node 2 then node 1 (or the one NODE, 1 or 2)
#   solrcloud_status               the nodes, live nodes and each collection's replicas
#
# The nodes are Solr's own JettySolrRunner (solr/CloudLauncher.java) over the
# jars solr_install gathers, the same as the standalone server's.
#
# Variables: LGDP_STATE (required), LGDP_VENV, LGDP_SOLRCLOUD_PORT (node 1,
#   default 8987; node 2 is the next port; ZooKeeper is node 1's + 1000),
#   LGDP_SOLRCLOUD_HEAP (384m per node), LGDP_SOLR_START_TIMEOUT (90 s).
# Files: $LGDP_STATE/solrcloud/{node1,node2,zk,conf}, $LGDP_STATE/run/solrcloud-N.pid,
#   $LGDP_STATE/logs/solrcloud-N.log.
# CKAN: solr_url = http://127.0.0.1:$LGDP_SOLRCLOUD_PORT/solr/COLLECTION (any
#   node answers for the whole collection).

_solrcloud_port() { echo "$((${LGDP_SOLRCLOUD_PORT:-8987} + $1 - 1))"; }
_solrcloud_zk() { echo "127.0.0.1:$((${LGDP_SOLRCLOUD_PORT:-8987} + 1000))"; }
_solrcloud_dir() { echo "$LGDP_STATE/solrcloud"; }
_solrcloud_pidfile() { echo "$LGDP_STATE/run/solrcloud-$1.pid"; }
_solrcloud_logfile() { echo "$LGDP_STATE/logs/solrcloud-$1.log"; }

_solrcloud_pid() { # node
  local pidf pid cmd
  pidf="$(_solrcloud_pidfile "$1")"
  [[ -f $pidf ]] || return 1
  pid="$(cat "$pidf" 2>/dev/null || true)"
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ $cmd == *CloudLauncher.java* ]] || return 1
  echo "$pid"
}

_solrcloud_api() { # node path?query -> JSON on stdout
  curl -sS --max-time 120 "http://127.0.0.1:$(_solrcloud_port "$1")/solr/$2"
}

_solrcloud_json() { # python expression over `d` (the JSON on stdin)
  "$LGDP_VENV/bin/python" -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

# The configset: solr/conf (less the JVM's log4j2.xml) and CKAN's schema.xml
# as managed-schema.xml, as solr_prepare_core builds a core's conf, with
# _version_ as SolrCloud needs it.
_solrcloud_conf() {
  local conf ckan_dir f
  conf="$(_solrcloud_dir)/conf"
  ckan_dir="$("$LGDP_VENV/bin/python" -c 'import ckan, os; print(os.path.dirname(ckan.__file__))')" ||
    { _solr_err "cannot import ckan with $LGDP_VENV/bin/python"; return 1; }
  rm -rf "$conf"
  mkdir -p "$conf"
  for f in "$_LGDP_SOLR_SRC"/conf/*; do
    [[ $(basename "$f") == log4j2.xml ]] || cp "$f" "$conf/"
  done
  # CKAN's schema declares _version_ a string; SolrCloud reads it as a long
  # (a replica's peer sync looks versions up in the index: with a string it
  # fails, and a restarted node's replicas never recover). The one change.
  sed 's|<field name="_version_" type="string" indexed="true" stored="true"/>|<field name="_version_" type="plong" indexed="false" stored="false" docValues="true"/>|' \
    "$ckan_dir/config/solr/schema.xml" >"$conf/managed-schema.xml"
  grep -q '<field name="_version_" type="plong"' "$conf/managed-schema.xml" ||
    { _solr_err "CKAN's schema.xml does not declare _version_ as expected; see scripts/solrcloud.sh"; return 1; }
}

_solrcloud_node_start() { # node
  local node=$1 port home pidf logf pid deadline extra=()
  port="$(_solrcloud_port "$node")"
  home="$(_solrcloud_dir)/node$node"
  pidf="$(_solrcloud_pidfile "$node")"
  logf="$(_solrcloud_logfile "$node")"
  if pid="$(_solrcloud_pid "$node")"; then
    echo "solrcloud: node $node already running (pid $pid) on port $port" >&2
    return 0
  fi
  if _solr_port_in_use "$port"; then
    _solr_err "port $port is in use by another process; stop it or set LGDP_SOLRCLOUD_PORT"
    return 1
  fi
  mkdir -p "$home" "$LGDP_STATE/run" "$LGDP_STATE/logs"
  cp "$_LGDP_SOLR_SRC/solr-cloud.xml" "$home/solr.xml"
  if [[ $node == 1 ]]; then
    _solrcloud_conf || return 1
    extra=(--zk "$((${LGDP_SOLRCLOUD_PORT:-8987} + 1000))" "$(_solrcloud_dir)/zk"
      --upconfig "$(_solrcloud_dir)/conf" ckan)
  fi
  [[ -f $logf ]] && mv -f "$logf" "$logf.1"
  nohup java -Xms64m -Xmx"${LGDP_SOLRCLOUD_HEAP:-384m}" -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Dsolr.log.dir="$LGDP_STATE/logs/solrcloud-$node" \
    -Dlog4j2.configurationFile="$_LGDP_SOLR_SRC/conf/log4j2.xml" \
    -cp "$(_solr_lib)/*" "$_LGDP_SOLR_SRC/CloudLauncher.java" "$home" "$port" "$(_solrcloud_zk)" \
    "${extra[@]}" >>"$logf" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$pidf"
  echo "solrcloud: starting node $node (pid $pid) on 127.0.0.1:$port, log $logf" >&2
  deadline=$((SECONDS + ${LGDP_SOLR_START_TIMEOUT:-90}))
  until grep -q 'solrcloud-launcher: Solr .* listening' "$logf" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
      _solr_err "node $node did not start (log $logf):"
      tail -n 30 "$logf" >&2 || true
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$pidf"
      return 1
    fi
    sleep 0.5
  done
}

_solrcloud_wait() { # python condition over `d` = CLUSTERSTATUS, what
  local cond=$1 what=$2 deadline
  deadline=$((SECONDS + ${LGDP_SOLR_START_TIMEOUT:-90}))
  until [[ "$(_solrcloud_api 1 'admin/collections?action=CLUSTERSTATUS&wt=json' 2>/dev/null |
    _solrcloud_json "bool($cond)" 2>/dev/null)" == True ]]; do
    if ((SECONDS >= deadline)); then
      _solr_err "timed out waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

# Every replica of the collection active, on a live node.
_SOLRCLOUD_ACTIVE='[r for s in d["cluster"]["collections"].get(C, {}).get("shards", {}).values() for r in s["replicas"].values() if r["state"] == "active" and r["node_name"] in d["cluster"]["live_nodes"]]'

solrcloud_start() {
  _solr_state || return 1
  (($#)) || { _solr_err "usage: solrcloud_start COLLECTION..."; return 1; }
  solr_install || return 1
  _solrcloud_node_start 1 || return 1
  _solrcloud_node_start 2 || return 1
  _solrcloud_wait 'len(d["cluster"]["live_nodes"]) == 2' "both nodes to be live" || return 1
  local c out
  for c in "$@"; do
    if ! _solrcloud_api 1 'admin/collections?action=LIST&wt=json' |
      _solrcloud_json "'$c' in d['collections']" | grep -q True; then
      echo "solrcloud: creating the collection $c (2 shards x 2 replicas, configset ckan)" >&2
      out="$(_solrcloud_api 1 "admin/collections?action=CREATE&name=$c&numShards=2&replicationFactor=2&collection.configName=ckan&waitForFinalState=true&wt=json")" ||
        { _solr_err "creating $c failed"; return 1; }
      [[ $out == *'"status":0'* ]] || { _solr_err "creating $c failed: $out"; return 1; }
    fi
    _solrcloud_wait "len(${_SOLRCLOUD_ACTIVE//C/\"$c\"}) == 4" "the 4 replicas of $c to be active" || return 1
  done
  echo "solrcloud: up, nodes http://127.0.0.1:$(_solrcloud_port 1)/solr and :$(_solrcloud_port 2)," \
    "collections: $*" >&2
}

solrcloud_stop() {
  _solr_state || return 1
  local node pid i
  for node in ${1:-2 1}; do
    if ! pid="$(_solrcloud_pid "$node")"; then
      rm -f "$(_solrcloud_pidfile "$node")"
      continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    rm -f "$(_solrcloud_pidfile "$node")"
    echo "solrcloud: node $node stopped (pid $pid)" >&2
  done
}

solrcloud_status() {
  _solr_state || return 1
  local node pid ok=0
  for node in 1 2; do
    if pid="$(_solrcloud_pid "$node")"; then
      echo "solrcloud: node $node running (pid $pid) on http://127.0.0.1:$(_solrcloud_port "$node")/solr"
    else
      echo "solrcloud: node $node not running"
      ok=1
    fi
  done
  _solrcloud_api 1 'admin/collections?action=CLUSTERSTATUS&wt=json' 2>/dev/null | _solrcloud_json '"\n".join(
    ["  live nodes: " + ", ".join(sorted(d["cluster"]["live_nodes"]))] + [
    "  " + c + " " + s + ": " + ", ".join(r["node_name"] + " " + r["state"] for r in sh["replicas"].values())
    for c, col in sorted(d["cluster"]["collections"].items()) for s, sh in sorted(col["shards"].items())])' ||
    ok=1
  return "$ok"
}
