//! Reading the run's input files: images.txt into entries, config.env and
//! .env.local (with the environment and flags) into settings. Every command reads them
//! here, so sync, copy and doctor treat a missing or unreadable file alike.

use std::path::{Path, PathBuf};

use crate::config::{self, EnvFile, Overrides, Settings};
use crate::images::{self, Entry, Warning};
use crate::line_error::LineError;

pub fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

pub fn line_errors(errors: Vec<LineError>) -> Vec<String> {
    errors.into_iter().map(|e| e.to_string()).collect()
}

/// The config.env read when `--config` is not given (absent is fine).
pub const DEFAULT_CONFIG: &str = "config.env";

/// `.env.local`, beside config.env: the developer's own settings and secrets,
/// read when present, never committed (it is in .gitignore).
pub const LOCAL_ENV_FILE: &str = ".env.local";

/// Where `.env.local` is for a config.env at `config`: the same directory.
pub fn local_env_path(config: &Path) -> PathBuf {
    config.with_file_name(LOCAL_ENV_FILE)
}

/// Settings from the flags, the environment, `.env.local` and config.env (a
/// missing file is an empty one; an unreadable one is an error). Every bad
/// setting is listed.
///
/// `config`: the file `--config` named, which must exist; `None` reads
/// `./config.env` when it exists.
pub fn load_settings(config: Option<&Path>, over: &Overrides) -> Result<Settings, Vec<String>> {
    let explicit = config.is_some();
    let config = config.unwrap_or(Path::new(DEFAULT_CONFIG));
    let label = config.display().to_string();
    let mut errors = Vec::new();
    let file = match read_env(config) {
        Ok(Some(text)) => config::parse_env_file(&label, &text).map_err(|e| errors.extend(line_errors(e))).ok(),
        // A file named on the command line (or by the action's config-file) is
        // meant to be read: a typo must not run with no settings at all.
        Ok(None) if explicit => {
            errors.push(format!("--config {label}: not found; fix the path, or leave --config out to read ./config.env when it exists"));
            None
        }
        Ok(None) => None,
        Err(e) => {
            errors.push(format!("{label}: {e}"));
            None
        }
    };
    let local_path = local_env_path(config);
    let local_label = local_path.display().to_string();
    let local = match read_env(&local_path) {
        // Errors in .env.local never quote its lines: they may hold secrets.
        Ok(Some(text)) => config::parse_local_env_file(&local_label, &text).map_err(|e| errors.extend(line_errors(e))).ok(),
        Ok(None) => None,
        Err(e) => {
            errors.push(format!("{local_label}: {e}"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let file = file.unwrap_or(EnvFile { file: label, ..Default::default() });
    let local = local.unwrap_or(EnvFile { file: local_label, ..Default::default() });
    config::resolve_with_local(&file, &local, &env, over)
}

/// A settings file's text, `None` when it does not exist.
fn read_env(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// What images.txt holds for a command: its label (for messages), its entries
/// and what to warn about (each warning is printed once, by the caller, through the UI).
pub struct Loaded {
    pub label: String,
    pub entries: Vec<Entry>,
    pub warnings: Vec<Warning>,
}

/// images.txt: its entries (selecting lines included: `sync`, `plan` and
/// `doctor` read tag lists) and warnings; every bad line is listed. The file
/// is read with a size cap, a BOM is dropped.
pub fn load_selecting_entries(path: &Path) -> Result<Loaded, Vec<String>> {
    let label = path.display().to_string();
    let text = images::read_capped(path).map_err(|e| {
        vec![if e.kind() == std::io::ErrorKind::NotFound {
            format!("{label}: not found; create it with one image per line, e.g. `nginx:alpine`, or pass --images FILE")
        } else {
            format!("{label}: {e}")
        }]
    })?;
    let parsed = images::parse_with_warnings(&label, &text).map_err(line_errors)?;
    Ok(Loaded { label, entries: parsed.entries, warnings: parsed.warnings })
}
