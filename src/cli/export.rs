//! `ironledger export`: the whole log as JSON lines.

use super::anyhow_free::Result;
use super::common;
use super::GlobalArgs;
use crate::secrets::DATA_KEY_SCOPE;
use crate::store::RecordedEvent;
use clap::Args;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

/// The format's name and version, in the header line.
pub const FORMAT: &str = "ironledger-log";
pub const FORMAT_VERSION: u32 = 1;

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    /// First line.
    Header {
        format: String,
        version: u32,
        exported_at: String,
        /// The store it came from (`sqlite`, `postgres`, `memory`).
        source: String,
        /// The last position exported.
        head: u64,
    },
    /// One event, as stored: position, aggregate, sequence, type, version,
    /// payload (secrets encrypted), metadata, time of recording.
    Event(RecordedEvent),
    /// A node's data key, wrapped (encrypted) by the master key: the
    /// importing side needs the same master key to read the secrets.
    DataKey { owner: String, wrapped: String },
    /// Last line: what a complete file holds.
    End { events: u64, data_keys: u64 },
}

/// Export the event log as JSON lines, to move it to another store.
///
/// The first line is a header, then one line per event in position order
/// (`"kind": "event"`, with position, aggregate type and id, sequence, event
/// type and version, payload, metadata and recorded_at), then the nodes' data
/// keys, wrapped by the master key (`"kind": "data_key"`), and an end line
/// with the counts. Secrets stay encrypted: the file holds none in clear.
/// `ironledger import` reads it into a PostgreSQL or SQLite store.
///
/// Examples:
///
///   ironledger --database-url postgresql://postgres@db/ironledger export -o log.jsonl
///
///   ironledger export | gzip > log.jsonl.gz
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn put(out: &mut dyn Write, line: &Line) -> Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")?;
    Ok(())
}

pub async fn run(global: &GlobalArgs, args: ExportArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    // The data keys are read before the head and again after the events.
    // Those still there at the end belong to live nodes. One gone meanwhile
    // was destroyed by a node's deletion: if that deletion is past the
    // export's head, the export still holds the node's events and needs the
    // key; if it is within the export, the key stays destroyed
    // (crypto-shredding holds through exports). A deletion that destroyed a
    // key read at `keys_before` is numbered after `head0`.
    store.sequence().await?;
    let head0 = store.head().await?;
    let keys_before = store.claims_in_scope(DATA_KEY_SCOPE, None).await?;
    store.sequence().await?;
    let head = store.head().await?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => {
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            Box::new(std::io::BufWriter::new(options.open(path)?))
        }
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    put(
        &mut out,
        &Line::Header {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            exported_at: common::time_text(&chrono::Utc::now()),
            source: store.backend().into(),
            head,
        },
    )?;
    let bar = common::event_bar(head, "export");
    let started = Instant::now();
    let mut after = 0;
    let mut events = 0u64;
    // Nodes deleted within the export after `head0`.
    let mut deleted_in_window = std::collections::HashSet::new();
    while after < head {
        let page = store.read_feed(after, 1000).await?;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        for e in page.into_iter().filter(|e| e.position <= head) {
            if let Some(why) = e.unreadable() {
                // A backup that silently lost an event is worse than none.
                return Err(format!(
                    "the event at position {} ({} {} #{}) cannot be read from the database ({why}); \
                     nothing past it can be exported",
                    e.position, e.aggregate_type, e.aggregate_id, e.sequence
                )
                .into());
            }
            if e.event_type == "NodeDeleted" && e.position > head0 {
                deleted_in_window.insert(e.aggregate_id.clone());
            }
            put(&mut out, &Line::Event(e))?;
            events += 1;
        }
        after = last;
        bar.set_position(after.min(head));
    }
    let mut keys = store.claims_in_scope(DATA_KEY_SCOPE, None).await?;
    for (wrapped, owner) in keys_before {
        let destroyed = !keys.iter().any(|(w, _)| *w == wrapped);
        if destroyed && !deleted_in_window.contains(&owner) {
            keys.push((wrapped, owner));
        }
    }
    for (wrapped, owner) in &keys {
        put(
            &mut out,
            &Line::DataKey {
                owner: owner.clone(),
                wrapped: wrapped.clone(),
            },
        )?;
    }
    put(
        &mut out,
        &Line::End {
            events,
            data_keys: keys.len() as u64,
        },
    )?;
    out.flush()?;
    bar.finish_and_clear();
    eprintln!(
        "exported {} and {} data keys from the {} store{}",
        common::rate(events, started.elapsed()),
        keys.len(),
        store.backend(),
        args.output
            .as_ref()
            .map(|p| format!(" to {}", p.display()))
            .unwrap_or_default()
    );
    Ok(())
}
