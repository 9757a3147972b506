#!/usr/bin/env bash
# Starts OpenIPMI's ipmi_sim (Debian package `openipmi`): a real IPMI-over-LAN
# BMC (IPMI 1.5 and 2.0/RMCP+) on a loopback UDP port, whose chassis commands
# (power, reset, soft off, boot device) run ipmi-chassis-control.sh, which
# keeps the machine's power and boot device in files of the rig directory.
#
# Idempotent: if the simulator of this rig directory runs, it is reused.
# Env: IRONLEDGER_BMC_RIG      rig directory (default /var/tmp/ironledger-bmc-rig/ipmi)
#      IRONLEDGER_IPMI_PORT     UDP port (default 9623)
#      IRONLEDGER_IPMI_USER / _PASSWORD   the BMC user, admin privilege (default admin / password)
# Prints 127.0.0.1:<port> on its last line.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
RIG=${IRONLEDGER_BMC_RIG:-/var/tmp/ironledger-bmc-rig/ipmi}
PORT=${IRONLEDGER_IPMI_PORT:-9623}
USER_NAME=${IRONLEDGER_IPMI_USER:-admin}
PASSWORD=${IRONLEDGER_IPMI_PASSWORD:-password}
mkdir -p "$RIG/state"
command -v ipmi_sim >/dev/null || { echo "ipmi_sim is missing: apt-get install openipmi" >&2; exit 1; }

if [ -f "$RIG/pid" ] && kill -0 "$(cat "$RIG/pid")" 2>/dev/null; then
    echo "ipmi_sim already running"
    echo "127.0.0.1:$PORT"
    exit 0
fi
echo 0 >"$RIG/power"
echo default >"$RIG/boot"
: >"$RIG/events"
# lan.conf(5). The password is a file of the rig, on loopback only.
cat >"$RIG/lan.conf" <<CONF
name "ironledger"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 $PORT
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "$HERE/ipmi-chassis-control.sh 0x20"
  user 2 true "$USER_NAME" "$PASSWORD" admin 10 none md2 md5 straight
CONF
cat >"$RIG/sim.emu" <<'EMU'
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
mc_enable 0x20
EMU
IRONLEDGER_RIG_DIR=$RIG setsid ipmi_sim -c "$RIG/lan.conf" -f "$RIG/sim.emu" -n -s "$RIG/state" \
    >"$RIG/ipmi_sim.log" 2>&1 </dev/null &
echo $! >"$RIG/pid"
for _ in $(seq 1 50); do
    kill -0 "$(cat "$RIG/pid")" 2>/dev/null || { echo "ipmi_sim exited; see $RIG/ipmi_sim.log" >&2; tail -20 "$RIG/ipmi_sim.log" >&2; exit 1; }
    if IPMI_PASSWORD=$PASSWORD ipmitool -I lanplus -H 127.0.0.1 -p "$PORT" -U "$USER_NAME" -E -R 1 -N 1 \
        chassis power status >/dev/null 2>&1; then
        echo "ipmi_sim up"
        echo "127.0.0.1:$PORT"
        exit 0
    fi
    sleep 0.2
done
echo "ipmi_sim did not answer on 127.0.0.1:$PORT; see $RIG/ipmi_sim.log" >&2
exit 1
