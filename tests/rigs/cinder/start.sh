#!/usr/bin/env bash
# Starts a real OpenStack Cinder (API v3, no-auth) on 127.0.0.1 for ironledger's
# tests: cinder-api, cinder-scheduler and cinder-volume with
# ironledger_rig_driver.IscsiShapedFakeDriver (real API and state machine, no
# storage I/O, iSCSI-shaped connection info). Uses the machine's RabbitMQ
# (127.0.0.1:5672, guest/guest) and MariaDB (127.0.0.1:3306, root without
# password); .ci/run makes sure both run.
#
# Idempotent: if our rig already answers on the port, it is reused.
# Env: IRONLEDGER_CINDER_RIG (state, default /var/tmp/ironledger-cinder-rig),
#      IRONLEDGER_CINDER_VENV (default /var/tmp/ironledger-cinder-venv, kept between runs),
#      IRONLEDGER_CINDER_PORT (8776), IRONLEDGER_CINDER_PROJECT (hex project id),
#      --fresh: recreate the cinder database.
# Prints the endpoint (…/v3/<project>) on its last line.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RIG=${IRONLEDGER_CINDER_RIG:-/var/tmp/ironledger-cinder-rig}
VENV=${IRONLEDGER_CINDER_VENV:-/var/tmp/ironledger-cinder-venv}
PORT=${IRONLEDGER_CINDER_PORT:-8776}
PROJECT=${IRONLEDGER_CINDER_PROJECT:-4f3c2d1e0a9b8c7d6e5f4a3b2c1d0e9f}
CINDER_VERSION=${IRONLEDGER_CINDER_VERSION:-29.0.0}
ENDPOINT="http://127.0.0.1:$PORT/v3/$PROJECT"
mkdir -p "$RIG"/{run,log,state,lock,etc}

services_up() {
    curl -s --max-time 2 -H "X-Auth-Token: admin:$PROJECT" "$ENDPOINT/os-services" 2>/dev/null \
        | python3 -c 'import sys, json
try:
    s = json.load(sys.stdin)["services"]
    print(sum(1 for x in s if x["state"] == "up"))
except Exception:
    print(0)'
}

# Tests create many volumes and keep them: lift the project's quotas.
unlimited_quotas() {
    curl -s --max-time 5 -X PUT -H "X-Auth-Token: admin:$PROJECT" -H 'Content-Type: application/json' \
        -d '{"quota_set": {"volumes": -1, "gigabytes": -1, "snapshots": -1, "backups": -1}}' \
        "$ENDPOINT/os-quota-sets/$PROJECT" >/dev/null
}
if [ "${1:-}" != "--fresh" ] && [ "$(services_up)" -ge 2 ]; then
    unlimited_quotas
    echo "cinder rig already running"
    echo "$ENDPOINT"
    exit 0
fi
"$HERE/stop.sh" >/dev/null 2>&1 || true

# The virtualenv is kept between runs: installing Cinder takes ~30 s.
if ! "$VENV/bin/python" -c 'import cinder, fixtures, pymysql' 2>/dev/null; then
    echo "installing cinder $CINDER_VERSION into $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q -U pip
    "$VENV/bin/pip" install -q "cinder==$CINDER_VERSION" fixtures PyMySQL
fi

# (an `if`, not `[ … ] && echo`: under `set -e` a false test as the last
# command of the substitution would end the script.)
SQL="$(if [ "${1:-}" = "--fresh" ]; then echo 'DROP DATABASE IF EXISTS ironledger_cinder;'; fi)
    CREATE DATABASE IF NOT EXISTS ironledger_cinder CHARACTER SET utf8mb4;
    CREATE USER IF NOT EXISTS 'ironledger_cinder'@'127.0.0.1' IDENTIFIED BY 'cinder';
    GRANT ALL ON ironledger_cinder.* TO 'ironledger_cinder'@'127.0.0.1'; FLUSH PRIVILEGES;"
# root without a password over TCP (this machine's setup), else root over the
# local socket (a fresh Debian install authenticates root by unix socket).
mariadb --protocol=TCP -h 127.0.0.1 -P 3306 -uroot -e "$SQL" 2>/dev/null \
    || mariadb --protocol=SOCKET -uroot -e "$SQL" \
    || { echo "cannot log in to MariaDB as root (TCP or socket)" >&2; exit 1; }

cp "$VENV/etc/cinder/api-paste.ini" "$RIG/etc/api-paste.ini"
sed -i "s#^disable_by_file_path = .*#disable_by_file_path = $RIG/state/healthcheck_disable#" "$RIG/etc/api-paste.ini"
cp "$VENV/etc/cinder/resource_filters.json" "$RIG/etc/resource_filters.json"
cat > "$RIG/etc/cinder.conf" <<CONF
[DEFAULT]
use_stderr = False
auth_strategy = noauth
transport_url = rabbit://guest:guest@127.0.0.1:5672/
state_path = $RIG/state
api_paste_config = $RIG/etc/api-paste.ini
resource_query_filters_file = $RIG/etc/resource_filters.json
rootwrap_config = $VENV/etc/cinder/rootwrap.conf
my_ip = 127.0.0.1
host = ironledger-rig
osapi_volume_listen = 127.0.0.1
osapi_volume_listen_port = $PORT
osapi_volume_workers = 1
enabled_backends = rig
default_volume_type = __DEFAULT__

[database]
connection = mysql+pymysql://ironledger_cinder:cinder@127.0.0.1:3306/ironledger_cinder?charset=utf8mb4

[oslo_concurrency]
lock_path = $RIG/lock

[coordination]
backend_url = file://$RIG/lock

[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 0

[rig]
volume_driver = ironledger_rig_driver.IscsiShapedFakeDriver
volume_backend_name = rig
CONF
"$VENV/bin/cinder-manage" --config-file "$RIG/etc/cinder.conf" --log-file "$RIG/log/db-sync.log" db sync >/dev/null 2>&1 \
    || { echo "cinder db sync failed; see $RIG/log/db-sync.log" >&2; exit 1; }

export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" PYTHONDONTWRITEBYTECODE=1
export IRONLEDGER_RIG_ISCSI_FILE="${IRONLEDGER_RIG_ISCSI_FILE:-$RIG/iscsi.json}"
for s in scheduler volume api; do
    setsid "$VENV/bin/cinder-$s" --config-file "$RIG/etc/cinder.conf" --log-file "$RIG/log/cinder-$s.log" \
        >"$RIG/log/$s.stdout" 2>&1 </dev/null &
    echo $! >"$RIG/run/cinder-$s.pid"
done
for _ in $(seq 1 120); do
    [ "$(services_up)" -ge 2 ] && { unlimited_quotas; echo "cinder rig up"; echo "$ENDPOINT"; exit 0; }
    for s in scheduler volume api; do
        kill -0 "$(cat "$RIG/run/cinder-$s.pid")" 2>/dev/null || { echo "cinder-$s exited; see $RIG/log" >&2; tail -20 "$RIG/log/cinder-$s.log" >&2 || true; exit 1; }
    done
    sleep 0.5
done
echo "cinder services did not come up; see $RIG/log" >&2
exit 1
