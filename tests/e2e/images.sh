#!/usr/bin/env bash
# Disk images for the iPXE boot-from-volume end-to-end test (tests/boot/e2e_boot.rs).
#
#   images.sh programs DIR            compile mbr.S -> DIR/mbr.bin and
#                                     token-efi.c -> DIR/token.efi (gnu-efi)
#   images.sh volume DIR OUT TOKEN    the iSCSI volume OUT (sparse, 32 MiB) that
#                                     boots in both firmwares and shows TOKEN:
#        LBA 0      DIR/mbr.bin + an MBR partition table with one EFI system
#                   partition (type 0xEF); BIOS SAN boot runs this sector
#        LBA 1      "TOKEN\0", which the boot sector reads over INT 13h
#        LBA 2048-  FAT file system: \EFI\BOOT\BOOTX64.EFI = DIR/token.efi and
#                   \token.txt = "efi:TOKEN", for UEFI SAN boot
#   images.sh stage0 OUT              a small FAT disk whose removable-media
#                                     loader \EFI\BOOT\BOOTX64.EFI is Debian's
#                                     ipxe.efi: UEFI stage 0 (OVMF boots it, it
#                                     DHCPs and chains the DHCP boot file name)
#
# Needs: binutils (as, ld, objcopy), gcc, gnu-efi, mtools, ipxe.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
die() { echo "images.sh: $*" >&2; exit 2; }

programs() {
    local dir=$1
    mkdir -p "$dir"
    as --32 -o "$dir/mbr.o" "$HERE/mbr.S"
    ld -m elf_i386 -Ttext 0x7c00 --oformat binary -e _start -o "$dir/mbr.bin" "$dir/mbr.o"
    [ "$(stat -c %s "$dir/mbr.bin")" = 446 ] || die "mbr.bin is not 446 bytes"

    local efi_inc=/usr/include/efi efi_lib=/usr/lib
    [ -f "$efi_lib/crt0-efi-x86_64.o" ] || die "gnu-efi is not installed ($efi_lib/crt0-efi-x86_64.o)"
    gcc -I"$efi_inc" -I"$efi_inc/x86_64" -fpic -ffreestanding -fno-stack-protector \
        -fno-stack-check -fshort-wchar -mno-red-zone -maccumulate-outgoing-args -O2 \
        -c "$HERE/token-efi.c" -o "$dir/token-efi.o"
    ld -shared -Bsymbolic -nostdlib -znocombreloc -L"$efi_lib" -T"$efi_lib/elf_x86_64_efi.lds" \
        "$efi_lib/crt0-efi-x86_64.o" "$dir/token-efi.o" -o "$dir/token-efi.so" -lefi -lgnuefi
    objcopy -j .text -j .sdata -j .data -j .rodata -j .dynamic -j .dynsym -j .rel -j .rela \
        -j '.rel.*' -j '.rela.*' -j .reloc --target efi-app-x86_64 --subsystem=10 \
        "$dir/token-efi.so" "$dir/token.efi"
}

# le32 N: N as 4 little-endian bytes, printf escapes
le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }

volume() {
    local dir=$1 out=$2 token=$3
    [ -f "$dir/mbr.bin" ] && [ -f "$dir/token.efi" ] || die "run: images.sh programs $dir"
    local start=2048 sectors=$((31 * 2048))      # the ESP: 1 MiB .. 32 MiB
    rm -f "$out"
    truncate -s $(((start + sectors) * 512)) "$out"
    dd if="$dir/mbr.bin" of="$out" conv=notrunc status=none
    # partition entry 1: not active, CHS "beyond 8 GiB" (fe ff ff), type 0xEF, LBA start, size
    printf "\\x00\\xfe\\xff\\xff\\xef\\xfe\\xff\\xff$(le32 $start)$(le32 $sectors)" |
        dd of="$out" bs=1 seek=446 conv=notrunc status=none
    printf '\x55\xaa' | dd of="$out" bs=1 seek=510 conv=notrunc status=none
    printf '%s\0' "$token" | dd of="$out" bs=512 seek=1 conv=notrunc status=none

    local fs="$out@@$((start * 512))" txt
    mformat -i "$fs" -T $sectors -H $start -h 64 -s 32 -v ESP ::
    mmd -i "$fs" ::/EFI ::/EFI/BOOT
    mcopy -i "$fs" "$dir/token.efi" ::/EFI/BOOT/BOOTX64.EFI
    txt=$(mktemp)
    printf 'efi:%s' "$token" > "$txt"
    mcopy -i "$fs" "$txt" ::/token.txt
    rm -f "$txt"
}

stage0() {
    local out=$1 ipxe_efi=/usr/lib/ipxe/ipxe.efi
    [ -f "$ipxe_efi" ] || die "$ipxe_efi missing (Debian package ipxe)"
    rm -f "$out"
    truncate -s 4M "$out"
    mformat -i "$out" -T 8192 -h 64 -s 32 -v STAGE0 ::
    mmd -i "$out" ::/EFI ::/EFI/BOOT
    mcopy -i "$out" "$ipxe_efi" ::/EFI/BOOT/BOOTX64.EFI
}

case "${1:-}" in
    programs) [ $# = 2 ] || die "usage: images.sh programs DIR"; programs "$2" ;;
    volume) [ $# = 4 ] || die "usage: images.sh volume DIR OUT TOKEN"; volume "$2" "$3" "$4" ;;
    stage0) [ $# = 2 ] || die "usage: images.sh stage0 OUT"; stage0 "$2" ;;
    *) die "usage: images.sh programs DIR | volume DIR OUT TOKEN | stage0 OUT" ;;
esac
