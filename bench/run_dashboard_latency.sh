#!/usr/bin/env bash
# Dashboard page latency at 32 councils x 40 periods (server time).
#
#   bench/run_dashboard_latency.sh                  # 200 requests per kind
#   bench/run_dashboard_latency.sh --requests 500 --periods 40
#   bench/run_dashboard_latency.sh --clean          # remove the bench's data
#
# Uses the platform's own databases: run ./platform.sh run once first (it
# writes .state/ckan.ini). Starts PostgreSQL, Redis and Solr if they are
# down. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LGDP_VENV:-$here/.venv}
[ -f "$here/.state/ckan.ini" ] || { echo "run ./platform.sh run first (no .state/ckan.ini)" >&2; exit 1; }
for service in postgres redis solr; do
    "$here/platform.sh" service start "$service" >/dev/null
done
cd "$here"
exec "$venv/bin/python" "$here/bench/dashboard_latency.py" "$@"
