//! iPXE boot-from-volume scripts (`docs/ironic-behaviour.md` §10).
//!
//! Two scripts make a machine boot from its iSCSI volume:
//! - `boot.ipxe`, the same for every machine: it tries each NIC in turn and
//!   chains `pxelinux.cfg/<mac-with-dashes>` relative to itself;
//! - the per-node `config`, reached through those per-MAC links: it sets the
//!   initiator IQN and CHAP credentials, hooks every iSCSI volume as a SAN drive
//!   (the boot volume as `0x80`, the others from `0x81` on, each with its own
//!   credentials), then `sanboot`s the boot volume, retrying on failure.
//!
//! Rendering is pure: [`plan`] (`domain::boot_plan`) reads a node's targets
//! and connectors and [`render_config`] turns the plan into text. Writing the files is
//! `effects::http_root`'s job.

pub use crate::domain::boot_plan::{iscsi_uri, plan, IscsiBoot, RenderError, SanVolume};
use std::fmt::Write as _;

/// Sets (or clears, so a previous drive's login does not leak into this one)
/// the CHAP credentials for the next SAN command; the mutual-CHAP ones
/// (`reverse-username`, `reverse-password`) only in a script where some drive
/// has them (`mutual`).
fn credential_lines(out: &mut String, v: &SanVolume, mutual: bool) {
    match &v.username {
        Some(u) => writeln!(out, "set username {u}").unwrap(),
        None => writeln!(out, "clear username").unwrap(),
    }
    match &v.password {
        Some(p) => writeln!(out, "set password {p}").unwrap(),
        None => writeln!(out, "clear password").unwrap(),
    }
    if mutual {
        match &v.reverse {
            Some((u, p)) => {
                writeln!(out, "set reverse-username {u}").unwrap();
                writeln!(out, "set reverse-password {p}").unwrap();
            }
            None => {
                writeln!(out, "clear reverse-username").unwrap();
                writeln!(out, "clear reverse-password").unwrap();
            }
        }
    }
}

/// How often a node's script tries its SAN boot again after a failure
/// (`[deploy] san_boot_retries`), 10 seconds apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SanRetries {
    /// Again and again, as Ironic's template does: a volume that never
    /// comes back keeps the machine in this loop until someone looks.
    Forever,
    /// This many times more; then the script says so on the console and
    /// returns, and `boot.ipxe` lets the firmware move on to its next boot
    /// device.
    Times(u32),
}

/// Six retries: a minute for a storage array that was briefly away.
pub const DEFAULT_SAN_RETRIES: SanRetries = SanRetries::Times(6);

impl std::str::FromStr for SanRetries {
    type Err = String;

    /// A whole number of retries (0: none), or `forever`.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("forever") {
            return Ok(SanRetries::Forever);
        }
        s.parse::<u32>()
            .map(SanRetries::Times)
            .map_err(|_| format!("'{s}' is not a whole number of retries >= 0, or 'forever'"))
    }
}

/// The per-node script, with the default retries ([`DEFAULT_SAN_RETRIES`]).
pub fn render_config(node_uuid: &str, plan: &IscsiBoot) -> String {
    render_config_with(node_uuid, plan, DEFAULT_SAN_RETRIES)
}

/// The per-node script, retrying a failed SAN boot as `retries` says.
pub fn render_config_with(node_uuid: &str, plan: &IscsiBoot, retries: SanRetries) -> String {
    let mut out = String::new();
    writeln!(out, "#!ipxe").unwrap();
    writeln!(
        out,
        "# ironledger boot-from-volume configuration for node {node_uuid}"
    )
    .unwrap();
    writeln!(out).unwrap();
    if let SanRetries::Times(_) = retries {
        writeln!(out, "set san_attempt:int32 0").unwrap();
    }
    writeln!(out, "goto boot_iscsi").unwrap();
    writeln!(out).unwrap();
    writeln!(out, ":boot_iscsi").unwrap();
    writeln!(out, "imgfree").unwrap();
    let mutual = plan.boot.reverse.is_some() || plan.extra.iter().any(|v| v.reverse.is_some());
    credential_lines(&mut out, &plan.boot, mutual);
    if let Some(iqn) = &plan.initiator_iqn {
        writeln!(out, "set initiator-iqn {iqn}").unwrap();
    }
    writeln!(
        out,
        "sanhook --drive 0x80 {} || goto fail_iscsi_retry",
        plan.boot.uri
    )
    .unwrap();
    for (i, v) in plan.extra.iter().enumerate() {
        credential_lines(&mut out, v, mutual);
        writeln!(
            out,
            "sanhook --drive 0x{:x} {} || goto fail_iscsi_retry",
            0x81 + i,
            v.uri
        )
        .unwrap();
    }
    if !plan.extra.is_empty() {
        credential_lines(&mut out, &plan.boot, mutual);
    }
    writeln!(out, "sanboot --no-describe || goto fail_iscsi_retry").unwrap();
    writeln!(out).unwrap();
    writeln!(out, ":fail_iscsi_retry").unwrap();
    match retries {
        SanRetries::Forever => {
            writeln!(
                out,
                "echo Failed to attach iSCSI volume(s), retrying in 10 seconds."
            )
            .unwrap();
        }
        SanRetries::Times(n) => {
            // `san_attempt` counts the failed attempts (set to 0 before the
            // first one).
            writeln!(out, "inc san_attempt").unwrap();
            writeln!(
                out,
                "iseq ${{san_attempt}} {} && goto fail_iscsi || goto fail_iscsi_wait",
                u64::from(n) + 1
            )
            .unwrap();
            writeln!(out).unwrap();
            writeln!(out, ":fail_iscsi_wait").unwrap();
            writeln!(
                out,
                "echo Failed to attach iSCSI volume(s) (attempt ${{san_attempt}} of {}), retrying in 10 seconds.",
                u64::from(n) + 1
            )
            .unwrap();
        }
    }
    writeln!(out, "sleep 10").unwrap();
    writeln!(out, "goto boot_iscsi").unwrap();
    if let SanRetries::Times(n) = retries {
        writeln!(out).unwrap();
        writeln!(out, ":fail_iscsi").unwrap();
        // Two lines, each within the 80 columns a firmware console wraps at.
        writeln!(
            out,
            "echo Failed to boot from the iSCSI volume(s) after {} attempt(s); giving up.",
            u64::from(n) + 1
        )
        .unwrap();
        writeln!(out, "echo (ironledger: [deploy] san_boot_retries = {n})").unwrap();
        // Back to boot.ipxe as a script that ran (not one that failed,
        // which would chain this script again through the next NIC): it
        // hands the machine to the firmware's next boot device.
        writeln!(out, "exit 0").unwrap();
    }
    out
}

/// The chain script every machine fetches first (`{http_url}/boot.ipxe`).
/// `pxelinux.cfg/` is resolved relative to the script's own URL.
pub fn render_boot_script() -> String {
    "#!ipxe

# ironledger: try each network device in turn and chain the configuration
# written for its MAC address (pxelinux.cfg/<mac-with-dashes>).
set netid:int32 -1
:loop
inc netid || chain pxelinux.cfg/${mac:hexhyp} || goto old_rom
isset ${net${netid}/mac} || goto loop_done
echo Attempting to boot from MAC ${net${netid}/mac:hexhyp}
chain pxelinux.cfg/${net${netid}/mac:hexhyp} || goto loop

# A chained configuration returned: its sanboot failed; let the firmware
# move on to the next boot device.
echo Exiting pxe config to allow boot to continue on next device
exit 0

:loop_done
echo PXE boot failed! No configuration found for any of the present NICs.
echo Press any key to reboot...
prompt --timeout 180
reboot

:old_rom
echo PXE boot failed! No configuration found for NIC ${mac:hexhyp}.
echo Please update your iPXE ROM and retry.
echo Press any key to reboot...
prompt --timeout 180
reboot
"
    .to_string()
}

/// The per-MAC file name: lower case, `-` separated, no `01-` prefix.
pub fn mac_file_name(mac: &str) -> String {
    mac.to_ascii_lowercase().replace(':', "-")
}
