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
    pub fn from_docker(e: &DockerError) -> Self {
        let family = diagnose::classify(e);
        Failure { error: e.to_string(), hint: family.hint().to_string() }
    }

    /// A failed step in user terms. A failure docker did not report has no
    /// "docker error above" to point at: its hint says where to look instead.
    pub fn from_step(e: &StepError) -> Self {
        let family = e.family();
        let hint = match family {
            diagnose::Family::Other if !e.from_docker() => NOT_FROM_DOCKER,
            f => f.hint(),
        };
        Failure { error: e.to_string(), hint: hint.to_string() }
    }

    pub fn new(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure { error: error.into(), hint: hint.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_docker_failures_point_at_the_docker_error() {
        let registry = StepError::parse("GET https://r.example/v2/a/manifests/1", "expected a JSON object");
        let f = Failure::from_step(&registry);
        assert!(!f.hint.contains("docker error"), "{f:?}");
        assert_eq!(f.hint, NOT_FROM_DOCKER);
        let setup = StepError::setup("list the tags of r/a", "cannot read tag lists: broken config");
        assert_eq!(Failure::from_step(&setup).hint, NOT_FROM_DOCKER);
        let docker = StepError::from(DockerError {
            command: "docker pull x".into(),
            status: Some(1),
            stderr: "something odd".into(),
            timed_out: false,
            interrupted: false,
        });
        assert_eq!(Failure::from_step(&docker).hint, diagnose::Family::Other.hint());
        assert_eq!(Failure::from_step(&StepError::http("GET u", 401, "")).hint, diagnose::Family::Auth.hint());
    }
}
