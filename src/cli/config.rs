//! `ironledger config`: the configuration in effect, and where each value
//! came from.

use super::anyhow_free::Result;
use super::GlobalArgs;
use crate::config::{Effective, Ignored};
use clap::{Args, ValueEnum};

/// Show the configuration in effect: every option ironledger reads, the value
/// it uses and where that value came from.
///
/// Options come from the `--config-file` files (later files win), then
/// `IRONLEDGER__<SECTION>__<OPTION>` environment variables, then
/// `--database-url` (or `DATABASE_URL`); an option set nowhere shows
/// ironledger's default, and one without a default shows as not set. The
/// values are those of the parsed configuration, so what is printed is what
/// `serve` would use. Secrets (`[cinder] token`, `[secrets] master_key`,
/// a password in `[database] connection`) are masked. Options that were set
/// but that ironledger does not know are listed last, as ignored. An invalid
/// value fails as `serve` would, naming the option.
///
/// Example:
///
///   ironledger --config-file /etc/ironic/ironic.conf config
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    pub output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// INI-like, each value with its source as a comment.
    Text,
    /// One JSON object: `options` (section, option, value, source) and `ignored`.
    Json,
}

pub async fn run(global: &GlobalArgs, args: ConfigArgs) -> Result<()> {
    let config = global.config()?;
    let options = config.effective();
    let ignored = config.ignored();
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "options": options,
                "ignored": ignored,
            }))?
        ),
        Format::Text => print!("{}", text(&options, &ignored)),
    }
    Ok(())
}

/// The INI-like listing: sections in the order options are known, each value
/// followed by where it came from.
fn text(options: &[Effective], ignored: &[Ignored]) -> String {
    let mut sections: Vec<&str> = vec![];
    for e in options {
        if !sections.contains(&e.section.as_str()) {
            sections.push(&e.section);
        }
    }
    let mut out = String::new();
    for section in sections {
        out.push_str(&format!("[{section}]\n"));
        for e in options.iter().filter(|e| e.section == section) {
            let from = e.source.as_deref().unwrap_or("default");
            let line = match &e.value {
                Some(v) => format!("{} = {v}", e.option),
                None => format!("# {} is not set", e.option),
            };
            out.push_str(&format!("{line:<56} # {from}\n"));
        }
        out.push('\n');
    }
    if !ignored.is_empty() {
        out.push_str("# ignored (ironledger does not know these options):\n");
        for i in ignored {
            out.push_str(&format!(
                "#   [{}] {} ({})\n",
                i.section, i.option, i.source
            ));
        }
    }
    out
}
