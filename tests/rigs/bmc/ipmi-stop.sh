#!/usr/bin/env bash
# Stops the ipmi_sim of a rig directory (see ipmi-start.sh).
RIG=${IRONLEDGER_BMC_RIG:-/var/tmp/ironledger-bmc-rig/ipmi}
[ -f "$RIG/pid" ] || exit 0
kill "$(cat "$RIG/pid")" 2>/dev/null || true
rm -f "$RIG/pid"
