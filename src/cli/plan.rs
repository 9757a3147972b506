//! `ironledger plan NODE`: what a deploy of the node would do, without doing
//! it (see `effects::deploy_plan`).

use super::anyhow_free::Result;
use super::common::{self, Output};
use super::GlobalArgs;
use crate::domain::{Node, NodeServices};
use crate::effects::deploy_plan::{self, DeployPlan, PlanContext};
use clap::Args;
use cqrs_es::Aggregate;

/// Show what a deploy of a node would do, step by step, without doing it.
///
/// First whether the deploy would be accepted (the same checks as `baremetal
/// node deploy`, with the API's refusal text if not), then each step the
/// deploy would take: the Cinder requests per volume with the node's
/// connector, the files it would write under [deploy] http_root and the
/// node's iPXE script (secrets masked), the MAC links, the BMC actions, and
/// the events the node would record. Nothing is sent, written or recorded.
/// What only the outside world can answer is said so: a cinder node's script
/// is rendered from the connection data Cinder gives when a volume is
/// attached. Exits 1 when the deploy would be refused.
///
/// Examples:
///
///   ironledger plan node-0
///
///   ironledger plan node-0 --output json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct PlanArgs {
    /// The node: UUID or name.
    pub node: String,
    /// How to print: `table` (numbered steps for people) or `json` (one object).
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
}

pub async fn run(global: &GlobalArgs, args: PlanArgs) -> Result<()> {
    let config = global.config()?;
    let store = common::open_store(global, true).await?;
    let id = common::resolve_node(store.as_ref(), &args.node).await?;
    store.sequence().await?;
    let events = store.load_recorded(Node::TYPE, &id).await?;
    let (node, _) = common::fold_node(&id, &events, |_| true)?;
    if !node.exists {
        return Err(format!("node {id} has been deleted").into());
    }
    let services = NodeServices {
        catalog: config.catalog.clone(),
    };
    let ctx = PlanContext {
        http_root: &config.http_root,
        san_retries: config.san_boot_retries,
        power_timeout: config.power_state_change_timeout,
        cinder_endpoint: config.cinder.as_ref().map(|c| c.endpoint.as_str()),
        services: &services,
    };
    let plan = deploy_plan::plan(&node, &ctx);
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&plan)?);
    } else {
        print_text(&plan);
    }
    // A refused deploy exits non-zero, so `ironledger plan n && baremetal
    // node deploy n` stops where the deploy would.
    match plan.refused {
        Some(_) => Err(format!("a deploy of node {id} would be refused").into()),
        None => Ok(()),
    }
}

fn print_text(plan: &DeployPlan) {
    let name = plan
        .name
        .as_ref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    println!(
        "Deploy of node {}{name}, now {}",
        plan.node, plan.provision_state
    );
    if let Some(refusal) = &plan.refused {
        println!("  refused: {refusal}");
        println!("  (nothing would be done)");
        return;
    }
    for (n, step) in plan.steps.iter().enumerate() {
        println!("{:>3}. {}: {}", n + 1, step.step, step.does);
        for call in &step.cinder {
            let body = call
                .body
                .as_ref()
                .map(|b| format!(" {b}"))
                .unwrap_or_default();
            println!("       cinder: {} {}{body}", call.method, call.path);
        }
        for f in &step.files {
            match &f.links_to {
                Some(to) => println!("       link:   {} -> {to}", f.path),
                None => println!("       file:   {} ({})", f.path, f.mode),
            }
        }
        if let Some(script) = &step.script {
            println!("       script:");
            for line in script.lines() {
                println!("         | {line}");
            }
        }
        if !step.records.is_empty() {
            println!("       records: {}", step.records.join(", "));
        }
    }
}
