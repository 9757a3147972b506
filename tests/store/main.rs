//! The store, the engine and the projector on every backend (memory, SQLite,
//! PostgreSQL): the log's guarantees, the feed's order, schema evolution,
//! events no reader can decode, replays equal to the live models, secrets
//! at rest.
//!
//! Needs PostgreSQL (`IRONLEDGER_TEST_DATABASE_URL`); no rig.

#[path = "../common/mod.rs"]
mod common;

mod engine_suite;
mod event_upcasting;
mod poison_events;
mod rebuild_equals_live;
mod secrets_at_rest;
mod store_suite;
