//! ironledger: an event-sourced engine for bare-metal nodes that boot from
//! remote (iSCSI) volumes, speaking OpenStack Ironic's v1 API.
//!
//! Layers (dependencies point inward), every top-level module with its job:
//! - [`domain`]: aggregates, commands, events, rules. Pure: no I/O. Each of
//!   Ironic's rules has one home here: value types that parse
//!   ([`domain::node_name`], [`domain::mac_address`]), Ironic's string
//!   conventions ([`domain::oslo`]); [`domain::interface_validation`] is what
//!   `GET /v1/nodes/{node}/validate` answers per interface.
//! - [`store`]: event store backends (memory, SQLite, PostgreSQL) and the ordered
//!   feed; PostgreSQL's backend is a folder of one module a job, its
//!   [`store::postgres::sequencer`] the gap-free feed and why it is right;
//!   what both SQL backends do alike is written once (`store/shared.rs`).
//! - [`projections`]: read models built from the feed (lives in `projections/`).
//! - [`engine`]: wires the aggregates to a store, retries conflicts, waits for
//!   projections so that a command's effects are readable when it returns;
//!   runs the workflows that span two nodes (moving a record, `engine/moves.rs`).
//! - [`locks`]: serialises the writers of one aggregate inside the process.
//! - [`secrets`]: secrets at rest (per-node data keys under a master key).
//! - [`effects`]: the side effects the process manager drives (iPXE boot
//!   scripts, Cinder, the BMC clients), the process manager itself, the
//!   power-state sync and the plan of a deploy.
//! - [`api`]: the Ironic-compatible v1 API: the router (`api/mod.rs`), the
//!   state every handler shares and the caller (`api/state.rs`), one module
//!   a resource.
//! - [`http`]: the HTTP service: the API and, beside it, health, metrics, the
//!   event feed, the timeline pages and the boot files.
//! - [`cli`]: the `ironledger` command line.
//! - [`config`]: configuration (`ironic.conf` style, environment, flags): one
//!   table of every option (`config/options.rs`).
//! - [`crash_points`]: where the crash-safety tests kill the server (only with
//!   the `test-crash-points` feature, which `cargo test` builds turn on).
//! - [`telemetry`]: logging (spans, text or JSON lines).
//! - [`metrics`]: the process's Prometheus figures and the store's readings.

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
