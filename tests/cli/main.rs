//! The binary as operators run it: `ironledger serve` and its flags, the
//! audit and replay commands, and operators' own client (python-ironicclient's
//! `baremetal` CLI) against `ironledger serve`.
//!
//! Needs PostgreSQL, the client virtualenv (`IRONLEDGER_CLIENT_VENV`, built
//! on first use) and, for `cli_compat`'s deploy of a cinder node, the Cinder
//! rig (`IRONLEDGER_TEST_CINDER_URL`).

#[path = "../common/mod.rs"]
mod common;

mod audit_cli;
mod cli_compat;
mod cli_serve;
mod history_client;
