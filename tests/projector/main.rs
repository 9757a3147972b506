//! The projector on every backend: each event applied to each model exactly
//! once, by several processes, at different checkpoints, through swaps and
//! drops; and, on PostgreSQL, commands that answer at once while an older
//! transaction holds back the feed's numbering.
//!
//! A binary of its own, for the same reason as `feed_gap`: the transactions
//! it holds open delay PostgreSQL's numbering for every test beside it.
//!
//! Needs PostgreSQL (`IRONLEDGER_TEST_DATABASE_URL`); no rig.

#[path = "../common/mod.rs"]
mod common;

mod projector_suite;
