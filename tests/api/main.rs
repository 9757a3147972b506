//! The API over real HTTP: the endpoints in-process (`common::api`), the
//! real `ironledger serve` at its front door, the OpenAPI document and its
//! fuzzer (schemathesis, when its virtualenv is there), and the recorded
//! answers of the real Ironic.
//!
//! Needs PostgreSQL (`IRONLEDGER_TEST_DATABASE_URL`); no rig.

#[path = "../common/mod.rs"]
mod common;

mod api_hardware;
mod api_inputs;
mod api_nodes;
mod api_ports;
mod api_volume;
mod differential;
mod front_door;
mod openapi;
