//! The run's setup, decided in one place before any registry is read: when
//! docker starts ([`EngineStart`]), the reader ([`inspect::choose`]), the job
//! counts and the state file; and, for a run whose docker side waits, the
//! start of that side when the plan first copies something.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use super::{Run, RunError};
use crate::config::{EngineChoice, InspectChoice, Settings};
use crate::engine::EngineKind;
use crate::failure::{Event, Failure};
use crate::images::Entry;
use crate::inspect;
use crate::session::Session;
use crate::state::State;

/// When docker's side of the run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineStart {
    /// Detected before anything is read (`--inspect docker`, or no HTTP read
    /// path): the engine's facts and the logins come first, as before.
    Detected(EngineKind),
    /// Registries are read over HTTP: the engine, its facts and the logins
    /// wait until the plan copies something, so a no-op starts no process.
    OnFirstCopy,
}

/// The state file (`--state`): where it lives and the pairs it remembers.
pub struct StateFile {
    pub path: PathBuf,
    pub state: Mutex<State>,
}

/// What a run needs before it reads a registry, decided by [`setup`] alone.
pub struct Setup<'a> {
    pub engine: EngineStart,
    /// How the engine was detected up front, for the run's first lines.
    pub(super) detected: Option<Detected>,
    pub inspector: inspect::fallback::ReadPath<'a>,
    /// Reads over HTTP (the report then carries the registries' quotas).
    pub http: bool,
    pub inspect_jobs: usize,
    pub transfer_jobs: usize,
    /// Tag lists read at once (`--jobs`, else 8).
    pub tag_jobs: usize,
    pub state: Option<StateFile>,
}

/// What engine detection found: whether buildx answered, and why `auto` was overridden.
pub(super) struct Detected {
    buildx: bool,
    why: Option<String>,
}

impl StateFile {
    /// Writes the remembered pairs back when the run changed them; a failure is a warning.
    pub fn save(&self, events: &(dyn Fn(Event) + Sync)) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.changed() {
            if let Err(e) = st.save(&self.path) {
                events(Event::RunWarning { message: format!("could not save the state file {}: {e}", self.path.display()) });
            }
        }
    }
}

/// The run's docker logins: made once, when docker is first needed.
pub(super) struct Logins<'r> {
    session: &'r Session<'r>,
    /// What the run reads without logging in: docker finds it in the private config.
    read: Vec<String>,
    made: OnceLock<HashMap<String, Failure>>,
}

impl<'r> Logins<'r> {
    pub(super) fn new(session: &'r Session<'r>, entries: &[Entry]) -> Self {
        let s = &session.settings;
        let read = entries
            .iter()
            .map(|e| e.source.registry().to_string())
            .chain(s.targets.iter().filter(|t| t.username.is_none()).map(|t| t.registry.clone()))
            .collect();
        Logins { session, read, made: OnceLock::new() }
    }

    /// Failed logins by registry (a failed login fails that registry's targets, not the run).
    pub(super) fn get(&self) -> &HashMap<String, Failure> {
        self.made.get_or_init(|| {
            let read: Vec<&str> = self.read.iter().map(String::as_str).collect();
            if let Err(e) = self.session.share_read_credentials(&read) {
                let message = format!("credentials for the registries this run reads: {}", crate::sanitize::line(&e));
                (self.session.events())(Event::RunWarning { message });
            }
            let mut failures = self.session.login(&self.session.ctx());
            // The preset checks (issue 22), before the first copy: a target that cannot work fails here.
            failures.extend(crate::preset_check::before_copies(self.session, &failures));
            failures
        })
    }
}

/// Every registry the run touches (sources and targets): a plain-HTTP one decides the engine.
pub(super) fn touched<'e>(settings: &'e Settings, entries: &'e [Entry]) -> Vec<&'e str> {
    entries.iter().map(|e| e.source.registry()).chain(settings.targets.iter().map(|t| t.registry.as_str())).collect()
}

/// The engine a run that has not detected one reports and reads with: the
/// one named, else the daemon engine's reader (`docker manifest inspect`).
fn provisional(choice: EngineChoice) -> EngineKind {
    match choice {
        EngineChoice::Imagetools => EngineKind::Imagetools,
        _ => EngineKind::Daemon,
    }
}

/// The run's setup: settings that can never work are errors before anything
/// runs; then when docker starts, the reader, the job counts and the state file.
pub fn setup<'a>(session: &'a Session, entries: &[Entry], before_docker: &'a (dyn Fn() + Sync)) -> Result<Setup<'a>, RunError> {
    let settings = &session.settings;
    let events = session.events();
    // `--engine imagetools` with a plain-HTTP registry, docker or not; buildx
    // itself is asked only when something must be copied.
    crate::engine::choose_for(settings.engine, true, &settings.insecure_registries, &touched(settings, entries)).map_err(RunError::BadInput)?;
    let client = session.registry();
    let http = inspect::reads_http(settings.inspect, &client).map_err(RunError::BadInput)?;
    let (engine, detected) = if http {
        (EngineStart::OnFirstCopy, None)
    } else {
        let (kind, d) = detect_engine(session, entries)?;
        (EngineStart::Detected(kind), Some(d))
    };
    let (mut inspect_jobs, transfer_jobs) = crate::engine::default_jobs(engine_kind(engine, settings), settings.jobs);
    if http {
        inspect_jobs = settings.inspect_jobs.or(settings.jobs).unwrap_or(crate::config::DEFAULT_INSPECT_JOBS);
    }
    let chosen = inspect::choose(settings.inspect, client, engine_kind(engine, settings).reader(), inspect_jobs, before_docker).map_err(RunError::BadInput)?;
    if let Some(message) = chosen.note {
        events(Event::RunWarning { message });
    }
    let state = settings.state_file.clone().map(|path| {
        let (st, ignored) = State::load(&path);
        if let Some(i) = ignored {
            let message = format!("state file {} ignored ({}); it is rewritten after this run", i.path.display(), crate::sanitize::line(&i.reason));
            events(Event::RunWarning { message });
        }
        StateFile { path, state: Mutex::new(st) }
    });
    Ok(Setup { engine, detected, inspector: chosen.inspector, http, inspect_jobs, transfer_jobs, tag_jobs: settings.jobs.unwrap_or(8), state })
}

pub(super) fn engine_kind(start: EngineStart, settings: &Settings) -> EngineKind {
    match start {
        EngineStart::Detected(k) => k,
        EngineStart::OnFirstCopy => provisional(settings.engine),
    }
}

/// `docker buildx version` and the engine for the registries the run touches.
pub(super) fn detect_engine(session: &Session, entries: &[Entry]) -> Result<(EngineKind, Detected), RunError> {
    let settings = &session.settings;
    let buildx = crate::engine::buildx_available(session.docker(), crate::ctx::Timeouts::new(settings.timeout_secs).probe);
    let (engine, why) = crate::engine::choose_for(settings.engine, buildx, &settings.insecure_registries, &touched(settings, entries)).map_err(RunError::BadInput)?;
    Ok((engine, Detected { buildx, why }))
}

/// The run's first lines: how it reads and copies, and how much.
pub(super) fn say_start(session: &Session, engine: EngineKind, detected: Option<&Detected>, http: bool, entries: usize) {
    let settings = &session.settings;
    let say = |message: String| (session.events())(Event::Info { message });
    let targets = if settings.targets.is_empty() { "none (plan only)".to_string() } else { settings.mode.clone() };
    match detected {
        Some(d) => {
            if let Some(why) = &d.why {
                say(why.clone());
            }
            // Why this engine: auto's reason, or the setting (buildx is no reason under --engine daemon).
            let buildx = match (settings.engine, d.buildx) {
                (EngineChoice::Auto, true) => "auto: docker buildx found",
                (EngineChoice::Auto, false) => "auto: docker buildx not found",
                _ => "as set",
            };
            say(format!("engine: {} ({buildx}); entries: {entries}; targets: {targets}", engine.as_str()));
        }
        None if http => say(format!(
            "inspect: registry ({}); entries: {entries}; targets: {targets}",
            if settings.inspect == InspectChoice::Auto { "docker where HTTP cannot serve" } else { "HTTP only" },
        )),
        None => {}
    }
}

/// Starts docker's side of a run that waited for its plan: the engine, its
/// facts (`Run::prepare_copies`) and the first lines that name them.
pub(super) fn start_engine(session: &Session, entries: &[Entry], run: &mut Run) -> Result<(), RunError> {
    let (engine, detected) = detect_engine(session, entries)?;
    say_start(session, engine, Some(&detected), false, entries.len());
    run.options.engine = engine;
    // Signatures were planned for the engine auto picks with buildx; without
    // it the daemon engine's copies get new digests no signature applies to.
    run.signatures_need(engine == EngineKind::Imagetools);
    run.options.transfer_jobs = crate::engine::default_jobs(engine, session.settings.jobs).1;
    run.prepare_copies()
}
