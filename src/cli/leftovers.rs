//! `ironledger leftovers`: what the process manager still has to undo.

use super::anyhow_free::Result;
use super::common::{self, Output};
use super::GlobalArgs;
use crate::domain::state::ProvisionState;
use crate::domain::Node;
use crate::store::LogStore;
use clap::Args;
use cqrs_es::Aggregate;
use serde_json::json;
use std::collections::BTreeSet;

/// List volumes Cinder may still hold, and iPXE scripts still written, for
/// nodes that are not deployed.
///
/// A failed deploy, an undeploy cut short or a node deleted while it held
/// volumes leaves these behind until `serve`'s process manager has undone
/// them (it retries while Cinder is away or refuses, pausing longer after each
/// failure). This shows what is pending, read from the event log: deleted
/// nodes included, which the API no longer shows. An empty list means nothing
/// is left over.
///
/// Examples:
///
///   ironledger leftovers
///
///   ironledger leftovers --output json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct LeftoversArgs {
    /// How to print: `table`, or `json` (one node per line).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
}

/// Every node that ever existed, from the feed (deleted ones included).
async fn all_nodes(store: &dyn LogStore) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    let mut after = 0;
    loop {
        let page = store.read_feed(after, 1000).await?;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        ids.extend(
            page.into_iter()
                .filter(|e| e.event_type == "NodeEnrolled")
                .map(|e| e.aggregate_id),
        );
        after = last;
    }
    Ok(ids)
}

pub async fn run(global: &GlobalArgs, args: LeftoversArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    store.sequence().await?;
    let mut rows = vec![];
    for id in all_nodes(store.as_ref()).await? {
        let mut node = Node::default();
        let mut last = None;
        for e in store.load_recorded(Node::TYPE, &id).await? {
            let ev = common::node_event(&e)
                .ok_or_else(|| format!("cannot decode event {} of node {id}", e.position))?;
            node.apply(ev);
            last = Some(e.recorded_at);
        }
        // A deployed (or deploying) node's volumes and script are in use, not
        // left over; an `error` node's are shown (the operator's to retry).
        let in_use = node.exists
            && matches!(
                node.state(),
                ProvisionState::Active | ProvisionState::Deploying | ProvisionState::Adopting
            );
        if !node.has_leftovers() || in_use {
            continue;
        }
        let state = if node.exists {
            node.state().as_str().to_string()
        } else {
            "deleted".to_string()
        };
        let volumes: Vec<&str> = node.attached_volumes.iter().map(String::as_str).collect();
        let script = node.boot_config.is_some();
        let since = last.as_ref().map(common::time_text).unwrap_or_default();
        match args.output {
            Output::Json => println!(
                "{}",
                json!({"node": id, "name": node.name, "state": state,
                       "volumes": volumes, "boot_config": script, "last_event_at": since})
            ),
            Output::Table => rows.push(vec![
                id.clone(),
                node.name.clone().unwrap_or_default(),
                state,
                volumes.join(","),
                if script { "yes" } else { "no" }.to_string(),
                since,
            ]),
        }
    }
    if args.output == Output::Table {
        if rows.is_empty() {
            println!("nothing is left over");
        } else {
            common::print_table(
                &["NODE", "NAME", "STATE", "VOLUMES", "SCRIPT", "LAST EVENT"],
                &rows,
            );
        }
    }
    Ok(())
}
