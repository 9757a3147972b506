/* UEFI application of the e2e test volume (tests/boot/e2e_boot.rs), built with
 * gnu-efi and placed at \EFI\BOOT\BOOTX64.EFI on the volume's EFI system
 * partition.
 *
 * iPXE's SAN boot (UEFI) loads it from the iSCSI LUN. It writes a marker to
 * COM1, then opens \token.txt on the file system it was itself loaded from —
 * the LUN — and writes its content (the per-run token), then halts.
 */
#include <efi.h>
#include <efilib.h>

static void serial(const char *s)
{
    for (; *s; s++)
        __asm__ volatile("outb %0, %1" : : "a"(*s), "Nd"((UINT16)0x3f8));
}

EFI_STATUS efi_main(EFI_HANDLE image, EFI_SYSTEM_TABLE *systab)
{
    EFI_LOADED_IMAGE *loaded = NULL;
    EFI_FILE_HANDLE root, file;
    CHAR8 text[160];
    UINTN size = sizeof(text) - 1;
    EFI_STATUS rc;

    InitializeLib(image, systab);
    serial("\r\nIRONLEDGER-E2E-EFI: application running\r\n");
    rc = uefi_call_wrapper(BS->HandleProtocol, 3, image, &LoadedImageProtocol, (void **)&loaded);
    if (EFI_ERROR(rc)) {
        serial("IRONLEDGER-E2E-EFI: no loaded image protocol\r\n");
        goto out;
    }
    root = LibOpenRoot(loaded->DeviceHandle);
    if (!root) {
        serial("IRONLEDGER-E2E-EFI: cannot open the boot file system\r\n");
        goto out;
    }
    rc = uefi_call_wrapper(root->Open, 5, root, &file, L"\\token.txt", EFI_FILE_MODE_READ, 0);
    if (EFI_ERROR(rc)) {
        serial("IRONLEDGER-E2E-EFI: token.txt not found\r\n");
        goto out;
    }
    rc = uefi_call_wrapper(file->Read, 3, file, &size, text);
    if (EFI_ERROR(rc)) {
        serial("IRONLEDGER-E2E-EFI: token.txt read FAILED\r\n");
        goto out;
    }
    text[size] = 0;
    serial("IRONLEDGER-E2E-EFI: token.txt reads: ");
    serial((const char *)text);
    serial("\r\n");
out:
    serial("IRONLEDGER-E2E-EFI: done\r\n");
    for (;;)
        __asm__ volatile("hlt");
    return EFI_SUCCESS;
}
