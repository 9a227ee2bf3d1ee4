//! The commands: read inputs, build the run, hand results to the UI.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::cli::{Cli, Command, Common, CopyArgs, SyncArgs};
use crate::config::{self, EnvFile, Settings};
use crate::credentials::{self, PrivateConfig};
use crate::docker::{self, Docker, Redactor};
use crate::engine::inspector::Tool;
use crate::engine::{imagetools, EngineKind};
use crate::images::{self, Entry, LineError};
use crate::plan;
use crate::report::Report;
use crate::sync::{self, Options, Run};
use crate::ui::Ui;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Ok,
    /// Some entries failed; the others were processed.
    Failed,
    /// Bad input or configuration; nothing was done.
    BadInput,
    Interrupted,
}

impl Exit {
    pub fn code(self) -> i32 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::BadInput => 2,
            Exit::Interrupted => 130,
        }
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

/// Input errors, reported all at once before anything runs.
struct BadInput(Vec<String>);

fn line_errors(errors: Vec<LineError>) -> BadInput {
    BadInput(errors.into_iter().map(|e| e.to_string()).collect())
}

pub fn run(cli: Cli) -> Exit {
    let ui = Ui::new(env("GITHUB_ACTIONS").as_deref() == Some("true"));
    match cli.command {
        Command::Sync(args) => sync_command(&ui, &args, args.dry_run),
        Command::Plan(args) => sync_command(&ui, &args, true),
        Command::Copy(args) => copy_command(&ui, &args),
        Command::Doctor(args) => crate::doctor::run(&ui, &args),
        Command::CleanDisk(args) => clean_disk_command(&ui, &args),
    }
}

fn load_settings(common: &Common) -> Result<Settings, BadInput> {
    let label = common.config.display().to_string();
    let file = match std::fs::read_to_string(&common.config) {
        Ok(text) => config::parse_env_file(&label, &text).map_err(line_errors)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => EnvFile { file: label, ..Default::default() },
        Err(e) => return Err(BadInput(vec![format!("{label}: {e}")])),
    };
    config::resolve(&file, &env, &common.overrides()).map_err(BadInput)
}

pub fn load_entries(path: &Path) -> Result<(String, Vec<Entry>), Vec<String>> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![if e.kind() == std::io::ErrorKind::NotFound {
            format!("{label}: not found; create it with one image per line, e.g. `nginx:alpine`, or pass --images FILE")
        } else {
            format!("{label}: {e}")
        }]
    })?;
    let entries = images::parse(&label, &text).map_err(|e| line_errors(e).0)?;
    Ok((label, entries))
}

fn sync_command(ui: &Ui, args: &SyncArgs, dry_run: bool) -> Exit {
    let prepared = (|| -> Result<_, BadInput> {
        let (label, mut entries) = load_entries(&args.images).map_err(BadInput)?;
        let settings = load_settings(&args.common)?;
        if let Some(shard) = &args.shard {
            let shard = crate::shard::parse(shard).map_err(|e| BadInput(vec![format!("--shard {shard}: {e}")]))?;
            entries.retain(|e| crate::shard::in_shard(&shard_key(e), shard));
        }
        Ok((label, entries, settings))
    })();
    match prepared {
        Ok((label, entries, settings)) => {
            execute(ui, &label, &entries, &settings, &args.common, dry_run, args.badge.as_deref())
        }
        Err(BadInput(errors)) => {
            ui.input_errors(&errors);
            Exit::BadInput
        }
    }
}

/// What a shard is chosen by: the line's content, not its position.
pub fn shard_key(e: &Entry) -> String {
    let platforms: Vec<String> = e.platforms.iter().map(|p| p.to_string()).collect();
    format!("{} {}", platforms.join(","), e.source)
}

fn copy_command(ui: &Ui, args: &CopyArgs) -> Exit {
    let mut line = String::new();
    if let Some(p) = &args.platform {
        line.push_str(&format!("--platform={p} "));
    }
    line.push_str(&args.source);
    if let Some(n) = &args.name {
        line.push_str(&format!(" => {n}"));
    }
    // The arguments go through the images.txt grammar, so the same rules apply;
    // a comment marker or a second image cannot sneak in.
    if line.contains('#') || line.lines().count() != 1 {
        ui.input_errors(&[format!("invalid arguments: {line:?}")]);
        return Exit::BadInput;
    }
    let parsed = images::parse("arguments", &line);
    let settings = load_settings(&args.common);
    match (parsed, settings) {
        (Ok(entries), Ok(settings)) => execute(ui, "arguments", &entries, &settings, &args.common, args.dry_run, None),
        (p, s) => {
            let mut errors: Vec<String> = p.err().map(|e| line_errors(e).0).unwrap_or_default();
            errors.extend(s.err().map(|e| e.0).unwrap_or_default());
            ui.input_errors(&errors);
            Exit::BadInput
        }
    }
}

fn execute(ui: &Ui, label: &str, entries: &[Entry], settings: &Settings, common: &Common, dry_run: bool, badge: Option<&Path>) -> Exit {
    let dests = match plan::destinations(label, entries, &settings.targets) {
        Ok(d) => d,
        Err(errors) => {
            ui.input_errors(&line_errors(errors).0);
            return Exit::BadInput;
        }
    };
    // Webhook and badge options may sit in config.env (the URL, a secret, may not).
    let setting = |k: &str| config::lookup(&settings.file, &env, k);
    let webhook = match crate::webhook::Webhook::from_env(&setting) {
        Ok(w) => w,
        Err(e) => {
            ui.input_errors(&[e]);
            return Exit::BadInput;
        }
    };
    let tz = match setting("BADGE_TZ") {
        None => crate::badge::Tz::utc(),
        Some(v) => match crate::badge::Tz::parse(&v) {
            Ok(tz) => tz,
            Err(e) => {
                ui.input_errors(&[format!("BADGE_TZ={v:?}: {e}")]);
                return Exit::BadInput;
            }
        },
    };
    let mut secrets = settings.secrets();
    secrets.extend(webhook.as_ref().map(|w| w.secret().clone()));
    ui.mask(&secrets);
    for w in &settings.warnings {
        ui.warn(w);
    }
    let cancel = Arc::new(AtomicBool::new(false));
    watch_signals(Arc::clone(&cancel));
    if settings.clean_disk && !dry_run {
        clean_disk_before_sync(ui);
    }
    match run_sync(ui, entries, &dests, settings, common, dry_run, &cancel) {
        Ok(report) => {
            let interrupted = cancel.load(std::sync::atomic::Ordering::SeqCst);
            let after = After { badge: badge.map(|b| (b, tz)), webhook: webhook.as_ref() };
            finish(ui, label, &report, common, &after, interrupted)
        }
        Err(RunError::BadInput(m)) => {
            ui.input_errors(&[m]);
            Exit::BadInput
        }
        Err(RunError::Fatal(e)) => {
            ui.fatal(&e);
            Exit::BadInput
        }
    }
}

/// The first SIGINT/SIGTERM asks for a clean stop; a second one exits at
/// once, after deleting the private docker config (it holds the logins).
fn watch_signals(cancel: Arc<AtomicBool>) {
    use std::sync::atomic::Ordering;
    let Ok(mut signals) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]) else {
        return;
    };
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if cancel.swap(true, Ordering::SeqCst) {
                credentials::remove_live_private_config();
                crate::docker::kill_running_children();
                std::process::exit(130);
            }
        }
    });
}

enum RunError {
    BadInput(String),
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for RunError {
    fn from(e: anyhow::Error) -> Self {
        RunError::Fatal(e)
    }
}

fn run_sync(
    ui: &Ui,
    entries: &[Entry],
    dests: &[plan::Destinations],
    settings: &Settings,
    common: &Common,
    dry_run: bool,
    cancel: &Arc<AtomicBool>,
) -> Result<Report, RunError> {
    let program = docker::Cli::locate()?;
    let logins: Vec<String> = settings
        .targets
        .iter()
        .filter(|t| t.username.is_some() && t.password.is_some())
        .map(|t| t.registry.clone())
        .chain(settings.dockerhub_pull.as_ref().map(|_| "docker.io".to_string()))
        .collect();
    let user_dir = credentials::user_config_dir(&env);
    let private = PrivateConfig::create(user_dir.as_deref(), &logins)?;
    let docker = docker::Cli::new(program, Redactor::new(&settings.secrets()), Arc::clone(cancel))
        .with_env("DOCKER_CONFIG", private.path());
    let buildx = sync::buildx_available(&docker);
    let engine = sync::choose_engine(settings.engine, buildx).map_err(RunError::BadInput)?;
    // imagetools needs the registry's exact digests and gains from reading only
    // the top level. The daemon engine re-compresses, so its targets never share
    // manifest digests with the source and configs are always needed: one
    // `docker manifest inspect --verbose` gets them all, where buildx needs a call
    // per platform (measured by scripts/bench.sh: half the time for the same requests).
    let tool = if engine == EngineKind::Imagetools { Tool::Buildx } else { Tool::ManifestCli };
    let (inspect_jobs, transfer_jobs) = Options::default_jobs(engine, settings.jobs);
    ui.info(&format!(
        "engine: {} ({}); entries: {}; targets: {}",
        engine.as_str(),
        if buildx { "docker buildx found" } else { "docker buildx not found" },
        entries.len(),
        if settings.targets.is_empty() { "none (plan only)".to_string() } else { settings.mode.clone() }
    ));
    let docker_root = (engine == EngineKind::Daemon && !dry_run)
        .then(|| docker.run(&crate::docker::Cmd::new(["info", "--format", "{{.DockerRootDir}}"]).timeout(std::time::Duration::from_secs(30))).ok())
        .flatten()
        .map(|o| std::path::PathBuf::from(o.stdout_text().trim()))
        .filter(|p| p.is_dir());
    let events = |e| ui.event(e);
    let base_ctx = crate::engine::Ctx::new(&docker, settings.retries, settings.timeout_secs, cancel, &events);
    let local_images = if engine == EngineKind::Daemon && !dry_run && !settings.targets.is_empty() {
        crate::engine::daemon::local_images(&base_ctx).map_err(|f| anyhow::anyhow!("{} — {}", f.error, f.hint))?
    } else {
        Default::default()
    };
    let mut run = Run {
        docker: &docker,
        settings,
        options: Options { dry_run: dry_run || settings.targets.is_empty(), force: common.force, engine, tool, caps: imagetools::Caps::default(), inspect_jobs, transfer_jobs, docker_root, local_images },
        cancel,
        events: &events,
        in_use: Default::default(),
    };
    if engine == EngineKind::Imagetools && !run.options.dry_run {
        run.options.caps = imagetools::detect_caps(&base_ctx);
    }
    ui.start(entries.len());
    let login_failures = run.login();
    let report = run.execute(entries, dests, &login_failures);
    ui.finish();
    drop(private);
    Ok(report)
}

/// What happens once the report is in: all of it reported, none of it able to fail the sync.
struct After<'a> {
    badge: Option<(&'a Path, crate::badge::Tz)>,
    webhook: Option<&'a crate::webhook::Webhook>,
}

fn finish(ui: &Ui, label: &str, report: &Report, common: &Common, after: &After, interrupted: bool) -> Exit {
    if let Some(path) = &common.report {
        if let Err(e) = std::fs::write(path, report.to_json()).with_context(|| format!("writing the report to {}", path.display())) {
            ui.fatal(&e);
        }
    }
    ui.report(report, label);
    if let Err(e) = crate::github::GithubEnv::from_env(&env).publish(report) {
        ui.warn(&e);
    }
    if let Some(w) = after.webhook {
        match w.notify(report) {
            o @ crate::webhook::Outcome::Failed(_) => ui.warn(&o.to_string()),
            o => ui.info(&o.to_string()),
        }
    }
    if let Some((path, tz)) = &after.badge {
        if report.summary.synced > 0 {
            match crate::badge::rewrite_file(path, crate::badge::unix_now(), tz) {
                Ok(true) => ui.info(&format!("badge: updated the last-sync time in {}", path.display())),
                Ok(false) => ui.warn(&format!(
                    "badge: {} has no last-sync badge line; add one starting with {}",
                    path.display(),
                    crate::badge::MARKER
                )),
                Err(e) => ui.warn(&format!("badge: {}: {e}", path.display())),
            }
        }
    }
    if interrupted {
        Exit::Interrupted
    } else if report.failed() {
        Exit::Failed
    } else {
        Exit::Ok
    }
}

/// `CLEAN_DISK_SPACE=true`: free runner disk first. Off a hosted runner it
/// only says why it did nothing; a failure never stops the sync.
fn clean_disk_before_sync(ui: &Ui) {
    let gh = crate::github::GithubEnv::from_env(&env);
    if !gh.hosted_runner {
        ui.info("CLEAN_DISK_SPACE=true: skipped, this is not a GitHub-hosted runner (run `imgsync clean-disk --force` to clean anyway)");
        return;
    }
    // Only here, on a disposable hosted runner, does CLEAN_DISK_SPACE imply the image prune.
    let opts = crate::clean_disk::Options { dry_run: false, force: false, root: None, hosted_runner: true, prune_images: true };
    match run_clean_disk(&opts) {
        Ok(r) => ui.info(&crate::clean_disk::render(&r)),
        Err(e) => ui.warn(&format!("clean-disk: {e}")),
    }
}

fn run_clean_disk(opts: &crate::clean_disk::Options) -> Result<crate::clean_disk::CleanReport, String> {
    let program = docker::Cli::locate().map_err(|e| format!("{e:#}"))?;
    let cancel = Arc::new(AtomicBool::new(false));
    let cli = docker::Cli::new(program, Redactor::default(), cancel.clone());
    let ctx = crate::engine::Ctx::new(&cli, 0, None, &cancel, &|_| {});
    let prune = |dry: bool| crate::engine::daemon::prune_images(&ctx, dry);
    // A fake tree under --root is the tests' and never needs root's help.
    let sudo = |p: &Path| docker::sudo_remove(p);
    let hooks = crate::clean_disk::Hooks {
        docker_images: if opts.root.is_none() { Some(&prune) } else { None },
        privileged_remove: if opts.root.is_none() { Some(&sudo) } else { None },
    };
    crate::clean_disk::clean(opts, &hooks)
}

fn clean_disk_command(ui: &Ui, args: &crate::cli::CleanDiskArgs) -> Exit {
    let gh = crate::github::GithubEnv::from_env(&env);
    let opts = crate::clean_disk::Options {
        dry_run: args.dry_run,
        force: args.force,
        root: args.root.clone(),
        hosted_runner: gh.hosted_runner,
        prune_images: args.prune_images,
    };
    match run_clean_disk(&opts) {
        Ok(r) => {
            ui.output(&crate::clean_disk::render(&r));
            if r.failed() {
                Exit::Failed
            } else {
                Exit::Ok
            }
        }
        Err(e) => {
            ui.error(&format!("clean-disk: {e}"));
            Exit::BadInput
        }
    }
}
