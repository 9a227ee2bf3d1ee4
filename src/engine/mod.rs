//! Engines carry out a plan through the docker CLI. `daemon` routes bytes
//! through the local engine (pull/tag/push); `imagetools` copies registry to
//! registry with buildx. The inspectors read registries: through docker
//! (`inspector`: buildx `--raw`, `docker manifest inspect`) or over HTTP
//! (`registry_inspector`, with the client in `src/registry/`). All steps share
//! the context here: retries, timeouts, cancellation and events. Which engine a
//! run uses is decided here too (`choose`, `default_jobs`).

pub mod daemon;
pub mod imagetools;
pub mod inspector;
pub mod registry_inspector;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::diagnose::Classify;
use crate::docker::{Cmd, Docker, DockerError, Output};
use crate::failure::Event;
use crate::retry::{self, Policy};
use crate::step_error::StepError;

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
    /// `docker buildx version`, `docker info`: answers in a second when docker works.
    pub probe: Duration,
    pub quick: Duration,
    pub inspect: Duration,
    pub transfer: Duration,
}

impl Timeouts {
    pub fn new(cap_secs: Option<u64>) -> Self {
        let cap = |d: u64| Duration::from_secs(cap_secs.map_or(d, |c| c.min(d).max(1)));
        Timeouts { probe: cap(30), quick: cap(60), inspect: cap(180), transfer: cap(3600) }
    }
}

/// What every docker step needs: the CLI, retry policy, cancellation, and where events go.
pub struct Ctx<'a> {
    pub docker: &'a dyn Docker,
    pub policy: Policy,
    pub cancel: &'a AtomicBool,
    pub timeouts: Timeouts,
    pub events: &'a (dyn Fn(Event) + Sync),
    /// The entry's `Entry::key()` for events; empty for run-level steps.
    pub key: String,
    /// INSECURE_REGISTRIES: plain-HTTP registries besides loopback ones.
    pub insecure: &'a [String],
    /// Where this entry's HTTP requests are counted (the registry inspector).
    pub requests: Option<&'a crate::registry::Tally>,
}

impl<'a> Ctx<'a> {
    /// A context for run-level steps; `key` (or `line`) moves it to an entry.
    pub fn new(docker: &'a dyn Docker, limits: &Limits, cancel: &'a AtomicBool, events: &'a (dyn Fn(Event) + Sync)) -> Self {
        Ctx {
            docker,
            policy: Policy::with_base_ms(limits.retries, limits.retry_base_ms),
            cancel,
            timeouts: Timeouts::new(limits.timeout_secs),
            events,
            key: String::new(),
            insecure: &[],
            requests: None,
        }
    }

    /// Events of this context go to the entry with this `Entry::key()`.
    pub fn key(self, key: impl Into<String>) -> Self {
        Ctx { key: key.into(), ..self }
    }

    pub fn line(self, line: usize) -> Self {
        self.key(line.to_string())
    }

    /// Counts this context's HTTP requests in `tally`.
    pub fn requests(self, tally: &'a crate::registry::Tally) -> Self {
        Ctx { requests: Some(tally), ..self }
    }

    /// The registries docker must reach over plain HTTP (`Settings::insecure_registries`).
    pub fn insecure(self, insecure: &'a [String]) -> Self {
        Ctx { insecure, ..self }
    }

    /// `--insecure` when the docker CLI needs it to reach `reference`'s registry.
    pub fn insecure_flag(&self, reference: &str) -> Option<&'static str> {
        insecure_flag(self.insecure, reference)
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
                key: self.key.clone(),
                command: e.what(),
                attempt,
                wait,
                reason: e.reason(),
            })
        };
        retry::run(&self.policy, |_| op(), &mut sleep, &mut on_retry, &|| self.cancel.load(Ordering::SeqCst))
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
        (self.events)(Event::Step { key: self.key.clone(), message: message.into() })
    }

    pub fn warn(&self, message: impl Into<String>) {
        (self.events)(Event::Warning { key: self.key.clone(), message: message.into() })
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

/// `timeout`: [`Timeouts::probe`], so `--timeout` bounds it too.
pub fn buildx_available(docker: &dyn Docker, timeout: Duration) -> bool {
    docker.run(&Cmd::new(["buildx", "version"]).timeout(timeout)).is_ok()
}

/// `--insecure` where the docker CLI needs it: a loopback registry (the tests',
/// a local mirror) or one listed in INSECURE_REGISTRIES (`insecure`). Only
/// `docker manifest` takes it; pulls and pushes follow the engine's own
/// insecure-registries (doctor checks them).
pub fn insecure_flag(insecure: &[String], reference: &str) -> Option<&'static str> {
    let host = registry_of(reference);
    (crate::reference::is_loopback_host(host) || crate::config::is_listed_insecure(insecure, host)).then_some("--insecure")
}

/// The registry part of a normalized reference (`host[:port]/path:tag`).
fn registry_of(reference: &str) -> &str {
    reference.split('/').next().unwrap_or("")
}

/// The engine for a run that touches `registries` (sources and targets).
/// imagetools reads registries from buildx's builder, which speaks plain HTTP
/// only to loopback unless the builder is a container configured for it (an
/// image from Docker Hub, and a buildkitd.toml); the daemon engine needs only
/// the engine's insecure-registries. So a run that touches a non-loopback
/// INSECURE_REGISTRIES entry uses the daemon engine as a whole (one engine per
/// run keeps one inspector and one report shape); `--engine imagetools` then
/// is an error. Returns the engine and, when `auto` was overridden, why.
pub fn choose_for(
    choice: crate::config::EngineChoice,
    buildx: bool,
    insecure: &[String],
    registries: &[&str],
) -> Result<(EngineKind, Option<String>), String> {
    let engine = choose(choice, buildx)?;
    let plain = registries
        .iter()
        .find(|r| crate::config::is_listed_insecure(insecure, r) && !crate::reference::is_loopback_host(r));
    match (engine, plain) {
        (EngineKind::Imagetools, Some(r)) if choice == crate::config::EngineChoice::Imagetools => Err(format!(
            "--engine imagetools cannot reach {r} (INSECURE_REGISTRIES, plain HTTP): buildx's builder speaks HTTPS to it. Use --engine daemon or auto (the Docker engine lists it in insecure-registries)"
        )),
        (EngineKind::Imagetools, Some(r)) => {
            Ok((EngineKind::Daemon, Some(format!("daemon engine: {r} is in INSECURE_REGISTRIES (plain HTTP), which buildx's imagetools cannot reach"))))
        }
        (engine, _) => Ok((engine, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineChoice::{Auto, Daemon, Imagetools};

    #[test]
    fn insecure_flag_for_loopback_and_listed_registries() {
        let listed = vec!["10.0.0.9:5000".to_string(), "mirror.lan".to_string()];
        assert_eq!(insecure_flag(&[], "127.0.0.1:5000/a/b:1"), Some("--insecure"));
        assert_eq!(insecure_flag(&[], "10.0.0.9:5000/a/b:1"), None);
        assert_eq!(insecure_flag(&listed, "10.0.0.9:5000/a/b:1"), Some("--insecure"));
        assert_eq!(insecure_flag(&listed, "Mirror.LAN/a/b@sha256:00"), Some("--insecure"));
        assert_eq!(insecure_flag(&listed, "mirror.lan:443/a/b:1"), None, "another port is another registry");
        assert_eq!(insecure_flag(&listed, "docker.io/library/nginx:1"), None);
    }

    #[test]
    fn a_plain_http_registry_picks_the_daemon_engine_for_the_run() {
        let listed = vec!["10.0.0.9:5000".to_string(), "127.0.0.1:5000".to_string()];
        let regs = ["docker.io", "10.0.0.9:5000"];
        // auto with buildx: daemon, and it says why.
        let (e, why) = choose_for(Auto, true, &listed, &regs).unwrap();
        assert_eq!(e, EngineKind::Daemon);
        assert!(why.unwrap().contains("10.0.0.9:5000 is in INSECURE_REGISTRIES"));
        // Explicit imagetools: an error naming the registry and the way out.
        let err = choose_for(Imagetools, true, &listed, &regs).unwrap_err();
        assert!(err.contains("10.0.0.9:5000") && err.contains("--engine daemon"), "{err}");
        // Listed loopback registries are reachable by imagetools as before.
        assert_eq!(choose_for(Auto, true, &listed, &["127.0.0.1:5000"]).unwrap(), (EngineKind::Imagetools, None));
        // Untouched listed registries change nothing; daemon stays daemon.
        assert_eq!(choose_for(Auto, true, &listed, &["ghcr.io"]).unwrap(), (EngineKind::Imagetools, None));
        assert_eq!(choose_for(Daemon, true, &listed, &regs).unwrap(), (EngineKind::Daemon, None));
        assert_eq!(choose_for(Auto, false, &listed, &regs).unwrap(), (EngineKind::Daemon, None));
    }

    #[test]
    fn a_cancel_stops_the_retry_loop_at_once() {
        // Audit 2 #9: after Ctrl-C the remaining retries went out back to back.
        struct NoDocker;
        impl Docker for NoDocker {
            fn run(&self, _: &Cmd) -> Result<crate::docker::Output, crate::docker::DockerError> {
                unreachable!()
            }
        }
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let limits = crate::config::Limits { retries: 20, timeout_secs: None, retry_base_ms: 1 };
        let ctx = Ctx::new(&NoDocker, &limits, &cancel, &|_| {});
        let mut calls = 0;
        let r: Result<(), crate::step_error::StepError> = ctx.retry(|| {
            calls += 1;
            cancel.store(true, Ordering::SeqCst);
            Err(crate::step_error::StepError::http("GET http://127.0.0.1:1/v2/x/manifests/v1", 503, ""))
        });
        assert!(r.is_err());
        assert_eq!(calls, 1, "no request after the cancel");
    }

    #[test]
    fn the_timeout_flag_bounds_the_probes() {
        // Audit 2 (side note): `--timeout 2` left `docker buildx version` at a fixed 30 s.
        struct Recording(std::sync::Mutex<Vec<Duration>>);
        impl Docker for Recording {
            fn run(&self, cmd: &Cmd) -> Result<crate::docker::Output, crate::docker::DockerError> {
                self.0.lock().unwrap().push(cmd.timeout);
                Ok(crate::docker::Output { stdout: Vec::new(), stderr: String::new() })
            }
        }
        let d = Recording(Default::default());
        assert!(buildx_available(&d, Timeouts::new(Some(2)).probe));
        assert_eq!(*d.0.lock().unwrap(), [Duration::from_secs(2)]);
        assert_eq!(Timeouts::new(None).probe, Duration::from_secs(30));
    }
}
