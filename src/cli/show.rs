//! `ironledger show NODE [--as-of TIME|POSITION]`: a node as it was.

use super::anyhow_free::Result;
use super::common::{self, Moment, Output};
use super::GlobalArgs;
use crate::api::masking::mask;
use crate::domain::Node;
use clap::Args;
use cqrs_es::Aggregate;
use serde_json::{json, Value};

/// Show a node (ports, connectors, targets) as it was at a position or time.
///
/// The node is computed by replaying its events up to that moment: a
/// position of the feed (digits, as `ironledger events` prints them) or a
/// time (RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` in UTC); without --as-of, the
/// node as it is now. Secrets are masked.
///
/// Examples:
///
///   ironledger show node-0 --as-of 42
///
///   ironledger show node-0 --as-of '2026-11-25 10:15:00' --output json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ShowArgs {
    /// The node: UUID or name (a deleted node's name works too).
    pub node: String,
    /// The moment: a position or a time (default: now).
    #[arg(long, value_name = "TIME|POSITION", value_parser = common::parse_moment)]
    pub as_of: Option<Moment>,
    /// How to print: `table` (sections for people) or `json` (one object).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
}

/// The node (masked) as JSON, with where in the log it stands.
pub fn node_json(node: &Node, last: Option<&crate::store::RecordedEvent>) -> Value {
    let mut v = mask(&serde_json::to_value(node).expect("a node serializes"));
    if let Some(e) = last {
        v["as_of"] = json!({
            "position": e.position,
            "recorded_at": common::time_text(&e.recorded_at),
            "last_event": e.event_type,
            "actor": common::actor(e),
        });
    }
    v
}

fn compact(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

pub async fn run(global: &GlobalArgs, args: ShowArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    let id = common::resolve_node(store.as_ref(), &args.node).await?;
    store.sequence().await?;
    let events = store.load_recorded(Node::TYPE, &id).await?;
    let (node, last) =
        common::fold_node(&id, &events, |e| args.as_of.is_none_or(|m| m.includes(e)))?;
    let Some(last) = last else {
        return Err(match args.as_of {
            Some(m) => format!("node {id} did not exist yet at {m}").into(),
            None => format!("node {id} has no events").into(),
        });
    };
    let v = node_json(&node, Some(last));
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let name = node
        .name
        .clone()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let moment = args
        .as_of
        .map(|m| format!("as of {m}"))
        .unwrap_or_else(|| "now".into());
    println!("Node {id}{name}, {moment}");
    println!(
        "  last event:      #{} {} at {} by {}",
        last.position,
        last.event_type,
        common::time_text(&last.recorded_at),
        common::actor(last)
    );
    if !node.exists {
        println!("  (deleted)");
        return Ok(());
    }
    let field = |k: &str| compact(&v[k]);
    println!("  provision state: {}", common::state_with_target(&node));
    println!(
        "  power state:     {}",
        node.power_state.as_deref().unwrap_or("None")
    );
    println!(
        "  maintenance:     {}{}",
        node.maintenance,
        node.maintenance_reason
            .as_ref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    if let Some(e) = &node.last_error {
        println!("  last error:      {e}");
    }
    println!("  driver:          {}", node.driver);
    let interfaces: Vec<String> = node
        .interfaces
        .iter()
        .map(|(k, i)| format!("{k}={i}"))
        .collect();
    println!("  interfaces:      {}", interfaces.join(" "));
    println!(
        "  instance uuid:   {}",
        node.instance_uuid.as_deref().unwrap_or("None")
    );
    println!("  properties:      {}", field("properties"));
    println!("  instance_info:   {}", field("instance_info"));
    println!("  driver_info:     {}", field("driver_info"));
    println!("  internal info:   {}", field("driver_internal_info"));
    println!("  extra:           {}", field("extra"));
    if !node.attached_volumes.is_empty() {
        let vols: Vec<&str> = node.attached_volumes.iter().map(String::as_str).collect();
        println!("  attached volumes: {}", vols.join(", "));
    }
    if let Some(b) = &node.boot_config {
        println!("  boot config:     {}", compact(&serde_json::to_value(b)?));
    }
    println!("Ports ({}):", node.ports.len());
    if !node.ports.is_empty() {
        common::print_table(
            &["  UUID", "ADDRESS", "PXE"],
            &node
                .ports
                .iter()
                .map(|p| {
                    vec![
                        format!("  {}", p.uuid),
                        p.address.clone(),
                        p.pxe_enabled.to_string(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    println!("Volume connectors ({}):", node.connectors.len());
    if !node.connectors.is_empty() {
        common::print_table(
            &["  UUID", "TYPE", "CONNECTOR_ID"],
            &node
                .connectors
                .iter()
                .map(|c| {
                    vec![
                        format!("  {}", c.uuid),
                        c.kind.clone(),
                        c.connector_id.clone(),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    println!("Volume targets ({}):", node.targets.len());
    if !node.targets.is_empty() {
        let mut targets = node.targets.clone();
        targets.sort_by_key(|t| t.boot_index);
        common::print_table(
            &["  UUID", "BOOT_INDEX", "TYPE", "VOLUME_ID", "PROPERTIES"],
            &targets
                .iter()
                .map(|t| {
                    vec![
                        format!("  {}", t.uuid),
                        t.boot_index.to_string(),
                        t.volume_type.clone(),
                        t.volume_id.clone(),
                        compact(&mask(&Value::Object(t.properties.clone()))),
                    ]
                })
                .collect::<Vec<_>>(),
        );
    }
    Ok(())
}
