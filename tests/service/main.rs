//! ironledger run as a service: crash safety of deploy and undeploy with the
//! real binary SIGKILLed at every step and two servers sharing one
//! PostgreSQL, and what its operators watch (metrics, logs, the feed,
//! idempotent retries, the timeline page in a real browser), and records
//! moving between nodes across a crash.
//!
//! Needs PostgreSQL, the Cinder rig, the BMC rigs and Chromium; `.ci/run`
//! provides them.

#[path = "../common/mod.rs"]
mod common;

mod crash_safety;
mod operations;
mod record_moves;
