//! `ironledger rebuild [PROJECTION…]`: rebuild read models from the log.

use super::anyhow_free::Result;
use super::common;
use super::GlobalArgs;
use crate::projections::replay::{rebuild_scratch, RebuildOutcome, Replayer};
use clap::Args;
use std::time::Instant;

/// Rebuild read models (projections) from the event log.
///
/// The models asked for are replayed in one pass over the log (each batch of
/// events is read once and applied to all of them). Each model is replayed
/// into a scratch model (`<name>~rebuild`) while the
/// live one keeps answering the API, even with `serve` running on the same
/// database; once the scratch model has caught up with the log, the two are
/// swapped in one transaction. If a rebuild is interrupted (Ctrl-C, crash),
/// running it again resumes where it stopped: the scratch model's documents
/// and checkpoint are committed together, batch by batch.
///
/// Projections: nodes, ports, connectors, targets, node_history (default: all).
///
/// Examples:
///
///   ironledger rebuild
///
///   ironledger rebuild node_history --batch-size 2000
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct RebuildArgs {
    /// The models to rebuild (default: every one).
    #[arg(value_name = "PROJECTION")]
    pub projections: Vec<String>,
    /// Events applied (and committed) per batch.
    #[arg(long, default_value = "2000", value_name = "N")]
    pub batch_size: u32,
    /// Start over instead of resuming an interrupted rebuild.
    #[arg(long)]
    pub restart: bool,
    /// Stop after applying this many events, as an interruption would (the
    /// next run resumes); for testing.
    #[arg(long, hide = true, value_name = "N")]
    pub stop_after: Option<u64>,
}

/// The names asked for, or every projection.
pub fn names(asked: &[String]) -> Result<Vec<String>> {
    let all: Vec<String> = crate::projections::all()
        .iter()
        .map(|p| p.name().to_string())
        .collect();
    if asked.is_empty() {
        return Ok(all);
    }
    for a in asked {
        if !all.contains(a) {
            return Err(format!("unknown projection {a:?} (known: {})", all.join(", ")).into());
        }
    }
    Ok(asked.to_vec())
}

pub async fn run(global: &GlobalArgs, args: RebuildArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    let replayer = Replayer::new(store.clone()).with_batch(args.batch_size);
    let names = names(&args.projections)?;
    for name in &names {
        let scratch = rebuild_scratch(name);
        if args.restart {
            store.drop_model(&scratch).await?;
        }
        let resumed = store.checkpoint(&scratch).await?;
        if resumed > 0 {
            println!("{name}: resuming an interrupted rebuild at position {resumed}");
        }
    }
    store.sequence().await?;
    let head = store.head().await?;
    let bar = common::event_bar(head, &names.join(","));
    let started = Instant::now();
    let report = replayer
        .rebuild(&names, args.stop_after, &mut |p| {
            bar.set_length(p.until.max(bar.length().unwrap_or(0)));
            bar.set_position(p.position);
        })
        .await?;
    bar.finish_and_clear();
    let elapsed = started.elapsed();
    for model in &report.models {
        let name = &model.name;
        match model.outcome {
            RebuildOutcome::Swapped { at } => {
                let from = if model.resumed_from > 0 {
                    format!(", resumed at {}", model.resumed_from)
                } else {
                    String::new()
                };
                println!("{name}: rebuilt up to position {at}{from}");
            }
            RebuildOutcome::Interrupted { at } => println!(
                "{name}: interrupted at position {at} of {head}; run `ironledger rebuild {name}` again to resume"
            ),
        }
    }
    println!(
        "{} model(s) in one pass over the log: {}",
        report.models.len(),
        common::rate(report.applied, elapsed)
    );
    let interrupted: Vec<&str> = report
        .models
        .iter()
        .filter(|m| matches!(m.outcome, RebuildOutcome::Interrupted { .. }))
        .map(|m| m.name.as_str())
        .collect();
    if !interrupted.is_empty() {
        return Err(format!("rebuild of {} interrupted", interrupted.join(", ")).into());
    }
    Ok(())
}
