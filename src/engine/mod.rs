//! Engines carry out a plan through the docker CLI. `daemon` routes bytes
//! through the local engine (pull/tag/push); `imagetools` copies registry to
//! registry with buildx. Both share the inspector, retries and timeouts here.

pub mod daemon;
pub mod imagetools;
pub mod inspector;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::diagnose;
use crate::docker::{Cmd, Docker, DockerError, Output};
use crate::retry::{self, Policy};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Daemon,
    Imagetools,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Daemon => "daemon",
            EngineKind::Imagetools => "imagetools",
        }
    }
}

/// Per-step time limits; `--timeout` caps them all.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub quick: Duration,
    pub inspect: Duration,
    pub transfer: Duration,
}

impl Timeouts {
    pub fn new(cap_secs: Option<u64>) -> Self {
        let cap = |d: u64| Duration::from_secs(cap_secs.map_or(d, |c| c.min(d).max(1)));
        Timeouts { quick: cap(60), inspect: cap(180), transfer: cap(3600) }
    }
}

/// Something worth telling the user while a step runs; the UI decides how.
#[derive(Clone, Debug)]
pub enum Event {
    Step { line: usize, message: String },
    Retry { line: usize, command: String, attempt: u32, wait: Duration, reason: String },
    Warning { line: usize, message: String },
    /// The entry needs nothing more.
    Finished { line: usize },
}

/// What every docker step needs: the CLI, retry policy, cancellation, and where events go.
pub struct Ctx<'a> {
    pub docker: &'a dyn Docker,
    pub policy: Policy,
    pub cancel: &'a AtomicBool,
    pub timeouts: Timeouts,
    pub events: &'a (dyn Fn(Event) + Sync),
    pub line: usize,
}

impl<'a> Ctx<'a> {
    /// A context for run-level steps (line 0); `line` moves it to an entry.
    pub fn new(
        docker: &'a dyn Docker,
        retries: u32,
        timeout_secs: Option<u64>,
        cancel: &'a AtomicBool,
        events: &'a (dyn Fn(Event) + Sync),
    ) -> Self {
        Ctx { docker, policy: Policy::new(retries), cancel, timeouts: Timeouts::new(timeout_secs), events, line: 0 }
    }

    pub fn line(self, line: usize) -> Self {
        Ctx { line, ..self }
    }

    /// Runs a docker command, retrying transient failures with backoff.
    pub fn run(&self, cmd: Cmd) -> Result<Output, DockerError> {
        let mut sleep = |d: Duration| {
            let until = Instant::now() + d;
            while Instant::now() < until && !self.cancel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
            }
        };
        let mut on_retry = |attempt: u32, e: &DockerError, wait: Duration| {
            (self.events)(Event::Retry {
                line: self.line,
                command: e.command.clone(),
                attempt,
                wait,
                reason: e.reason(),
            })
        };
        retry::run(&self.policy, |_| self.docker.run(&cmd), &mut sleep, &mut on_retry)
    }

    /// Runs once, no retry: for steps whose failure is an answer (e.g. "not found").
    pub fn run_once(&self, cmd: Cmd) -> Result<Output, DockerError> {
        self.docker.run(&cmd)
    }

    pub fn step(&self, message: impl Into<String>) {
        (self.events)(Event::Step { line: self.line, message: message.into() })
    }

    pub fn warn(&self, message: impl Into<String>) {
        (self.events)(Event::Warning { line: self.line, message: message.into() })
    }
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

    pub fn new(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Failure { error: error.into(), hint: hint.into() }
    }
}

/// `--insecure` where the docker CLI needs it to reach a plain-HTTP loopback registry.
pub fn insecure_flag(reference: &str) -> Option<&'static str> {
    let host = reference.split('/').next().unwrap_or("");
    crate::reference::is_loopback_host(host).then_some("--insecure")
}
