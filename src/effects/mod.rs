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

/// Kills this process when `IRONLEDGER_TEST_CRASH_AT` names the point reached.
/// The crash-safety tests use it to SIGKILL the server at every step in turn.
pub(crate) fn crash_point(name: &str) {
    if std::env::var("IRONLEDGER_TEST_CRASH_AT").ok().as_deref() == Some(name) {
        tracing::warn!(
            point = name,
            "test crash point reached: killing this process"
        );
        let _ = std::process::Command::new("kill")
            .args(["-9", &std::process::id().to_string()])
            .status();
        std::process::abort();
    }
}
