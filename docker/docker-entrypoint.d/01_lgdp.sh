#!/bin/bash
# Start-up step of the Local Government Data Platform's CKAN container.
#
# The base image's start_ckan.sh SOURCES this file (". $f") after prerun.py
# and before uWSGI starts, so it changes no shell options of its caller and
# leaves through `exit` only on failure: then the container stops, compose
# restarts it, and uWSGI never serves an unmigrated database.
#
#   1. ckan db upgrade: CKAN's migrations and those of every enabled plugin,
#      among them lgdp_validation's, which creates the validation table.
#   2. ckan datastore set-permissions | psql: the DataStore read-only user
#      (prerun.py runs the same SQL but only prints its errors).
#
# Nothing else is loaded: no demo data, no users besides prerun.py's sysadmin.
# With MAINTENANCE_MODE=true (also read by prerun.py) both steps are skipped,
# e.g. on additional web containers when one container applies migrations.

lgdp_entrypoint() {
    local ini=${CKAN_INI:-/srv/app/ckan.ini}

    if [ "${MAINTENANCE_MODE,,}" = "true" ]; then
        echo "[lgdp] MAINTENANCE_MODE=true: migrations and DataStore permissions skipped"
        return 0
    fi

    echo "[lgdp] applying database migrations (CKAN core and plugins)"
    ckan -c "$ini" db upgrade || return 1

    if [ -z "${CKAN_DATASTORE_WRITE_URL:-}" ]; then
        echo "[lgdp] CKAN_DATASTORE_WRITE_URL is not set" >&2
        return 1
    fi
    echo "[lgdp] setting the DataStore permissions"
    # psql connects to the DataStore database itself, as its owner (the write
    # URL's user), so the script's "\connect <db>" line is not needed.
    (
        set -o pipefail
        ckan -c "$ini" datastore set-permissions \
            | sed '/^\\connect /d' \
            | psql "$CKAN_DATASTORE_WRITE_URL" -v ON_ERROR_STOP=1 -q -o /dev/null
    ) || return 1
    echo "[lgdp] database ready"
}

if ! lgdp_entrypoint; then
    echo "[lgdp] ERROR: start-up step failed; not starting CKAN" >&2
    exit 1
fi
unset -f lgdp_entrypoint
