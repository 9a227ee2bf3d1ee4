//! Reading the run's two input files: images.txt into entries, config.env
//! (with the environment and flags) into settings. Every command reads them
//! here, so sync, copy and doctor treat a missing or unreadable file alike.

use std::path::Path;

use crate::cli::Common;
use crate::config::{self, EnvFile, Settings};
use crate::images::{self, Entry, LineError};

pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

pub fn line_errors(errors: Vec<LineError>) -> Vec<String> {
    errors.into_iter().map(|e| e.to_string()).collect()
}

/// Settings from the flags, the environment and config.env (a missing file is
/// an empty one; an unreadable one is an error). Every bad setting is listed.
pub fn load_settings(common: &Common) -> Result<Settings, Vec<String>> {
    let label = common.config.display().to_string();
    let file = match std::fs::read_to_string(&common.config) {
        Ok(text) => config::parse_env_file(&label, &text).map_err(line_errors)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => EnvFile { file: label, ..Default::default() },
        Err(e) => return Err(vec![format!("{label}: {e}")]),
    };
    config::resolve(&file, &env, &common.overrides())
}

/// images.txt: its label (for messages) and its entries; every bad line is listed.
pub fn load_entries(path: &Path) -> Result<(String, Vec<Entry>), Vec<String>> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![if e.kind() == std::io::ErrorKind::NotFound {
            format!("{label}: not found; create it with one image per line, e.g. `nginx:alpine`, or pass --images FILE")
        } else {
            format!("{label}: {e}")
        }]
    })?;
    let entries = images::parse(&label, &text).map_err(line_errors)?;
    Ok((label, entries))
}
