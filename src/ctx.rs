//! The context every step runs in, whatever carries it out (a docker
//! process, an HTTP request): retries by family, time limits, cancellation,
//! where events go and where requests are counted. Built by the session
//! ([`crate::session::Session::ctx`]) and narrowed per entry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::diagnose::Classify;
use crate::docker::{Cmd, Docker, DockerError, Output};
use crate::failure::Event;
use crate::retry::{self, Policy};
use crate::step_error::StepError;

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

#[derive(Clone)]
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

    /// The same context running its docker steps through `docker` (e.g. a
    /// counting wrapper for one entry).
    pub fn with_docker<'b>(&self, docker: &'b dyn Docker) -> Ctx<'b>
    where
        'a: 'b,
    {
        Ctx { docker, policy: self.policy.clone(), key: self.key.clone(), ..*self }
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
