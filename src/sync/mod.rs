//! One run: a setup, then two phases. `setup.rs` decides, in one place, when
//! docker starts ([`EngineStart`]), the reader (`inspect::choose`), the job
//! counts and the state file. Plan: ask the registries what every entry's
//! source and targets hold (in parallel) and decide per target; when
//! something must be copied, start docker (the engine, its facts, the
//! logins) and settle the plan (a failed login fails its targets, the daemon
//! engine's config digests are read). The [`Plan`] is then final. Execute:
//! copy what it says differs and record each outcome in the [`Report`].
//! Everything said to the user goes out as events.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::concurrency::{parallel_map, InUse};
use crate::config::{EngineChoice, Settings};
use crate::ctx::Ctx;
use crate::docker::{Counting, Docker};
use crate::engine::{daemon, imagetools, EngineKind};
use crate::failure::{Event, Failure};
use crate::images::Entry;
use crate::inspect::parse::{Image, Inspection};
use crate::inspect::Inspector;
use crate::plan::{self, Decision, Destinations, EntryPlan, Plan, Verdict, Why};
use crate::reference::ImageRef;
use crate::registry::{Counts, Tally};
use crate::report::{EntryReport, Report, Status, TargetReport};
use crate::session::Session;
use crate::state::{PairKey, State};

mod setup;
mod signatures;
use setup::{engine_kind, say_start, setup, EngineStart, Logins};

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
    /// SIGNATURES is not off: attachments are looked for (the engine may still refuse them).
    pub signatures: bool,
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

/// What a run works on: its entries (selecting lines included), the plain
/// entries of other shards (`--shard`: a selection leaves them the tags they
/// list) and the destinations of its plain entries, in their order.
pub struct Work<'w> {
    pub label: &'w str,
    pub entries: &'w [Entry],
    pub elsewhere: &'w [Entry],
    pub dests: Vec<Destinations>,
}

/// Reads, transfers and HTTP requests one entry took (for the report), apart from the plan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Spent {
    pub calls: usize,
    pub requests: Counts,
}

impl std::ops::AddAssign for Spent {
    fn add_assign(&mut self, o: Spent) {
        self.calls += o.calls;
        self.requests += o.requests;
    }
}

/// What each entry spent, by `Entry::key()`.
pub type Tallies = HashMap<String, Spent>;

/// Runs `sync`, `plan` or `copy` in an open session: the setup, the plan, the
/// copies. With the HTTP read path (`--inspect auto|registry`) everything
/// docker-side (logins, engine detection, `docker info`, local images,
/// imagetools caps) waits until something must be copied: a no-op run starts
/// no docker process. `--inspect docker` detects the engine and logs in up
/// front, as before.
pub fn run(session: &Session, work: &Work, dry_run: bool, force: bool) -> Result<Report, RunError> {
    let settings = &session.settings;
    let events = session.events();
    let logins = Logins::new(session, work.entries);
    let before_docker = || {
        logins.get();
    };
    let setup = setup(session, work.entries, &before_docker)?;
    let (entries, dests, selections) = expand_selections(session, work, &setup.inspector, setup.tag_jobs);
    let entries = &entries[..];
    let dests = &dests[..];
    say_start(session, engine_kind(setup.engine, settings), setup.detected.as_ref(), setup.http, entries.len());
    let dry_run = dry_run || settings.targets.is_empty();
    // Signatures need an engine that keeps digests: auto's choice with buildx.
    let wanted = settings.signatures != Some(crate::signatures::Choice::Off);
    let keeps_digests = crate::engine::choose_for(settings.engine, true, &settings.insecure_registries, &setup::touched(settings, entries))
        .is_ok_and(|(k, _)| k == EngineKind::Imagetools);
    let mut run = Run {
        docker: session.docker(),
        inspector: &setup.inspector,
        settings,
        options: Options {
            dry_run,
            force,
            engine: engine_kind(setup.engine, settings),
            caps: imagetools::Caps::default(),
            inspect_jobs: setup.inspect_jobs,
            transfer_jobs: setup.transfer_jobs,
            docker_root: None,
            local_images: Default::default(),
            signatures: wanted,
        },
        ctx: session.ctx(),
        in_use: Default::default(),
        state: setup.state.as_ref().map(|s| &s.state),
        not_copied: Default::default(),
    };
    run.signatures_need(keeps_digests);
    let known_logins = match setup.engine {
        EngineStart::Detected(_) => {
            run.prepare_copies()?;
            logins.get().clone()
        }
        EngineStart::OnFirstCopy => HashMap::new(),
    };
    events(Event::Start { entries: entries.len() });
    let (plan, mut spent) = run.inspect(entries, dests, &known_logins);
    let copies = !dry_run && plan.entries.iter().any(EntryPlan::copies);
    let mut reported_engine = Some(run.options.engine);
    let plan = match (setup.engine, copies) {
        (_, false) => {
            if setup.engine == EngineStart::OnFirstCopy && settings.engine == EngineChoice::Auto {
                reported_engine = None;
            }
            plan
        }
        (EngineStart::Detected(_), true) => run.settle(plan, &known_logins, &mut spent),
        (EngineStart::OnFirstCopy, true) => {
            // Now, and only now, docker: the engine, its facts, the logins.
            if let Err(e) = setup::start_engine(session, entries, &mut run) {
                events(Event::Done);
                return Err(e);
            }
            reported_engine = Some(run.options.engine);
            run.settle(plan, logins.get(), &mut spent)
        }
    };
    let mut report = run.carry_out(plan, spent);
    if let Some((failed, lists)) = selections {
        report = report.with_selections(failed, lists);
    }
    report.engine = reported_engine.map(|e| e.as_str().to_string());
    report.summary.signatures_not_copied = run.not_copied.lock().unwrap_or_else(|e| e.into_inner()).first().map(|n| n.reason());
    if !dry_run {
        // GHCR packages this sync pushed to that a server cannot pull anonymously (issue 22).
        report.warnings.extend(crate::preset_check::after_sync(session, &report));
    }
    if setup.http {
        report.rate_limits = setup.inspector.rate_limits();
    }
    events(Event::Done);
    if let Some(f) = &setup.state {
        f.save(events);
    }
    Ok(report)
}

/// Selecting lines that failed (report entries without targets) and the tag lists read.
type Selections = (Vec<EntryReport>, Vec<crate::report::TagList>);

/// Selecting lines: their tags are listed through the run's reader, then
/// each line becomes one entry per tag, with its destinations. Returns every
/// entry, their destinations, and the failed lines and tag lists for the report.
fn expand_selections(session: &Session, work: &Work, reader: &dyn Inspector, jobs: usize) -> (Vec<Entry>, Vec<Destinations>, Option<Selections>) {
    if !work.entries.iter().any(Entry::is_selecting) {
        return (work.entries.to_vec(), work.dests.clone(), None);
    }
    let settings = &session.settings;
    let events = session.events();
    let listings = crate::selecting::list_all(work.entries, reader, &session.ctx(), jobs);
    let n = listings.len();
    events(Event::Info { message: format!("tag lists: {n} repositor{} for the selecting lines", if n == 1 { "y" } else { "ies" }) });
    let x = crate::selecting::expand(work.label, work.entries, work.elsewhere, &settings.targets, &listings);
    for message in x.notes {
        events(Event::Info { message });
    }
    (x.entries, x.dests, Some((x.failed, x.tag_lists)))
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
    /// Chosen once by the setup; the run never asks which one it is.
    pub inspector: &'a dyn Inspector,
    pub settings: &'a Settings,
    pub options: Options,
    /// The run-level step context (the session's); entries narrow it.
    pub ctx: Ctx<'a>,
    pub in_use: InUse,
    /// Remembered pairs (`--state`), shared by the run's threads.
    pub state: Option<&'a Mutex<State>>,
    /// Why some signatures were not copied, said once in the summary.
    pub not_copied: Mutex<std::collections::BTreeSet<crate::signatures::NotCopied>>,
}

/// One entry's copy outcomes, per target in target order (the pushed digest,
/// empty for targets not copied, or why not), and what the copies spent.
struct Copied {
    results: Vec<Result<String, Failure>>,
    /// Per target: the signatures' counts and their first failure, when looked for.
    signatures: Vec<Option<SignatureOutcome>>,
    spent: Spent,
}

/// What became of one target's signatures.
type SignatureOutcome = (crate::signatures::Counts, Option<Failure>);

/// What the digests alone settled for an entry.
enum Heads {
    /// Not asked (the reader has no cheap HEAD, or `--force`).
    NotAsked,
    /// Asked: `known` holds what the digests settled; the source's digest
    /// and each asked target's (by target index).
    Asked { source: String, targets: Vec<Option<String>> },
    /// The source failed (not found, refused): the entry fails.
    SourceFailed(Failure),
}

impl Run<'_> {
    /// What copies need from docker before they start: the data root (disk
    /// guard) and the images the engine held (daemon), buildx's caps (imagetools).
    fn prepare_copies(&mut self) -> Result<(), RunError> {
        let (engine, dry_run) = (self.options.engine, self.options.dry_run);
        let docker = self.docker;
        self.options.docker_root = (engine == EngineKind::Daemon && !dry_run)
            .then(|| {
                let probe = crate::ctx::Timeouts::new(self.settings.timeout_secs).probe;
                docker.run(&crate::docker::Cmd::new(["info", "--format", "{{.DockerRootDir}}"]).timeout(probe)).ok()
            })
            .flatten()
            .map(|o| std::path::PathBuf::from(o.stdout_text().trim()))
            .filter(|p| p.is_dir());
        if engine == EngineKind::Daemon && !dry_run {
            self.options.local_images = daemon::local_images(&self.ctx).map_err(|f| anyhow::anyhow!("{} — {}", f.error, f.hint))?;
        }
        if engine == EngineKind::Imagetools && !dry_run {
            self.options.caps = imagetools::detect_caps(&self.ctx);
        }
        Ok(())
    }

    /// The run's context for one entry, counting its docker calls in `docker`.
    fn entry_ctx<'b>(&'b self, docker: &'b dyn Docker, entry: &Entry) -> Ctx<'b> {
        self.ctx.with_docker(docker).key(entry.key())
    }

    /// Both phases with nothing to start in between: plan, settle, carry out.
    #[cfg(test)]
    pub fn execute(&self, entries: &[Entry], dests: &[Destinations], login_failures: &HashMap<String, Failure>) -> Report {
        let (plan, mut spent) = self.inspect(entries, dests, login_failures);
        let plan = if !self.options.dry_run && plan.entries.iter().any(EntryPlan::copies) { self.settle(plan, login_failures, &mut spent) } else { plan };
        self.carry_out(plan, spent)
    }

    /// The plan phase: one [`EntryPlan`] per entry. Targets whose login
    /// failed (`login_failures`, known up front) fail here.
    pub fn inspect(&self, entries: &[Entry], dests: &[Destinations], login_failures: &HashMap<String, Failure>) -> (Plan, Tallies) {
        let work: Vec<(&Entry, &Destinations)> = entries.iter().zip(dests).collect();
        let refs: Vec<ImageRef> = dests.iter().flat_map(|d| d.refs.iter().filter_map(|r| ImageRef::parse(r).ok())).collect();
        let asked: Vec<&ImageRef> = entries.iter().map(|e| &e.source).chain(refs.iter()).collect();
        self.inspector.expect(&asked);
        let interrupted = |(e, d): &(&Entry, &Destinations)| {
            let f = Failure::new("interrupted before this entry started", crate::family::Family::Interrupted.hint());
            (EntryPlan::new(e, d, &self.settings.targets).fail(f), Spent::default())
        };
        let planned = parallel_map(&work, self.options.inspect_jobs, self.ctx.cancel, |(e, d)| self.plan_entry(e, d, login_failures), interrupted);
        let mut spent = Tallies::new();
        let entries = planned
            .into_iter()
            .map(|(p, s)| {
                *spent.entry(p.entry.key()).or_default() += s;
                p
            })
            .collect();
        (Plan { entries }, spent)
    }

    /// Settles a plan that copies, once docker has started: a copy to a
    /// registry whose login failed fails; the daemon engine gets the config
    /// digests it keys local images by (read here, so execution only copies),
    /// never for more platforms than it pulls.
    pub fn settle(&self, plan: Plan, login_failures: &HashMap<String, Failure>, spent: &mut Tallies) -> Plan {
        let settled = parallel_map(
            &plan.entries,
            self.options.inspect_jobs,
            self.ctx.cancel,
            |p| self.settle_entry(p.clone(), login_failures),
            |p| (p.clone(), Spent::default()),
        );
        let entries = settled
            .into_iter()
            .map(|(p, s)| {
                *spent.entry(p.entry.key()).or_default() += s;
                p
            })
            .collect();
        Plan { entries }
    }

    fn settle_entry(&self, mut p: EntryPlan, login_failures: &HashMap<String, Failure>) -> (EntryPlan, Spent) {
        let copied = p.copies();
        for t in p.targets.iter_mut().filter(|t| t.decision.copies()) {
            if let Some(f) = login_failures.get(&t.registry) {
                t.decision = Decision::Failed(f.clone());
            }
        }
        let counter = Counting::new(self.docker);
        let tally = Tally::default();
        if self.options.engine == EngineKind::Daemon && p.copies() {
            let ctx = self.entry_ctx(&counter, &p.entry).requests(&tally);
            match self.daemon_selection(&ctx, &p) {
                Ok(selected) => p.selected = selected,
                Err(f) => {
                    for t in p.targets.iter_mut().filter(|t| t.decision.copies()) {
                        t.decision = Decision::Failed(f.clone());
                    }
                }
            }
        }
        if copied && !p.copies() {
            (self.ctx.events)(Event::Finished { key: p.entry.key() });
        }
        (p, Spent { calls: counter.count(), requests: tally.snapshot() })
    }

    /// The execute phase: copies what the plan says differs (unless dry-run), then reports.
    pub fn carry_out(&self, plan: Plan, mut spent: Tallies) -> Report {
        let pending: Vec<&EntryPlan> = plan.entries.iter().filter(|p| !self.options.dry_run && p.copies()).collect();
        let copied = parallel_map(
            &pending,
            self.options.transfer_jobs,
            self.ctx.cancel,
            |p| self.copy_entry(p),
            |p| {
                let f = Failure::new("interrupted before the copy started", crate::family::Family::Interrupted.hint());
                let results = p.targets.iter().map(|t| if t.decision.copies() { Err(f.clone()) } else { Ok(String::new()) }).collect();
                Copied { results, signatures: Vec::new(), spent: Spent::default() }
            },
        );
        let mut outcomes: HashMap<String, Copied> = pending.iter().map(|p| p.entry.key()).zip(copied).collect();
        let reports = plan
            .entries
            .into_iter()
            .map(|p| {
                let key = p.entry.key();
                let copied = outcomes.remove(&key);
                let mut total = spent.remove(&key).unwrap_or_default();
                if let Some(c) = &copied {
                    total += c.spent;
                }
                self.entry_report(p, copied, total)
            })
            .collect();
        Report::new(self.options.engine.as_str(), reports)
    }

    fn plan_entry(&self, entry: &Entry, dests: &Destinations, login_failures: &HashMap<String, Failure>) -> (EntryPlan, Spent) {
        let counter = Counting::new(self.docker);
        let tally = Tally::default();
        let ctx = self.entry_ctx(&counter, entry).requests(&tally);
        let mut p = EntryPlan::new(entry, dests, &self.settings.targets);
        // What is known before reading: a failed login, a reference that does not parse.
        let mut known: Vec<Option<Decision>> = self
            .settings
            .targets
            .iter()
            .zip(&dests.refs)
            .map(|(t, r)| match (login_failures.get(&t.registry), ImageRef::parse(r)) {
                (Some(f), _) => Some(Decision::Failed(f.clone())),
                (None, Err(m)) => Some(Decision::Failed(Failure::new(m, "fix the line or the target's namespace"))),
                (None, Ok(_)) => None,
            })
            .collect();
        let refs: Vec<ImageRef> = p.targets.iter().map(|t| t.reference.clone()).collect();
        let mut failure = None;
        let heads = self.heads_first(&ctx, entry, &refs, &mut known);
        let decided = match heads {
            Heads::SourceFailed(ref f) => {
                failure = Some(f.clone());
                true
            }
            Heads::Asked { .. } => known.iter().all(|k| matches!(k, Some(Decision::UpToDate) | Some(Decision::Failed(_)))),
            Heads::NotAsked => false,
        };
        if !decided {
            match self.inspect_source(&ctx, entry) {
                Ok((insp, selected)) => {
                    for ((k, r), t) in known.iter_mut().zip(&refs).zip(p.targets.iter_mut()) {
                        if k.is_none() {
                            let (d, verified) = self.decide(&ctx, r, &entry.source, &insp, &selected);
                            *k = Some(d);
                            t.verified = verified;
                        }
                    }
                    p.inspection = Some(insp);
                    p.selected = selected;
                }
                Err(f) => failure = Some(f),
            }
        }
        for (t, k) in p.targets.iter_mut().zip(known) {
            if let Some(d) = k {
                t.decision = d;
            }
        }
        // The registry refused the run's own credentials for a target: say
        // whose (as a failed `docker login` would), never the secret.
        // A failed login already says so (credentials.rs).
        let auth_hint = crate::family::Family::Auth.hint();
        for t in p.targets.iter_mut().filter(|t| !login_failures.contains_key(&t.registry)) {
            // SWR's user holds the access key: shown as <project>@***.
            let shown = t.username.as_deref().map(|u| if t.kind == crate::config::TargetKind::Swr { crate::preset::shown_user(u) } else { u.to_string() });
            if let (Decision::Failed(f), Some(user)) = (&mut t.decision, shown) {
                if f.hint == auth_hint {
                    f.error = format!("login to {} as {user} refused: {}", t.registry, f.error);
                }
            }
        }
        if let Some(f) = failure {
            p = p.fail(f);
        } else {
            let source = match &heads {
                Heads::Asked { source, .. } => Some(source.clone()),
                _ => p.inspection.as_ref().and_then(|i| i.digest.clone()),
            };
            let targets = match heads {
                Heads::Asked { targets, .. } => targets,
                _ => vec![None; p.targets.len()],
            };
            if let Some(source) = source {
                self.plan_up_to_date_signatures(&ctx, &mut p, &source, &targets);
            }
        }
        if self.options.dry_run || !p.copies() {
            let statuses = p.targets.iter().map(|t| match &t.decision {
                _ if p.failure.is_some() => "failed",
                Decision::UpToDate => "up-to-date",
                Decision::Copy(_) => "would-sync",
                Decision::Failed(_) => "failed",
            });
            let status = if p.targets.is_empty() && p.failure.is_some() { "failed".to_string() } else { outcome(statuses) };
            (self.ctx.events)(Event::Outcome { key: entry.key(), status });
            (self.ctx.events)(Event::Finished { key: entry.key() });
        }
        (p, Spent { calls: counter.count(), requests: tally.snapshot() })
    }

    /// The cheap question first, when the reader answers it without a process
    /// or a pull: the digests of the source and of every target not yet
    /// `known`, at once. Equal digests, or a remembered pair matching both
    /// exactly, are up to date with no GET; a missing target is a copy.
    fn heads_first(&self, ctx: &Ctx, entry: &Entry, refs: &[ImageRef], known: &mut [Option<Decision>]) -> Heads {
        let src = &entry.source;
        if self.options.force || !self.inspector.head_first(src) || !refs.iter().all(|r| self.inspector.head_first(r)) {
            return Heads::NotAsked;
        }
        let asked: Vec<(usize, &ImageRef)> = refs.iter().enumerate().filter(|(i, _)| known[*i].is_none()).collect();
        ctx.step(format!("inspect {src}"));
        let (source, targets) = std::thread::scope(|sc| {
            let handles: Vec<_> = asked.iter().map(|(_, r)| sc.spawn(move || self.inspector.head_digest(ctx, r))).collect();
            let source = self.inspector.head_digest(ctx, src);
            let targets: Vec<_> = handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
            (source, targets)
        });
        let source = match source {
            Ok(Some(d)) => d,
            Ok(None) => return Heads::SourceFailed(not_found(src)),
            Err(e) => return Heads::SourceFailed(Failure::from_step(&e)),
        };
        let platforms: Vec<String> = entry.platforms.iter().map(|p| p.to_string()).collect();
        let mut digests = vec![None; refs.len()];
        for ((i, r), t) in asked.iter().zip(targets) {
            known[*i] = match t {
                Ok(Some(t)) if t == source => Some(Decision::UpToDate),
                Ok(Some(t)) if self.remembered(&PairKey::new(&src.to_string(), &platforms, &r.to_string()), &source, &t) => {
                    digests[*i] = Some(t);
                    Some(Decision::UpToDate)
                }
                Ok(Some(_)) => None,
                Ok(None) => Some(Decision::Copy(Why::Missing)),
                Err(e) => Some(Decision::Failed(Failure::from_step(&e))),
            };
        }
        Heads::Asked { source, targets: digests }
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
        let src = &entry.source;
        ctx.step(format!("inspect {src}"));
        let insp = self
            .inspector
            .inspect(ctx, src, !entry.platforms.is_empty())
            .map_err(|e| Failure::from_step(&e))?
            .ok_or_else(|| not_found(src))?;
        let selected = insp
            .select(&entry.platforms)
            .map_err(|m| Failure::new(format!("{src}: {m}"), crate::family::Family::PlatformMissing.hint()))?;
        if selected.is_empty() {
            return Err(Failure::new(format!("{src} holds no runnable image (only attestations)"), "check the source tag"));
        }
        Ok((insp, selected))
    }

    /// The decision for one target, and its digest when its content was
    /// verified the same under another digest (the state file remembers it
    /// when the run records the plan, so the next run's HEADs need no GET).
    fn decide(&self, ctx: &Ctx, reference: &ImageRef, source: &ImageRef, src: &Inspection, selected: &[Image]) -> (Decision, Option<String>) {
        if self.options.force {
            return (Decision::Copy(Why::Forced), None);
        }
        let dst = match self.inspector.inspect(ctx, reference, false) {
            Ok(d) => d,
            Err(e) => return (Decision::Failed(Failure::from_step(&e)), None),
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
        match compare_with_configs(self.inspector, ctx, source, src, selected, reference, dst) {
            Ok(Verdict::Same) => (Decision::UpToDate, dst_digest.filter(|t| src.digest.as_ref() != Some(t))),
            Ok(_) if missing => (Decision::Copy(Why::Missing), None),
            Ok(_) if !lacking.is_empty() => (Decision::Copy(Why::PlatformMissing { platforms: lacking, target: dst_digest }), None),
            Ok(_) => (Decision::Copy(Why::Differs { target: dst_digest }), None),
            Err(e) => (Decision::Failed(Failure::from_step(&e)), None),
        }
    }

    /// The selected images with their config digests, which the daemon engine
    /// keys local images by; refused past the platforms it pulls, before any
    /// child manifest is read.
    fn daemon_selection(&self, ctx: &Ctx, p: &EntryPlan) -> Result<Vec<Image>, Failure> {
        daemon::check_platforms(&p.selected)?;
        if p.selected.iter().all(|i| i.config.is_some()) {
            return Ok(p.selected.clone());
        }
        let Some(inspection) = &p.inspection else { return Ok(p.selected.clone()) };
        let mut insp = inspection.clone();
        let want: Vec<String> = p.selected.iter().map(|i| i.digest.clone()).collect();
        self.inspector.fill_configs(ctx, &p.entry.source, &mut insp, &want).map_err(|e| Failure::from_step(&e))?;
        insp.select(&p.entry.platforms).map_err(|m| Failure::new(m, "check --platform"))
    }

    fn copy_entry(&self, p: &EntryPlan) -> Copied {
        let entry = &p.entry;
        let counter = Counting::new(self.docker);
        let tally = Tally::default();
        let ctx = self.entry_ctx(&counter, entry).requests(&tally);
        let to_copy: Vec<String> = p.targets.iter().filter(|t| t.decision.copies()).map(|t| t.reference.to_string()).collect();
        let copied: Vec<Result<String, Failure>> = match (self.options.engine, &p.inspection) {
            (_, None) => to_copy.iter().map(|_| Err(Failure::new("not inspected", "run again"))).collect(),
            (EngineKind::Daemon, Some(_)) => match self.options.docker_root.as_deref().and_then(|root| crate::disk::shortfall(root, &p.selected)) {
                Some(f) => to_copy.iter().map(|_| Err(f.clone())).collect(),
                None => {
                    let _held = self.in_use.hold(p.selected.iter().map(|i| i.digest.clone()).collect());
                    daemon::copy(&ctx, &self.options.local_images, &entry.source, &p.selected, &to_copy)
                }
            },
            (EngineKind::Imagetools, Some(inspection)) => {
                to_copy.iter().map(|t| imagetools::copy(&ctx, self.options.caps, &entry.source, inspection, &p.selected, t)).collect()
            }
        };
        // What moved, as the manifests count it (the layers' sizes), when they say.
        if copied.iter().any(Result::is_ok) {
            if let Some(bytes) = p.selected.iter().map(|i| i.layers_size).sum::<Option<u64>>() {
                (self.ctx.events)(Event::Moved { key: entry.key(), bytes });
            }
        }
        let mut copied = copied.into_iter();
        let results: Vec<Result<String, Failure>> = p
            .targets
            .iter()
            .map(|t| if t.decision.copies() { copied.next().unwrap_or_else(|| Err(Failure::new("not copied", "run again"))) } else { Ok(String::new()) })
            .collect();
        let statuses = p.targets.iter().zip(&results).map(|(t, r)| match (&t.decision, r) {
            (Decision::Copy(_), Ok(_)) => "synced",
            (Decision::UpToDate, _) => "up-to-date",
            _ => "failed",
        });
        // Signatures after the images: a copied image's digest is settled now.
        let signatures = p
            .targets
            .iter()
            .zip(&results)
            .map(|(t, r)| match (&t.decision, r) {
                (Decision::Copy(_), Ok(pushed)) => self.signatures_after_copy(&ctx, p, t, pushed),
                (Decision::UpToDate, _) => t.signatures.as_ref().map(|plan| self.copy_signatures(&ctx, &entry.source, &t.reference, plan)),
                _ => None,
            })
            .collect();
        (self.ctx.events)(Event::Outcome { key: entry.key(), status: outcome(statuses) });
        (self.ctx.events)(Event::Finished { key: entry.key() });
        Copied { results, signatures, spent: Spent { calls: counter.count(), requests: tally.snapshot() } }
    }

    fn entry_report(&self, p: EntryPlan, copied: Option<Copied>, spent: Spent) -> EntryReport {
        let (copied, mut signed) = match copied {
            Some(c) => (Some(c.results), c.signatures.into_iter()),
            None => (None, Vec::new().into_iter()),
        };
        let entry = &p.entry;
        let platforms: Vec<String> = entry.platforms.iter().map(|p| p.to_string()).collect();
        // Remember targets verified the same by content, and what each copy
        // produced where it could not keep the digest.
        if let Some(src) = p.inspection.as_ref().and_then(|i| i.digest.as_deref()) {
            for (t, d) in p.targets.iter().filter_map(|t| Some((t, t.verified.as_deref()?))) {
                self.remember(PairKey::new(&entry.source.to_string(), &platforms, &t.reference.to_string()), src, d);
            }
        }
        if let (Some(c), Some(src)) = (copied.as_ref(), p.inspection.as_ref().and_then(|i| i.digest.as_deref())) {
            for (t, d) in p.targets.iter().zip(c) {
                if let Ok(pushed) = d {
                    if !pushed.is_empty() && pushed != src {
                        self.remember(PairKey::new(&entry.source.to_string(), &platforms, &t.reference.to_string()), src, pushed);
                    }
                }
            }
        }
        let source_digest = p.inspection.as_ref().and_then(|i| i.digest.clone());
        let mut copied = copied.map(Vec::into_iter);
        let targets = p
            .targets
            .iter()
            .map(|t| {
                let outcome = copied.as_mut().and_then(Iterator::next);
                let (status, failure) = match (&p.failure, &t.decision) {
                    (Some(f), _) | (None, Decision::Failed(f)) => (Status::of_failure(&f.hint), Some(f.clone())),
                    (None, Decision::UpToDate) => (Status::UpToDate, None),
                    (None, Decision::Copy(_)) if self.options.dry_run => (Status::WouldSync, None),
                    (None, Decision::Copy(_)) => match outcome {
                        Some(Ok(_)) => (Status::Synced, None),
                        Some(Err(f)) => (Status::of_failure(&f.hint), Some(f)),
                        None => (Status::Failed, Some(Failure::new("not copied", "run again"))),
                    },
                };
                // The target's own refusal names its variables; the source's failure keeps its hint.
                let own = p.failure.is_none();
                let config = self.settings.targets.iter().find(|c| c.kind == t.kind && c.registry == t.registry);
                let hint = failure.as_ref().map(|f| match (f.hint.as_str(), config) {
                    (h, Some(c)) if own && h == crate::family::Family::Auth.hint() => c.auth_hint(),
                    (h, Some(c)) if own && h == crate::family::Family::Permission.hint() => c.permission_hint(),
                    // A preset's own name rules (issue 22).
                    (h, Some(c)) if own && h == crate::family::Family::BadName.hint() => crate::preset_check::name_hint(c, h),
                    (h, _) => h.to_string(),
                });
                let why = match &t.decision {
                    Decision::Copy(w) if status != Status::Failed => crate::report::Why {
                        reason: Some(w.reason()),
                        source_digest: source_digest.clone(),
                        target_digest: w.target_digest().map(str::to_string),
                    },
                    _ => crate::report::Why { source_digest: source_digest.clone(), ..Default::default() },
                };
                // A signature that failed fails the target, apart from its image's outcome.
                let (signatures, signature_failure) = match signed.next().flatten() {
                    Some((c, f)) => (Some(c), f),
                    None => match &t.signatures {
                        Some(plan) if p.failure.is_none() => (Some(plan.counts()), plan.first_failure().cloned()),
                        _ => (None, None),
                    },
                };
                let (error, hint) = match (failure, signature_failure) {
                    (Some(f), _) => (Some(f.error), hint),
                    (None, Some(f)) => (Some(f.error), Some(f.hint)),
                    (None, None) => (None, hint),
                };
                TargetReport { target: t.kind.as_str().to_string(), reference: t.reference.to_string(), status, error, hint, why, signatures }
            })
            .collect();
        let platforms = match &p.inspection {
            Some(_) => p.selected.iter().filter_map(|i| i.platform.as_ref()).map(|p| p.to_string()).collect(),
            None => platforms,
        };
        EntryReport {
            line: entry.line,
            source: entry.source.to_string(),
            selected_by: entry.selected_by.clone(),
            platforms,
            targets,
            error: p.failure.as_ref().map(|f| f.error.clone()),
            hint: p.failure.map(|f| f.hint),
            docker_calls: spent.calls,
            requests: spent.requests,
        }
    }
}

fn not_found(src: &ImageRef) -> Failure {
    Failure::new(format!("{src} was not found in its registry"), crate::family::Family::NotFound.hint())
}

/// Compares the selected source images with what a target holds, fetching
/// config digests only when manifest digests alone cannot decide (a target
/// written by the daemon engine holds the same configs under other digests).
fn compare_with_configs(
    inspector: &dyn Inspector,
    ctx: &Ctx,
    source_ref: &ImageRef,
    source: &Inspection,
    selected: &[Image],
    target_ref: &ImageRef,
    target: Option<Inspection>,
) -> Result<Verdict, crate::step_error::StepError> {
    let Some(mut dst) = target else {
        return Ok(plan::compare(selected, None));
    };
    match plan::compare(selected, Some(&dst)) {
        Verdict::NeedConfigs => {
            let (want_src, want_dst) = plan::missing_configs(selected, &dst);
            let mut src = source.clone();
            inspector.fill_configs(ctx, source_ref, &mut src, &want_src)?;
            inspector.fill_configs(ctx, target_ref, &mut dst, &want_dst)?;
            let selected: Vec<Image> = selected
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    if let Some(f) = src.images.iter().find(|i| i.digest == s.digest) {
                        s.config = f.config.clone();
                    }
                    s
                })
                .collect();
            Ok(plan::compare(&selected, Some(&dst)))
        }
        v => Ok(v),
    }
}
/// What a unit test starts a run from: one engine, no copies' facts, no
/// signatures, four readers; tests change what they are about.
#[cfg(test)]
impl Options {
    pub fn test(engine: EngineKind, dry_run: bool) -> Options {
        Options {
            dry_run,
            force: false,
            engine,
            caps: imagetools::Caps::default(),
            inspect_jobs: 4,
            transfer_jobs: 1,
            docker_root: None,
            local_images: Default::default(),
            signatures: false,
        }
    }
}

#[cfg(test)]
impl<'a> Run<'a> {
    /// A run on `docker` and `inspector` with `settings`, its events dropped, no state file.
    pub fn test(docker: &'a dyn Docker, inspector: &'a dyn Inspector, settings: &'a Settings, cancel: &'a std::sync::atomic::AtomicBool, options: Options) -> Run<'a> {
        Run {
            docker,
            inspector,
            settings,
            options,
            ctx: Ctx::new(docker, &settings.limits(), cancel, &|_| {}).insecure(&settings.insecure_registries),
            in_use: InUse::default(),
            state: None,
            not_copied: Default::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EngineChoice, Target, TargetKind};
    use crate::docker::{Cmd, DockerError, Output};
    use crate::inspect::docker::{Buildx, ManifestCli};
    use std::sync::atomic::AtomicBool;
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
            signatures: None,
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
        let run = Run::test(docker, inspector, &s, &cancel, Options { local_images: local.iter().map(|s| s.to_string()).collect(), ..Options::test(engine, dry_run) });
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
        fn inspect(&self, _: &Ctx, reference: &ImageRef, _: bool) -> Result<Option<Inspection>, StepError> {
            let reference = &reference.to_string();
            self.asked.lock().unwrap().push(format!("inspect {reference}"));
            match self.failing.get(reference) {
                Some(e) => Err(e.clone()),
                None => Ok(self.holds.get(reference).cloned()),
            }
        }
        fn head_first(&self, _: &ImageRef) -> bool {
            self.cheap_heads
        }
        fn head_digest(&self, _: &Ctx, reference: &ImageRef) -> Result<Option<String>, StepError> {
            let reference = &reference.to_string();
            self.asked.lock().unwrap().push(format!("head {reference}"));
            match self.failing.get(reference) {
                Some(e) => Err(e.clone()),
                None => Ok(self.holds.get(reference).and_then(|i| i.digest.clone())),
            }
        }
        fn fill_configs(&self, _: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
            let name = repository.name();
            self.asked.lock().unwrap().push(format!("configs {name} {}", digests.len()));
            for img in insp.images.iter_mut().filter(|i| digests.contains(&i.digest)) {
                img.config = self.configs.get(&img.digest).cloned();
            }
            Ok(())
        }
    }

    fn index_fixture() -> Inspection {
        match crate::inspect::parse::parse_raw(&fixture("buildx-0.10.5/inspect-raw-multi.json")).unwrap() {
            crate::inspect::parse::Raw::Index(i) => i,
            crate::inspect::parse::Raw::Manifest(_) => unreachable!(),
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
        let run = Run { state, ..Run::test(&d, inspector, &s, &cancel, Options::test(EngineKind::Daemon, true)) };
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
        let run = Run::test(&d, &insp, &s, &cancel, Options { inspect_jobs: 1, ..Options::test(EngineKind::Imagetools, true) });
        let (p, _) = run.inspect(&entries, &dests, &HashMap::new());
        assert_eq!(p.entries[0].decisions(), [Decision::Copy(Why::Missing)]);
        assert_eq!(p.entries[0].selected.len(), 2);
        let login = HashMap::from([("127.0.0.1:5102".to_string(), Failure::new("login failed", "fix it"))]);
        let (p, spent) = run.inspect(&entries, &dests, &login);
        assert_eq!(p.entries[0].decisions(), [Decision::Failed(Failure::new("login failed", "fix it"))]);
        let report = run.carry_out(p, spent);
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
            let run = Run::test(&d, &ManifestCli, &s, &cancel, Options { inspect_jobs: 1, ..Options::test(EngineKind::Daemon, true) });
            let r = run.execute(&entries, &dests, &HashMap::new());
            assert_eq!(r.entries[0].targets[0].status, Status::WouldSync, "{r:#?}");
            assert_eq!(d.calls()[1], format!("docker manifest inspect {flag}--verbose -- {dst}"));
        }
    }

    /// A registry that answers every request's first try with 429 and
    /// `Retry-After: 0`, then as a registry would: one repository `lib/a`
    /// with tags `1` and `2`, each an index of one linux/amd64 image.
    fn rate_limited_registry() -> (crate::registry::testserver::Server, String) {
        use crate::registry::manifest::{OCI_INDEX, OCI_MANIFEST};
        use crate::registry::testserver::{reply, Server};
        let child = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{}","size":2}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:{}","size":10}}]}}"#,
            "c".repeat(64),
            "d".repeat(64)
        );
        let child_digest = crate::inspect::parse::sha256_digest(child.as_bytes());
        let index = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{child_digest}","size":{},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            child.len()
        );
        let index_digest = crate::inspect::parse::sha256_digest(index.as_bytes());
        let seen: Mutex<std::collections::HashSet<String>> = Mutex::default();
        let cd = child_digest.clone();
        let server = Server::start(move |r| {
            if seen.lock().unwrap().insert(format!("{} {}", r.method, r.path())) {
                return reply(429, &[("retry-after", "0")], br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}"#);
            }
            match r.path() {
                "/v2/" => reply(200, &[], b"{}"),
                "/v2/lib/a/tags/list" => reply(200, &[("content-type", "application/json")], br#"{"name":"lib/a","tags":["1","2"]}"#),
                "/v2/lib/a/manifests/1" | "/v2/lib/a/manifests/2" => reply(200, &[("docker-content-digest", &index_digest), ("content-type", OCI_INDEX)], index.as_bytes()),
                p if p == format!("/v2/lib/a/manifests/{cd}") => reply(200, &[("docker-content-digest", &cd), ("content-type", OCI_MANIFEST)], child.as_bytes()),
                _ => reply(404, &[("content-type", "application/json")], br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#),
            }
        });
        (server, child_digest)
    }

    /// Tag lists, pull's mirror read and sync's plan read through the same
    /// reader: a 429 on each is retried by the one retry (`Ctx::retry`, the
    /// registry's `Retry-After: 0` honoured), and each caller then gets its answer.
    #[test]
    fn a_429_is_retried_by_the_same_code_for_tag_lists_pull_and_sync() {
        let (server, child_digest) = rate_limited_registry();
        let host = server.host();
        let client = crate::registry::Client::new(crate::registry::ClientConfig::default(), crate::registry::Credentials::anonymous());
        let chosen = crate::inspect::choose(crate::config::InspectChoice::Registry, Ok(&client), EngineKind::Daemon.reader(), 4, &|| {}).ok().unwrap();
        let reader = chosen.inspector;
        let no_docker = Scripted::new(vec![]);
        let cancel = AtomicBool::new(false);
        let events: Mutex<Vec<Event>> = Mutex::default();
        let record = |e: Event| events.lock().unwrap().push(e);
        // RETRIES=3 with a 1-hour base: only the registry's `Retry-After: 0` keeps this test fast.
        let limits = crate::config::Limits { retries: 3, timeout_secs: None, retry_base_ms: 3_600_000 };
        let ctx = Ctx::new(&no_docker, &limits, &cancel, &record);
        let retried = |events: &Mutex<Vec<Event>>| -> Vec<String> {
            events
                .lock()
                .unwrap()
                .drain(..)
                .filter_map(|e| match e {
                    Event::Retry { command, reason, wait, .. } if reason.contains("HTTP 429") && wait.is_zero() => Some(command),
                    _ => None,
                })
                .collect()
        };

        // 1. A tag list (a selecting line).
        let entries = images::parse_with_warnings("images.txt", &format!("{host}/lib/a --latest=1")).unwrap().entries;
        let listings = crate::selecting::list_all(&entries, &reader, &ctx, 1);
        let (tags, _) = listings.values().next().unwrap();
        assert_eq!(tags.as_ref().unwrap(), &["1", "2"]);
        let r = retried(&events);
        assert!(r.len() == 1 && r[0].contains("/v2/lib/a/tags/list"), "{r:?}");

        // 2. pull's read of the mirror: the index, then the wanted child for its config.
        let amd64: crate::platform::Platform = "linux/amd64".parse().unwrap();
        let mirror = crate::pull::read_mirror(&ctx, Ok(&reader), &format!("{host}/lib/a:1"), &amd64, &[], &host).unwrap().unwrap();
        assert_eq!(mirror.images[0].config.as_deref(), Some(format!("sha256:{}", "c".repeat(64)).as_str()));
        let r = retried(&events);
        assert!(r.len() == 2 && r[0].ends_with("/v2/lib/a/manifests/1") && r[1].ends_with(&child_digest), "{r:?}");

        // 3. sync's plan (tag 2, not read above): HEADs of source and target, then the source's content.
        let mut s = settings();
        s.targets[0].registry = host.clone();
        let entries = images::parse("images.txt", &format!("{host}/lib/a:2 => a")).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let run = Run {
            ctx: Ctx::new(&no_docker, &limits, &cancel, &record),
            ..Run::test(&no_docker, &reader, &s, &cancel, Options { inspect_jobs: 2, ..Options::test(EngineKind::Daemon, true) })
        };
        let report = run.execute(&entries, &dests, &HashMap::new());
        assert_eq!(report.entries[0].targets[0].status, Status::WouldSync, "{report:#?}");
        let r = retried(&events);
        assert!(r.iter().any(|c| c.starts_with("HEAD ") && c.ends_with("/v2/lib/a/manifests/2")), "{r:?}");
        assert!(r.iter().any(|c| c.starts_with("HEAD ") && c.ends_with("/v2/ns/a/manifests/2")), "{r:?}");
        assert!(r.iter().any(|c| c.starts_with("GET ") && c.ends_with("/v2/lib/a/manifests/2")), "{r:?}");
        assert!(no_docker.calls().is_empty());
    }

    /// An index of thousands of "platforms" (issue 19): the daemon engine's
    /// limit refuses it while the plan is settled, before any child manifest
    /// is read and before any docker process.
    #[test]
    fn the_daemon_platform_limit_applies_before_any_child_is_read() {
        let images = (0..3000)
            .map(|n| Image { platform: Some(format!("linux/arch{n}").parse().unwrap()), digest: format!("sha256:{n:064x}"), config: None, layers_size: None })
            .collect();
        let huge = Inspection { digest: Some(format!("sha256:{}", "a".repeat(64))), index: true, images, attestations: 0 };
        let mut insp = TestInspector::new().holding(SRC, huge);
        insp.cheap_heads = true;
        let s = settings();
        let entries = images::parse("images.txt", &format!("{SRC} => web")).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let cancel = AtomicBool::new(false);
        let d = Scripted::new(vec![]);
        let run = Run::test(&d, &insp, &s, &cancel, Options::test(EngineKind::Daemon, false));
        let r = run.execute(&entries, &dests, &HashMap::new());
        let t = &r.entries[0].targets[0];
        assert_eq!(t.status, Status::Failed, "{r:#?}");
        assert!(t.error.as_deref().unwrap().contains("the daemon engine pulls at most 64 per entry"), "{t:?}");
        assert!(!insp.asked().iter().any(|a| a.starts_with("configs")), "no child read: {:?}", insp.asked());
        assert!(d.calls().is_empty(), "no docker process: {:?}", d.calls());
    }
}

#[cfg(test)]
mod signature_tests {
    //! The signature steps on an in-memory registry: what a no-op run asks,
    //! and what a run with a new attachment writes.
    use super::*;
    use crate::config::{Target, TargetKind};
    use crate::docker::{Cmd, DockerError, Output};
    use crate::images;
    use crate::step_error::StepError;
    use std::sync::atomic::AtomicBool;

    const SRC: &str = "127.0.0.1:5101/fx/app:v1";
    const DST: &str = "127.0.0.1:5102/ns/app:v1";

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn tag(c: char, suffix: &str) -> String {
        format!("sha256-{}{suffix}", c.to_string().repeat(64))
    }

    /// Digests by reference; every HEAD recorded.
    #[derive(Default)]
    struct Registry {
        digests: HashMap<String, String>,
        heads: Mutex<Vec<String>>,
    }

    impl Registry {
        fn with(mut self, reference: &str, digest: &str) -> Self {
            self.digests.insert(reference.to_string(), digest.to_string());
            self
        }
        fn heads(&self) -> Vec<String> {
            let mut v = self.heads.lock().unwrap().clone();
            v.sort();
            v
        }
    }

    impl Inspector for Registry {
        fn inspect(&self, _: &Ctx, reference: &ImageRef, _: bool) -> Result<Option<Inspection>, StepError> {
            let digest = self.digests.get(&reference.to_string()).cloned();
            Ok(digest.map(|d| Inspection {
                digest: Some(d.clone()),
                index: false,
                images: vec![Image { digest: d, platform: Some("linux/amd64".parse().unwrap()), config: None, layers_size: None }],
                attestations: 0,
            }))
        }
        fn fill_configs(&self, _: &Ctx, _: &ImageRef, _: &mut Inspection, _: &[String]) -> Result<(), StepError> {
            Ok(())
        }
        fn head_first(&self, _: &ImageRef) -> bool {
            true
        }
        fn head_digest(&self, _: &Ctx, reference: &ImageRef) -> Result<Option<String>, StepError> {
            self.heads.lock().unwrap().push(reference.to_string());
            Ok(self.digests.get(&reference.to_string()).cloned())
        }
    }

    /// Every docker call, answered as buildx 0.36.1 answers a copy that kept `digest`.
    struct Buildx {
        calls: Mutex<Vec<String>>,
        pushed: HashMap<String, String>,
    }

    impl Docker for Buildx {
        fn run(&self, cmd: &Cmd) -> Result<Output, DockerError> {
            let line = cmd.display();
            self.calls.lock().unwrap().push(line.clone());
            let source = line.rsplit(' ').next().unwrap_or_default();
            let digest = self.pushed.get(source).cloned().unwrap_or_else(|| source.rsplit('@').next().unwrap_or_default().to_string());
            Ok(Output { stdout: Vec::new(), stderr: format!("#1 0.1 pushing {digest} to somewhere\n") })
        }
    }

    fn settings() -> Settings {
        let target = Target { kind: TargetKind::Custom, registry: "127.0.0.1:5102".into(), namespace: "ns".into(), username: None, password: None, naming: crate::naming::Naming::Flat };
        let mut s = crate::config::resolve(&Default::default(), &|_| None, &Default::default()).unwrap();
        s.targets = vec![target];
        s.mode = "custom".into();
        s
    }

    fn run(inspector: &dyn Inspector, docker: &dyn Docker, dry_run: bool, signatures: bool) -> Report {
        let s = settings();
        let entries = images::parse("images.txt", &format!("{SRC} => app")).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let cancel = AtomicBool::new(false);
        let caps = imagetools::Caps { prefer_index: true, metadata_file: false };
        let run = Run::test(docker, inspector, &s, &cancel, Options { caps, inspect_jobs: 2, signatures, ..Options::test(EngineKind::Imagetools, dry_run) });
        run.execute(&entries, &dests, &HashMap::new())
    }

    fn registry() -> Registry {
        Registry::default()
            .with(SRC, &d('a'))
            .with(DST, &d('a'))
            .with(&format!("127.0.0.1:5101/fx/app:{}", tag('a', ".sig")), &d('s'))
            .with(&format!("127.0.0.1:5102/ns/app:{}", tag('a', ".sig")), &d('s'))
            .with(&format!("127.0.0.1:5101/fx/app:{}", tag('a', ".att")), &d('t'))
    }

    #[test]
    fn a_noop_asks_four_heads_at_the_source_and_one_per_found_one_at_the_target() {
        let reg = registry();
        let docker = Buildx { calls: Mutex::new(Vec::new()), pushed: HashMap::new() };
        let r = run(&reg, &docker, true, true);
        let t = &r.entries[0].targets[0];
        assert_eq!(t.status, Status::UpToDate, "{r:#?}");
        assert_eq!(t.signatures, Some(crate::signatures::Counts { found: 2, copied: 0, up_to_date: 1, failed: 0, joined: 0 }), "{r:#?}");
        let heads = reg.heads();
        let source = heads.iter().filter(|h| h.starts_with("127.0.0.1:5101/fx/app:sha256-")).count();
        let target = heads.iter().filter(|h| h.starts_with("127.0.0.1:5102/ns/app:sha256-")).count();
        assert_eq!((source, target), (4, 2), "{heads:#?}");
        assert_eq!(heads.len(), 2 + 4 + 2, "the image's two HEADs, then the signatures'");
        assert!(docker.calls.lock().unwrap().is_empty(), "a plan starts no process");

        // SIGNATURES=off: the image's two HEADs only, and no field in the report.
        let reg = registry();
        let r = run(&reg, &docker, true, false);
        assert_eq!(reg.heads().len(), 2);
        assert_eq!(r.entries[0].targets[0].signatures, None);
        assert_eq!(r.summary.signatures, None);
    }

    #[test]
    fn a_new_attestation_is_copied_byte_for_byte_under_its_tag() {
        let reg = registry();
        let docker = Buildx { calls: Mutex::new(Vec::new()), pushed: HashMap::new() };
        let r = run(&reg, &docker, false, true);
        let t = &r.entries[0].targets[0];
        assert_eq!(t.status, Status::UpToDate, "the image was not copied\n{r:#?}");
        assert_eq!(t.signatures, Some(crate::signatures::Counts { found: 2, copied: 1, up_to_date: 1, failed: 0, joined: 0 }), "{r:#?}");
        assert_eq!(t.error, None);
        let calls = docker.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            [format!("docker buildx imagetools create --prefer-index=false -t 127.0.0.1:5102/ns/app:{} -- 127.0.0.1:5101/fx/app@{}", tag('a', ".att"), d('t'))],
            "one copy, pinned to the source's digest"
        );
        assert_eq!(r.summary.signatures, t.signatures);
        assert!(!r.failed());
    }

    #[test]
    fn a_copy_that_changes_the_digest_fails_the_target_with_its_own_hint() {
        let reg = registry();
        let source = format!("127.0.0.1:5101/fx/app@{}", d('t'));
        let docker = Buildx { calls: Mutex::new(Vec::new()), pushed: HashMap::from([(source, d('x'))]) };
        let r = run(&reg, &docker, false, true);
        let t = &r.entries[0].targets[0];
        assert_eq!(t.status, Status::UpToDate, "the image's outcome stands\n{r:#?}");
        assert_eq!(t.signatures.unwrap().failed, 1);
        assert!(t.error.as_deref().unwrap().starts_with("signatures: "), "{t:?}");
        assert!(t.hint.as_deref().unwrap().contains("SIGNATURES=off"), "{t:?}");
        assert!(r.failed(), "exit 1");
    }
}
