#!/usr/bin/env bash
# Makes sure the rig's virtualenv holds the pinned sushy-tools, under a lock
# file (tests start rigs in parallel), and prints its path.
set -euo pipefail
VENV=${IRONLEDGER_BMC_VENV:-/var/tmp/ironledger-bmc-venv}
SUSHY_TOOLS_VERSION=2.2.0
ready() { "$VENV/bin/python" -c "import sushy_tools, importlib.metadata as m; assert m.version('sushy-tools') == '$SUSHY_TOOLS_VERSION'" 2>/dev/null; }
if ! ready; then
    mkdir -p "$(dirname "$VENV")"
    exec 9>"$VENV.lock"
    flock 9
    if ! ready; then
        echo "installing sushy-tools $SUSHY_TOOLS_VERSION into $VENV" >&2
        rm -rf "$VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check "sushy-tools==$SUSHY_TOOLS_VERSION" >&2
    fi
fi
echo "$VENV"
