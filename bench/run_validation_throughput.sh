#!/usr/bin/env bash
# CSV validation throughput: fastcsv.validate_csv against frictionless.validate.
#
#   bench/run_validation_throughput.sh                        # 10k, 100k and 1M rows
#   bench/run_validation_throughput.sh --sizes 10000,100000   # fewer sizes
#   bench/run_validation_throughput.sh --help                 # every option
#
# Pure Python, no services: runs bench/validation_throughput.py with the
# project's virtualenv (LGDP_VENV, default .venv). See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${LGDP_VENV:-$here/.venv}
cd "$here"
exec "$venv/bin/python" "$here/bench/validation_throughput.py" "$@"
