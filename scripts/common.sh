# Shared settings and helpers for platform.sh. Sourced, never run.
# Every path the platform writes at run time sits under $LGDP_STATE (git-ignored).

LGDP_ROOT=${LGDP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LGDP_STATE=${LGDP_STATE:-$LGDP_ROOT/.state}
LGDP_VENV=${LGDP_VENV:-$LGDP_ROOT/.venv}
LGDP_CACHE=${LGDP_CACHE:-$HOME/.cache/lgdp}
LGDP_PG_PORT=${LGDP_PG_PORT:-5432}
LGDP_REDIS_PORT=${LGDP_REDIS_PORT:-6379}
LGDP_SOLR_PORT=${LGDP_SOLR_PORT:-8983}
LGDP_CKAN_PORT=${LGDP_CKAN_PORT:-5000}
LGDP_PYTHON=${LGDP_PYTHON:-python3}
export LGDP_ROOT LGDP_STATE LGDP_VENV LGDP_CACHE LGDP_PG_PORT LGDP_REDIS_PORT \
    LGDP_SOLR_PORT LGDP_CKAN_PORT

LGDP_RUN=$LGDP_STATE/run
LGDP_LOGS=$LGDP_STATE/logs

say() { printf '\033[1m[lgdp]\033[0m %s\n' "$*"; }
warn() { printf '\033[33m[lgdp] %s\033[0m\n' "$*" >&2; }
die() {
    printf '\033[31m[lgdp] ERROR: %s\033[0m\n' "$*" >&2
    exit 1
}

state_dirs() {
    mkdir -p "$LGDP_RUN" "$LGDP_LOGS" "$LGDP_CACHE"
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# pid_alive FILE: true when FILE names a running process.
pid_alive() {
    [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

# port_busy PORT: true when something listens on 127.0.0.1:PORT.
port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# port_owner PORT: a short description of whoever listens on PORT.
port_owner() {
    if command -v ss >/dev/null 2>&1; then
        ss -ltnpH "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\))).*/\1/p' | head -1
    fi
}

# stop_pidfile NAME FILE: TERM, wait, then KILL the process group behind FILE.
stop_pidfile() {
    local name=$1 file=$2 pid i
    if ! pid_alive "$file"; then
        rm -f "$file"
        return 0
    fi
    pid=$(cat "$file")
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        warn "$name did not stop in 30 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
    local what=$1 secs=$2 i
    shift 2
    for i in $(seq 1 $((secs * 2))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.5
    done
    warn "$what did not become ready in ${secs} s"
    return 1
}

# ---------------------------------------------------------------- install

# Debian packages the platform needs, keyed by a command or file that proves them.
apt_missing() {
    local missing=()
    command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    command -v pg_config >/dev/null 2>&1 || missing+=(libpq-dev)
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
    [ -e /usr/lib/x86_64-linux-gnu/libmagic.so.1 ] || ls /usr/lib/*/libmagic.so.1 >/dev/null 2>&1 \
        || missing+=(libmagic1)
    command -v java >/dev/null 2>&1 || missing+=(default-jdk-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    command -v ss >/dev/null 2>&1 || missing+=(iproute2)
    # npm installs the pages' JavaScript libraries (install_assets)
    command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
    printf '%s\n' "${missing[@]}" | sort -u | grep -v '^$' || true
}

# Debian packages only the test suite needs: the browser tests' headless
# Chromium and its WebDriver (tests/browser/conftest.py uses these paths).
apt_missing_test() {
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
    printf '%s\n' "${missing[@]}" | grep -v '^$' || true
}

# install_system [test]: the missing Debian packages (with "test": those of
# the test suite too).
install_system() {
    local pkgs
    pkgs=$({ apt_missing; [ "${1:-}" != test ] || apt_missing_test; } | sort -u | tr '\n' ' ')
    if [ -n "${pkgs// /}" ]; then
        say "installing Debian packages: $pkgs"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # shellcheck disable=SC2086
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $pkgs \
            >"$LGDP_LOGS/apt.log" 2>&1 || { tail -20 "$LGDP_LOGS/apt.log"; die "apt-get install failed (log: $LGDP_LOGS/apt.log)"; }
    fi
}

# The virtualenv is installed in ONE pip call (a second call would move
# typing_extensions past CKAN's pin). A stamp of the requirement files makes
# re-runs instant.
install_python() {
    local stamp="$LGDP_VENV/.lgdp-requirements" want
    want=$(cat "$LGDP_ROOT/requirements.txt" "$LGDP_ROOT/dev-requirements.txt" "$LGDP_ROOT/setup.py" | sha256sum | cut -c1-16)
    if [ -x "$LGDP_VENV/bin/ckan" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return 0
    fi
    say "installing Python packages into $LGDP_VENV (a few minutes the first time)"
    [ -x "$LGDP_VENV/bin/python" ] || "$LGDP_PYTHON" -m venv "$LGDP_VENV"
    "$LGDP_VENV/bin/pip" install -q -r "$LGDP_ROOT/requirements.txt" -r "$LGDP_ROOT/dev-requirements.txt" \
        -e "$LGDP_ROOT" >"$LGDP_LOGS/pip.log" 2>&1 \
        || { tail -30 "$LGDP_LOGS/pip.log"; die "pip install failed (log: $LGDP_LOGS/pip.log)"; }
    echo "$want" >"$stamp"
}

# The JavaScript libraries of the pages (ckanext/lgdp/assets/package.json,
# e.g. ECharts) into ckanext/lgdp/assets/node_modules, exactly as locked in
# package-lock.json; CKAN's webassets serve them from there. A stamp of the
# lock file skips the install when nothing changed.
install_assets() {
    local assets="$LGDP_ROOT/ckanext/lgdp/assets" want
    local stamp="$assets/node_modules/.lgdp-package-lock"
    want=$(sha256sum "$assets/package-lock.json" | cut -c1-16)
    if [ "$(cat "$stamp" 2>/dev/null)" = "$want" ] && [ -f "$assets/node_modules/echarts/dist/echarts.min.js" ]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "npm is missing (Debian package npm)"
    say "installing the JavaScript libraries (npm ci in ckanext/lgdp/assets)"
    npm ci --prefix "$assets" --no-audit --no-fund >"$LGDP_LOGS/npm.log" 2>&1 \
        || { tail -30 "$LGDP_LOGS/npm.log"; die "npm ci failed (log: $LGDP_LOGS/npm.log)"; }
    echo "$want" >"$stamp"
}
