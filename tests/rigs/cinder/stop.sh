#!/usr/bin/env bash
# Stops the processes tests/rigs/cinder/start.sh started (each leads its own process group).
RIG=${IRONLEDGER_CINDER_RIG:-/var/tmp/ironledger-cinder-rig}
for f in "$RIG"/run/cinder-*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$f"
done
exit 0
