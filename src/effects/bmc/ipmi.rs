//! An IPMI client for Ironic's `ipmi` hardware type: it runs `ipmitool`
//! (Debian's package; the program Ironic's `ipmitool` interfaces run) over
//! LAN — `-I lanplus` (IPMI 2.0, RMCP+) or `-I lan` for
//! `ipmi_protocol_version` 1.5.
//!
//! The password never appears on a command line, where any user could read it
//! in `ps` or `/proc/<pid>/cmdline`: it is written to a fresh 0600 file that
//! only this process can read, passed as `-f <file>` (as Ironic does), and
//! removed when the call ends. ipmitool runs with `-v` so its stderr tells a
//! rejected login (RAKP / Activate Session errors) from a BMC that never
//! answered; stderr is cut to a bounded length before it goes in an error.

use super::error::bounded;
use super::poll::{wait_for_power, PowerWait};
use super::{
    Bmc, BmcError, BmcErrorKind, BootDevice, BootDeviceInfo, BootMode, PowerAction, PowerState,
    Secret,
};
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct IpmiConfig {
    /// `ipmi_address`.
    pub address: String,
    /// `ipmi_port` (ipmitool's default, 623, when `None`).
    pub port: Option<u16>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `ipmi_priv_level`: ADMINISTRATOR (default), OPERATOR, USER, CALLBACK.
    pub priv_level: String,
    /// `ipmi_protocol_version`: "2.0" (default) or "1.5".
    pub protocol_version: String,
    /// `ipmi_cipher_suite` (lanplus only).
    pub cipher_suite: Option<u8>,
    /// The whole ipmitool run, after which it is killed.
    pub timeout: Duration,
    /// ipmitool's own retransmission: attempts (`-R`) and seconds each (`-N`).
    pub retries: u32,
    pub retry_interval_secs: u32,
    /// How long a soft reboot waits for the node to be off before powering it on.
    pub soft_off_wait: PowerWait,
    pub ipmitool: PathBuf,
}

impl IpmiConfig {
    pub fn new(address: impl Into<String>) -> Self {
        IpmiConfig {
            address: address.into(),
            port: None,
            username: None,
            password: None,
            priv_level: "ADMINISTRATOR".into(),
            protocol_version: "2.0".into(),
            cipher_suite: None,
            timeout: Duration::from_secs(60),
            retries: 3,
            retry_interval_secs: 2,
            soft_off_wait: PowerWait::default(),
            ipmitool: PathBuf::from("ipmitool"),
        }
    }
}

pub struct IpmiClient {
    config: IpmiConfig,
}

impl fmt::Debug for IpmiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IpmiClient")
            .field("address", &self.config.address)
            .field("port", &self.config.port)
            .field("username", &self.config.username)
            .field("password", &self.config.password.as_ref().map(|_| "******"))
            .finish()
    }
}

/// A 0600 file holding the password for `ipmitool -f`, removed on drop.
struct PasswordFile(PathBuf);

impl PasswordFile {
    fn create(password: Option<&Secret>) -> std::io::Result<Self> {
        let path = std::env::temp_dir().join(format!("ironledger-ipmi-{}", uuid::Uuid::new_v4()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // ipmitool refuses an empty file; Ironic writes a NUL for "no password".
        match password.map(Secret::expose) {
            Some(p) if !p.is_empty() => f.write_all(p.as_bytes())?,
            _ => f.write_all(b"\0")?,
        }
        Ok(PasswordFile(path))
    }
}

impl Drop for PasswordFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl IpmiClient {
    pub fn new(config: IpmiConfig) -> Self {
        IpmiClient { config }
    }

    pub fn config(&self) -> &IpmiConfig {
        &self.config
    }

    fn what(&self, action: &str) -> String {
        match self.config.port {
            Some(p) => format!("IPMI {action} of {}:{p}", self.config.address),
            None => format!("IPMI {action} of {}", self.config.address),
        }
    }

    /// The arguments of one ipmitool run: connection options, `-f
    /// password_file`, then `command`. No secret is ever among them.
    pub fn args(&self, password_file: &Path, command: &[&str]) -> Vec<OsString> {
        let c = &self.config;
        let interface = if c.protocol_version == "1.5" {
            "lan"
        } else {
            "lanplus"
        };
        let mut a: Vec<OsString> = vec![
            "-v".into(),
            "-I".into(),
            interface.into(),
            "-H".into(),
            c.address.clone().into(),
        ];
        if let Some(p) = c.port {
            a.extend(["-p".into(), p.to_string().into()]);
        }
        a.extend(["-L".into(), c.priv_level.clone().into()]);
        if let Some(u) = &c.username {
            a.extend(["-U".into(), u.clone().into()]);
        }
        if let (Some(cs), "lanplus") = (c.cipher_suite, interface) {
            a.extend(["-C".into(), cs.to_string().into()]);
        }
        a.extend([
            "-R".into(),
            c.retries.max(1).to_string().into(),
            "-N".into(),
            c.retry_interval_secs.max(1).to_string().into(),
            "-f".into(),
            password_file.as_os_str().to_owned(),
        ]);
        a.extend(command.iter().map(|s| OsString::from(*s)));
        a
    }

    /// Runs ipmitool with `command`; stdout on success.
    async fn run(&self, action: &str, command: &[&str]) -> Result<String, BmcError> {
        let what = self.what(action);
        let pw = PasswordFile::create(self.config.password.as_ref()).map_err(|e| {
            BmcError::new(
                &what,
                BmcErrorKind::Config,
                format!("cannot write the password file: {e}"),
            )
        })?;
        tracing::debug!(bmc = %self.config.address, command = %command.join(" "), "ipmitool");
        let mut cmd = tokio::process::Command::new(&self.config.ipmitool);
        cmd.args(self.args(&pw.0, command))
            .env_remove("IPMI_PASSWORD")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(self.config.timeout, cmd.output()).await {
            Err(_) => {
                return Err(BmcError::new(
                    &what,
                    BmcErrorKind::Unreachable,
                    format!(
                        "ipmitool did not finish within {} s",
                        self.config.timeout.as_secs()
                    ),
                ))
            }
            Ok(Err(e)) => {
                return Err(BmcError::new(
                    &what,
                    BmcErrorKind::Config,
                    format!("cannot run {}: {e}", self.config.ipmitool.display()),
                ))
            }
            Ok(Ok(out)) => out,
        };
        drop(pw);
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() {
            return Ok(stdout);
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(classify(&what, &stderr, self.config.password.as_ref()))
    }
}

/// Tells a rejected login from an unreachable BMC and a command the BMC
/// refused, from ipmitool's (verbose) stderr.
fn classify(what: &str, stderr: &str, password: Option<&Secret>) -> BmcError {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Loading IANA") && !l.starts_with("Running Get")
        })
        .collect();
    let mut detail = lines.join("; ");
    // ipmitool never prints the password; this is a second lock on that door.
    if let Some(p) = password.map(Secret::expose).filter(|p| !p.is_empty()) {
        detail = detail.replace(p, "******");
    }
    let has = |s: &str| stderr.contains(s);
    if has("RAKP 2 HMAC is invalid")
        || has("unauthorized name")
        || has("Activate Session command failed")
        || has("invalid integrity check")
        || has("Invalid user name")
    {
        BmcError::new(
            what,
            BmcErrorKind::Unauthorized,
            format!("the BMC refused the credentials: {}", bounded(&detail)),
        )
    } else if has("Unable to establish") || has("Get Auth Capabilities error") || has("No response")
    {
        BmcError::new(
            what,
            BmcErrorKind::Unreachable,
            format!("no session with the BMC: {}", bounded(&detail)),
        )
    } else if has("Node busy")
        || has("Insufficient resources")
        || has("Timeout")
        || has("Out of space")
    {
        BmcError::new(
            what,
            BmcErrorKind::Failed,
            format!("the BMC is busy: {}", bounded(&detail)),
        )
        .transient(true)
    } else {
        BmcError::new(
            what,
            BmcErrorKind::Failed,
            format!("ipmitool failed: {}", bounded(&detail)),
        )
    }
}

/// `chassis bootdev` arguments for a device (Ironic's names are ipmitool's).
pub fn bootdev_args(device: BootDevice, persistent: bool, mode: Option<BootMode>) -> Vec<String> {
    let mut options = Vec::new();
    if persistent {
        options.push("persistent");
    }
    if mode == Some(BootMode::Uefi) {
        options.push("efiboot");
    }
    let mut a = vec![
        "chassis".to_string(),
        "bootdev".to_string(),
        device.as_str().to_string(),
    ];
    if !options.is_empty() {
        a.push(format!("options={}", options.join(",")));
    }
    a
}

/// Reads `chassis bootparam get 5` as Ironic does.
pub fn parse_bootparam(out: &str) -> BootDeviceInfo {
    let selector = out
        .lines()
        .find_map(|l| {
            l.split_once("Boot Device Selector :")
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let device = if selector.contains("PXE") {
        Some(BootDevice::Pxe)
    } else if selector.contains("Safe-Mode") {
        Some(BootDevice::Safe)
    } else if selector.contains("Hard-Drive") {
        Some(BootDevice::Disk)
    } else if selector.contains("BIOS") {
        Some(BootDevice::Bios)
    } else if selector.contains("CD/DVD") {
        Some(BootDevice::Cdrom)
    } else {
        None
    };
    BootDeviceInfo {
        device,
        persistent: Some(out.contains("Options apply to all future boots")),
    }
}

#[async_trait::async_trait]
impl Bmc for IpmiClient {
    async fn power_state(&self) -> Result<PowerState, BmcError> {
        let out = self
            .run("power status", &["chassis", "power", "status"])
            .await?;
        if out.contains("Chassis Power is on") {
            Ok(PowerState::On)
        } else if out.contains("Chassis Power is off") {
            Ok(PowerState::Off)
        } else {
            Err(BmcError::new(
                self.what("power status"),
                BmcErrorKind::Failed,
                format!("unexpected answer: {}", bounded(&out)),
            ))
        }
    }

    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError> {
        let a = action.as_str();
        match action {
            PowerAction::PowerOn => self.run(a, &["chassis", "power", "on"]).await?,
            PowerAction::PowerOff => self.run(a, &["chassis", "power", "off"]).await?,
            PowerAction::SoftPowerOff => self.run(a, &["chassis", "power", "soft"]).await?,
            // A BMC refuses a power cycle of a chassis that is off.
            PowerAction::Reboot => match self.power_state().await? {
                PowerState::On => self.run(a, &["chassis", "power", "cycle"]).await?,
                PowerState::Off => self.run(a, &["chassis", "power", "on"]).await?,
            },
            // IPMI has no soft reboot: soft off, wait for off, power on (as Ironic).
            PowerAction::SoftReboot => {
                if self.power_state().await? == PowerState::On {
                    self.run(a, &["chassis", "power", "soft"]).await?;
                    wait_for_power(
                        self,
                        &self.what(a),
                        PowerState::Off,
                        self.config.soft_off_wait,
                    )
                    .await?;
                }
                self.run(a, &["chassis", "power", "on"]).await?
            }
        };
        tracing::info!(bmc = %self.config.address, action = a, "ipmi power change requested");
        Ok(())
    }

    async fn boot_device(&self) -> Result<BootDeviceInfo, BmcError> {
        let out = self
            .run("boot device", &["chassis", "bootparam", "get", "5"])
            .await?;
        Ok(parse_bootparam(&out))
    }

    async fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
        mode: Option<BootMode>,
    ) -> Result<(), BmcError> {
        let args = bootdev_args(device, persistent, mode);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&format!("set boot device {device}"), &refs)
            .await?;
        Ok(())
    }

    async fn supported_boot_devices(&self) -> Result<Vec<BootDevice>, BmcError> {
        Ok(vec![
            BootDevice::Pxe,
            BootDevice::Disk,
            BootDevice::Cdrom,
            BootDevice::Bios,
            BootDevice::Safe,
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_is_not_an_argument() {
        let mut c = IpmiConfig::new("127.0.0.1");
        c.username = Some("admin".into());
        c.password = Some(Secret::new("s3cr3t-pw"));
        c.cipher_suite = Some(3);
        let client = IpmiClient::new(c);
        let args = client.args(Path::new("/tmp/pwfile"), &["chassis", "power", "status"]);
        let joined: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(
            !joined.iter().any(|a| a.contains("s3cr3t-pw")),
            "{joined:?}"
        );
        assert!(!joined.iter().any(|a| a == "-P" || a == "-E"), "{joined:?}");
        let f = joined.iter().position(|a| a == "-f").unwrap();
        assert_eq!(joined[f + 1], "/tmp/pwfile");
        assert!(joined.windows(2).any(|w| w == ["-I", "lanplus"]));
        assert!(joined.windows(2).any(|w| w == ["-C", "3"]));
    }

    #[test]
    fn bootdev_options() {
        assert_eq!(
            bootdev_args(BootDevice::Pxe, true, None),
            ["chassis", "bootdev", "pxe", "options=persistent"]
        );
        assert_eq!(
            bootdev_args(BootDevice::Disk, false, None),
            ["chassis", "bootdev", "disk"]
        );
        assert_eq!(
            bootdev_args(BootDevice::Pxe, true, Some(BootMode::Uefi)),
            ["chassis", "bootdev", "pxe", "options=persistent,efiboot"]
        );
    }

    #[test]
    fn bootparam_parsing() {
        let out = " Boot Flags :\n   - Boot Flag Valid\n   - Options apply to all future boots\n   - Boot Device Selector : Force Boot from default Hard-Drive\n";
        assert_eq!(
            parse_bootparam(out),
            BootDeviceInfo {
                device: Some(BootDevice::Disk),
                persistent: Some(true)
            }
        );
        let out = "   - Options apply to only next boot\n   - Boot Device Selector : Force PXE\n";
        assert_eq!(
            parse_bootparam(out),
            BootDeviceInfo {
                device: Some(BootDevice::Pxe),
                persistent: Some(false)
            }
        );
    }

    #[test]
    fn password_file_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let f = PasswordFile::create(Some(&Secret::new("pw"))).unwrap();
        let path = f.0.clone();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(std::fs::read(&path).unwrap(), b"pw");
        drop(f);
        assert!(!path.exists());
    }
}
