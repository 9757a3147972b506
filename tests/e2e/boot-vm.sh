#!/usr/bin/env bash
# Boots a QEMU (TCG) machine whose only network is QEMU user networking with
# restrict=on: the guest reaches nothing but two forwarded addresses,
#   http://10.0.2.100/      -> HTTP   (ironledger's API listener: /boot/…)
#   10.0.2.100:3260         -> ISCSI  (the iSCSI portal)
# each bridged per connection by socat. Any other address in a script gets an
# immediate "Connection reset" inside QEMU: nothing leaves the machine.
#
# Stage 0 is Debian's iPXE: in BIOS mode the e1000 NIC's option ROM
# (ipxe-qemu), in UEFI mode ipxe.efi loaded by OVMF from a small local FAT disk
# (OVMF's own PXE chain loops with this build). Either asks QEMU's DHCP server,
# whose boot file name is URL, and chains it.
#
# usage: boot-vm.sh --firmware bios|uefi --mac MAC --http HOST:PORT --iscsi HOST:PORT
#                   --serial FILE [--url URL] [--work DIR] [--argv FILE]
#   --url   default http://10.0.2.100/boot/boot.ipxe (ironledger's chain script)
#   --work  where the UEFI stage-0 disk and variable store go (default: a new
#           temporary directory, printed on stderr)
#   --argv  do not start QEMU: write its command line to FILE, one argument
#           per line, the program first, without a boot order — for a BMC
#           rig that starts the machine itself and appends the order from
#           its boot device (tests/rigs/bmc/ipmi-chassis-control.sh)
# Runs until killed (or until the guest reboots: -no-reboot). The serial
# console (iPXE's output, the booted code's) goes to FILE.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "boot-vm.sh: $*" >&2; exit 2; }
FIRMWARE= MAC= HTTP= ISCSI= SERIAL= WORK= ARGV= URL=http://10.0.2.100/boot/boot.ipxe
while [ $# -gt 0 ]; do
    case "$1" in
        --firmware) FIRMWARE=$2 ;;
        --mac) MAC=$2 ;;
        --http) HTTP=$2 ;;
        --iscsi) ISCSI=$2 ;;
        --serial) SERIAL=$2 ;;
        --url) URL=$2 ;;
        --work) WORK=$2 ;;
        --argv) ARGV=$2 ;;
        *) die "unknown argument $1" ;;
    esac
    shift 2 || die "$1 needs a value"
done
[ -n "$MAC" ] && [ -n "$HTTP" ] && [ -n "$ISCSI" ] && [ -n "$SERIAL" ] || die "--mac, --http, --iscsi and --serial are required"
case "$URL" in http://10.0.2.100/*) ;; *) die "--url must be on http://10.0.2.100/ (the only forwarded HTTP address)" ;; esac
for c in qemu-system-x86_64 socat; do command -v $c >/dev/null || die "$c missing"; done
if [ -z "$WORK" ]; then WORK=$(mktemp -d /tmp/ironledger-boot-vm.XXXXXX); echo "boot-vm.sh: work dir $WORK" >&2; fi
mkdir -p "$WORK"

NET="user,id=net0,restrict=on,bootfile=$URL"
NET+=",guestfwd=tcp:10.0.2.100:80-cmd:socat - TCP:$HTTP"
NET+=",guestfwd=tcp:10.0.2.100:3260-cmd:socat - TCP:$ISCSI"
ARGS=(-machine pc,accel=tcg -m 256 -smp 1 -nographic -no-reboot -monitor none
      -serial "file:$SERIAL" -netdev "$NET")
case "$FIRMWARE" in
    bios)
        # SeaBIOS runs the NIC's option ROM (ipxe-qemu's efi-e1000.rom: iPXE).
        ARGS+=(-device "e1000,netdev=net0,mac=$MAC")
        [ -n "$ARGV" ] || ARGS+=(-boot n) ;;
    uefi)
        code=/usr/share/OVMF/OVMF_CODE_4M.fd vars=/usr/share/OVMF/OVMF_VARS_4M.fd
        [ -f $code ] || die "$code missing (Debian package ovmf)"
        cp $vars "$WORK/ovmf-vars.fd"
        [ -f "$WORK/stage0.img" ] || "$HERE/images.sh" stage0 "$WORK/stage0.img"
        # No option ROM on the NIC: ipxe.efi brings its own e1000 driver.
        ARGS+=(-drive "if=pflash,format=raw,unit=0,readonly=on,file=$code"
               -drive "if=pflash,format=raw,unit=1,file=$WORK/ovmf-vars.fd"
               -drive "if=ide,format=raw,snapshot=on,file=$WORK/stage0.img"
               -device "e1000,netdev=net0,mac=$MAC,romfile=") ;;
    *) die "--firmware bios|uefi" ;;
esac
if [ -n "$ARGV" ]; then
    printf '%s\n' "$(command -v qemu-system-x86_64)" "${ARGS[@]}" >"$ARGV"
    exit 0
fi
exec qemu-system-x86_64 "${ARGS[@]}"
