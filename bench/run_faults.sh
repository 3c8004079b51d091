#!/usr/bin/env bash
# The fault suite: the platform's real processes (web, workers, scheduler,
# under supervisord) put through faults while careful clients push bursts
# of uploads and acceptances; every scenario must end with nothing lost,
# duplicated or stuck.
#
#   bench/run_faults.sh                          # full size, every scenario
#   bench/run_faults.sh --short                  # the size tests/test_faults.py runs
#   bench/run_faults.sh --short --scenario redis # one scenario (repeatable)
#   bench/run_faults.sh --help                   # every option
#
# Starts what is missing the way `./platform.sh test` does (PostgreSQL,
# Redis, Solr with the ckan-test core, the test databases and their
# migrations, CKAN's service URLs for test.ini), then runs
# bench/faults/run.py with the project's virtualenv. The scenarios stop and
# start the services: do not run it beside a test suite on the same ports.
# See bench/README.md.
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

case "${1:-}" in
    -h|--help) exec "$LGDP_VENV/bin/python" "$here/bench/faults/run.py" --help ;;
esac

state_dirs
install_python
solr_install
pg_start
redis_start
solr_prepare_core ckan
solr_prepare_core ckan-test
solr_start
pg_prepare "$TEST_DB" "$TEST_DS_DB"
ckan_test_env
ckan_migrate "$TEST_INI" "$TEST_DS_DB"
mkdir -p "$LGDP_STATE/test-storage"
cd "$here"
exec "$LGDP_VENV/bin/python" "$here/bench/faults/run.py" "$@"
