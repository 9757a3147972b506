#!/usr/bin/env bash
# Stops the ipmi_sim of a rig directory (see ipmi-start.sh), and the machine
# behind it if one runs (ipmi-chassis-control.sh: `machine.pid`, the leader
# of its own process group).
RIG=${IRONLEDGER_BMC_RIG:-/var/tmp/ironledger-bmc-rig/ipmi}
if [ -f "$RIG/machine.pid" ]; then
    kill -KILL "-$(cat "$RIG/machine.pid")" 2>/dev/null || true
    rm -f "$RIG/machine.pid"
fi
[ -f "$RIG/pid" ] || exit 0
kill "$(cat "$RIG/pid")" 2>/dev/null || true
rm -f "$RIG/pid"
