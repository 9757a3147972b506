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
/// The file is read twice, once to check it and once to write it, one batch
/// at a time: memory does not grow with the log (only a sequence number per
/// aggregate is kept). Standard input is first copied to a private file in
/// the temporary directory (`TMPDIR`), removed afterwards.
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

/// What the check of an export keeps: the counts and the data keys. The
/// events themselves are not kept: the import reads the file a second time
/// to write them, so its memory does not grow with the log.
pub struct Checked {
    /// The number of events (also the last position: positions are 1, 2, 3, …).
    pub events: u64,
    pub data_keys: Vec<(String, String)>,
}

fn bad(line: usize, msg: impl std::fmt::Display) -> super::anyhow_free::Error {
    format!("line {line}: {msg}").into()
}

/// The lines of an export, decoded one at a time, with their line numbers
/// (blank lines skipped): the one reader both passes of an import use.
fn lines(reader: impl BufRead) -> impl Iterator<Item = Result<(usize, Line)>> {
    reader.lines().enumerate().filter_map(|(i, text)| {
        let n = i + 1;
        let text = match text {
            Ok(t) if t.trim().is_empty() => return None,
            Ok(t) => t,
            Err(e) => return Some(Err(bad(n, e))),
        };
        // The decoder of stored data: whatever `export` wrote (an event's
        // envelope adds levels to what the API took) reads back.
        Some(
            crate::store::json::decode_as::<Line>(text.as_bytes())
                .map(|line| (n, line))
                .map_err(|e| bad(n, e)),
        )
    })
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

/// Reads and checks an export (see the command's help for the rules),
/// keeping per aggregate only its last sequence.
pub fn check(reader: impl BufRead) -> Result<Checked> {
    let mut events = 0u64;
    let mut data_keys = vec![];
    let mut header = false;
    let mut end = None;
    let mut sequences: HashMap<(String, String), u64> = HashMap::new();
    for line in lines(reader) {
        let (n, line) = line?;
        if end.is_some() {
            return Err(bad(n, "data after the end line"));
        }
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
                let want = events + 1;
                if e.position != want {
                    return Err(bad(
                        n,
                        format!("position {} where {want} was expected", e.position),
                    ));
                }
                readable(&e).map_err(|why| bad(n, why))?;
                if !e.metadata.is_object() {
                    return Err(bad(n, "metadata must be a JSON object"));
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
                events = want;
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
    if count != events || keys != data_keys.len() as u64 {
        return Err(bad(
            n,
            format!(
                "the end line counts {count} events and {keys} data keys, the file has {events} and {}",
                data_keys.len()
            ),
        ));
    }
    Ok(Checked { events, data_keys })
}

/// The file an import reads twice (once to check, once to write): the named
/// file, or standard input spooled to a private temporary file first.
enum Source {
    Named(PathBuf),
    Spooled(PathBuf),
}

impl Source {
    fn open(file: &std::path::Path) -> Result<Source> {
        if file.as_os_str() != "-" {
            return Ok(Source::Named(file.to_path_buf()));
        }
        let path = std::env::temp_dir().join(format!(
            "ironledger-import-{}-{}.jsonl",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut spool = options
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // Registered before the copy, so a failed copy removes the file too.
        let source = Source::Spooled(path);
        std::io::copy(&mut std::io::stdin().lock(), &mut spool).map_err(|e| {
            format!(
                "spooling standard input to {}: {e}",
                source.path().display()
            )
        })?;
        Ok(source)
    }

    fn path(&self) -> &std::path::Path {
        match self {
            Source::Named(p) | Source::Spooled(p) => p,
        }
    }

    fn reader(&self) -> Result<impl BufRead> {
        let file = std::fs::File::open(self.path())
            .map_err(|e| format!("{}: {e}", self.path().display()))?;
        Ok(std::io::BufReader::with_capacity(1 << 20, file))
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        if let Source::Spooled(path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Whether the store's event `got` is the file's event `want` (an
/// interrupted import of the same file left it there).
fn same_event(got: &RecordedEvent, want: &RecordedEvent) -> bool {
    got.position == want.position
        && got.aggregate_type == want.aggregate_type
        && got.aggregate_id == want.aggregate_id
        && got.sequence == want.sequence
        && got.event_type == want.event_type
        && got.event_version == want.event_version
        && got.payload == want.payload
        && got.metadata == want.metadata
}

/// Checks that the store holds `page` (consecutive events of the file, all
/// at or below the store's head) as the file has them.
async fn compare_prefix(store: &dyn LogStore, page: &[RecordedEvent]) -> Result<()> {
    let Some(first) = page.first() else {
        return Ok(());
    };
    let got = store
        .read_feed(first.position - 1, page.len() as u32)
        .await?;
    for (i, want) in page.iter().enumerate() {
        if !got.get(i).is_some_and(|g| same_event(g, want)) {
            return Err(format!(
                "the target store is not empty and differs from the file at position {}",
                want.position
            )
            .into());
        }
    }
    Ok(())
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

/// Events compared per read of the store when resuming.
const COMPARE_PAGE: usize = 1000;

pub async fn run(global: &GlobalArgs, args: ImportArgs) -> Result<()> {
    let source = Source::open(&args.file)?;
    let checked = check(source.reader()?)?;
    let config = global.config()?;
    let opened = crate::store::open(&config.database).await?;
    let store: Arc<dyn LogStore> = opened.store.clone();
    store.sequence().await?;
    let head = store.head().await?;
    if head > checked.events {
        return Err(format!(
            "the target store is not empty: it has {head} events, more than the file"
        )
        .into());
    }
    let claim_fn = crate::engine::claim_fn();
    let bar = common::event_bar(checked.events, "import");
    let started = Instant::now();
    let key_claims: Vec<ClaimOp> = checked
        .data_keys
        .iter()
        .map(|(owner, wrapped)| ClaimOp::Acquire {
            scope: DATA_KEY_SCOPE.into(),
            key: wrapped.clone(),
            owner: owner.clone(),
        })
        .collect();
    let batch_size = args.batch_size.max(1);
    // The second pass: events at or below the store's head are compared with
    // it (an interrupted import resumes after them), the rest written in
    // batches. Only one batch is held at a time.
    let mut prefix: Vec<RecordedEvent> = Vec::new();
    let mut batch: Vec<RecordedEvent> = Vec::with_capacity(batch_size.min(10_000));
    let mut written = 0u64;
    for line in lines(source.reader()?) {
        let Line::Event(e) = line?.1 else {
            continue;
        };
        if e.position <= head {
            let last = e.position == head;
            prefix.push(e);
            if prefix.len() == COMPARE_PAGE || last {
                compare_prefix(store.as_ref(), &prefix).await?;
                prefix.clear();
            }
            if last {
                eprintln!(
                    "the store holds the first {head} events of this log: resuming after them"
                );
                bar.set_position(head);
            }
            continue;
        }
        batch.push(e);
        if batch.len() == batch_size {
            written += import_batch(store.as_ref(), &claim_fn, &batch, &[]).await?;
            bar.inc(batch.len() as u64);
            batch.clear();
        }
    }
    // The last batch (perhaps empty) carries the data keys alive at export
    // time, after every release.
    if !batch.is_empty() || !key_claims.is_empty() {
        written += import_batch(store.as_ref(), &claim_fn, &batch, &key_claims).await?;
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    println!(
        "imported {} and {} data keys into the {} store",
        common::rate(written, started.elapsed()),
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

/// Writes one batch of the file's events with the claims they make (and
/// `extra`): how many events it wrote.
async fn import_batch(
    store: &dyn LogStore,
    claim_fn: &crate::store::ClaimFn,
    batch: &[RecordedEvent],
    extra: &[ClaimOp],
) -> Result<u64> {
    let mut claims: Vec<ClaimOp> = batch.iter().flat_map(|e| claims_of(claim_fn, e)).collect();
    claims.extend(extra.iter().cloned());
    store.import_events(batch, &claims).await.map_err(|e| {
        let at = batch.first().map_or("the data keys".to_string(), |e| {
            format!("positions {}..", e.position)
        });
        format!("importing {at}: {e}")
    })?;
    Ok(batch.len() as u64)
}
