/* Boot sector of the e2e test volume (tests/boot/e2e_boot.rs).
 *
 * iPXE's SAN boot loads this sector from the iSCSI LUN to 0000:7C00 and jumps
 * here with DL = the SAN drive. It writes to COM1 which drive it runs from,
 * reads LBA 1 through INT 13h extensions (served by iPXE's INT 13h hook, i.e.
 * read over iSCSI) and writes the NUL-terminated text found there — the
 * per-run token — then halts. Only the first 446 bytes are code: the
 * partition table (an EFI system partition for the UEFI case) follows.
 */
        .code16
        .text
        .globl  _start
_start:
        cli
        xorw    %ax, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    $0x7c00, %sp
        sti
        movb    %dl, drive

        movw    $m_hello, %si
        call    puts
        movb    drive, %al
        call    puthex8
        movw    $m_crlf, %si
        call    puts

        /* INT 13h AH=42h: extended read, one sector at LBA 1 -> 0000:0600 */
        movw    $dap, %si
        movb    $0x42, %ah
        movb    drive, %dl
        int     $0x13
        jc      read_failed

        movw    $m_token, %si
        call    puts
        movb    $0, 0x0600 + 200        /* bound the text */
        movw    $0x0600, %si
        call    puts
        movw    $m_crlf, %si
        call    puts
        movw    $m_done, %si
        call    puts
        jmp     halt

read_failed:
        movw    $m_fail, %si
        call    puts
halt:
        cli
        hlt
        jmp     halt

/* Writes the NUL-terminated string at DS:SI to COM1 (QEMU's UART needs no setup). */
puts:
        movw    $0x3f8, %dx
1:      lodsb
        testb   %al, %al
        jz      2f
        outb    %al, %dx
        jmp     1b
2:      ret

/* Writes AL as two hex digits to COM1. */
puthex8:
        movw    $0x3f8, %dx
        movb    %al, %ah
        shrb    $4, %al
        call    1f
        movb    %ah, %al
        andb    $0x0f, %al
1:      addb    $'0', %al
        cmpb    $'9', %al
        jbe     2f
        addb    $('a' - '9' - 1), %al
2:      outb    %al, %dx
        ret

        .balign 4
dap:    .byte   16, 0           /* size of the packet, reserved */
        .word   1               /* sectors */
        .word   0x0600, 0       /* buffer offset, segment */
        .quad   1               /* LBA */
drive:  .byte   0
m_hello: .asciz "\r\nIRONLEDGER-E2E-MBR: boot sector running from drive 0x"
m_token: .asciz "IRONLEDGER-E2E-MBR: LBA 1 reads: "
m_fail:  .asciz "IRONLEDGER-E2E-MBR: INT 13h read FAILED\r\n"
m_done:  .asciz "IRONLEDGER-E2E-MBR: done\r\n"
m_crlf:  .asciz "\r\n"
        .org    446             /* the partition table is written separately */
