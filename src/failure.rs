//! What the run tells the user: a failed step in user terms (`Failure`), and
//! progress while steps run (`Event`). Engines, inspectors and the session
//! produce them; only the UI renders them.

use std::time::Duration;

use crate::diagnose;
use crate::docker::DockerError;
use crate::step_error::StepError;

/// Something worth telling the user while a step runs; the UI decides how.
/// `key` is the entry's `Entry::key()`: its line (`3`), or its line and tag
/// for an entry a selecting line expanded into (`3:1.27.1`); empty for
/// run-level steps.
#[derive(Clone, Debug)]
pub enum Event {
    Step { key: String, message: String },
    Retry { key: String, command: String, attempt: u32, wait: Duration, reason: String },
    Warning { key: String, message: String },
    /// The entry needs nothing more.
    Finished { key: String },
}

/// A failed step, in user terms: what failed, why, and the one-line fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub error: String,
    pub hint: String,
}

impl Failure {
    pub fn from_docker(e: &DockerError) -> Self {
        let family = diagnose::classify(e);
        Failure { error: e.to_string(), hint: family.hint().to_string() }
    }

    pub fn from_step(e: &StepError) -> Self {
        Failure { error: e.to_string(), hint: e.family().hint().to_string() }
    }

    pub fn new(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure { error: error.into(), hint: hint.into() }
    }
}
