#!/bin/sh
# ipmi_sim's chassis_control program (lan.conf(5)): ipmi_sim runs it for
# every chassis command, as
#   ipmi-chassis-control.sh <mc> get <parm>...      -> prints "<parm>:<value>"
#   ipmi-chassis-control.sh <mc> set <parm> <val>...
# parm is power (1/0), reset (pulse), boot (none, pxe, default, cdrom, bios),
# shutdown (soft power off) or identify. The machine's state is kept in files
# of the rig directory ($IRONLEDGER_RIG_DIR/power, /boot, /events) so a test
# reads back what the BMC really did, not what a client says it did.
#
# A machine behind the BMC: when the rig directory holds a file `machine`
# (a command line, one argument per line, the program first — a test writes
# it, so the rig knows nothing of what it starts), the chassis is that
# process. `power on` starts it in the background, as the leader of its own
# process group (pid in `machine.pid`, its stdout and stderr in
# `machine.out`), with `-boot order=n` (boot device pxe) or `-boot order=c`
# (anything else) appended from the boot device set last; `power off` and
# `shutdown` kill the group; `reset` (and ipmi_sim's `power cycle`: off,
# then on) kills it and starts it again. `get power` is then whether that
# process lives, so a machine that stops by itself reads as off. Without a
# `machine` file the power state is only the `power` file.
dir=${IRONLEDGER_RIG_DIR:?}
shift # the MC address
op=$1
shift
[ -f "$dir/power" ] || echo 0 >"$dir/power"
[ -f "$dir/boot" ] || echo default >"$dir/boot"

# Whether the machine's process lives: its pid file names a process that is
# neither gone nor a zombie (the started process is orphaned, and the
# container's init may never reap it).
machine_alive() {
    [ -f "$dir/machine.pid" ] || return 1
    pid=$(cat "$dir/machine.pid")
    [ -r "/proc/$pid/stat" ] || return 1
    state=$(sed 's/^.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
    [ "$state" != Z ] && [ "$state" != X ]
}

machine_start() {
    machine_alive && return 0
    case $(cat "$dir/boot") in
    pxe) order=n ;;
    *) order=c ;;
    esac
    (
        IFS='
'
        set -f
        # shellcheck disable=SC2046 # one argument per line, on purpose
        set -- $(cat "$dir/machine") -boot "order=$order"
        # setsid: QEMU leads its own process group (its guestfwd socats
        # join it); every descriptor of ipmi_sim above 2 is closed.
        exec setsid "$@" </dev/null >"$dir/machine.out" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
    ) &
    echo $! >"$dir/machine.pid"
    echo "start order=$order" >>"$dir/machine.log"
}

machine_stop() {
    machine_alive || { rm -f "$dir/machine.pid"; return 0; }
    kill -TERM "-$pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
        machine_alive || break
        sleep 0.1
    done
    if machine_alive; then
        kill -KILL "-$pid" 2>/dev/null
        sleep 0.1
        # Keep the pid file of a machine that would not die: ipmi-stop.sh
        # and the next command try again, and the BMC reports it on.
        machine_alive && { echo "the machine $pid does not stop"; return 1; }
    fi
    rm -f "$dir/machine.pid"
    echo "stop" >>"$dir/machine.log"
}

has_machine() { [ -f "$dir/machine" ]; }

case $op in
get)
    for parm in "$@"; do
        case $parm in
        power)
            if has_machine; then
                if machine_alive; then echo 1 >"$dir/power"; else echo 0 >"$dir/power"; fi
            fi
            echo "power:$(cat "$dir/power")"
            ;;
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
        power)
            if has_machine; then
                if [ "$val" = 1 ]; then machine_start; else machine_stop || exit 1; fi
            fi
            echo "$val" >"$dir/power"
            ;;
        reset)
            if has_machine; then
                machine_alive || { echo "reset while powered off"; exit 1; }
                machine_stop || exit 1
                machine_start
            else
                [ "$(cat "$dir/power")" = 1 ] || { echo "reset while powered off"; exit 1; }
            fi
            ;;
        shutdown)
            if has_machine; then machine_stop || exit 1; fi
            echo 0 >"$dir/power"
            ;;
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
