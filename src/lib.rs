//! ironledger: an event-sourced engine for bare-metal nodes that boot from
//! remote (iSCSI) volumes, speaking OpenStack Ironic's v1 API.
//!
//! Layers (dependencies point inward):
//! - [`domain`]: aggregates, commands, events, rules. Pure: no I/O.
//! - [`store`]: event store backends (memory, SQLite, PostgreSQL) and the ordered feed.
//! - [`projections`]: read models built from the feed (lives in `projections/`).
//! - [`engine`]: wires the aggregates to a store, retries conflicts, waits for
//!   projections so that a command's effects are readable when it returns;
//!   [`locks`] serialises the writers of one aggregate inside the process.
//! - [`secrets`]: secrets at rest (per-node data keys under a master key).
//! - [`config`], [`telemetry`] (logs), [`metrics`] (Prometheus), [`cli`],
//!   [`http`]: the runnable service.

pub mod api;
pub mod cli;
pub mod config;
pub mod crash_points;
pub mod domain;
pub mod effects;
pub mod engine;
pub mod http;
pub mod locks;
pub mod metrics;
#[path = "../projections/mod.rs"]
pub mod projections;
pub mod secrets;
pub mod store;
pub mod telemetry;
