//! `ironledger import FILE`: load an exported log into a store.

use super::anyhow_free::Result;
use super::common;
use super::export::{Line, FORMAT, FORMAT_VERSION};
use super::GlobalArgs;
use crate::secrets::DATA_KEY_SCOPE;
use crate::store::{ClaimOp, LogStore, RecordedEvent};
use clap::Args;
use cqrs_es::persist::SerializedEvent;
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

/// Import a log written by `ironledger export` into the configured store.
///
/// The whole file is checked before anything is written: a header, events
/// whose positions are dense and in order (1, 2, 3, …), each aggregate's
/// sequences dense from 1 in position order, every event one ironledger can
/// read (a `Node` or `Volume` event whose payload is the event its type
/// names), and the end line (a truncated file is refused). The events keep their positions, metadata and times of
/// recording; uniqueness claims are recomputed and the nodes' data keys
/// restored (the secrets stay readable with the same master key).
///
/// The target store must be empty — or hold a prefix of this very log (an
/// interrupted import), in which case the import resumes after it. Import into
/// an idle database (no `serve` running on it). Afterwards the read models
/// are built (skip with --no-project; `serve` builds them on start).
///
/// Example (PostgreSQL to the embedded store):
///
///   ironledger --database-url postgresql://postgres@db/ironledger export -o log.jsonl
///
///   ironledger --database-url sqlite:////var/lib/ironledger/ironledger.db import log.jsonl
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ImportArgs {
    /// The export to read (`-` for standard input).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Events written per transaction.
    #[arg(long, default_value = "1000", value_name = "N")]
    pub batch_size: usize,
    /// Do not build the read models after importing.
    #[arg(long)]
    pub no_project: bool,
}

/// A checked export.
pub struct Checked {
    pub events: Vec<RecordedEvent>,
    pub data_keys: Vec<(String, String)>,
}

fn bad(line: usize, msg: impl std::fmt::Display) -> super::anyhow_free::Error {
    format!("line {line}: {msg}").into()
}

/// Whether ironledger can read the event: a log it cannot decode would be
/// imported, then stop every projection at that position (and its claims
/// would silently be missing).
fn readable(e: &RecordedEvent) -> std::result::Result<(), String> {
    let decoded = match e.aggregate_type.as_str() {
        "Node" => crate::domain::upcast::node_event(&e.event_type, &e.event_version, &e.payload)
            .map(|ev| cqrs_es::DomainEvent::event_type(&ev)),
        "Volume" => serde_json::from_value::<crate::domain::volume::VolumeEvent>(e.payload.clone())
            .map(|ev| cqrs_es::DomainEvent::event_type(&ev)),
        other => return Err(format!("unknown aggregate type '{other}'")),
    };
    match decoded {
        Ok(t) if t == e.event_type => Ok(()),
        Ok(t) => Err(format!(
            "event_type says {} but the payload is a {t}",
            e.event_type
        )),
        Err(why) => Err(format!(
            "{} {} event {} cannot be read: {why}",
            e.aggregate_type, e.aggregate_id, e.event_type
        )),
    }
}

/// Reads and checks an export (see the command's help for the rules).
pub fn check(reader: impl BufRead) -> Result<Checked> {
    let mut events: Vec<RecordedEvent> = vec![];
    let mut data_keys = vec![];
    let mut header = false;
    let mut end = None;
    let mut sequences: HashMap<(String, String), u64> = HashMap::new();
    for (i, text) in reader.lines().enumerate() {
        let n = i + 1;
        let text = text?;
        if text.trim().is_empty() {
            continue;
        }
        if end.is_some() {
            return Err(bad(n, "data after the end line"));
        }
        // The decoder of stored data: whatever `export` wrote (an event's
        // envelope adds levels to what the API took) reads back.
        let line: Line = crate::store::json::decode_as(text.as_bytes()).map_err(|e| bad(n, e))?;
        match line {
            Line::Header {
                format, version, ..
            } => {
                if n != 1 || header {
                    return Err(bad(n, "the header must be the first line, once"));
                }
                if format != FORMAT || version != FORMAT_VERSION {
                    return Err(bad(
                        n,
                        format!("not an {FORMAT} v{FORMAT_VERSION} file ({format} v{version})"),
                    ));
                }
                header = true;
            }
            _ if !header => return Err(bad(n, "no header: not an ironledger export")),
            Line::Event(e) => {
                let want = events.last().map_or(1, |l| l.position + 1);
                if e.position != want {
                    return Err(bad(
                        n,
                        format!("position {} where {want} was expected", e.position),
                    ));
                }
                let key = (e.aggregate_type.clone(), e.aggregate_id.clone());
                let seq = sequences.entry(key).or_insert(0);
                if e.sequence != *seq + 1 {
                    return Err(bad(
                        n,
                        format!(
                            "{} {} has sequence {} after {} (sequences must be 1, 2, 3, … per aggregate)",
                            e.aggregate_type, e.aggregate_id, e.sequence, seq
                        ),
                    ));
                }
                *seq = e.sequence;
                if !e.metadata.is_object() {
                    return Err(bad(n, "metadata must be a JSON object"));
                }
                readable(&e).map_err(|why| bad(n, why))?;
                events.push(e);
            }
            Line::DataKey { owner, wrapped } => data_keys.push((owner, wrapped)),
            Line::End {
                events: count,
                data_keys: keys,
            } => end = Some((n, count, keys)),
        }
    }
    let Some((n, count, keys)) = end else {
        return Err("the file has no end line: it is truncated".into());
    };
    if count != events.len() as u64 || keys != data_keys.len() as u64 {
        return Err(bad(
            n,
            format!(
                "the end line counts {count} events and {keys} data keys, the file has {} and {}",
                events.len(),
                data_keys.len()
            ),
        ));
    }
    Ok(Checked { events, data_keys })
}

/// How many of the file's events the store already holds (an interrupted
/// import of the same file), or an error if it holds anything else.
async fn already_there(store: &dyn LogStore, events: &[RecordedEvent]) -> Result<u64> {
    let head = store.head().await?;
    if head == 0 {
        return Ok(0);
    }
    if head > events.len() as u64 {
        return Err(format!(
            "the target store is not empty: it has {head} events, more than the file"
        )
        .into());
    }
    let mut after = 0;
    while after < head {
        let page = store.read_feed(after, 1000).await?;
        let Some(last) = page.last().map(|e| e.position) else {
            break;
        };
        for got in page {
            let want = &events[got.position as usize - 1];
            let same = got.aggregate_type == want.aggregate_type
                && got.aggregate_id == want.aggregate_id
                && got.sequence == want.sequence
                && got.event_type == want.event_type
                && got.event_version == want.event_version
                && got.payload == want.payload
                && got.metadata == want.metadata;
            if !same {
                return Err(format!(
                    "the target store is not empty and differs from the file at position {}",
                    got.position
                )
                .into());
            }
        }
        after = last;
    }
    Ok(head)
}

/// The claims one imported event makes (as its original append did).
fn claims_of(claim_fn: &crate::store::ClaimFn, e: &RecordedEvent) -> Vec<ClaimOp> {
    claim_fn(&SerializedEvent {
        aggregate_id: e.aggregate_id.clone(),
        sequence: e.sequence as usize,
        aggregate_type: e.aggregate_type.clone(),
        event_type: e.event_type.clone(),
        event_version: e.event_version.clone(),
        payload: e.payload.clone(),
        metadata: e.metadata.clone(),
    })
}

pub async fn run(global: &GlobalArgs, args: ImportArgs) -> Result<()> {
    let checked = if args.file.as_os_str() == "-" {
        check(std::io::stdin().lock())?
    } else {
        let file =
            std::fs::File::open(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
        check(std::io::BufReader::new(file))?
    };
    let config = global.config()?;
    let opened = crate::store::open(&config.database).await?;
    let store: Arc<dyn LogStore> = opened.store.clone();
    store.sequence().await?;
    let done = already_there(store.as_ref(), &checked.events).await?;
    let total = checked.events.len() as u64;
    if done > 0 {
        eprintln!("the store holds the first {done} events of this log: resuming after them");
    }
    let claim_fn = crate::engine::claim_fn();
    let bar = common::event_bar(total, "import");
    bar.set_position(done);
    let started = Instant::now();
    let rest = &checked.events[done as usize..];
    let batches: Vec<&[RecordedEvent]> = rest.chunks(args.batch_size.max(1)).collect();
    let key_claims: Vec<ClaimOp> = checked
        .data_keys
        .iter()
        .map(|(owner, wrapped)| ClaimOp::Acquire {
            scope: DATA_KEY_SCOPE.into(),
            key: wrapped.clone(),
            owner: owner.clone(),
        })
        .collect();
    for (i, batch) in batches.iter().enumerate() {
        let mut claims: Vec<ClaimOp> = batch.iter().flat_map(|e| claims_of(&claim_fn, e)).collect();
        if i + 1 == batches.len() {
            // The data keys alive at export time, after every release.
            claims.extend(key_claims.iter().cloned());
        }
        store
            .import_events(batch, &claims)
            .await
            .map_err(|e| format!("importing positions {}..: {e}", batch[0].position))?;
        bar.inc(batch.len() as u64);
    }
    if rest.is_empty() && !key_claims.is_empty() {
        store.import_events(&[], &key_claims).await?;
    }
    bar.finish_and_clear();
    println!(
        "imported {} and {} data keys into the {} store",
        common::rate(rest.len() as u64, started.elapsed()),
        checked.data_keys.len(),
        store.backend()
    );
    if !args.no_project {
        let projector =
            crate::projections::Projector::new(store.clone(), crate::projections::all());
        let started = Instant::now();
        let applied = projector.catch_up().await?;
        println!(
            "read models built: {}",
            common::rate(applied, started.elapsed())
        );
    }
    Ok(())
}
