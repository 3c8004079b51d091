#!/bin/bash
# Solr's basic authentication, from the deployment's .env.
#
# The solr image SOURCES every script of /docker-entrypoint-initdb.d before
# it starts Solr (solr-precreate runs run-initdb, with `set -e`). This one
# writes $SOLR_HOME/security.json at every start from LGDP_SOLR_USER and
# LGDP_SOLR_PASSWORD (docker-compose.yml passes CKAN_SOLR_USER and
# CKAN_SOLR_PASSWORD of .env, the same pair CKAN signs in with), so a changed
# password takes effect at the next start:
#
#   - BasicAuthPlugin with that one user, its password salted and hashed as
#     Solr's Sha256AuthenticationProvider checks it:
#     base64(sha256(sha256(salt + password))), then the salt in base64;
#   - RuleBasedAuthorizationPlugin: every request needs that user (role
#     admin), except GET /solr/ckan/schema/name, the schema's name, which the
#     CKAN image's prerun.py reads without credentials while it waits for Solr.
#
# Without a user and password Solr does not start: it is never left open.

lgdp_unhex() { # stdin: "HEX  -" (sha256sum); stdout: the bytes
    local hex rest
    read -r hex rest
    # shellcheck disable=SC2059 # the format is the bytes, as \xHH escapes
    printf "$(printf '%s' "$hex" | sed 's/../\\x&/g')"
}

lgdp_solr_security() {
    local home=${SOLR_HOME:-/var/solr/data} user=${LGDP_SOLR_USER:-} password=${LGDP_SOLR_PASSWORD:-} salt hash
    if [ -z "$user" ] || [ -z "$password" ]; then
        echo "[lgdp] CKAN_SOLR_USER and CKAN_SOLR_PASSWORD must be set in .env: Solr is not started without them" >&2
        return 1
    fi
    if [[ ! $user =~ ^[A-Za-z0-9_.-]+$ ]]; then
        echo "[lgdp] CKAN_SOLR_USER may hold letters, digits, '_', '.' and '-' only" >&2
        return 1
    fi
    salt=$(head -c 32 /dev/urandom | base64 -w0)
    hash=$({ printf '%s' "$salt" | base64 -d; printf '%s' "$password"; } | sha256sum | lgdp_unhex | sha256sum | lgdp_unhex | base64 -w0)
    (
        umask 077
        cat >"$home/security.json.new" <<JSON
{
  "authentication": {
    "class": "solr.BasicAuthPlugin",
    "blockUnknown": false,
    "credentials": {"$user": "$hash $salt"}
  },
  "authorization": {
    "class": "solr.RuleBasedAuthorizationPlugin",
    "permissions": [
      {"name": "ckan-schema-name", "path": "/schema/name", "method": ["GET"], "role": null},
      {"name": "all", "role": "admin"}
    ],
    "user-role": {"$user": "admin"}
  }
}
JSON
    ) || return 1
    mv -f "$home/security.json.new" "$home/security.json"
    echo "[lgdp] Solr requires the user $user (security.json written)"
}

lgdp_solr_security
unset -f lgdp_solr_security lgdp_unhex
