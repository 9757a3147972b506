//! `ironledger verify [PROJECTION…]`: do the read models equal a fresh replay?

use super::anyhow_free::Result;
use super::common;
use super::GlobalArgs;
use crate::projections::replay::{field_differences, Replayer};
use clap::Args;

/// Check that read models equal a fresh replay of the event log.
///
/// The log is replayed, in one pass for all the models checked, into a
/// scratch model (`<name>~verify`, dropped
/// afterwards) up to the live model's checkpoint, or, for a model the appends
/// write inline, up to the head of the log; then the two are compared
/// document by document, a page at a time (memory stays flat however large
/// the fleet). Differences are listed field by field (live → replayed).
/// While `serve` runs, documents of nodes that changed after that position are
/// not compared (the count is shown): they moved on, they are not wrong.
///
/// A model also fails the check when it has events it could not apply
/// (`ironledger failures` lists them; a replay skips them the same way, so
/// the documents alone would not show it), and when its checkpoint is still
/// below the head the log had when the check started (nothing is applying
/// the log: `serve` is stopped or stuck; `/health` says which).
///
/// The exit status is 1 if any model fails. `ironledger rebuild` repairs a
/// model.
///
/// Examples:
///
///   ironledger verify
///
///   ironledger verify nodes targets
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct VerifyArgs {
    /// The models to check (default: every one).
    #[arg(value_name = "PROJECTION")]
    pub projections: Vec<String>,
    /// List at most this many differing documents per model.
    #[arg(long, default_value = "20", value_name = "N")]
    pub max_listed: usize,
}

pub async fn run(global: &GlobalArgs, args: VerifyArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    let replayer = Replayer::new(store.clone());
    // Number what is committed (PostgreSQL), so the head is the log's.
    store.sequence().await?;
    let head = store.head().await?;
    let mut differing = vec![];
    let mut unhealthy = vec![];
    let names = super::rebuild::names(&args.projections)?;
    let bar = common::event_bar(0, &names.join(","));
    let diffs = replayer
        .verify(&names, &mut |p| {
            bar.set_length(p.until);
            bar.set_position(p.position);
        })
        .await?;
    bar.finish_and_clear();
    for (name, diff) in names.iter().zip(diffs) {
        // Read after the replay, which took a while: a live projector has
        // moved past the head we started with by now.
        let checkpoint = store.checkpoint(name).await?;
        let failures = store.failures(&[name]).await?;
        if checkpoint < head {
            println!(
                "{name}: BEHIND: at position {checkpoint}, the log's head is {head} \
                 (nothing is applying the log)"
            );
        }
        if !failures.is_empty() {
            println!(
                "{name}: {} event(s) could not be applied (`ironledger failures {name}`)",
                failures.len()
            );
        }
        if checkpoint < head || !failures.is_empty() {
            unhealthy.push(name.clone());
        }
        // Nodes written while the check ran are not compared: say how many.
        let moved = match diff.moved {
            0 => String::new(),
            n => format!("; {n} of nodes that moved on meanwhile not compared"),
        };
        if diff.is_empty() {
            println!(
                "{name}: OK ({} documents at position {}{moved})",
                diff.documents, diff.at
            );
            continue;
        }
        differing.push(name.clone());
        println!(
            "{name}: DIFFERENT at position {}: {} changed, {} missing, {} extra{} (of {} documents{moved})",
            diff.at,
            diff.changed.len(),
            diff.missing.len(),
            diff.extra.len(),
            match diff.unlisted {
                0 => String::new(),
                n => format!(", {n} more not kept"),
            },
            diff.documents
        );
        let mut listed = 0;
        for (id, live, replayed) in &diff.changed {
            if listed == args.max_listed {
                break;
            }
            listed += 1;
            println!("  changed {id}:");
            for line in field_differences(live, replayed) {
                println!("    {line}");
            }
        }
        for (id, _) in &diff.missing {
            if listed == args.max_listed {
                break;
            }
            listed += 1;
            println!("  missing {id} (the replay has it, the live model does not)");
        }
        for (id, _) in &diff.extra {
            if listed == args.max_listed {
                break;
            }
            listed += 1;
            println!("  extra {id} (the live model has it, the replay does not)");
        }
        let total = diff.total();
        if total > listed {
            println!("  … and {} more", total - listed);
        }
    }
    if !differing.is_empty() {
        return Err(format!(
            "{} differ from the log; `ironledger rebuild {}` rebuilds them",
            differing.join(", "),
            differing.join(" ")
        )
        .into());
    }
    if !unhealthy.is_empty() {
        return Err(format!(
            "{} do not reflect the whole log (see above)",
            unhealthy.join(", ")
        )
        .into());
    }
    Ok(())
}
