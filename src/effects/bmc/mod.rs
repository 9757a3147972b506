//! Baseboard management controllers: the layer power requests, the deploy and
//! undeploy steps, the management endpoints and the power-state sync use to
//! power a node and choose what it boots from. Two clients, one per protocol Ironic's
//! `redfish` and `ipmi` hardware types speak — [`redfish::RedfishClient`]
//! (HTTP, over the project's reqwest) and [`ipmi::IpmiClient`] (Debian's
//! `ipmitool`, the program Ironic itself runs) — behind one trait, [`Bmc`],
//! with Ironic's names for power states and boot devices, so the saga and the
//! API never see a protocol.
//!
//! [`access`] builds a client from a node's `driver_info` as the domain
//! reads it (`domain::bmc_access`).
//!
//! BMCs apply a reset asynchronously: [`poll`] waits for the state a power
//! action aims at. Errors ([`BmcError`]) name the BMC action that failed and
//! whether retrying can help; they never carry a password (the clients hold
//! passwords in [`Secret`], whose `Debug` and `Display` print `******`).

pub mod access;
pub mod error;
pub mod ipmi;
pub mod poll;
pub mod redfish;
pub mod types;

pub use error::{BmcError, BmcErrorKind};
pub use types::{BootDevice, BootDeviceInfo, BootMode, PowerAction, PowerState, Secret};

/// What a deploy needs of a BMC. Every method is one round of calls to the
/// BMC; none waits for a power change to complete (see [`poll`]).
#[async_trait::async_trait]
pub trait Bmc: Send + Sync {
    /// The power state the BMC reports now.
    async fn power_state(&self) -> Result<PowerState, BmcError>;
    /// Asks the BMC for a power change; it is applied asynchronously.
    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError>;
    /// The boot device the BMC will use next, and whether it is persistent
    /// (`None` where the BMC does not say).
    async fn boot_device(&self) -> Result<BootDeviceInfo, BmcError>;
    /// Sets the boot device, for every boot (`persistent`) or the next one,
    /// and the boot mode when `mode` asks for one.
    async fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
        mode: Option<BootMode>,
    ) -> Result<(), BmcError>;
    /// The boot devices this BMC accepts.
    async fn supported_boot_devices(&self) -> Result<Vec<BootDevice>, BmcError>;
}

/// A client whose every call is counted and timed in `/metrics`
/// (`ironledger_external_calls{service="redfish"|"ipmi",action,outcome}`).
pub struct Metered<B> {
    pub service: &'static str,
    pub inner: B,
}

impl<B> Metered<B> {
    async fn timed<T>(
        &self,
        action: &str,
        call: impl std::future::Future<Output = Result<T, BmcError>>,
    ) -> Result<T, BmcError> {
        let start = std::time::Instant::now();
        let result = call.await;
        crate::metrics::metrics().call(self.service, action, result.is_ok(), start.elapsed());
        result
    }
}

#[async_trait::async_trait]
impl<B: Bmc> Bmc for Metered<B> {
    async fn power_state(&self) -> Result<PowerState, BmcError> {
        self.timed("power_state", self.inner.power_state()).await
    }
    async fn set_power(&self, action: PowerAction) -> Result<(), BmcError> {
        self.timed("set_power", self.inner.set_power(action)).await
    }
    async fn boot_device(&self) -> Result<BootDeviceInfo, BmcError> {
        self.timed("boot_device", self.inner.boot_device()).await
    }
    async fn set_boot_device(
        &self,
        device: BootDevice,
        persistent: bool,
        mode: Option<BootMode>,
    ) -> Result<(), BmcError> {
        self.timed(
            "set_boot_device",
            self.inner.set_boot_device(device, persistent, mode),
        )
        .await
    }
    async fn supported_boot_devices(&self) -> Result<Vec<BootDevice>, BmcError> {
        self.timed(
            "supported_boot_devices",
            self.inner.supported_boot_devices(),
        )
        .await
    }
}
