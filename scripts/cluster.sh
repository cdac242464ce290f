#!/usr/bin/env bash
# The production topology on one machine, on 127.0.0.1: PostgreSQL (Dagster's storage), Redis
# (the Celery broker and result backend), the code server, the Dagster daemon, N Celery
# workers and the webserver. See deploy/cluster/README.md.
#
#   export SUPERDAN_PG_PASSWORD=...            # required by `up`; never written to a file
#   bash scripts/cluster.sh up                 # install what is missing, start what is not running
#   bash scripts/cluster.sh status             # what runs, with which pid, where
#   eval "$(bash scripts/cluster.sh env)"      # point `superdan pipeline`, tests, scripts at it
#   bash scripts/cluster.sh down               # stop what `up` started (by pid); keeps the data
#   bash scripts/cluster.sh install            # only install what is missing (CI, image builds)
#
# Settings (environment; the values `up` used are remembered in $SUPERDAN_CLUSTER_HOME/cluster.env
# so `status`, `env` and `down` need none of them):
#   SUPERDAN_CLUSTER_HOME   everything the cluster writes (default .superdan/cluster)
#   SUPERDAN_CLUSTER_WORKERS  Celery worker processes (default 2)
#   SUPERDAN_PG_PORT, SUPERDAN_REDIS_PORT, SUPERDAN_CODE_SERVER_PORT, SUPERDAN_CLUSTER_UI_PORT
#                           ports (defaults 5433, 6380, 4266, 3070)
#   SUPERDAN_PG_USER, SUPERDAN_PG_DB  role and database (default superdan, superdan)
#   SUPERDAN_MAX_CONCURRENT_RUNS  the run queue's limit (default: the number of workers)
#   SUPERDAN_BACKFILL_RUN_LIMIT   runs of backfills at a time (default: that limit - 1, >= 1)
#   SUPERDAN_VENV           the Python environment (default .venv)
#   SUPERDAN_CLUSTER_TIMEOUT  seconds to wait for each service to be ready (default 180)
# Any other SUPERDAN_* setting (SUPERDAN_HOME, SUPERDAN_EXPORT_PATH, SUPERDAN_SODA_URL, ...)
# is passed to the code server, the daemon and the workers as it is.
set -euo pipefail
# Job control: every service becomes its own process group (so `down` stops its children too)
# and does not inherit the ignored SIGINT that non-interactive shells give background jobs.
set -m

REPO="$(cd "$(dirname "$0")/.." && pwd)"
cd "$REPO"

die() { echo "cluster.sh: $*" >&2; exit 1; }
say() { echo "cluster.sh: $*"; }

CLUSTER_HOME="$(mkdir -p "${SUPERDAN_CLUSTER_HOME:-$REPO/.superdan/cluster}" && cd "${SUPERDAN_CLUSTER_HOME:-$REPO/.superdan/cluster}" && pwd)"
STATE_FILE="$CLUSTER_HOME/cluster.env"
RUN_DIR="$CLUSTER_HOME/run"
LOG_DIR="$CLUSTER_HOME/logs"

# Remembered settings first, the caller's environment wins.
remembered() { # name default
    local name="$1" default="$2" value=""
    if [[ -n "${!name:-}" ]]; then value="${!name}"
    elif [[ -f "$STATE_FILE" ]]; then value="$(sed -n "s/^export $name=//p" "$STATE_FILE" | tail -1)"; fi
    printf '%s' "${value:-$default}"
}

VENV="$(remembered SUPERDAN_VENV "$REPO/.venv")"
WORKERS="$(remembered SUPERDAN_CLUSTER_WORKERS 2)"
PG_PORT="$(remembered SUPERDAN_PG_PORT 5433)"
PG_USER="$(remembered SUPERDAN_PG_USER superdan)"
PG_DB="$(remembered SUPERDAN_PG_DB superdan)"
REDIS_PORT="$(remembered SUPERDAN_REDIS_PORT 6380)"
CODE_PORT="$(remembered SUPERDAN_CODE_SERVER_PORT 4266)"
UI_PORT="$(remembered SUPERDAN_CLUSTER_UI_PORT 3070)"
MAX_RUNS="$(remembered SUPERDAN_MAX_CONCURRENT_RUNS "$WORKERS")"
SUPERDAN_HOME_DIR="$(remembered SUPERDAN_HOME "$CLUSTER_HOME/superdan_home")"
TIMEOUT="${SUPERDAN_CLUSTER_TIMEOUT:-180}"
DAGSTER_HOME_DIR="$CLUSTER_HOME/dagster_home"
PG_HOME="$CLUSTER_HOME/postgres"
PG_DATA="$PG_HOME/data"
PG_SOCKET="$PG_HOME/socket"
REDIS_DIR="$CLUSTER_HOME/redis"
[[ "$WORKERS" =~ ^[1-9][0-9]*$ ]] || die "SUPERDAN_CLUSTER_WORKERS=$WORKERS is not a positive integer"
[[ "$MAX_RUNS" =~ ^[1-9][0-9]*$ ]] || die "SUPERDAN_MAX_CONCURRENT_RUNS=$MAX_RUNS is not a positive integer"
BACKFILL_LIMIT="$(remembered SUPERDAN_BACKFILL_RUN_LIMIT "$((MAX_RUNS > 1 ? MAX_RUNS - 1 : 1))")"
[[ "$BACKFILL_LIMIT" =~ ^[1-9][0-9]*$ ]] || die "SUPERDAN_BACKFILL_RUN_LIMIT=$BACKFILL_LIMIT is not a positive integer"
for port in "$PG_PORT" "$REDIS_PORT" "$CODE_PORT" "$UI_PORT"; do
    [[ "$port" =~ ^[0-9]+$ ]] || die "port '$port' is not a number"
done

# -- the environment every Dagster process of the cluster shares -------------------------------
cluster_env() {
    export DAGSTER_HOME="$DAGSTER_HOME_DIR"
    export SUPERDAN_HOME="$SUPERDAN_HOME_DIR"
    export SUPERDAN_PG_HOST=127.0.0.1 SUPERDAN_PG_PORT="$PG_PORT"
    export SUPERDAN_PG_USER="$PG_USER" SUPERDAN_PG_DB="$PG_DB"
    export SUPERDAN_CELERY_BROKER_URL="redis://127.0.0.1:$REDIS_PORT/0"
    export SUPERDAN_CELERY_BACKEND_URL="redis://127.0.0.1:$REDIS_PORT/1"
    export SUPERDAN_CODE_SERVER_HOST=127.0.0.1 SUPERDAN_CODE_SERVER_PORT="$CODE_PORT"
    export SUPERDAN_MAX_CONCURRENT_RUNS="$MAX_RUNS"
    export DAGSTER_DISABLE_TELEMETRY=1 OMP_WAIT_POLICY=passive
    export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
}

print_env() { # the non-secret settings, as shell exports
    cat <<EOF
export DAGSTER_HOME=$DAGSTER_HOME_DIR
export SUPERDAN_HOME=$SUPERDAN_HOME_DIR
export SUPERDAN_PG_HOST=127.0.0.1
export SUPERDAN_PG_PORT=$PG_PORT
export SUPERDAN_PG_USER=$PG_USER
export SUPERDAN_PG_DB=$PG_DB
export SUPERDAN_CELERY_BROKER_URL=redis://127.0.0.1:$REDIS_PORT/0
export SUPERDAN_CELERY_BACKEND_URL=redis://127.0.0.1:$REDIS_PORT/1
export SUPERDAN_CODE_SERVER_HOST=127.0.0.1
export SUPERDAN_CODE_SERVER_PORT=$CODE_PORT
export SUPERDAN_MAX_CONCURRENT_RUNS=$MAX_RUNS
export SUPERDAN_CLUSTER_WORKERS=$WORKERS
export SUPERDAN_BACKFILL_RUN_LIMIT=$BACKFILL_LIMIT
export SUPERDAN_CLUSTER_UI_PORT=$UI_PORT
export SUPERDAN_REDIS_PORT=$REDIS_PORT
EOF
}

remember_settings() {
    {
        echo "# Written by scripts/cluster.sh up; no secrets (SUPERDAN_PG_PASSWORD stays in your env)."
        print_env
        echo "export SUPERDAN_VENV=$VENV"
    } >"$STATE_FILE"
}

# -- processes -----------------------------------------------------------------------------------
pid_of() { # service -> pid if its pidfile names a live (not zombie) process
    local file="$RUN_DIR/$1.pid" pid state
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    state="$(ps -o stat= -p "$pid" 2>/dev/null || true)"
    [[ -n "$state" && "$state" != Z* ]] || return 1
    echo "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # description command... : retry until it succeeds or TIMEOUT passes
    local what="$1"; shift
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            die "$what not ready after ${TIMEOUT}s (logs in $LOG_DIR)"
        fi
        sleep 0.5
    done
}

start_service() { # name port(or -) command...
    local name="$1" port="$2"; shift 2
    if pid="$(pid_of "$name")"; then
        say "$name already running (pid $pid)"
        return 0
    fi
    if [[ "$port" != - ]] && port_busy "$port"; then
        die "$name: port $port on 127.0.0.1 is already in use by another program; choose another port (see the settings at the top of scripts/cluster.sh)"
    fi
    nohup "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN_DIR/$name.pid"
    say "$name started (pid $!, log $LOG_DIR/$name.log)"
}

stop_pid() { # name pid signal [single] : stop the process group led by pid (or only pid),
    # then wait for it to exit
    local name="$1" pid="$2" sig="$3" scope="${4:-group}" deadline=$((SECONDS + 60))
    if [[ $scope == group ]]; then
        kill "-$sig" -- "-$pid" 2>/dev/null || kill "-$sig" "$pid" 2>/dev/null || true
    else
        kill "-$sig" "$pid" 2>/dev/null || true
    fi
    while kill -0 "$pid" 2>/dev/null; do
        if ((SECONDS >= deadline)); then
            say "$name (pid $pid) did not stop within 60 s: killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
    done
    say "$name stopped (pid $pid)"
}

# -- installation of what is missing -------------------------------------------------------------
apt_install() { # packages...
    local sudo=""
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null || die "need $* installed (apt) and neither root nor sudo is available"
        sudo="sudo"
    fi
    say "installing $* (apt)"
    export DEBIAN_FRONTEND=noninteractive
    # Another apt may hold the lock (e.g. a parallel job): wait for it instead of failing.
    if ! $sudo apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" >>"$LOG_DIR/install.log" 2>&1; then
        say "package lists are stale or missing: apt-get update"
        $sudo apt-get -o DPkg::Lock::Timeout=600 update >>"$LOG_DIR/install.log" 2>&1 || die "apt-get update failed (see $LOG_DIR/install.log)"
        $sudo apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends "$@" >>"$LOG_DIR/install.log" 2>&1 || die "apt-get install $* failed (see $LOG_DIR/install.log)"
    fi
}

pg_bin() { # the newest installed PostgreSQL's bin folder
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
    [[ -n "$dir" && -x "$dir/initdb" ]] && echo "$dir"
}

install_missing() {
    pg_bin >/dev/null || apt_install postgresql
    pg_bin >/dev/null || die "PostgreSQL was installed but no /usr/lib/postgresql/*/bin/initdb was found"
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
    [[ -x "$VENV/bin/python" ]] || die "no Python environment at $VENV: run scripts/setup.sh or set SUPERDAN_VENV"
    if ! "$VENV/bin/python" -c "import dagster_postgres, dagster_celery, redis, psycopg2" 2>/dev/null; then
        # The pins live in one place: pyproject.toml's `cluster` extra.
        local pins
        pins="$("$VENV/bin/python" -c "import tomllib; print(' '.join(tomllib.load(open('pyproject.toml','rb'))['project']['optional-dependencies']['cluster']))")"
        say "installing $pins (pip)"
        "$VENV/bin/python" -m pip install $pins >>"$LOG_DIR/install.log" 2>&1 || die "pip install $pins failed (see $LOG_DIR/install.log)"
    fi
}

# -- PostgreSQL ----------------------------------------------------------------------------------
# Run as the `postgres` user when we are root (initdb refuses root), else as ourselves.
if [[ "$(id -u)" == 0 ]]; then PG_OS_USER=postgres; else PG_OS_USER="$(id -un)"; fi
as_pg() {
    if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_sql() { # SQL on stdin, as the database superuser over the private socket
    as_pg "$(pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCKET" -p "$PG_PORT" -U "$PG_OS_USER" -d postgres "$@"
}

pg_ready() { as_pg "$(pg_bin)/pg_isready" -q -h "$PG_SOCKET" -p "$PG_PORT"; }

start_postgres() {
    local bin; bin="$(pg_bin)"
    mkdir -p "$PG_HOME"
    if [[ "$(id -u)" == 0 ]]; then
        chown "$PG_OS_USER" "$PG_HOME"
        as_pg test -x "$PG_HOME" || die "user postgres cannot enter $PG_HOME: every parent folder must be world-searchable (chmod o+x), or set SUPERDAN_CLUSTER_HOME elsewhere"
    fi
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        say "initialising PostgreSQL in $PG_DATA"
        as_pg mkdir -p "$PG_DATA" "$PG_SOCKET"
        as_pg "$bin/initdb" -D "$PG_DATA" -U "$PG_OS_USER" -E UTF8 --no-locale \
            --auth-local=peer --auth-host=scram-sha-256 >>"$LOG_DIR/postgres.log" 2>&1 \
            || die "initdb failed (see $LOG_DIR/postgres.log)"
    fi
    as_pg mkdir -p "$PG_SOCKET"
    # Ask PostgreSQL itself (its postmaster.pid in the data folder), not our pid file: a
    # postmaster that was just told to stop can linger as an unreaped process for a moment,
    # and `kill -0` on it would say "running".
    if as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1 && pid="$(pid_of postgres)"; then
        say "postgres already running (pid $pid)"
    else
        port_busy "$PG_PORT" && die "postgres: port $PG_PORT on 127.0.0.1 is already in use; set SUPERDAN_PG_PORT"
        touch "$LOG_DIR/postgres.log" && chown "$PG_OS_USER" "$LOG_DIR/postgres.log" 2>/dev/null || true
        as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$LOG_DIR/postgres.log" -w -t "$TIMEOUT" start \
            -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -k $PG_SOCKET -c max_connections=200" >/dev/null \
            || die "PostgreSQL did not start (see $LOG_DIR/postgres.log)"
        head -1 "$PG_DATA/postmaster.pid" >"$RUN_DIR/postgres.pid"
        say "postgres started (pid $(cat "$RUN_DIR/postgres.pid"), data $PG_DATA)"
    fi
    wait_for "PostgreSQL" pg_ready
    # The role's password is the caller's SUPERDAN_PG_PASSWORD, given to psql on stdin (never
    # on a command line, in a file or in a log). Re-applied on every `up`: the env is the truth.
    local quoted="${SUPERDAN_PG_PASSWORD//\'/\'\'}"
    printf "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '%s') THEN CREATE ROLE \"%s\" LOGIN; END IF; END \$\$;\nALTER ROLE \"%s\" PASSWORD '%s';\n" \
        "$PG_USER" "$PG_USER" "$PG_USER" "$quoted" | pg_sql >/dev/null || die "could not create or update role $PG_USER"
    if [[ -z "$(echo "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | pg_sql -tA)" ]]; then
        echo "CREATE DATABASE \"$PG_DB\" OWNER \"$PG_USER\";" | pg_sql >/dev/null || die "could not create database $PG_DB"
    fi
}

# -- the Dagster processes -------------------------------------------------------------------------
code_server_ready() { "$VENV/bin/dagster" api grpc-health-check --host 127.0.0.1 --port "$CODE_PORT"; }
location_error() { # the code location's load error as the webserver sees it, if any
    "$VENV/bin/python" - "$UI_PORT" <<'PY'
import json, sys, urllib.request
query = "{ workspaceOrError { ... on Workspace { locationEntries { name locationOrLoadError { __typename ... on PythonError { message } } } } } }"
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/graphql", data=json.dumps({"query": query}).encode(), headers={"Content-Type": "application/json"})
entries = json.load(urllib.request.urlopen(request, timeout=30))["data"]["workspaceOrError"]["locationEntries"]
for entry in entries:
    error = entry["locationOrLoadError"] or {}
    if error.get("__typename") != "RepositoryLocation":
        print(f"code location {entry['name']}: {error.get('message') or 'not loaded'}")
PY
}
webserver_ready() { "$VENV/bin/python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$UI_PORT/server_info', timeout=2)"; }
daemon_ready() { "$VENV/bin/dagster-daemon" liveness-check; }
worker_ready() { # name
    "$VENV/bin/celery" -A superdan_assets.cluster.celery_app inspect ping -d "$1@$(hostname)" -t 2
}

up() {
    [[ -n "${SUPERDAN_PG_PASSWORD:-}" ]] || die "SUPERDAN_PG_PASSWORD is not set: export the password the cluster's PostgreSQL role should have (it is never stored in a file)"
    mkdir -p "$RUN_DIR" "$LOG_DIR" "$DAGSTER_HOME_DIR" "$REDIS_DIR" "$SUPERDAN_HOME_DIR"
    chmod 755 "$CLUSTER_HOME"
    install_missing
    remember_settings
    cluster_env
    # The instance config is the repo's, refreshed on every `up` (it holds no secrets), with
    # the one value Dagster cannot read from the environment: the backfill runs' limit.
    sed -E "s/limit: [0-9]+  # SUPERDAN_BACKFILL_RUN_LIMIT/limit: $BACKFILL_LIMIT  # SUPERDAN_BACKFILL_RUN_LIMIT/" \
        "$REPO/deploy/cluster/dagster.yaml" >"$DAGSTER_HOME_DIR/dagster.yaml"
    grep -q "limit: $BACKFILL_LIMIT  # SUPERDAN_BACKFILL_RUN_LIMIT" "$DAGSTER_HOME_DIR/dagster.yaml" \
        || die "deploy/cluster/dagster.yaml lost its '# SUPERDAN_BACKFILL_RUN_LIMIT' line"

    start_postgres
    start_service redis "$REDIS_PORT" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 \
        --dir "$REDIS_DIR" --appendonly yes --save "" --daemonize no
    wait_for "Redis" redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping

    # The schema is created (or migrated) once, before several processes race to do it.
    "$VENV/bin/dagster" instance migrate >>"$LOG_DIR/install.log" 2>&1 || die "dagster instance migrate failed (see $LOG_DIR/install.log)"

    start_service code_server "$CODE_PORT" "$VENV/bin/dagster" code-server start \
        -h 127.0.0.1 -p "$CODE_PORT" -m superdan_assets.cluster.definitions --location-name superdan
    wait_for "the code server on port $CODE_PORT" code_server_ready

    local i
    for ((i = 1; i <= WORKERS; i++)); do
        # prefork with one process: the main process answers the launcher's health pings while
        # the child runs; a fresh child per run picks up new code and returns its memory.
        start_service "worker-$i" - "$VENV/bin/celery" -A superdan_assets.cluster.celery_app worker \
            --pool=prefork --concurrency=1 --max-tasks-per-child=1 -Q dagster \
            -n "superdan-worker-$i@%h" --loglevel=INFO
    done
    start_service daemon - "$VENV/bin/dagster-daemon" run -w "$REPO/deploy/cluster/workspace.yaml"
    start_service webserver "$UI_PORT" "$VENV/bin/dagster-webserver" -h 127.0.0.1 -p "$UI_PORT" \
        -w "$REPO/deploy/cluster/workspace.yaml"

    for ((i = 1; i <= WORKERS; i++)); do wait_for "Celery worker $i" worker_ready "superdan-worker-$i"; done
    wait_for "the daemon" daemon_ready
    wait_for "the webserver on port $UI_PORT" webserver_ready
    local problem
    problem="$(location_error)" || die "could not ask the webserver about the code location"
    [[ -z "$problem" ]] || die "the code server runs but its code did not load: $problem (log $LOG_DIR/code_server.log; fix, then: bash scripts/cluster.sh down && bash scripts/cluster.sh up)"
    say "up: UI http://127.0.0.1:$UI_PORT ; point a shell at it with: eval \"\$(bash scripts/cluster.sh env)\""
}

services() { # every service `up` may have started, in start order
    echo postgres redis code_server
    local f
    for f in "$RUN_DIR"/worker-*.pid; do [[ -e "$f" ]] && basename "$f" .pid; done | sort -V
    echo daemon webserver
}

where() {
    case "$1" in
        postgres) echo "127.0.0.1:$PG_PORT data $PG_DATA" ;;
        redis) echo "127.0.0.1:$REDIS_PORT data $REDIS_DIR" ;;
        code_server) echo "127.0.0.1:$CODE_PORT (gRPC, module superdan_assets.cluster.definitions)" ;;
        daemon) echo "instance $DAGSTER_HOME_DIR" ;;
        webserver) echo "http://127.0.0.1:$UI_PORT" ;;
        worker-*) echo "superdan-$1@$(hostname), queue dagster" ;;
    esac
}

status() {
    local name pid running=0 total=0
    printf '%-12s %-8s %-8s %s\n' SERVICE STATE PID WHERE
    for name in $(services); do
        total=$((total + 1))
        if pid="$(pid_of "$name")"; then
            running=$((running + 1))
            printf '%-12s %-8s %-8s %s\n' "$name" running "$pid" "$(where "$name")"
        else
            printf '%-12s %-8s %-8s %s\n' "$name" stopped - "$(where "$name")"
        fi
    done
    echo "logs: $LOG_DIR"
    echo "DAGSTER_HOME: $DAGSTER_HOME_DIR"
    # Exit status says whether everything runs (scripts can test it).
    [[ $running == "$total" ]]
}

down() {
    local name pid order
    # Stop the writers before the storage they write to.
    order="webserver daemon $(for f in "$RUN_DIR"/worker-*.pid; do [[ -e "$f" ]] && basename "$f" .pid; done) code_server redis postgres"
    for name in $order; do
        if pid="$(pid_of "$name")"; then
            # SIGINT to the postmaster alone is PostgreSQL's "fast" shutdown (it stops its own
            # children); every other service's process group stops on SIGTERM.
            if [[ $name == postgres ]]; then stop_pid "$name" "$pid" INT single; else stop_pid "$name" "$pid" TERM; fi
        fi
        rm -f "$RUN_DIR/$name.pid"
    done
    say "down (data kept in $CLUSTER_HOME)"
}

case "${1:-}" in
    install) mkdir -p "$LOG_DIR" && install_missing && say "PostgreSQL ($(pg_bin)), Redis ($(command -v redis-server)) and the cluster extra in $VENV are installed" ;;
    up) up ;;
    down) down ;;
    status) status ;;
    env) print_env ;;
    *) die "usage: scripts/cluster.sh up|down|status|env|install" ;;
esac
