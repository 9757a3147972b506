//! `ironledger history NODE`: one node's life, event by event.

use super::anyhow_free::Result;
use super::common::{self, Output};
use super::GlobalArgs;
use crate::domain::Node;
use clap::Args;
use cqrs_es::Aggregate;
use serde_json::json;

/// Show a node's timeline: time, actor, event, provision state before → after.
///
/// Read straight from the event log, so it is complete (nothing is ever
/// pruned) and works for deleted nodes too. Failures are marked ERROR.
///
/// Examples:
///
///   ironledger history node-0
///
///   ironledger history 1be26c0b-03f2-4d2e-ae87-c02d7f33c123 --output json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct HistoryArgs {
    /// The node: UUID or name (a deleted node's name works too).
    pub node: String,
    /// How to print: `table`, or `json` (one entry per line).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
}

pub async fn run(global: &GlobalArgs, args: HistoryArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    let id = common::resolve_node(store.as_ref(), &args.node).await?;
    store.sequence().await?;
    let events = store.load_recorded(Node::TYPE, &id).await?;
    if events.is_empty() {
        return Err(format!("node {id} has no events").into());
    }
    let mut node = Node::default();
    let mut name = None;
    let mut rows = vec![];
    for e in &events {
        let before = common::state_text(&node);
        let ev = common::node_event(e)
            .ok_or_else(|| format!("cannot decode event {} of node {id}", e.position))?;
        let (kind, severity, text) = crate::projections::describe_event(&ev);
        node.apply(ev);
        name = node.name.clone().or(name);
        let after = common::state_text(&node);
        let reason = e.metadata.get("reason").and_then(|r| r.as_str());
        match args.output {
            Output::Json => println!(
                "{}",
                json!({
                    "position": e.position,
                    "sequence": e.sequence,
                    "recorded_at": common::time_text(&e.recorded_at),
                    "actor": common::actor(e),
                    "reason": reason,
                    "request_id": e.metadata.get("request_id"),
                    "event": e.event_type,
                    "event_version": e.event_version,
                    "event_type": kind,
                    "severity": severity,
                    "description": text,
                    "state_before": before,
                    "state_after": after,
                })
            ),
            Output::Table => {
                let mut what = text;
                if severity == "ERROR" {
                    what = format!("ERROR: {what}");
                }
                if let Some(r) = reason.filter(|r| !what.contains(r)) {
                    what = format!("{what} (reason: {r})");
                }
                let state = if before == after {
                    after
                } else {
                    format!("{before} → {after}")
                };
                rows.push(vec![
                    common::time_text(&e.recorded_at),
                    e.position.to_string(),
                    common::actor(e),
                    e.event_type.clone(),
                    state,
                    what,
                ]);
            }
        }
    }
    if args.output == Output::Table {
        let name = name.map(|n| format!(" ({n})")).unwrap_or_default();
        println!(
            "Node {id}{name}: {} events{}",
            events.len(),
            if node.exists { "" } else { ", deleted" }
        );
        common::print_table(
            &["TIME", "POS", "ACTOR", "EVENT", "STATE", "DESCRIPTION"],
            &rows,
        );
    }
    Ok(())
}
