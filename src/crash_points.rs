//! Named points where the crash-safety tests kill the server.
//!
//! Every multi-step job (deploy, undeploy, a power change, a record moving
//! between nodes) is written so that a process stopping between any two of
//! its steps loses nothing: the next process finishes it from the log. The
//! tests prove it by killing `ironledger serve` at each named point in turn
//! (`IRONLEDGER_TEST_CRASH_AT=<point>`) and checking the job still ends
//! right. The points exist only in builds with the `test-crash-points`
//! feature, which `cargo test` turns on (the crate's dev-dependency on
//! itself) and release builds never have: there [`crash_point`] is empty.

/// Kills this process when `IRONLEDGER_TEST_CRASH_AT` names `name`.
#[cfg(feature = "test-crash-points")]
pub fn crash_point(name: &str) {
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

/// Without the `test-crash-points` feature: no crash point.
#[cfg(not(feature = "test-crash-points"))]
#[inline(always)]
pub fn crash_point(_name: &str) {}
