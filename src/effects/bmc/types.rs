//! Power states, power actions, boot devices and boot modes with Ironic's
//! names (`ironic.common.states`, `ironic.common.boot_devices`), so what an
//! operator types and what the API shows are the strings Ironic uses.

use std::fmt;

/// A power state as Ironic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerState {
    On,
    Off,
}

impl PowerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PowerState::On => "power on",
            PowerState::Off => "power off",
        }
    }
}

impl fmt::Display for PowerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A power change, with the target names of Ironic's
/// `PUT /v1/nodes/{n}/states/power`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    PowerOn,
    PowerOff,
    SoftPowerOff,
    Reboot,
    SoftReboot,
}

impl PowerAction {
    /// Ironic's name of the action (`power on`, `rebooting`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PowerAction::PowerOn => "power on",
            PowerAction::PowerOff => "power off",
            PowerAction::SoftPowerOff => "soft power off",
            PowerAction::Reboot => "rebooting",
            PowerAction::SoftReboot => "soft rebooting",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "power on" => PowerAction::PowerOn,
            "power off" => PowerAction::PowerOff,
            "soft power off" => PowerAction::SoftPowerOff,
            "rebooting" => PowerAction::Reboot,
            "soft rebooting" => PowerAction::SoftReboot,
            _ => return None,
        })
    }

    /// The state the node is in once the BMC has applied the action.
    pub fn target(self) -> PowerState {
        match self {
            PowerAction::PowerOn | PowerAction::Reboot | PowerAction::SoftReboot => PowerState::On,
            PowerAction::PowerOff | PowerAction::SoftPowerOff => PowerState::Off,
        }
    }
}

impl fmt::Display for PowerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A boot device as Ironic names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    Pxe,
    Disk,
    Cdrom,
    Bios,
    Safe,
}

impl BootDevice {
    pub fn as_str(self) -> &'static str {
        match self {
            BootDevice::Pxe => "pxe",
            BootDevice::Disk => "disk",
            BootDevice::Cdrom => "cdrom",
            BootDevice::Bios => "bios",
            BootDevice::Safe => "safe",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pxe" => BootDevice::Pxe,
            "disk" => BootDevice::Disk,
            "cdrom" => BootDevice::Cdrom,
            "bios" => BootDevice::Bios,
            "safe" => BootDevice::Safe,
            _ => return None,
        })
    }
}

impl fmt::Display for BootDevice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `GET …/management/boot_device` shows: `boot_device` (`None` when the
/// BMC has no override) and `persistent` (`None` when the BMC does not say).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootDeviceInfo {
    pub device: Option<BootDevice>,
    pub persistent: Option<bool>,
}

/// Boot mode, Ironic's `bios` / `uefi`: the domain's type (which reads
/// the mode a node asks for).
pub use crate::domain::boot_mode::BootMode;

/// A password or token: readable only through [`Secret::expose`], printed as
/// `******` by `Debug` and `Display`, so a client's configuration can be
/// logged or put in an error without leaking it.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("******")
    }
}
