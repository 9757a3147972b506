#!/usr/bin/env bash
# Stops the Redfish emulator of a rig directory (see redfish-start.sh).
RIG=${IRONLEDGER_BMC_RIG:-/var/tmp/ironledger-bmc-rig/redfish}
[ -f "$RIG/pid" ] || exit 0
kill "$(cat "$RIG/pid")" 2>/dev/null || true
rm -f "$RIG/pid"
