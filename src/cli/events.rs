//! `ironledger events`: the event log, filtered, optionally followed live.

use super::anyhow_free::Result;
use super::common::{self, Output};
use super::GlobalArgs;
use crate::store::{LogStore, RecordedEvent};
use chrono::{DateTime, Utc};
use clap::Args;
use std::io::Write;
use std::time::Duration;

/// List the event log (every change ever recorded), oldest first.
///
/// Filters combine (all must match). Times are the moments the store recorded
/// the events (`recorded_at`, UTC); positions are the feed's global order.
/// Payloads are shown as stored: secrets are encrypted.
///
/// Examples:
///
///   ironledger events --node node-0 --type DeployRequested,Deployed
///
///   ironledger events --since '2026-11-25 10:00' --output json | jq .event_type
///
///   ironledger events --follow          # then watch new events arrive
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct EventsArgs {
    /// Only this node's events (UUID or name, also of a deleted node).
    #[arg(long, value_name = "NODE")]
    pub node: Option<String>,
    /// Only events of this aggregate type (`Node`, `Volume`).
    #[arg(long, value_name = "TYPE")]
    pub aggregate_type: Option<String>,
    /// Only events of this aggregate id (a node UUID, a Cinder volume id).
    #[arg(long, value_name = "ID")]
    pub aggregate_id: Option<String>,
    /// Only these event types (repeat, or separate with commas), e.g.
    /// `--type TargetCreated,TargetDeleted`.
    #[arg(long = "type", value_name = "EVENT", value_delimiter = ',')]
    pub event_types: Vec<String>,
    /// Only events recorded at or after this time (RFC 3339, or
    /// `YYYY-MM-DD[ HH:MM[:SS]]` in UTC).
    #[arg(long, value_name = "TIME", value_parser = common::parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only events recorded at or before this time.
    #[arg(long, value_name = "TIME", value_parser = common::parse_time)]
    pub until: Option<DateTime<Utc>>,
    /// Only events at or after this position.
    #[arg(long, value_name = "POSITION")]
    pub from: Option<u64>,
    /// Only events at or before this position.
    #[arg(long, value_name = "POSITION")]
    pub to: Option<u64>,
    /// Keep running and print new events as they are recorded (Ctrl-C stops;
    /// so does reaching --to).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// How to print: `table`, or `json` (one event per line, every field).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
    /// How often --follow looks for new events, in milliseconds.
    #[arg(long, default_value = "200", value_name = "MS")]
    pub poll_ms: u64,
}

struct Filter {
    aggregate_type: Option<String>,
    aggregate_id: Option<String>,
    types: Vec<String>,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
}

impl Filter {
    fn matches(&self, e: &RecordedEvent) -> bool {
        self.aggregate_type
            .as_ref()
            .is_none_or(|t| &e.aggregate_type == t)
            && self
                .aggregate_id
                .as_ref()
                .is_none_or(|i| &e.aggregate_id == i)
            && (self.types.is_empty() || self.types.contains(&e.event_type))
            && self.since.is_none_or(|t| e.recorded_at >= t)
            && self.until.is_none_or(|t| e.recorded_at <= t)
    }
}

/// A one-line description of an event.
pub fn summary(e: &RecordedEvent) -> String {
    match common::node_event(e) {
        Some(ev) => crate::projections::describe_event(&ev).2,
        None => {
            let body = e
                .payload
                .as_object()
                .and_then(|m| m.values().next())
                .cloned()
                .unwrap_or_else(|| e.payload.clone());
            body.to_string()
        }
    }
}

fn row(e: &RecordedEvent) -> Vec<String> {
    vec![
        e.position.to_string(),
        common::time_text(&e.recorded_at),
        format!("{} {}", e.aggregate_type, e.aggregate_id),
        e.sequence.to_string(),
        format!("{} {}", e.event_type, e.event_version),
        common::actor(e),
        summary(e),
    ]
}

const HEADER: &[&str] = &[
    "POSITION",
    "RECORDED_AT",
    "AGGREGATE",
    "SEQ",
    "EVENT",
    "ACTOR",
    "SUMMARY",
];

fn print(output: Output, events: &[RecordedEvent], header: bool) -> Result<()> {
    match output {
        Output::Json => {
            let mut out = std::io::stdout().lock();
            for e in events {
                serde_json::to_writer(&mut out, e)?;
                out.write_all(b"\n")?;
            }
            out.flush()?;
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = events.iter().map(row).collect();
            if header {
                common::print_table(HEADER, &rows);
            } else {
                // Following: one line per event, tab-separated (widths unknown).
                for r in rows {
                    println!("{}", r.join("\t"));
                }
            }
            std::io::stdout().flush()?;
        }
    }
    Ok(())
}

pub async fn run(global: &GlobalArgs, args: EventsArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    let mut filter = Filter {
        aggregate_type: args.aggregate_type.clone(),
        aggregate_id: args.aggregate_id.clone(),
        types: args.event_types.clone(),
        since: args.since,
        until: args.until,
    };
    if let Some(node) = &args.node {
        filter.aggregate_id = Some(common::resolve_node(store.as_ref(), node).await?);
        filter.aggregate_type.get_or_insert_with(|| "Node".into());
    }
    let from = args.from.unwrap_or(1).max(1);
    let to = args.to.unwrap_or(u64::MAX);
    store.sequence().await?;

    // What the log holds now.
    let mut found = vec![];
    let mut after = from - 1;
    match (&filter.aggregate_type, &filter.aggregate_id) {
        // One aggregate: read its stream rather than the whole feed.
        (Some(t), Some(id)) => {
            // The head first: an event numbered after it is left to `--follow`
            // (read the other way round, one numbered in between was lost).
            let head = store.head().await?;
            after = after.max(head);
            found = store.load_recorded(t, id).await?;
            found.retain(|e| {
                e.position >= from && e.position <= to && e.position <= head && filter.matches(e)
            });
        }
        _ => loop {
            let page = store.read_feed(after, 1000).await?;
            let Some(last) = page.last().map(|e| e.position) else {
                break;
            };
            after = last;
            found.extend(
                page.into_iter()
                    .filter(|e| e.position <= to && filter.matches(e)),
            );
            if last >= to {
                break;
            }
        },
    }
    found.sort_by_key(|e| e.position);
    print(args.output, &found, true)?;
    if !args.follow {
        return Ok(());
    }
    follow(store.as_ref(), &filter, after, to, &args).await
}

async fn follow(
    store: &dyn LogStore,
    filter: &Filter,
    mut after: u64,
    to: u64,
    args: &EventsArgs,
) -> Result<()> {
    let pause = Duration::from_millis(args.poll_ms.max(10));
    while after < to {
        store.sequence().await?;
        let page = store.read_feed(after, 1000).await?;
        match page.last() {
            Some(last) => after = last.position,
            None => {
                tokio::time::sleep(pause).await;
                continue;
            }
        }
        let new: Vec<RecordedEvent> = page
            .into_iter()
            .filter(|e| e.position <= to && filter.matches(e))
            .collect();
        print(args.output, &new, false)?;
    }
    Ok(())
}
