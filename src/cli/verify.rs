//! `ironledger verify [PROJECTION…]`: do the read models equal a fresh replay?

use super::anyhow_free::Result;
use super::common;
use super::GlobalArgs;
use crate::projections::replay::{field_differences, Replayer};
use clap::Args;

/// Check that read models equal a fresh replay of the event log.
///
/// Each live model is read at its checkpoint (consistently, even while `serve`
/// runs), the log is replayed up to that checkpoint into a scratch model
/// (`<name>~verify`, dropped afterwards), and the two are compared document by
/// document. Differences are listed field by field (live → replayed); the exit
/// status is 1 if any model differs. `ironledger rebuild` repairs a model.
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
    let mut differing = vec![];
    for name in super::rebuild::names(&args.projections)? {
        let bar = common::event_bar(0, &name);
        let diff = replayer
            .verify(&name, &mut |p| {
                bar.set_length(p.until);
                bar.set_position(p.position);
            })
            .await?;
        bar.finish_and_clear();
        if diff.is_empty() {
            println!(
                "{name}: OK ({} documents at position {})",
                diff.documents, diff.at
            );
            continue;
        }
        differing.push(name.clone());
        println!(
            "{name}: DIFFERENT at position {}: {} changed, {} missing, {} extra (of {} documents)",
            diff.at,
            diff.changed.len(),
            diff.missing.len(),
            diff.extra.len(),
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
        let total = diff.changed.len() + diff.missing.len() + diff.extra.len();
        if total > listed {
            println!("  … and {} more", total - listed);
        }
    }
    if differing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} differ from the log; `ironledger rebuild {}` rebuilds them",
            differing.join(", "),
            differing.join(" ")
        )
        .into())
    }
}
