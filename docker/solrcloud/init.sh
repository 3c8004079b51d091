#!/bin/bash
# The SolrCloud profile's one-shot set-up (docker-compose.yml, service
# solrcloud-init; docker/README.md): run in CKAN's Solr image against the
# cluster's ZooKeeper ($ZK_HOST) and nodes ($LGDP_SOLR_NODES), idempotent.
#
#   1. security.json into ZooKeeper, from CKAN_SOLR_USER / CKAN_SOLR_PASSWORD
#      of .env, made by the single container's own script (../solr/
#      docker-entrypoint-initdb.d/10_lgdp_security.sh): the cluster asks for
#      the same user CKAN signs in with, at once on every node;
#   2. the configset "ckan" ($LGDP_SOLR_CONFIGSET_NAME): the image's (CKAN's schema in Solr's _default
#      configset) with _version_ as SolrCloud needs it: CKAN's schema makes it
#      a string, and a replica's peer sync, which looks versions up in the
#      index, then fails, so a restarted node's replicas never recover
#      (scripts/solrcloud.sh makes the same change for the local cluster);
#   3. the collection $LGDP_SOLR_COLLECTION (default ckan) with
#      $LGDP_SOLR_SHARDS shards of $LGDP_SOLR_REPLICAS replicas (2 x 2), once
#      every node is live, and a wait until each replica is active.
#
# `solr` is Solr's own CLI ($SOLR_BIN, default the image's solr on PATH).
set -euo pipefail

zk=${ZK_HOST:?ZK_HOST (the cluster ZooKeeper, host:port) must be set}
nodes=${LGDP_SOLR_NODES:?LGDP_SOLR_NODES (the nodes, host:port ...) must be set}
collection=${LGDP_SOLR_COLLECTION:-ckan}
shards=${LGDP_SOLR_SHARDS:-2}
replicas=${LGDP_SOLR_REPLICAS:-2}
configset=${LGDP_SOLR_CONFIGSET:-/opt/solr/server/solr/configsets/ckan/conf}
configname=${LGDP_SOLR_CONFIGSET_NAME:-ckan}
security_script=${LGDP_SOLR_SECURITY_SCRIPT:-/lgdp/10_lgdp_security.sh}
solr=${SOLR_BIN:-solr}
timeout=${LGDP_SOLR_INIT_TIMEOUT:-300}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

say() { echo "[lgdp] solrcloud-init: $*"; }

# Solr's HTTP API as the cluster's user (wget: the image has it, curl it may not).
api() { # node path?query
    wget -qO- --auth-no-challenge --http-user="$LGDP_SOLR_USER" --http-password="$LGDP_SOLR_PASSWORD" \
        "http://$1/solr/$2"
}

# 1. authentication first: the nodes never serve a collection without it
SOLR_HOME=$work . "$security_script"
"$solr" zk cp "file:$work/security.json" zk:/security.json -z "$zk"
say "security.json in ZooKeeper at $zk"

# 2. the configset
mkdir "$work/conf"
cp -R "$configset/." "$work/conf/"
schema=$work/conf/managed-schema
[ -f "$schema" ] || schema=$work/conf/managed-schema.xml
old='<field name="_version_" type="string" indexed="true" stored="true"/>'
new='<field name="_version_" type="plong" indexed="false" stored="false" docValues="true"/>'
if grep -qF "$old" "$schema"; then
    sed -i "s|$old|$new|" "$schema"
fi
grep -qF "$new" "$schema" || { say "CKAN's schema declares _version_ otherwise than expected: $schema" >&2; exit 1; }
"$solr" zk upconfig -n "$configname" -d "$work/conf" -z "$zk"
say "configset $configname uploaded"

# 3. the collection, once every node is live
first=${nodes%% *}
count=$(wc -w <<<"$nodes")
deadline=$((SECONDS + timeout))
live() { "$solr" zk ls /live_nodes -z "$zk" 2>/dev/null | grep -c '_solr$'; }
until [ "$(live 2>/dev/null || echo 0)" -ge "$count" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { say "the $count nodes ($nodes) were not all live within $timeout s" >&2; exit 1; }
    sleep 2
done
if api "$first" 'admin/collections?action=LIST&wt=json' | grep -q "\"$collection\""; then
    say "collection $collection exists"
else
    api "$first" "admin/collections?action=CREATE&name=$collection&numShards=$shards&replicationFactor=$replicas&collection.configName=$configname&waitForFinalState=true&wt=json" >/dev/null
    say "collection $collection created ($shards shards x $replicas replicas)"
fi
want=$((shards * replicas))
active() { api "$first" "admin/collections?action=CLUSTERSTATUS&collection=$collection&wt=json" | grep -o '"state":"active"' | wc -l; }
# each shard's own "state":"active" counts too
until [ "$(active 2>/dev/null || echo 0)" -ge $((want + shards)) ]; do
    [ "$SECONDS" -lt "$deadline" ] || { say "the replicas of $collection were not all active within $timeout s" >&2; exit 1; }
    sleep 2
done
say "collection $collection: every replica active"
