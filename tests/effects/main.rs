//! The side effects against the project's rigs: the BMC clients against
//! real BMC emulators (`tests/rigs/bmc/`), the Cinder client against the real
//! Cinder (`tests/rigs/cinder/`), and deploys and undeploys through the
//! process manager with both.
//!
//! Needs the BMC rigs' tools, the Cinder rig (`IRONLEDGER_TEST_CINDER_URL`)
//! and the client virtualenv; `.ci/run` provides them.

#[path = "../common/mod.rs"]
mod common;

mod bmc;
mod bmc_deploy;
mod cinder_real;
mod deploy;
