#!/bin/sh
# ipmi_sim's chassis_control program (lan.conf(5)): ipmi_sim runs it for
# every chassis command, as
#   ipmi-chassis-control.sh <mc> get <parm>...      -> prints "<parm>:<value>"
#   ipmi-chassis-control.sh <mc> set <parm> <val>...
# parm is power (1/0), reset (pulse), boot (none, pxe, default, cdrom, bios),
# shutdown (soft power off) or identify. The machine's state is kept in files
# of the rig directory ($IRONLEDGER_RIG_DIR/power, /boot, /events) so a test
# reads back what the BMC really did, not what a client says it did.
dir=${IRONLEDGER_RIG_DIR:?}
shift # the MC address
op=$1
shift
[ -f "$dir/power" ] || echo 0 >"$dir/power"
[ -f "$dir/boot" ] || echo default >"$dir/boot"
case $op in
get)
    for parm in "$@"; do
        case $parm in
        power) echo "power:$(cat "$dir/power")" ;;
        boot) echo "boot:$(cat "$dir/boot")" ;;
        *) echo "Invalid parameter: $parm"; exit 1 ;;
        esac
    done
    ;;
set)
    while [ $# -ge 2 ]; do
        parm=$1 val=$2
        shift 2
        case $parm in
        power) echo "$val" >"$dir/power" ;;
        reset) [ "$(cat "$dir/power")" = 1 ] || { echo "reset while powered off"; exit 1; } ;;
        shutdown) echo 0 >"$dir/power" ;;
        boot)
            case $val in
            none | pxe | default | cdrom | bios) echo "$val" >"$dir/boot" ;;
            *) echo "Invalid boot value: $val"; exit 1 ;;
            esac
            ;;
        identify) shift ;;
        *) echo "Invalid parameter: $parm"; exit 1 ;;
        esac
        echo "$parm $val" >>"$dir/events"
    done
    ;;
check) exit 1 ;;
*) echo "Unknown operation: $op"; exit 1 ;;
esac
