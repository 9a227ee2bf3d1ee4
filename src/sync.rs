//! One run in two phases. Inspect: ask the registries what every entry's
//! source and targets hold (in parallel) and decide per target, giving a
//! [`Plan`]. Execute: copy what the plan says differs and record each outcome
//! in the [`Report`]. How registries are read is the [`Inspector`]'s business;
//! copies go through the engine (`engine::daemon` or `engine::imagetools`);
//! what to show the user goes out as events.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;

use crate::concurrency::{parallel_map, InUse};
use crate::config::Settings;
use crate::docker::{Counting, Docker};
use crate::engine::inspector::{self, Inspector};
use crate::engine::{daemon, imagetools, Ctx, EngineKind};
use crate::failure::{Event, Failure};
use crate::images::Entry;
use crate::inspect::{Image, Inspection};
use crate::plan::{self, Decision, EntryPlan, Plan, Verdict, Why};
use crate::registry::{Counts, Tally};
use crate::state::PairKey;
use crate::report::{EntryReport, Report, Status, TargetReport};
use crate::session::Session;
use crate::ui::Ui;

pub struct Options {
    pub dry_run: bool,
    pub force: bool,
    pub engine: EngineKind,
    pub caps: imagetools::Caps,
    pub inspect_jobs: usize,
    pub transfer_jobs: usize,
    /// Docker's data root when it is on this machine, for the low-disk guard.
    pub docker_root: Option<std::path::PathBuf>,
    /// Image IDs the engine held before the run (daemon engine): never deleted.
    pub local_images: std::collections::HashSet<String>,
}

/// Why a run could not start.
pub enum RunError {
    /// A setting the environment cannot satisfy (e.g. `--engine imagetools` without buildx).
    BadInput(String),
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Fatal(e)
    }
}

/// Runs `sync`, `plan` or `copy` in an open session: picks the inspector,
/// inspects, and carries out the plan. With the HTTP read path (`--inspect
/// auto|registry`) everything docker-side (logins, engine detection, `docker
/// info`, local images, imagetools caps) waits until something must be
/// copied: a no-op run starts no docker process. `--inspect docker` detects
/// the engine and logs in up front, as before.
pub fn run(session: &Session, ui: &Ui, entries: &[Entry], dests: &[plan::Destinations], dry_run: bool, force: bool) -> Result<Report, RunError> {
    use crate::config::{EngineChoice, InspectChoice};
    let settings = &session.settings;
    let docker = session.docker();
    // Settings that can never work are errors before anything runs, docker or
    // not (`--engine imagetools` with a plain-HTTP registry); buildx itself is
    // asked only when something must be copied.
    let registries: Vec<&str> = entries.iter().map(|e| e.source.registry()).chain(settings.targets.iter().map(|t| t.registry.as_str())).collect();
    crate::engine::choose_for(settings.engine, true, &settings.insecure_registries, &registries).map_err(RunError::BadInput)?;
    let logins: std::sync::OnceLock<HashMap<String, Failure>> = std::sync::OnceLock::new();
    // What the run reads without logging in: docker finds it in the private config.
    let read_registries: Vec<&str> = entries
        .iter()
        .map(|e| e.source.registry())
        .chain(settings.targets.iter().filter(|t| t.username.is_none()).map(|t| t.registry.as_str()))
        .collect();
    let login_once = || {
        logins.get_or_init(|| {
            if let Err(e) = session.share_read_credentials(&read_registries) {
                ui.warn(&format!("credentials for the registries this run reads: {}", crate::sanitize::line(&e)));
            }
            session.login(&session.ctx())
        })
    };
    let before_docker = || {
        login_once();
    };
    let fallback: Box<dyn Inspector> =
        inspector::for_engine(if settings.engine == EngineChoice::Imagetools { EngineKind::Imagetools } else { EngineKind::Daemon });
    let mut lazy = settings.inspect != InspectChoice::Docker;
    let mut chosen = None;
    if lazy {
        match inspector::choose(session, EngineKind::Daemon, fallback.as_ref(), &before_docker) {
            Ok(i) => chosen = Some(i),
            Err(e) if settings.inspect == InspectChoice::Registry => return Err(RunError::BadInput(format!("--inspect registry: {e}"))),
            Err(e) => {
                ui.warn(&format!("the HTTP read path is unavailable ({e}); reading registries with docker"));
                lazy = false;
            }
        }
    }
    let eager = if lazy { None } else { Some(detect_engine(session, ui, entries)?) };
    let inspector = match (chosen, eager) {
        (Some(i), _) => i,
        (None, Some(e)) => inspector::for_engine(e),
        (None, None) => unreachable!("either lazy or detected"),
    };
    let engine = eager.unwrap_or(match settings.engine {
        EngineChoice::Imagetools => EngineKind::Imagetools,
        _ => EngineKind::Daemon,
    });
    let (mut inspect_jobs, transfer_jobs) = crate::engine::default_jobs(engine, settings.jobs);
    if lazy {
        inspect_jobs = settings.inspect_jobs.or(settings.jobs).unwrap_or(crate::config::DEFAULT_INSPECT_JOBS);
        ui.info(&format!(
            "inspect: registry ({}); entries: {}; targets: {}",
            if settings.inspect == InspectChoice::Auto { "docker where HTTP cannot serve" } else { "HTTP only" },
            entries.len(),
            if settings.targets.is_empty() { "none (plan only)".to_string() } else { settings.mode.clone() }
        ));
    }
    let state_path = settings.state_file.clone().or_else(|| crate::state::default_path(&|k| std::env::var(k).ok()));
    let state = state_path.as_deref().map(|p| {
        let (st, ignored) = crate::state::State::load(p);
        if let Some(i) = ignored {
            ui.warn(&format!("state file {} ignored ({}); it is rewritten after this run", i.path.display(), crate::sanitize::line(&i.reason)));
        }
        std::sync::Mutex::new(st)
    });
    let dry_run = dry_run || settings.targets.is_empty();
    let mut run = Run {
        docker,
        inspector: inspector.as_ref(),
        settings,
        options: Options { dry_run, force, engine, caps: imagetools::Caps::default(), inspect_jobs, transfer_jobs, docker_root: None, local_images: Default::default() },
        cancel: &session.cancel,
        events: session.events(),
        in_use: Default::default(),
        state: state.as_ref(),
        lazy,
    };
    if !lazy {
        run.prepare_copies()?;
    }
    ui.start(entries.len());
    let no_failures = HashMap::new();
    let login_failures = if lazy { &no_failures } else { login_once() };
    let mut plan = run.inspect(entries, dests, login_failures);
    let mut reported_engine = Some(engine.as_str());
    if lazy {
        if !dry_run && plan.entries.iter().any(EntryPlan::copies) {
            // Now, and only now, docker: the engine, its facts, the logins.
            let prepared = detect_engine(session, ui, entries).and_then(|engine| {
                run.options.engine = engine;
                run.options.transfer_jobs = crate::engine::default_jobs(engine, settings.jobs).1;
                run.prepare_copies().map(|()| engine)
            });
            let engine = match prepared {
                Ok(e) => e,
                Err(e) => {
                    ui.finish();
                    return Err(e);
                }
            };
            before_docker();
            let failures = logins.get().expect("logged in");
            for p in &mut plan.entries {
                for (d, t) in p.decisions.iter_mut().zip(&settings.targets) {
                    if let (true, Some(f)) = (d.copies(), failures.get(&t.registry)) {
                        *d = Decision::Failed(f.clone());
                    }
                }
            }
            reported_engine = Some(engine.as_str());
        } else if settings.engine == EngineChoice::Auto {
            reported_engine = None;
        }
    }
    let mut report = run.carry_out(entries, dests, plan);
    report.engine = reported_engine.map(str::to_string);
    if lazy {
        if let Ok(client) = session.registry() {
            report.rate_limits = client.rate_limits();
        }
    }
    ui.finish();
    if let (Some(path), Some(state)) = (state_path.as_deref(), state.as_ref()) {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        if st.changed() {
            if let Err(e) = st.save(path) {
                ui.warn(&format!("could not save the state file {}: {e}", path.display()));
            }
        }
    }
    Ok(report)
}

/// `docker buildx version` and the engine for the registries the run touches.
fn detect_engine(session: &Session, ui: &Ui, entries: &[Entry]) -> Result<EngineKind, RunError> {
    let settings = &session.settings;
    let buildx = crate::engine::buildx_available(session.docker(), crate::engine::Timeouts::new(settings.timeout_secs).probe);
    // Every registry the run touches: a plain-HTTP one decides the engine.
    let registries: Vec<&str> = entries.iter().map(|e| e.source.registry()).chain(settings.targets.iter().map(|t| t.registry.as_str())).collect();
    let (engine, why) = crate::engine::choose_for(settings.engine, buildx, &settings.insecure_registries, &registries).map_err(RunError::BadInput)?;
    if let Some(why) = why {
        ui.info(&why);
    }
    ui.info(&format!(
        "engine: {} ({}); entries: {}; targets: {}",
        engine.as_str(),
        // Why this engine: auto's reason, or the setting (buildx is no reason under --engine daemon).
        match (settings.engine, buildx) {
            (crate::config::EngineChoice::Auto, true) => "auto: docker buildx found",
            (crate::config::EngineChoice::Auto, false) => "auto: docker buildx not found",
            _ => "as set",
        },
        entries.len(),
        if settings.targets.is_empty() { "none (plan only)".to_string() } else { settings.mode.clone() }
    ));
    Ok(engine)
}

/// An entry's statuses over its targets, each once: `synced`, `up-to-date, failed`.
fn outcome<'s>(statuses: impl Iterator<Item = &'s str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in statuses {
        if !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.join(", ")
}

pub struct Run<'a> {
    pub docker: &'a dyn Docker,
    /// Chosen once by the session; the run never asks which one it is.
    pub inspector: &'a dyn Inspector,
    pub settings: &'a Settings,
    pub options: Options,
    pub cancel: &'a AtomicBool,
    pub events: &'a (dyn Fn(Event) + Sync),
    pub in_use: InUse,
    /// Remembered pairs (`--state`), shared by the run's threads.
    pub state: Option<&'a std::sync::Mutex<crate::state::State>>,
    /// The engine is decided after the plan (HTTP read path): the source's
    /// configs for the daemon engine are read only for copies.
    pub lazy: bool,
}

/// One copy outcome per target (the pushed digest, or why not), the docker
/// calls and the HTTP requests it took.
type Copied = (Vec<Result<String, Failure>>, usize, Counts);

impl Run<'_> {
    /// What copies need from docker before they start: the data root (disk
    /// guard) and the images the engine held (daemon), buildx's caps (imagetools).
    fn prepare_copies(&mut self) -> Result<(), RunError> {
        let (engine, dry_run) = (self.options.engine, self.options.dry_run);
        let docker = self.docker;
        self.options.docker_root = (engine == EngineKind::Daemon && !dry_run)
            .then(|| {
                let probe = crate::engine::Timeouts::new(self.settings.timeout_secs).probe;
                docker.run(&crate::docker::Cmd::new(["info", "--format", "{{.DockerRootDir}}"]).timeout(probe)).ok()
            })
            .flatten()
            .map(|o| std::path::PathBuf::from(o.stdout_text().trim()))
            .filter(|p| p.is_dir());
        let base_ctx = Ctx::new(docker, &self.settings.limits(), self.cancel, self.events).insecure(&self.settings.insecure_registries);
        if engine == EngineKind::Daemon && !dry_run {
            self.options.local_images = daemon::local_images(&base_ctx).map_err(|f| anyhow::anyhow!("{} — {}", f.error, f.hint))?;
        }
        if engine == EngineKind::Imagetools && !dry_run {
            self.options.caps = imagetools::detect_caps(&base_ctx);
        }
        Ok(())
    }

    fn ctx<'b>(&'b self, docker: &'b dyn Docker, entry: &Entry) -> Ctx<'b> {
        Ctx::new(docker, &self.settings.limits(), self.cancel, self.events).key(entry.key()).insecure(&self.settings.insecure_registries)
    }

    /// Both phases: inspect into a plan, then carry it out.
    #[cfg(test)]
    pub fn execute(&self, entries: &[Entry], dests: &[plan::Destinations], login_failures: &HashMap<String, Failure>) -> Report {
        let plan = self.inspect(entries, dests, login_failures);
        self.carry_out(entries, dests, plan)
    }

    /// The inspect phase: one [`EntryPlan`] per entry. Targets whose login failed fail here.
    pub fn inspect(&self, entries: &[Entry], dests: &[plan::Destinations], login_failures: &HashMap<String, Failure>) -> Plan {
        let work: Vec<(&Entry, &plan::Destinations)> = entries.iter().zip(dests).collect();
        let refs: Vec<String> = entries.iter().map(|e| e.source.to_string()).chain(dests.iter().flat_map(|d| d.refs.iter().cloned())).collect();
        self.inspector.expect(&refs);
        let interrupted = |_: &(&Entry, &plan::Destinations)| {
            EntryPlan::failed(Failure::new("interrupted before this entry started", crate::family::Family::Interrupted.hint()))
        };
        let entries = parallel_map(&work, self.options.inspect_jobs, self.cancel, |(e, d)| self.plan_entry(e, d, login_failures), interrupted);
        Plan { entries }
    }

    /// The execute phase: copies what the plan says differs (unless dry-run), then reports.
    pub fn carry_out(&self, entries: &[Entry], dests: &[plan::Destinations], plan: Plan) -> Report {
        let work: Vec<(&Entry, &plan::Destinations)> = entries.iter().zip(dests).collect();
        let pending: Vec<(usize, &Entry, &plan::Destinations, &EntryPlan)> = work
            .iter()
            .zip(&plan.entries)
            .enumerate()
            .filter(|(_, (_, p))| !self.options.dry_run && p.copies())
            .map(|(n, ((e, d), p))| (n, *e, *d, p))
            .collect();
        let copied = parallel_map(
            &pending,
            self.options.transfer_jobs,
            self.cancel,
            |(_, e, d, p)| self.copy_entry(e, d, p),
            |(_, _, _, p)| {
                let f = Failure::new("interrupted before the copy started", crate::family::Family::Interrupted.hint());
                (p.decisions.iter().map(|dec| if dec.copies() { Err(f.clone()) } else { Ok(String::new()) }).collect(), 0, Counts::default())
            },
        );
        let mut copy_results: HashMap<usize, Copied> = pending.iter().map(|(n, ..)| *n).zip(copied).collect();
        let reports = work
            .iter()
            .zip(plan.entries)
            .enumerate()
            .map(|(n, ((e, d), p))| self.entry_report(e, d, p, copy_results.remove(&n)))
            .collect();
        Report::new(self.options.engine.as_str(), reports)
    }

    fn plan_entry(&self, entry: &Entry, dests: &plan::Destinations, login_failures: &HashMap<String, Failure>) -> EntryPlan {
        let counter = Counting::new(self.docker);
        let tally = Tally::default();
        let ctx = self.ctx(&counter, entry).requests(&tally);
        let mut out = EntryPlan::default();
        let known = match self.heads_first(&ctx, entry, dests, login_failures) {
            Some(Ok(decided)) => {
                out = decided;
                None
            }
            Some(Err(known)) => Some(known),
            None => Some(vec![None; dests.refs.len()]),
        };
        if let Some(known) = known {
            match self.inspect_source(&ctx, entry) {
                Ok((insp, selected)) => {
                    out.decisions = self
                        .settings
                        .targets
                        .iter()
                        .zip(&dests.refs)
                        .zip(known)
                        .map(|((t, r), k)| match (login_failures.get(&t.registry), k) {
                            (Some(f), _) => Decision::Failed(f.clone()),
                            (None, Some(d)) => d,
                            (None, None) => self.decide(&ctx, r, entry, &insp, &selected),
                        })
                        .collect();
                    out.inspection = Some(insp);
                    out.selected = selected;
                }
                Err(f) => out.failure = Some(f),
            }
        }
        // The registry refused the run's own credentials for a target: say
        // whose (as a failed `docker login` would), never the secret.
        let auth_hint = crate::family::Family::Auth.hint();
        for (d, t) in out.decisions.iter_mut().zip(&self.settings.targets) {
            if let (Decision::Failed(f), Some(user)) = (d, t.username.as_deref()) {
                if f.hint == auth_hint && !f.error.starts_with("login to ") {
                    f.error = format!("login to {} as {user} refused: {}", t.registry, f.error);
                }
            }
        }
        if self.options.dry_run || !out.copies() {
            let statuses = out.decisions.iter().map(|d| match d {
                _ if out.failure.is_some() => "failed",
                Decision::UpToDate => "up-to-date",
                Decision::Copy(_) => "would-sync",
                Decision::Failed(_) => "failed",
            });
            let status = if out.decisions.is_empty() && out.failure.is_some() { "failed".to_string() } else { outcome(statuses) };
            (self.events)(Event::Outcome { key: entry.key(), status });
            (self.events)(Event::Finished { key: entry.key() });
        }
        out.calls = counter.count();
        out.requests = tally.snapshot();
        out
    }

    /// The cheap question first, when the inspector answers it without a
    /// process or a pull: the digests of the source and of every target, at
    /// once. Equal digests, or a remembered pair matching both exactly, are
    /// up to date with no GET. `Some(Ok)`: decided without content;
    /// `Some(Err(known))`: what the digests settled (missing targets, up to
    /// date ones, failures), the rest needs content; `None`: not asked.
    fn heads_first(
        &self,
        ctx: &Ctx,
        entry: &Entry,
        dests: &plan::Destinations,
        login_failures: &HashMap<String, Failure>,
    ) -> Option<Result<EntryPlan, Vec<Option<Decision>>>> {
        let src = entry.source.to_string();
        if self.options.force || !self.inspector.head_first(&src) || !dests.refs.iter().all(|r| self.inspector.head_first(r)) {
            return None;
        }
        let asked: Vec<(usize, &String)> =
            dests.refs.iter().enumerate().filter(|(i, _)| !login_failures.contains_key(&self.settings.targets[*i].registry)).collect();
        ctx.step(format!("inspect {src}"));
        let (source, targets) = std::thread::scope(|sc| {
            let handles: Vec<_> = asked.iter().map(|(_, r)| sc.spawn(move || self.inspector.head_digest(ctx, r))).collect();
            let source = self.inspector.head_digest(ctx, &src);
            let targets: Vec<_> = handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
            (source, targets)
        });
        let source = match source {
            Ok(Some(d)) => d,
            Ok(None) => {
                return Some(Ok(EntryPlan::failed(Failure::new(format!("{src} was not found in its registry"), crate::family::Family::NotFound.hint()))))
            }
            Err(e) => return Some(Ok(EntryPlan::failed(Failure::from_step(&e)))),
        };
        let platforms: Vec<String> = entry.platforms.iter().map(|p| p.to_string()).collect();
        let mut known: Vec<Option<Decision>> = vec![None; dests.refs.len()];
        for ((i, r), t) in asked.iter().zip(targets) {
            known[*i] = match t {
                Ok(Some(t)) if t == source => Some(Decision::UpToDate),
                Ok(Some(t)) if self.remembered(&PairKey::new(&src, &platforms, r), &source, &t) => Some(Decision::UpToDate),
                Ok(Some(_)) => None,
                Ok(None) => Some(Decision::Copy(Why::Missing)),
                Err(e) => Some(Decision::Failed(Failure::from_step(&e))),
            };
        }
        for (i, t) in self.settings.targets.iter().enumerate() {
            if let Some(f) = login_failures.get(&t.registry) {
                known[i] = Some(Decision::Failed(f.clone()));
            }
        }
        if known.iter().all(|k| matches!(k, Some(Decision::UpToDate) | Some(Decision::Failed(_)))) {
            let decisions = known.into_iter().map(|k| k.expect("all known")).collect();
            return Some(Ok(EntryPlan { decisions, ..Default::default() }));
        }
        Some(Err(known))
    }

    fn remembered(&self, key: &PairKey, source: &str, target: &str) -> bool {
        self.state.is_some_and(|s| s.lock().unwrap_or_else(|e| e.into_inner()).is_up_to_date(key, source, target))
    }

    fn remember(&self, key: PairKey, source: &str, target: &str) {
        if let Some(s) = self.state {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            s.lock().unwrap_or_else(|e| e.into_inner()).remember(key, source, target, now);
        }
    }

    fn inspect_source(&self, ctx: &Ctx, entry: &Entry) -> Result<(Inspection, Vec<Image>), Failure> {
        let src = entry.source.to_string();
        ctx.step(format!("inspect {src}"));
        let mut insp = self
            .inspector
            .inspect(ctx, &src, !entry.platforms.is_empty())
            .map_err(|e| Failure::from_step(&e))?
            .ok_or_else(|| Failure::new(format!("{src} was not found in its registry"), crate::family::Family::NotFound.hint()))?;
        let mut selected = insp
            .select(&entry.platforms)
            .map_err(|m| Failure::new(format!("{src}: {m}"), crate::family::Family::PlatformMissing.hint()))?;
        if selected.is_empty() {
            return Err(Failure::new(format!("{src} holds no runnable image (only attestations)"), "check the source tag"));
        }
        // The daemon engine keys local images by config digest (the image ID).
        // When the engine waits for the plan, `copy_entry` reads them.
        if !self.lazy && self.options.engine == EngineKind::Daemon && selected.iter().any(|i| i.config.is_none()) {
            let want: Vec<String> = selected.iter().map(|i| i.digest.clone()).collect();
            self.inspector.fill_configs(ctx, &entry.source.name(), &mut insp, &want).map_err(|e| Failure::from_step(&e))?;
            selected = insp.select(&entry.platforms).map_err(|m| Failure::new(m, "check --platform"))?;
        }
        Ok((insp, selected))
    }

    fn decide(&self, ctx: &Ctx, reference: &str, entry: &Entry, src: &Inspection, selected: &[Image]) -> Decision {
        if self.options.force {
            return Decision::Copy(Why::Forced);
        }
        let dst = match self.inspector.inspect(ctx, reference, false) {
            Ok(d) => d,
            Err(e) => return Decision::Failed(Failure::from_step(&e)),
        };
        let missing = dst.is_none();
        let dst_digest = dst.as_ref().and_then(|d| d.digest.clone());
        // Selected platforms the target has no image for: the plan's reason names them.
        let lacking: Vec<String> = dst
            .as_ref()
            .map(|d| {
                let have: Vec<_> = d.images.iter().filter_map(|i| i.platform.as_ref()).collect();
                selected.iter().filter_map(|s| s.platform.as_ref()).filter(|p| !have.iter().any(|h| h.matches(p))).map(|p| p.to_string()).collect()
            })
            .unwrap_or_default();
        match inspector::compare_with_configs(self.inspector, ctx, &entry.source.name(), src, selected, reference, dst) {
            Ok(Verdict::Same) => {
                // Verified by content: the next run's HEADs need no GET.
                if let (Some(s), Some(t)) = (src.digest.as_deref(), dst_digest.as_deref()) {
                    if s != t {
                        let platforms: Vec<String> = entry.platforms.iter().map(|p| p.to_string()).collect();
                        self.remember(PairKey::new(&entry.source.to_string(), &platforms, reference), s, t);
                    }
                }
                Decision::UpToDate
            }
            Ok(_) if missing => Decision::Copy(Why::Missing),
            Ok(_) if !lacking.is_empty() => Decision::Copy(Why::PlatformMissing { platforms: lacking, target: dst_digest }),
            Ok(_) => Decision::Copy(Why::Differs { target: dst_digest }),
            Err(e) => Decision::Failed(Failure::from_step(&e)),
        }
    }

    fn copy_entry(&self, entry: &Entry, dests: &plan::Destinations, p: &EntryPlan) -> Copied {
        let counter = Counting::new(self.docker);
        let tally = Tally::default();
        let ctx = self.ctx(&counter, entry).requests(&tally);
        let to_copy: Vec<String> = dests.refs.iter().zip(&p.decisions).filter(|(_, d)| d.copies()).map(|(r, _)| r.clone()).collect();
        let inspection = p.inspection.as_ref().expect("copied entries were inspected");
        let copied: Vec<Result<String, Failure>> = match self.options.engine {
            EngineKind::Daemon => match self.daemon_selection(&ctx, entry, inspection, &p.selected) {
                Err(f) => to_copy.iter().map(|_| Err(f.clone())).collect(),
                Ok(selected) => match self.options.docker_root.as_deref().and_then(|root| crate::disk::shortfall(root, &selected)) {
                    Some(f) => to_copy.iter().map(|_| Err(f.clone())).collect(),
                    None => {
                        let _held = self.in_use.hold(selected.iter().map(|i| i.digest.clone()).collect());
                        daemon::copy(&ctx, &self.options.local_images, &entry.source, &selected, &to_copy)
                    }
                },
            },
            EngineKind::Imagetools => to_copy
                .iter()
                .map(|t| imagetools::copy(&ctx, self.options.caps, &entry.source, inspection, &p.selected, t))
                .collect(),
        };
        // What moved, as the manifests count it (the layers' sizes), when they say.
        if copied.iter().any(Result::is_ok) {
            if let Some(bytes) = p.selected.iter().map(|i| i.layers_size).sum::<Option<u64>>() {
                (self.events)(Event::Moved { key: entry.key(), bytes });
            }
        }
        let mut copied = copied.into_iter();
        let results: Vec<Result<String, Failure>> = p
            .decisions
            .iter()
            .map(|d| if d.copies() { copied.next().expect("one result per copied target") } else { Ok(String::new()) })
            .collect();
        let statuses = p.decisions.iter().zip(&results).map(|(d, r)| match (d, r) {
            (Decision::Copy(_), Ok(_)) => "synced",
            (Decision::UpToDate, _) => "up-to-date",
            _ => "failed",
        });
        (self.events)(Event::Outcome { key: entry.key(), status: outcome(statuses) });
        (self.events)(Event::Finished { key: entry.key() });
        (results, counter.count(), tally.snapshot())
    }

    /// The selected images with their config digests, which the daemon engine
    /// needs (read here when the plan was made before the engine was known).
    fn daemon_selection(&self, ctx: &Ctx, entry: &Entry, inspection: &Inspection, selected: &[Image]) -> Result<Vec<Image>, Failure> {
        if selected.iter().all(|i| i.config.is_some()) {
            return Ok(selected.to_vec());
        }
        let mut insp = inspection.clone();
        let want: Vec<String> = selected.iter().map(|i| i.digest.clone()).collect();
        self.inspector.fill_configs(ctx, &entry.source.name(), &mut insp, &want).map_err(|e| Failure::from_step(&e))?;
        insp.select(&entry.platforms).map_err(|m| Failure::new(m, "check --platform"))
    }

    fn entry_report(&self, entry: &Entry, dests: &plan::Destinations, p: EntryPlan, copied: Option<Copied>) -> EntryReport {
        let (copied, copy_calls, copy_requests) = match copied {
            Some((c, n, r)) => (Some(c), n, r),
            None => (None, 0, Counts::default()),
        };
        // Remember what each copy produced where it could not keep the digest.
        if let (Some(c), Some(src)) = (copied.as_ref(), p.inspection.as_ref().and_then(|i| i.digest.as_deref())) {
            let platforms: Vec<String> = entry.platforms.iter().map(|p| p.to_string()).collect();
            for (r, d) in dests.refs.iter().zip(c) {
                if let Ok(pushed) = d {
                    if !pushed.is_empty() && pushed != src {
                        self.remember(PairKey::new(&entry.source.to_string(), &platforms, r), src, pushed);
                    }
                }
            }
        }
        let source_digest = p.inspection.as_ref().and_then(|i| i.digest.clone());
        let targets = self
            .settings
            .targets
            .iter()
            .zip(&dests.refs)
            .enumerate()
            .map(|(i, (t, r))| {
                let (status, failure) = match (&p.failure, p.decisions.get(i)) {
                    (Some(f), _) => (Status::of_failure(&f.hint), Some(f.clone())),
                    (None, Some(Decision::Failed(f))) => (Status::of_failure(&f.hint), Some(f.clone())),
                    (None, Some(Decision::UpToDate)) => (Status::UpToDate, None),
                    (None, Some(Decision::Copy(_))) if self.options.dry_run => (Status::WouldSync, None),
                    (None, Some(Decision::Copy(_))) => match copied.as_ref().map(|c| &c[i]) {
                        Some(Ok(_)) => (Status::Synced, None),
                        Some(Err(f)) => (Status::of_failure(&f.hint), Some(f.clone())),
                        None => (Status::Failed, Some(Failure::new("not copied", "run again"))),
                    },
                    (None, None) => (Status::Failed, Some(Failure::new("not inspected", "run again"))),
                };
                // A refusal names this target's credential variables.
                // The target's own refusal names its variables; the source's failure keeps its hint.
                let own = p.failure.is_none();
                let hint = failure.as_ref().map(|f| match f.hint.as_str() {
                    h if own && h == crate::family::Family::Auth.hint() => t.auth_hint(),
                    h if own && h == crate::family::Family::Permission.hint() => t.permission_hint(),
                    h => h.to_string(),
                });
                let why = match p.decisions.get(i) {
                    Some(Decision::Copy(w)) if status != Status::Failed => crate::report::Why {
                        reason: Some(w.reason()),
                        source_digest: source_digest.clone(),
                        target_digest: w.target_digest().map(str::to_string),
                    },
                    _ => crate::report::Why { source_digest: source_digest.clone(), ..Default::default() },
                };
                TargetReport { target: t.kind.as_str().to_string(), reference: r.clone(), status, error: failure.map(|f| f.error), hint, why }
            })
            .collect();
        let platforms = match &p.inspection {
            Some(_) => p.selected.iter().filter_map(|i| i.platform.as_ref()).map(|p| p.to_string()).collect(),
            None => entry.platforms.iter().map(|p| p.to_string()).collect(),
        };
        EntryReport {
            line: entry.line,
            source: entry.source.to_string(),
            selected_by: entry.selected_by.clone(),
            platforms,
            targets,
            error: p.failure.as_ref().map(|f| f.error.clone()),
            hint: p.failure.map(|f| f.hint),
            docker_calls: p.calls + copy_calls,
            requests: p.requests + copy_requests,
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EngineChoice, Target, TargetKind};
    use crate::docker::{Cmd, DockerError, Output};
    use crate::engine::inspector::{Buildx, ManifestCli};
    use crate::images;
    use crate::step_error::StepError;
    use std::sync::Mutex;

    /// Answers docker commands from a script; records every call.
    struct Scripted {
        answers: Vec<(String, Result<Vec<u8>, String>)>,
        calls: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(answers: Vec<(&str, Result<Vec<u8>, &str>)>) -> Self {
            let answers = answers.into_iter().map(|(k, v)| (k.to_string(), v.map_err(str::to_string))).collect();
            Scripted { answers, calls: Mutex::new(Vec::new()) }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Docker for Scripted {
        fn run(&self, cmd: &Cmd) -> Result<Output, DockerError> {
            let line = cmd.display();
            self.calls.lock().unwrap().push(line.clone());
            match self.answers.iter().find(|(k, _)| line.starts_with(k.as_str())) {
                Some((_, Ok(out))) => Ok(Output { stdout: out.clone(), stderr: String::new() }),
                Some((_, Err(stderr))) => Err(DockerError {
                    command: line,
                    status: Some(1),
                    stderr: stderr.clone(),
                    timed_out: false,
                    interrupted: false,
                }),
                None => panic!("unscripted docker call: {line}"),
            }
        }
    }

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn settings() -> Settings {
        Settings {
            mode: "custom".into(),
            targets: vec![Target { kind: TargetKind::Custom, registry: "127.0.0.1:5102".into(), namespace: "ns".into(), username: None, password: None, naming: crate::naming::Naming::Flat }],
            clean_disk: false,
            engine: EngineChoice::Auto,
            jobs: None,
            retries: 0,
            timeout_secs: None,
            dockerhub_pull: None,
            warnings: vec![],
            retry_base_ms: 1000,
            webhook: None,
            badge_tz: crate::badge::Tz::utc(),
            insecure_registries: vec![],
            from_local: vec![],
            inspect: crate::config::InspectChoice::Docker,
            inspect_jobs: None,
            state_file: None,
            registry_certs_dir: None,
            read_timeout_secs: crate::config::DEFAULT_READ_TIMEOUT_SECS,
        }
    }

    fn run_with(docker: &dyn Docker, lines: &str, engine: EngineKind, inspector: &dyn Inspector, dry_run: bool) -> Report {
        run_with_local(docker, lines, engine, inspector, dry_run, &[])
    }

    fn run_with_local(docker: &dyn Docker, lines: &str, engine: EngineKind, inspector: &dyn Inspector, dry_run: bool, local: &[&str]) -> Report {
        let s = settings();
        let entries = images::parse("images.txt", lines).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let cancel = AtomicBool::new(false);
        let run = Run {
            docker,
            inspector,
            settings: &s,
            options: Options { dry_run, force: false, engine, caps: imagetools::Caps::default(), inspect_jobs: 4, transfer_jobs: 1, docker_root: None, local_images: local.iter().map(|s| s.to_string()).collect() },
            cancel: &cancel,
            events: &|_| {},
            in_use: InUse::default(),
            state: None,
            lazy: false,
        };
        run.execute(&entries, &dests, &HashMap::new())
    }

    const SRC: &str = "127.0.0.1:5101/fx/multi:v1";
    const DST: &str = "127.0.0.1:5102/ns/web:v1";

    #[test]
    fn imagetools_copies_a_missing_target_by_index_digest() {
        let d = Scripted::new(vec![
            (&format!("docker buildx imagetools inspect --raw -- {SRC}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
            (&format!("docker buildx imagetools inspect --raw -- {DST}"), Err("ERROR: 127.0.0.1:5102/ns/web:v1: not found")),
            ("docker buildx imagetools create", Ok(fixture("buildx-0.10.5/create-ok-multi.txt"))),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Imagetools, &Buildx, false);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        let calls = d.calls();
        assert_eq!(
            calls.last().unwrap(),
            "docker buildx imagetools create -t 127.0.0.1:5102/ns/web:v1 -- 127.0.0.1:5101/fx/multi@sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc"
        );
        assert_eq!(r.entries[0].docker_calls, 3);
        assert_eq!(r.entries[0].platforms, ["linux/amd64", "linux/arm64/v8"]);
    }

    #[test]
    fn identical_top_level_digest_is_up_to_date_in_two_calls() {
        let d = Scripted::new(vec![
            (&format!("docker buildx imagetools inspect --raw -- {SRC}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
            (&format!("docker buildx imagetools inspect --raw -- {DST}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Imagetools, &Buildx, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate);
        assert_eq!(d.calls().len(), 2);
    }

    #[test]
    fn daemon_engine_plans_pull_push_list_and_cleanup() {
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose -- {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
            (&format!("docker manifest inspect --insecure --verbose -- {DST}"), Err("no such manifest: 127.0.0.1:5102/ns/web:v1")),
            ("docker pull", Ok(vec![])),
            ("docker tag", Ok(vec![])),
            ("docker push", Ok(b"v1: digest: sha256:aaaa size: 524\n".to_vec())),
            ("docker manifest create", Ok(vec![])),
            ("docker manifest annotate", Ok(vec![])),
            ("docker manifest push", Ok(b"sha256:list\n".to_vec())),
            ("docker rmi", Ok(vec![])),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Daemon, &ManifestCli, false);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        let calls = d.calls();
        let pulls: Vec<&String> = calls.iter().filter(|c| c.starts_with("docker pull")).collect();
        assert_eq!(pulls.len(), 2, "one pull per platform, by digest: {calls:#?}");
        // Platforms pull concurrently, so in either order.
        assert!(pulls.iter().any(|p| p.ends_with("127.0.0.1:5101/fx/multi@sha256:13065cdb0e11b4c2658a9313f3f8f431b7d5060653328973f667091f190ed531")));
        assert!(pulls.iter().any(|p| p.ends_with("127.0.0.1:5101/fx/multi@sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb")));
        assert!(calls.iter().any(|c| c.starts_with("docker manifest create --insecure -- 127.0.0.1:5102/ns/web:v1 127.0.0.1:5102/ns/web@sha256:aaaa")));
        assert!(calls.iter().any(|c| c.contains("--arch arm64 --variant v8")));
        assert!(calls.iter().any(|c| c == "docker manifest push --insecure --purge -- 127.0.0.1:5102/ns/web:v1"));
        assert!(calls.last().unwrap().starts_with("docker rmi "), "clean-up comes last: {calls:#?}");
    }

    #[test]
    fn daemon_engine_never_removes_a_users_image() {
        // The amd64 image (config df12c820...) was already local, tagged by the user.
        let amd64_config = "sha256:df12c8204f4a00320e8d9d86854ef075785e7d8e50d6d28d7437674e00059547";
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose -- {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
            (&format!("docker manifest inspect --insecure --verbose -- {DST}"), Err("no such manifest")),
            ("docker image inspect", Ok(br#"["mine:1"] []"#.to_vec())),
            ("docker pull", Ok(vec![])),
            ("docker tag", Ok(vec![])),
            ("docker push", Ok(b"v1: digest: sha256:aaaa size: 524\n".to_vec())),
            ("docker manifest", Ok(b"sha256:list\n".to_vec())),
            ("docker rmi", Ok(vec![])),
        ]);
        let r = run_with_local(&d, &format!("{SRC} => web"), EngineKind::Daemon, &ManifestCli, false, &[amd64_config]);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        let calls = d.calls();
        assert!(calls.contains(&format!("docker image inspect --format {{{{json .RepoTags}}}} {{{{json .RepoDigests}}}} -- {amd64_config}")), "{calls:#?}");
        let rmi = calls.iter().find(|c| c.starts_with("docker rmi")).unwrap();
        assert!(!rmi.contains("mine:1"), "the user's tag stays: {rmi}");
        assert!(rmi.contains("@sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb"), "the arm64 pull goes: {rmi}");
        assert!(rmi.contains("@sha256:13065cdb"), "the reference this run added to the user's image goes, the image stays: {rmi}");
    }

    #[test]
    fn dry_run_pushes_nothing_and_missing_source_fails_only_its_entry() {
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose -- {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
            (&format!("docker manifest inspect --insecure --verbose -- {DST}"), Err("no such manifest")),
            ("docker manifest inspect --insecure --verbose -- 127.0.0.1:5101/fx/missing:v1", Err("no such manifest: 127.0.0.1:5101/fx/missing:v1")),
        ]);
        let r = run_with(&d, &format!("{SRC} => web\n127.0.0.1:5101/fx/missing:v1"), EngineKind::Daemon, &ManifestCli, true);
        assert_eq!(r.entries[0].targets[0].status, Status::WouldSync);
        assert_eq!(r.entries[1].targets[0].status, Status::Failed);
        assert!(r.entries[1].error.as_deref().unwrap().contains("not found"));
        assert!(d.calls().iter().all(|c| !c.starts_with("docker pull") && !c.starts_with("docker push")));
    }

    #[test]
    fn recompressed_target_is_compared_by_config_digest() {
        // The target holds the same configs under other manifest digests (a daemon-engine copy).
        let src = fixture("docker-cli-28.2/manifest-inspect-v-multi.json");
        let dst = String::from_utf8(src.clone()).unwrap().replace("13065cdb", "99999999").replace("2c84f239", "88888888");
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose -- {SRC}"), Ok(src)),
            (&format!("docker manifest inspect --insecure --verbose -- {DST}"), Ok(dst.into_bytes())),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Daemon, &ManifestCli, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate, "{r:#?}");
    }

    #[test]
    fn buildx_inspector_fetches_child_configs_only_when_digests_differ() {
        let child = fixture("buildx-0.10.5/inspect-raw-multi-arm64-child.json");
        // Target: a daemon-engine copy (other manifest digests), arm64 only.
        let dst_index = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":524,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let d = Scripted::new(vec![
            (&format!("docker buildx imagetools inspect --raw -- {SRC}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
            (&format!("docker buildx imagetools inspect --raw -- {DST}"), Ok(dst_index.as_bytes().to_vec())),
            ("docker buildx imagetools inspect --raw -- 127.0.0.1:5101/fx/multi@sha256:2c84", Ok(child.clone())),
            ("docker buildx imagetools inspect --raw -- 127.0.0.1:5102/ns/web@sha256:1111", Ok(child)),
        ]);
        let r = run_with(&d, &format!("--platform=linux/arm64 {SRC} => web"), EngineKind::Imagetools, &Buildx, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate, "{r:#?}");
        assert_eq!(d.calls().len(), 4);
    }

    /// Answers inspections from memory: no processes, no command strings.
    /// Drives the run through the `Inspector` trait as a registry client would.
    struct TestInspector {
        holds: HashMap<String, Inspection>,
        /// Config digests `fill_configs` reveals, by manifest digest.
        configs: HashMap<String, String>,
        failing: HashMap<String, StepError>,
        asked: Mutex<Vec<String>>,
        /// Answers `head_digest` cheaply, as the registry inspector does.
        cheap_heads: bool,
    }

    impl TestInspector {
        fn new() -> Self {
            TestInspector { holds: HashMap::new(), configs: HashMap::new(), failing: HashMap::new(), asked: Mutex::new(Vec::new()), cheap_heads: false }
        }
        fn holding(mut self, reference: &str, i: Inspection) -> Self {
            self.holds.insert(reference.into(), i);
            self
        }
        fn asked(&self) -> Vec<String> {
            self.asked.lock().unwrap().clone()
        }
    }

    impl Inspector for TestInspector {
        fn inspect(&self, _: &Ctx, reference: &str, _: bool) -> Result<Option<Inspection>, StepError> {
            self.asked.lock().unwrap().push(format!("inspect {reference}"));
            match self.failing.get(reference) {
                Some(e) => Err(e.clone()),
                None => Ok(self.holds.get(reference).cloned()),
            }
        }
        fn head_first(&self, _: &str) -> bool {
            self.cheap_heads
        }
        fn head_digest(&self, _: &Ctx, reference: &str) -> Result<Option<String>, StepError> {
            self.asked.lock().unwrap().push(format!("head {reference}"));
            match self.failing.get(reference) {
                Some(e) => Err(e.clone()),
                None => Ok(self.holds.get(reference).and_then(|i| i.digest.clone())),
            }
        }
        fn fill_configs(&self, _: &Ctx, name: &str, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
            self.asked.lock().unwrap().push(format!("configs {name} {}", digests.len()));
            for img in insp.images.iter_mut().filter(|i| digests.contains(&i.digest)) {
                img.config = self.configs.get(&img.digest).cloned();
            }
            Ok(())
        }
    }

    fn index_fixture() -> Inspection {
        match crate::inspect::parse_raw(&fixture("buildx-0.10.5/inspect-raw-multi.json")).unwrap() {
            crate::inspect::Raw::Index(i) => i,
            crate::inspect::Raw::Manifest(_) => unreachable!(),
        }
    }

    /// A copy of `i` under other manifest digests (what the daemon engine pushes).
    fn recompressed(i: &Inspection) -> Inspection {
        let mut i = i.clone();
        i.digest = Some(format!("sha256:{}", "e".repeat(64)));
        for (n, img) in i.images.iter_mut().enumerate() {
            img.digest = format!("sha256:{}", n.to_string().repeat(64));
            img.config = None;
        }
        i
    }

    #[test]
    fn test_inspector_drives_an_imagetools_copy() {
        let d = Scripted::new(vec![("docker buildx imagetools create", Ok(fixture("buildx-0.10.5/create-ok-multi.txt")))]);
        let insp = TestInspector::new().holding(SRC, index_fixture());
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Imagetools, &insp, false);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        assert_eq!(insp.asked(), [format!("inspect {SRC}"), format!("inspect {DST}")]);
        assert_eq!(
            d.calls(),
            ["docker buildx imagetools create -t 127.0.0.1:5102/ns/web:v1 -- 127.0.0.1:5101/fx/multi@sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc"]
        );
        assert_eq!(r.entries[0].docker_calls, 1, "only the copy spawned docker");
    }

    #[test]
    fn test_inspector_up_to_date_needs_no_docker() {
        let d = Scripted::new(vec![]);
        let insp = TestInspector::new().holding(SRC, index_fixture()).holding(DST, index_fixture());
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Imagetools, &insp, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate);
        assert!(d.calls().is_empty());
    }

    #[test]
    fn test_inspector_configs_decide_a_recompressed_target() {
        let src = index_fixture();
        let dst = recompressed(&src);
        let mut insp = TestInspector::new().holding(SRC, src.clone()).holding(DST, dst.clone());
        // Same configs on both sides: up to date.
        for (s, t) in src.images.iter().zip(&dst.images) {
            let config = format!("sha256:{}", s.digest[7..].chars().rev().collect::<String>());
            insp.configs.insert(s.digest.clone(), config.clone());
            insp.configs.insert(t.digest.clone(), config);
        }
        let r = run_with(&Scripted::new(vec![]), &format!("{SRC} => web"), EngineKind::Imagetools, &insp, true);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate, "{r:#?}");
        assert!(insp.asked().iter().any(|a| a.starts_with("configs 127.0.0.1:5102/ns/web ")), "{:?}", insp.asked());
        // Another config on the target: it differs.
        insp.configs.insert(dst.images[1].digest.clone(), format!("sha256:{}", "f".repeat(64)));
        let r = run_with(&Scripted::new(vec![]), &format!("{SRC} => web"), EngineKind::Imagetools, &insp, true);
        assert_eq!(r.entries[0].targets[0].status, Status::WouldSync, "{r:#?}");
    }

    #[test]
    fn test_inspector_failures_are_step_errors_in_user_terms() {
        let mut insp = TestInspector::new().holding(SRC, index_fixture());
        insp.failing.insert(DST.into(), StepError::http(format!("GET https://{DST}"), 401, "unauthorized"));
        let r = run_with(&Scripted::new(vec![]), &format!("{SRC} => web\n127.0.0.1:5101/fx/gone:v1"), EngineKind::Imagetools, &insp, true);
        let t = &r.entries[0].targets[0];
        assert_eq!(t.status, Status::Failed);
        assert!(t.error.as_deref().unwrap().contains("HTTP 401"), "{t:?}");
        // The auth hint, naming this target's variables.
        assert_eq!(t.hint, Some(settings().targets[0].auth_hint()));
        assert!(t.hint.as_deref().unwrap().contains("CUSTOM_PASSWORD"), "{t:?}");
        assert!(r.entries[1].error.as_deref().unwrap().contains("was not found"), "{r:#?}");
    }

    fn run_with_state(inspector: &dyn Inspector, lines: &str, state: Option<&Mutex<crate::state::State>>) -> Report {
        let s = settings();
        let entries = images::parse("images.txt", lines).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let cancel = AtomicBool::new(false);
        let d = Scripted::new(vec![]);
        let run = Run {
            docker: &d,
            inspector,
            settings: &s,
            options: Options { dry_run: true, force: false, engine: EngineKind::Daemon, caps: imagetools::Caps::default(), inspect_jobs: 4, transfer_jobs: 1, docker_root: None, local_images: Default::default() },
            cancel: &cancel,
            events: &|_| {},
            in_use: InUse::default(),
            state,
            lazy: true,
        };
        let r = run.execute(&entries, &dests, &HashMap::new());
        assert!(d.calls().is_empty(), "no docker process: {:?}", d.calls());
        r
    }

    fn sorted(mut v: Vec<String>) -> Vec<String> {
        v.sort();
        v
    }

    #[test]
    fn equal_digests_are_up_to_date_from_heads_alone() {
        let mut insp = TestInspector::new().holding(SRC, index_fixture()).holding(DST, index_fixture());
        insp.cheap_heads = true;
        let r = run_with_state(&insp, &format!("{SRC} => web"), None);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate);
        assert_eq!(sorted(insp.asked()), [format!("head {SRC}"), format!("head {DST}")], "no GET of either side");
    }

    #[test]
    fn a_remembered_pair_makes_a_recompressed_target_head_only_and_a_stale_one_never_up_to_date() {
        let src = index_fixture();
        let dst = recompressed(&src);
        let (sd, td) = (src.digest.clone().unwrap(), dst.digest.clone().unwrap());
        let key = crate::state::PairKey::new(SRC, &[], DST);
        let mut state = crate::state::State::default();
        state.remember(key.clone(), &sd, &td, 1);
        let state = Mutex::new(state);
        let mut insp = TestInspector::new().holding(SRC, src.clone()).holding(DST, dst.clone());
        insp.cheap_heads = true;
        let r = run_with_state(&insp, &format!("{SRC} => web"), Some(&state));
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate);
        assert!(insp.asked().iter().all(|a| a.starts_with("head ")), "{:?}", insp.asked());
        // The target changed since (another digest): the pair does not count,
        // the configs decide, and they differ.
        let mut changed = recompressed(&src);
        changed.digest = Some(format!("sha256:{}", "d".repeat(64)));
        let mut insp = TestInspector::new().holding(SRC, src.clone()).holding(DST, changed.clone());
        insp.cheap_heads = true;
        for img in &src.images {
            insp.configs.insert(img.digest.clone(), format!("sha256:{}", "1".repeat(64)));
        }
        for img in &changed.images {
            insp.configs.insert(img.digest.clone(), format!("sha256:{}", "2".repeat(64)));
        }
        let r = run_with_state(&insp, &format!("{SRC} => web"), Some(&state));
        assert_eq!(r.entries[0].targets[0].status, Status::WouldSync, "{r:#?}");
        // A pair for other platforms never matches this line.
        let mut other = crate::state::State::default();
        other.remember(crate::state::PairKey::new(SRC, &["linux/arm64".into()], DST), &sd, &td, 1);
        let other = Mutex::new(other);
        let mut insp = TestInspector::new().holding(SRC, src.clone()).holding(DST, dst);
        insp.cheap_heads = true;
        run_with_state(&insp, &format!("{SRC} => web"), Some(&other));
        assert!(insp.asked().contains(&format!("inspect {SRC}")), "{:?}", insp.asked());
    }

    #[test]
    fn verified_same_content_is_remembered_for_the_next_run() {
        let src = index_fixture();
        let dst = recompressed(&src);
        let mut insp = TestInspector::new().holding(SRC, src.clone()).holding(DST, dst.clone());
        insp.cheap_heads = true;
        for (s, t) in src.images.iter().zip(&dst.images) {
            insp.configs.insert(s.digest.clone(), format!("sha256:{}", "3".repeat(64)));
            insp.configs.insert(t.digest.clone(), format!("sha256:{}", "3".repeat(64)));
        }
        let state = Mutex::new(crate::state::State::default());
        let r = run_with_state(&insp, &format!("{SRC} => web"), Some(&state));
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate);
        let st = state.lock().unwrap();
        assert!(st.is_up_to_date(&crate::state::PairKey::new(SRC, &[], DST), src.digest.as_deref().unwrap(), dst.digest.as_deref().unwrap()));
    }

    #[test]
    fn a_missing_target_is_not_asked_twice_and_a_missing_source_fails_from_its_head() {
        let mut insp = TestInspector::new().holding(SRC, index_fixture());
        insp.cheap_heads = true;
        let r = run_with_state(&insp, &format!("{SRC} => web\n127.0.0.1:5101/fx/gone:v1"), None);
        assert_eq!(r.entries[0].targets[0].status, Status::WouldSync);
        let asked = insp.asked();
        assert!(!asked.contains(&format!("inspect {DST}")), "{asked:?}");
        assert!(asked.contains(&format!("inspect {SRC}")), "the copy needs the source's content: {asked:?}");
        assert!(r.entries[1].error.as_deref().unwrap().contains("was not found"), "{r:#?}");
        assert!(!asked.contains(&"inspect 127.0.0.1:5101/fx/gone:v1".to_string()), "{asked:?}");
    }

    #[test]
    fn plan_is_a_value_with_reasons() {
        let insp = TestInspector::new().holding(SRC, index_fixture());
        let s = settings();
        let entries = images::parse("images.txt", &format!("{SRC} => web")).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let cancel = AtomicBool::new(false);
        let d = Scripted::new(vec![]);
        let run = Run {
            docker: &d,
            inspector: &insp,
            settings: &s,
            options: Options { dry_run: true, force: false, engine: EngineKind::Imagetools, caps: imagetools::Caps::default(), inspect_jobs: 1, transfer_jobs: 1, docker_root: None, local_images: Default::default() },
            cancel: &cancel,
            events: &|_| {},
            in_use: InUse::default(),
            state: None,
            lazy: false,
        };
        let p = run.inspect(&entries, &dests, &HashMap::new());
        assert_eq!(p.entries[0].decisions, [Decision::Copy(Why::Missing)]);
        assert_eq!(p.entries[0].selected.len(), 2);
        let login = HashMap::from([("127.0.0.1:5102".to_string(), Failure::new("login failed", "fix it"))]);
        let p = run.inspect(&entries, &dests, &login);
        assert_eq!(p.entries[0].decisions, [Decision::Failed(Failure::new("login failed", "fix it"))]);
        let report = run.carry_out(&entries, &dests, p);
        assert_eq!(report.entries[0].targets[0].status, Status::Failed);
    }
    /// INSECURE_REGISTRIES reaches every docker step through the run's context:
    /// a listed non-loopback target is inspected with `--insecure`, an unlisted one without.
    #[test]
    fn listed_insecure_registry_gets_insecure_flag() {
        for (listed, flag) in [(true, "--insecure "), (false, "")] {
            let mut s = settings();
            s.targets[0].registry = "10.0.0.9:5000".into();
            if listed {
                s.insecure_registries = vec!["10.0.0.9:5000".into()];
            }
            let dst = "10.0.0.9:5000/ns/web:v1";
            let d = Scripted::new(vec![
                (&format!("docker manifest inspect --insecure --verbose -- {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
                (&format!("docker manifest inspect {flag}--verbose -- {dst}"), Err("no such manifest")),
            ]);
            let entries = images::parse("images.txt", &format!("{SRC} => web")).unwrap();
            let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
            let cancel = AtomicBool::new(false);
            let run = Run {
                docker: &d,
                inspector: &ManifestCli,
                settings: &s,
                options: Options { dry_run: true, force: false, engine: EngineKind::Daemon, caps: imagetools::Caps::default(), inspect_jobs: 1, transfer_jobs: 1, docker_root: None, local_images: Default::default() },
                cancel: &cancel,
                events: &|_| {},
                in_use: InUse::default(),
                state: None,
                lazy: false,
            };
            let r = run.execute(&entries, &dests, &HashMap::new());
            assert_eq!(r.entries[0].targets[0].status, Status::WouldSync, "{r:#?}");
            assert_eq!(d.calls()[1], format!("docker manifest inspect {flag}--verbose -- {dst}"));
        }
    }
}
