//! The domain: aggregates, commands, events and rules. Pure: nothing here does
//! I/O, so every rule is tested with cqrs-es's `TestFramework` alone.
//!
//! - [`node`]: the `Node` aggregate (lifecycle, interfaces, ports, volume
//!   connectors and targets).
//! - [`volume`]: the `Volume` aggregate (which nodes a Cinder volume is attached to).
//! - [`claims`]: uniqueness across nodes, as claims the store writes atomically.
//! - [`state`]: Ironic's provisioning state machine.
//! - [`secrets`]: which event values are secrets (encrypted at rest, masked by the API).
//! - [`upcast`]: how events stored in older schema versions are read.
//! - [`limits`]: how deep a JSON value may nest, and no NUL in strings.
//! - [`bmc_access`]: a node's `driver_info` read once into how its BMC is reached.
//! - [`boot_mode`]: which boot mode a deploy asks the BMC for.
//! - [`node_name`], [`mac_address`]: value types that parse a node's name and
//!   a port's MAC address, the one home of those rules.
//! - [`oslo`]: Ironic's string conventions (boolean words, Python truthiness).
//! - [`interface_validation`]: what `GET /v1/nodes/{node}/validate` answers per
//!   interface, and the deploy refusal built on the same checks.

pub mod bmc_access;
pub mod boot_mode;
pub mod boot_plan;
pub mod capabilities;
pub mod claims;
pub mod error;
pub mod hardware;
pub mod interface_validation;
pub mod limits;
pub mod mac_address;
pub mod node;
pub mod node_name;
pub mod oslo;
pub mod patch;
pub mod secrets;
pub mod state;
pub mod upcast;
pub mod volume;

pub use error::DomainError;
pub use node::{commands::NodeCommand, events::NodeEvent, Node, NodeServices};
pub use volume::{Volume, VolumeCommand, VolumeEvent};
