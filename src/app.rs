//! Command dispatch (the exit policy is `exit`). Each command reads its inputs
//! (`inputs`), opens a `Session` and hands results to the UI; the run itself
//! is `sync`, the checks are `doctor`, publishing is `publish`.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::cli::{Cli, Command, CopyArgs, RunFlags, SyncArgs};
use crate::config::Settings;
use crate::exit::Exit;
use crate::images::{self, Entry};
use crate::inputs::{env, line_errors, load_selecting_entries, load_settings};
use crate::plan;
use crate::session::Session;
use crate::sync::RunError;
use crate::ui::Ui;

pub fn run(cli: Cli) -> Exit {
    let ui = Ui::new(env("GITHUB_ACTIONS").as_deref() == Some("true")).with_verbosity(cli.verbosity());
    // One handler for every command, before anything that could hold a login.
    let cancel = Arc::new(AtomicBool::new(false));
    crate::signals::watch(Arc::clone(&cancel));
    let exit = match cli.command {
        Command::Sync(args) => sync_command(&ui, &args, args.dry_run, &cancel),
        Command::Plan(args) => sync_command(&ui, &args.as_sync(), true, &cancel),
        Command::Copy(args) => copy_command(&ui, &args, &cancel),
        Command::Doctor(args) => doctor_command(&ui, &args.as_sync(), &cancel),
        Command::CleanDisk(args) => clean_disk_command(&ui, &args, &cancel),
        Command::Completions(args) => if crate::completions::run(&args) { Exit::Ok } else { Exit::Failed },
        Command::Map(args) => crate::pull::map_command(&ui, &args),
        Command::Pull(args) => crate::pull::pull_command(&ui, &args, &cancel),
    };
    if cancel.load(Ordering::SeqCst) {
        Exit::Interrupted
    } else {
        exit
    }
}

fn sync_command(ui: &Ui, args: &SyncArgs, dry_run: bool, cancel: &Arc<AtomicBool>) -> Exit {
    let prepared = (|| -> Result<_, Vec<String>> {
        let loaded = load_selecting_entries(&args.images)?;
        // Once, before anything else is said about the run.
        for w in &loaded.warnings {
            ui.input_warning(w);
        }
        let (label, mut entries) = (loaded.label, loaded.entries);
        let settings = load_settings(args.common.config.as_deref(), &args.common.overrides())?;
        // Shard first: a selecting line's tags all stay in its shard.
        let mut elsewhere = Vec::new();
        if let Some(shard) = &args.shard {
            let shard = crate::shard::parse(shard).map_err(|e| vec![format!("--shard {shard}: {e}")])?;
            (entries, elsewhere) = entries.into_iter().partition(|e| crate::shard::in_shard(&crate::shard::key(e), shard));
        }
        Ok((label, entries, elsewhere, settings))
    })();
    match prepared {
        Ok((label, entries, elsewhere, settings)) => {
            let run = Execute { label: &label, entries: &entries, elsewhere: &elsewhere, flags: &args.run, dry_run, badge: args.badge.as_deref() };
            execute_run(&run, ui, settings, cancel)
        }
        Err(errors) => {
            ui.input_errors(&errors);
            Exit::BadInput
        }
    }
}

fn copy_command(ui: &Ui, args: &CopyArgs, cancel: &Arc<AtomicBool>) -> Exit {
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
    let settings = load_settings(args.common.config.as_deref(), &args.common.overrides());
    match (parsed, settings) {
        (Ok(entries), Ok(settings)) => execute(ui, "arguments", &entries, settings, &args.run, args.dry_run, None, cancel),
        (p, s) => {
            let mut errors: Vec<String> = p.err().map(line_errors).unwrap_or_default();
            errors.extend(s.err().unwrap_or_default());
            ui.input_errors(&errors);
            Exit::BadInput
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn execute(
    ui: &Ui,
    label: &str,
    entries: &[Entry],
    settings: Settings,
    flags: &RunFlags,
    dry_run: bool,
    badge: Option<&Path>,
    cancel: &Arc<AtomicBool>,
) -> Exit {
    execute_run(&Execute { label, entries, elsewhere: &[], flags, dry_run, badge }, ui, settings, cancel)
}

/// A run of `sync`, `plan` or `copy`: its entries (selecting lines included)
/// and the plain entries of other shards (`--shard`), which a selection leaves
/// the tags they list.
struct Execute<'a> {
    label: &'a str,
    entries: &'a [Entry],
    elsewhere: &'a [Entry],
    flags: &'a RunFlags,
    dry_run: bool,
    badge: Option<&'a Path>,
}

fn execute_run(run: &Execute, ui: &Ui, settings: Settings, cancel: &Arc<AtomicBool>) -> Exit {
    let Execute { label, entries, elsewhere, flags, dry_run, badge } = *run;
    // Selecting lines get their destinations once their tags are known (in the run).
    let plain: Vec<Entry> = entries.iter().filter(|e| !e.is_selecting()).cloned().collect();
    let dests = match plan::destinations(label, &plain, &settings.targets) {
        Ok(d) => d,
        Err(errors) => {
            ui.input_errors(&line_errors(errors));
            return Exit::BadInput;
        }
    };
    if flags.report.as_deref() == Some(Path::new("-")) {
        ui.keep_stdout_for_json();
    }
    ui.mask(&settings.secrets());
    for w in &settings.warnings {
        ui.setting_warning(w);
    }
    // A run that can copy nothing must not pass for one that did.
    let plan_only = settings.targets.is_empty();
    if plan_only {
        ui.warn(crate::github::PLAN_ONLY);
    }
    if settings.clean_disk && !dry_run {
        clean_disk_before_sync(ui, cancel);
    }
    let events = |e| ui.event(e);
    let session = match Session::open(settings, Arc::clone(cancel), &events) {
        Ok(s) => s,
        Err(e) => {
            ui.fatal(&e);
            return Exit::BadInput;
        }
    };
    let work = crate::sync::Work { label, entries, elsewhere, dests };
    match crate::sync::run(&session, &work, dry_run, flags.force) {
        Ok(mut report) => {
            report.plan_only = plan_only;
            let interrupted = session.cancelled();
            let after = crate::publish::After { report_file: flags.report.as_deref(), badge };
            crate::publish::publish(ui, label, &report, &session.settings, &after);
            drop(session);
            Exit::after_run(&report, interrupted)
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

fn doctor_command(ui: &Ui, args: &SyncArgs, cancel: &Arc<AtomicBool>) -> Exit {
    let checks = crate::doctor::checks(args, cancel);
    for c in &checks {
        ui.check(c);
    }
    if checks.iter().all(|c| c.ok || !c.required) {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

/// `CLEAN_DISK_SPACE=true`: free runner disk first. Off a hosted runner it
/// only says why it did nothing; a failure never stops the sync.
fn clean_disk_before_sync(ui: &Ui, cancel: &Arc<AtomicBool>) {
    let gh = crate::github::GithubEnv::from_env(&env);
    if !gh.hosted_runner {
        ui.info("CLEAN_DISK_SPACE=true: skipped, this is not a GitHub-hosted runner (run `imgsync clean-disk --force` to clean anyway)");
        return;
    }
    // Only here, on a disposable hosted runner, does CLEAN_DISK_SPACE imply the image prune.
    let opts = crate::clean_disk::Options { dry_run: false, force: false, root: None, hosted_runner: true, prune_images: true };
    match run_clean_disk(&opts, cancel) {
        Ok(r) => ui.info(&crate::clean_disk::render(&r)),
        Err(e) => ui.warn(&format!("clean-disk: {e}")),
    }
}

fn run_clean_disk(opts: &crate::clean_disk::Options, cancel: &Arc<AtomicBool>) -> Result<crate::clean_disk::CleanReport, String> {
    // A session like every command's: clean-disk reads no config.env, so its
    // settings are the defaults (no targets, no logins).
    let settings = crate::config::resolve(&crate::config::EnvFile::default(), &|_| None, &crate::config::Overrides::default()).map_err(|e| e.join("; "))?;
    let session = Session::open(settings, Arc::clone(cancel), &|_| {}).map_err(|e| format!("{e:#}"))?;
    let ctx = session.ctx();
    let prune = |dry: bool| crate::engine::daemon::prune_images(&ctx, dry);
    // A fake tree under --root is the tests' and never needs root's help.
    let sudo = |p: &Path| crate::docker::sudo_remove(p);
    let hooks = crate::clean_disk::Hooks {
        docker_images: if opts.root.is_none() { Some(&prune) } else { None },
        privileged_remove: if opts.root.is_none() { Some(&sudo) } else { None },
    };
    crate::clean_disk::clean(opts, &hooks)
}

fn clean_disk_command(ui: &Ui, args: &crate::cli::CleanDiskArgs, cancel: &Arc<AtomicBool>) -> Exit {
    let gh = crate::github::GithubEnv::from_env(&env);
    let opts = crate::clean_disk::Options {
        dry_run: args.dry_run,
        force: args.force,
        root: args.root.clone(),
        hosted_runner: gh.hosted_runner,
        prune_images: args.prune_images,
    };
    match run_clean_disk(&opts, cancel) {
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
