//! Engines carry out a plan through the docker CLI. `daemon` routes bytes
//! through the local engine (pull/tag/push); `imagetools` copies registry to
//! registry with buildx. `inspector` reads registries. All steps share the
//! context here: retries, timeouts, cancellation and events. Which engine a
//! run uses is decided here too (`choose`, `default_jobs`).

pub mod daemon;
pub mod imagetools;
pub mod inspector;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::diagnose::Classify;
use crate::docker::{Cmd, Docker, DockerError, Output};
use crate::retry::{self, Policy};
use crate::step_error::StepError;

pub use crate::failure::{Event, Failure};

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
    pub fn new(docker: &'a dyn Docker, limits: &Limits, cancel: &'a AtomicBool, events: &'a (dyn Fn(Event) + Sync)) -> Self {
        Ctx {
            docker,
            policy: Policy::with_base_ms(limits.retries, limits.retry_base_ms),
            cancel,
            timeouts: Timeouts::new(limits.timeout_secs),
            events,
            line: 0,
        }
    }

    pub fn line(self, line: usize) -> Self {
        Ctx { line, ..self }
    }

    /// Runs a docker command, retrying transient failures with backoff.
    pub fn run(&self, cmd: Cmd) -> Result<Output, DockerError> {
        self.retry(|| self.docker.run(&cmd))
    }

    /// Runs any step (a docker command, an HTTP request), retrying transient
    /// failures by family with backoff; a cancel cuts the wait short.
    pub fn retry<T, E: Classify>(&self, mut op: impl FnMut() -> Result<T, E>) -> Result<T, E> {
        let mut sleep = |d: Duration| {
            let until = Instant::now() + d;
            while Instant::now() < until && !self.cancel.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50).min(until.saturating_duration_since(Instant::now())));
            }
        };
        let mut on_retry = |attempt: u32, e: &E, wait: Duration| {
            (self.events)(Event::Retry {
                line: self.line,
                command: e.what(),
                attempt,
                wait,
                reason: e.reason(),
            })
        };
        retry::run(&self.policy, |_| op(), &mut sleep, &mut on_retry)
    }

    /// Runs once, no retry: for steps whose failure is an answer (e.g. "not found").
    pub fn run_once(&self, cmd: Cmd) -> Result<Output, DockerError> {
        self.docker.run(&cmd)
    }

    /// [`Ctx::run`] for steps that report a [`StepError`] (inspectors).
    pub fn run_step(&self, cmd: Cmd) -> Result<Output, StepError> {
        self.run(cmd).map_err(StepError::from)
    }

    pub fn step(&self, message: impl Into<String>) {
        (self.events)(Event::Step { line: self.line, message: message.into() })
    }

    pub fn warn(&self, message: impl Into<String>) {
        (self.events)(Event::Warning { line: self.line, message: message.into() })
    }
}

/// Inspection and transfer parallelism: `--jobs` sets both, else per engine.
pub fn default_jobs(engine: EngineKind, jobs: Option<usize>) -> (usize, usize) {
    match (jobs, engine) {
        (Some(j), _) => (j, j),
        (None, EngineKind::Imagetools) => (8, 4),
        // Disk: the daemon engine holds one entry's layers at a time.
        (None, EngineKind::Daemon) => (8, 1),
    }
}

/// `auto` picks imagetools when buildx answers.
pub fn choose(choice: crate::config::EngineChoice, buildx: bool) -> Result<EngineKind, String> {
    use crate::config::EngineChoice::*;
    match (choice, buildx) {
        (Daemon, _) | (Auto, false) => Ok(EngineKind::Daemon),
        (Imagetools, true) | (Auto, true) => Ok(EngineKind::Imagetools),
        (Imagetools, false) => Err(
            "--engine imagetools needs the docker buildx plugin, and `docker buildx version` did not answer. Install buildx (on GitHub runners: docker/setup-buildx-action) or use --engine auto".into(),
        ),
    }
}

pub fn buildx_available(docker: &dyn Docker) -> bool {
    docker.run(&Cmd::new(["buildx", "version"]).timeout(Duration::from_secs(30))).is_ok()
}

/// `--insecure` where the docker CLI needs it to reach a plain-HTTP loopback registry.
pub fn insecure_flag(reference: &str) -> Option<&'static str> {
    let host = reference.split('/').next().unwrap_or("");
    crate::reference::is_loopback_host(host).then_some("--insecure")
}
