#!/bin/bash
# Run once by the postgres image's entrypoint, on an empty data volume, as
# POSTGRES_USER. Creates what CKAN needs, named by the db service's
# environment (docker/.env):
#
#   CKAN_DB_USER             owner of both databases (CKAN's sqlalchemy.url
#                            and the DataStore write URL)
#   CKAN_DB                  CKAN's database
#   DATASTORE_DB             the DataStore database
#   DATASTORE_READONLY_USER  the DataStore read URL's user; its grants are set
#                            by the CKAN container (ckan datastore set-permissions)
#
# Names and passwords go through psql variables (:"ident", :'literal'), so
# they are quoted by psql, not by the shell.
set -euo pipefail

: "${CKAN_DB_USER:?}" "${CKAN_DB_PASSWORD:?}" "${CKAN_DB:?}"
: "${DATASTORE_READONLY_USER:?}" "${DATASTORE_READONLY_PASSWORD:?}" "${DATASTORE_DB:?}"

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "${POSTGRES_DB:-postgres}" \
    -v ckan_user="$CKAN_DB_USER" \
    -v ckan_password="$CKAN_DB_PASSWORD" \
    -v ckan_db="$CKAN_DB" \
    -v ds_ro_user="$DATASTORE_READONLY_USER" \
    -v ds_ro_password="$DATASTORE_READONLY_PASSWORD" \
    -v ds_db="$DATASTORE_DB" <<'EOSQL'
CREATE ROLE :"ckan_user" NOSUPERUSER NOCREATEDB NOCREATEROLE LOGIN PASSWORD :'ckan_password';
CREATE ROLE :"ds_ro_user" NOSUPERUSER NOCREATEDB NOCREATEROLE LOGIN PASSWORD :'ds_ro_password';
CREATE DATABASE :"ckan_db" OWNER :"ckan_user" ENCODING 'UTF8' TEMPLATE template0;
CREATE DATABASE :"ds_db" OWNER :"ckan_user" ENCODING 'UTF8' TEMPLATE template0;
-- Only the owner connects to CKAN's database: `ckan datastore set-permissions`
-- revokes CONNECT from the read-only user, but PUBLIC would still grant it.
REVOKE CONNECT, TEMPORARY ON DATABASE :"ckan_db" FROM PUBLIC;
EOSQL
