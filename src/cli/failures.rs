//! `ironledger failures`: events a read model or the process manager could
//! not apply.

use super::anyhow_free::Result;
use super::common::{self, Output};
use super::GlobalArgs;
use clap::Args;

/// List the events the read models (and the process manager) could not
/// apply, with the position and the error.
///
/// One event a read model cannot apply does not stop ironledger: the model
/// records it, leaves the event's node (or other aggregate) as it was before
/// it, skips that aggregate's later events (each listed here too) and keeps
/// applying everything else. The API then shows the node as it was before
/// the failing event; `/health` says `degraded`; `ironledger verify` fails.
/// The process manager likewise leaves a node it cannot read alone, and lists
/// it here under `process_manager`.
///
/// What to do: read the error; upgrade ironledger if it is a bug the new
/// version fixes, then `ironledger rebuild MODEL` (the rebuilt model replaces
/// its failures with its own: none, if every event applies now). The process
/// manager's entries clear themselves once the node reads again.
///
/// Examples:
///
///   ironledger failures
///
///   ironledger failures nodes --output json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FailuresArgs {
    /// Only these models (`nodes`, `ports`, …, `process_manager`).
    #[arg(value_name = "MODEL")]
    pub models: Vec<String>,
    /// How to print: `table`, or `json` (one failure per line).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
}

pub async fn run(global: &GlobalArgs, args: FailuresArgs) -> Result<()> {
    let store = common::open_store(global, true).await?;
    let models: Vec<&str> = args.models.iter().map(String::as_str).collect();
    // Scratch models of rebuilds and checks (`nodes~rebuild`) are not the
    // operator's concern unless asked for by name.
    let failures: Vec<_> = store
        .failures(&models)
        .await?
        .into_iter()
        .filter(|f| !models.is_empty() || !f.model.contains('~'))
        .collect();
    match args.output {
        Output::Json => {
            for f in &failures {
                println!("{}", serde_json::to_string(f)?);
            }
        }
        Output::Table if failures.is_empty() => println!("no failures recorded"),
        Output::Table => {
            let rows: Vec<Vec<String>> = failures
                .iter()
                .map(|f| {
                    vec![
                        f.model.clone(),
                        f.position.to_string(),
                        format!("{} {}", f.aggregate_type, f.aggregate_id),
                        f.event_type.clone(),
                        common::time_text(&f.failed_at),
                        f.error.clone(),
                    ]
                })
                .collect();
            common::print_table(
                &[
                    "MODEL",
                    "POSITION",
                    "AGGREGATE",
                    "EVENT",
                    "RECORDED",
                    "ERROR",
                ],
                &rows,
            );
        }
    }
    Ok(())
}
