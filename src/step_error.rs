//! A failed step, whatever carried it out: a docker process, an HTTP request
//! or a parser. `diagnose` classifies every cause and `retry` retries any of
//! them by family, so a new way of talking to registries needs no new paths there.

use std::fmt;

use crate::docker::DockerError;

/// Why a step failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cause {
    /// A process exited unsuccessfully (`status` is `None` when it was killed).
    Exit { status: Option<i32>, stderr: String },
    /// A registry answered with an HTTP error status; `body` is what it said (redacted, cut).
    Http { status: u16, body: String },
    /// The step ran past its time limit.
    Timeout,
    /// The run was cancelled while the step ran.
    Interrupted,
    /// The answer arrived but could not be read.
    Parse(String),
    /// A registry's TLS certificate is not trusted (or TLS failed): a setting, never retried.
    Tls(String),
    /// The token endpoint named by a registry's challenge failed (unreachable,
    /// 5xx, or an answer without a token): retried, then reported as such.
    Token(String),
    /// A connection failure (reset, refused, DNS, timeout) of an HTTP request.
    Transport(String),
    /// Plain HTTP to a registry that is neither loopback nor listed as insecure.
    Insecure(String),
    /// The answer is longer than imgsync reads (e.g. a tag list past its page cap).
    TooLong(String),
    /// The step could not be attempted: the reader it needs is not set up
    /// (no registry client, unreadable credentials).
    Setup(String),
}

/// A failed step: what ran (a command line or a request, redacted) and why it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    pub what: String,
    pub cause: Cause,
}

impl StepError {
    pub fn parse(what: impl Into<String>, message: impl Into<String>) -> Self {
        StepError { what: what.into(), cause: Cause::Parse(message.into()) }
    }

    pub fn setup(what: impl Into<String>, message: impl Into<String>) -> Self {
        StepError { what: what.into(), cause: Cause::Setup(message.into()) }
    }

    /// The failure came from a docker process (its stderr, its time limit):
    /// only then may a hint point at "the docker error above".
    pub fn came_from_docker(&self) -> bool {
        matches!(self.cause, Cause::Exit { .. } | Cause::Timeout)
    }

    pub fn http(what: impl Into<String>, status: u16, body: impl Into<String>) -> Self {
        StepError { what: what.into(), cause: Cause::Http { status, body: body.into() } }
    }

    /// One line on what went wrong, in the words of whatever failed.
    pub fn reason(&self) -> String {
        match &self.cause {
            // Docker's wording rules (last meaningful line, cut Go dumps) live with docker.
            Cause::Exit { .. } | Cause::Timeout | Cause::Interrupted => self.as_docker().reason(),
            Cause::Http { status, body } => {
                let body = body.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
                let body = crate::sanitize::clip(body, 240);
                if body.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {body}")
                }
            }
            Cause::Parse(m) => format!("could not read what the registry returned: {m}"),
            Cause::Tls(m) => format!("TLS: {m}"),
            Cause::Token(m) => format!("token endpoint: {m}"),
            Cause::Transport(m) => format!("connection: {m}"),
            Cause::TooLong(m) | Cause::Setup(m) | Cause::Insecure(m) => m.clone(),
        }
    }

    /// The docker-shaped view of a process failure, for docker's own wording.
    fn as_docker(&self) -> DockerError {
        let (status, stderr, timed_out, interrupted) = match &self.cause {
            Cause::Exit { status, stderr } => (*status, stderr.clone(), false, false),
            Cause::Timeout => (None, String::new(), true, false),
            Cause::Interrupted => (None, String::new(), false, true),
            Cause::Http { .. }
            | Cause::Parse(_)
            | Cause::Tls(_)
            | Cause::Token(_)
            | Cause::Transport(_)
            | Cause::TooLong(_)
            | Cause::Setup(_)
            | Cause::Insecure(_) => (None, String::new(), false, false),
        };
        DockerError { command: self.what.clone(), status, stderr, timed_out, interrupted }
    }
}

impl From<DockerError> for StepError {
    fn from(e: DockerError) -> Self {
        let cause = if e.interrupted {
            Cause::Interrupted
        } else if e.timed_out {
            Cause::Timeout
        } else {
            Cause::Exit { status: e.status, stderr: e.stderr }
        };
        StepError { what: e.command, cause }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            // Exactly docker's wording, which users and tests already know.
            Cause::Exit { .. } | Cause::Timeout | Cause::Interrupted => self.as_docker().fmt(f),
            // The reason starts with `HTTP {status}` already.
            Cause::Http { .. }
            | Cause::Parse(_)
            | Cause::Tls(_)
            | Cause::Token(_)
            | Cause::Transport(_)
            | Cause::TooLong(_)
            | Cause::Setup(_)
            | Cause::Insecure(_) => {
                write!(f, "`{}` failed: {}", self.what, self.reason())
            }
        }
    }
}

impl std::error::Error for StepError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnose::Classify;
    use crate::family::Family;

    fn docker(stderr: &str) -> DockerError {
        DockerError { command: "docker pull x".into(), status: Some(1), stderr: stderr.into(), timed_out: false, interrupted: false }
    }

    #[test]
    fn process_failures_read_as_before() {
        let d = docker("Error response from daemon: manifest unknown\n");
        let s = StepError::from(d.clone());
        assert_eq!(s.to_string(), d.to_string());
        assert_eq!(s.family(), Family::NotFound);
        let t = StepError::from(DockerError { timed_out: true, status: None, ..docker("") });
        assert_eq!((t.cause.clone(), t.family()), (Cause::Timeout, Family::Timeout));
        let i = StepError::from(DockerError { interrupted: true, timed_out: true, status: None, ..docker("") });
        assert_eq!(i.family(), Family::Interrupted);
    }

    #[test]
    fn every_cause_has_a_family() {
        let http = |s| StepError::http("GET https://r/v2/x/manifests/1", s, "").family();
        assert_eq!(http(401), Family::Auth);
        assert_eq!(http(403), Family::Permission);
        assert_eq!(http(404), Family::NotFound);
        assert_eq!(http(429), Family::RateLimit);
        assert_eq!(http(503), Family::Network);
        assert!(http(502).transient() && !http(404).transient());
        let p = StepError::parse("inspect r/x:1", "expected a JSON object");
        assert_eq!(p.family(), Family::Other);
        assert_eq!(p.to_string(), "`inspect r/x:1` failed: could not read what the registry returned: expected a JSON object");
        let h = StepError::http("GET u", 500, "{\"errors\":[]}\nmore");
        assert_eq!(h.to_string(), "`GET u` failed: HTTP 500: {\"errors\":[]}");
    }
}
