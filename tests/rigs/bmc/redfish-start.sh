#!/usr/bin/env bash
# Starts sushy-tools' Redfish emulator (fake driver: power and boot state kept
# in memory, power changes applied after a random 1-11 s delay, as a real BMC
# applies them asynchronously) on 127.0.0.1, through redfish_rig.py (access
# log, optional SessionService).
#
# Idempotent: if the emulator of this rig directory answers, it is reused.
# Env: IRONLEDGER_BMC_RIG     rig directory (default /var/tmp/ironledger-bmc-rig/redfish)
#      IRONLEDGER_BMC_VENV    virtualenv, kept between runs (default /var/tmp/ironledger-bmc-venv)
#      IRONLEDGER_REDFISH_PORT          (default 8050)
#      IRONLEDGER_REDFISH_SYSTEMS       number of fake systems (default 4); system N
#                                       (1-based) has UUID 00000000-0000-4000-8000-<N, 12 digits>
#      IRONLEDGER_REDFISH_USER / _PASSWORD   basic auth (default admin / password;
#                                       an empty user turns auth off)
#      IRONLEDGER_REDFISH_SESSIONS=1    offer a SessionService
#      IRONLEDGER_REDFISH_MAX_DELAY=N   apply power changes after 1-N s (default 11)
#      IRONLEDGER_REDFISH_TLS=1         serve https with a self-signed certificate
#                                       for 127.0.0.1 (rig directory's cert.pem)
# Prints the emulator's URL on its last line.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RIG=${IRONLEDGER_BMC_RIG:-/var/tmp/ironledger-bmc-rig/redfish}
PORT=${IRONLEDGER_REDFISH_PORT:-8050}
SYSTEMS=${IRONLEDGER_REDFISH_SYSTEMS:-4}
USER_NAME=${IRONLEDGER_REDFISH_USER-admin}
PASSWORD=${IRONLEDGER_REDFISH_PASSWORD:-password}
SCHEME=http
[ "${IRONLEDGER_REDFISH_TLS:-0}" = 1 ] && SCHEME=https
URL="$SCHEME://127.0.0.1:$PORT"
mkdir -p "$RIG"

up() {
    local extra=()
    [ -f "$RIG/cert.pem" ] && extra=(--cacert "$RIG/cert.pem")
    curl -s --max-time 2 "${extra[@]}" "$URL/redfish/v1/" 2>/dev/null | grep -q '"Systems"'
}
if [ -f "$RIG/pid" ] && kill -0 "$(cat "$RIG/pid")" 2>/dev/null && up; then
    echo "redfish emulator already running"
    echo "$URL"
    exit 0
fi
"$HERE/redfish-stop.sh" >/dev/null 2>&1 || true

VENV=$("$HERE/venv.sh")
PY="$VENV/bin/python"

CONF="$RIG/emulator.conf"
{
    echo "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'"
    echo "SUSHY_EMULATOR_LISTEN_PORT = $PORT"
    echo "SUSHY_EMULATOR_FAKE_DRIVER = True"
    echo "SUSHY_EMULATOR_STATE_DIR = '$RIG/state'"
    echo "SUSHY_EMULATOR_FAKE_SYSTEMS = ["
    for n in $(seq 1 "$SYSTEMS"); do
        printf "    {'uuid': '00000000-0000-4000-8000-%012d', 'name': 'node-%d', 'power_state': 'Off',\n" "$n" "$n"
        printf "     'nics': [{'mac': '52:54:00:00:%02x:%02x', 'ip': '127.0.0.1'}]},\n" $((n / 256)) $((n % 256))
    done
    echo "]"
} >"$CONF"
if [ -n "$USER_NAME" ]; then
    "$PY" - "$RIG/htpasswd" "$USER_NAME" "$PASSWORD" <<'PY'
import sys, bcrypt
path, user, password = sys.argv[1:]
with open(path, "w") as f:
    f.write(f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()}\n")
PY
    echo "SUSHY_EMULATOR_AUTH_FILE = '$RIG/htpasswd'" >>"$CONF"
fi
if [ "$SCHEME" = https ]; then
    [ -f "$RIG/cert.pem" ] || openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj /CN=127.0.0.1 \
        -addext subjectAltName=IP:127.0.0.1 -addext basicConstraints=critical,CA:FALSE \
        -keyout "$RIG/key.pem" -out "$RIG/cert.pem" >/dev/null 2>&1
    echo "SUSHY_EMULATOR_SSL_CERT = '$RIG/cert.pem'" >>"$CONF"
    echo "SUSHY_EMULATOR_SSL_KEY = '$RIG/key.pem'" >>"$CONF"
else
    rm -f "$RIG/cert.pem" "$RIG/key.pem"
fi
rm -rf "$RIG/state"
: >"$RIG/access.jsonl"

IRONLEDGER_RIG_DIR=$RIG IRONLEDGER_RIG_SESSIONS=${IRONLEDGER_REDFISH_SESSIONS:-0} \
    IRONLEDGER_RIG_MAX_DELAY=${IRONLEDGER_REDFISH_MAX_DELAY:-} PYTHONDONTWRITEBYTECODE=1 \
    setsid "$PY" "$HERE/redfish_rig.py" "$CONF" >"$RIG/emulator.log" 2>&1 </dev/null &
echo $! >"$RIG/pid"
for _ in $(seq 1 100); do
    up && { echo "redfish emulator up"; echo "$URL"; exit 0; }
    kill -0 "$(cat "$RIG/pid")" 2>/dev/null || { echo "the redfish emulator exited; see $RIG/emulator.log" >&2; tail -20 "$RIG/emulator.log" >&2; exit 1; }
    sleep 0.2
done
echo "the redfish emulator did not answer on $URL; see $RIG/emulator.log" >&2
exit 1
