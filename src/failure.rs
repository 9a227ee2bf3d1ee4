//! What the run tells the user: a failed step in user terms (`Failure`), and
//! progress while steps run (`Event`). Engines, inspectors and the session
//! produce them; only the UI renders them. `diagnose` makes a `Failure` from
//! a docker or step error (`Failure::from_docker`, `Failure::from_step`).

use std::time::Duration;

/// Something worth telling the user while a step runs; the UI decides how.
/// `key` is the entry's `Entry::key()`: its line (`3`), or its line and tag
/// for an entry a selecting line expanded into (`3:1.27.1`); empty for
/// run-level steps.
#[derive(Clone, Debug)]
pub enum Event {
    Step { key: String, message: String },
    Retry { key: String, command: String, attempt: u32, wait: Duration, reason: String },
    Warning { key: String, message: String },
    /// What an entry's copy moved, where the manifests say (the layers' sizes).
    Moved { key: String, bytes: u64 },
    /// How the entry ended, in the table's words (`synced`, `up-to-date, failed`).
    Outcome { key: String, status: String },
    /// The entry needs nothing more.
    Finished { key: String },
    /// A run-level line for the user (what the run will do).
    Info { message: String },
    /// A run-level warning (not about one entry).
    RunWarning { message: String },
    /// The run starts on this many entries (progress).
    Start { entries: usize },
    /// The run has nothing more to show while it runs.
    Done,
}

/// The hint of an unclassified failure that did not come from docker (a
/// registry's answer imgsync could not read, a reader that could not start).
pub const NOT_FROM_DOCKER: &str =
    "the error says what failed: run again, and if it persists check the registry with `imgsync doctor`";

/// A failed step, in user terms: what failed, why, and the one-line fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: String,
    pub hint: String,
}

impl Failure {
    pub fn new(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure { error: error.into(), hint: hint.into() }
    }
}
