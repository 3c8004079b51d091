#!/usr/bin/env bash
# Consolidation and quality checks: 32 councils x 40 periods of a 12-column
# return through consolidate.enrich + replace_rows and qa.run_checks.
#
#   bench/run_consolidation.sh                     # 32 x 40, 5 passes per step
#   bench/run_consolidation.sh --profile           # also profile one full pass
#   bench/run_consolidation.sh --help              # every option
#
# Needs the dev services (PostgreSQL with the dev databases of
# .state/ckan.ini, Redis): runs bench/consolidation.py with the project's
# virtualenv (LGDP_VENV, default .venv). See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LGDP_VENV:-$here/.venv}
cd "$here"
exec "$venv/bin/python" "$here/bench/consolidation.py" "$@"
