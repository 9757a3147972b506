//! The ordered feed's gap-free numbering on PostgreSQL under the trap it
//! exists for: transactions held open on purpose (one inserts first and
//! commits last), rollbacks, competing sequencers.
//!
//! A binary of its own: PostgreSQL numbers an event only once every older
//! transaction in the *cluster* has ended, so the transactions these tests
//! hold open would delay the numbering — and the projections — of every
//! PostgreSQL test running beside them (correct, but a test that reads right
//! after one catch-up round would see the event not yet applied).
//!
//! Needs PostgreSQL (`IRONLEDGER_TEST_DATABASE_URL`); no rig.

#[path = "../common/mod.rs"]
mod common;

mod feed_gap;
