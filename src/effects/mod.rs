//! Side effects the process manager drives: iPXE boot scripts (and the HTTP
//! root they live in), the Cinder block-storage client, the BMC clients, and
//! the plan of a deploy that shows them all before they happen.

pub mod bmc;
pub mod cinder;
pub mod deploy_plan;
pub mod http_root;
pub mod ipxe;
pub mod ipxe_syntax;
pub mod power_sync;
pub mod process_manager;
pub mod storage;

/// Now, as Ironic writes a time in `driver_internal_info`
/// (`last_power_state_change`): UTC, ISO 8601 without a zone, microseconds.
pub(crate) fn now_iso() -> String {
    chrono::Utc::now()
        .naive_utc()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string()
}

pub(crate) use crate::crash_points::crash_point;
