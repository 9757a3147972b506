//! Where option values come from: `--config-file` INI files, then
//! `IRONLEDGER__<SECTION>__<OPTION>` variables (later wins).

use super::{ConfigError, Read, Source};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Reads INI files into `(section, option) → value`. `[DEFAULT]` and keys
/// before any section both land in `DEFAULT`.
pub(super) fn read_files(
    files: &[PathBuf],
    raw: &mut BTreeMap<(String, String), Read>,
) -> Result<(), ConfigError> {
    for path in files {
        let ini = ini::Ini::load_from_file(path).map_err(|e| ConfigError::File {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for (section, props) in ini.iter() {
            let section = section.unwrap_or("DEFAULT");
            for (k, v) in props.iter() {
                raw.insert(
                    (section.to_string(), k.to_string()),
                    Read {
                        value: v.to_string(),
                        source: Source::File(path.clone()),
                    },
                );
            }
        }
    }
    Ok(())
}

/// Reads `IRONLEDGER__<SECTION>__<OPTION>` variables.
pub(super) fn read_env(raw: &mut BTreeMap<(String, String), Read>) {
    for (k, v) in std::env::vars() {
        let Some(rest) = k.strip_prefix("IRONLEDGER__") else {
            continue;
        };
        let Some((section, option)) = rest.split_once("__") else {
            continue;
        };
        let section = if section.eq_ignore_ascii_case("default") {
            "DEFAULT".to_string()
        } else {
            section.to_ascii_lowercase()
        };
        raw.insert(
            (section, option.to_ascii_lowercase()),
            Read {
                value: v,
                source: Source::Env(k.clone()),
            },
        );
    }
}
