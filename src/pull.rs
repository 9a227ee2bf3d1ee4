//! `imgsync map` and `imgsync pull`: the server side of the mirror.
//!
//! Both read the same inputs: the originals (images given on the command
//! line, every `image:` of the `--compose` files, or every images.txt line),
//! images.txt for the naming rules (renames, platform lines; a missing
//! images.txt is an empty one unless `--images` names it) and config.env for
//! the target (`--from` picks one when several are configured). The names
//! come from [`mirror_map::map`], which names mirrors exactly as sync does.
//!
//! `map` is pure and prints. `pull` runs in a [`Session`] (private
//! DOCKER_CONFIG, logins as sync makes them) and, per mapping:
//! 1. reads the mirror through [`Session::registry`]: the manifest or index
//!    its tag names and, for an index, the wanted platform's manifest (for the
//!    config digest, the classic store's image ID);
//! 2. `docker image inspect`s the original name (and the mirror reference:
//!    a mirror tag the user already had is never removed);
//! 3. [`pull::decide`]s: `present` (no `docker pull`), `failed` (not
//!    mirrored, or not for this platform: the message says what to do), or a
//!    pull: `docker pull --platform P MIRROR`, inspect and [`pull::verify`],
//!    `docker tag MIRROR ORIGINAL`, and `docker image rm MIRROR` when this run
//!    created that tag (never `--force`: it only untags, the image stays
//!    under the original name).
//!
//! The platform is `--platform`, else the compose service's `platform:`, else
//! the engine's own: `docker version --format {{.Server.Os}}/{{.Server.Arch}}`,
//! one cheap `/version` API call (no image or storage scan as `docker info`
//! makes), asked once and only when some image needs it. The engine's, not
//! this binary's `std::env::consts::ARCH`: DOCKER_HOST may point at another
//! machine, and an emulated client (amd64 CLI on an arm64 Mac) would lie.
//!
//! Tag-selecting images.txt lines (`nginx --semver=~1.27`): the server lists
//! the *mirror's* tags (it may not reach the source) and selects from them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::{Format, MapArgs, PullArgs, Select};
use crate::config::{Overrides, Settings, Target};
use crate::exit::Exit;
use crate::family::Family;
use crate::docker::{Cmd, Counting};
use crate::ctx::Ctx;
use crate::diagnose::Classify;
use crate::failure::{Event, Failure};
use crate::images::{self, Entry};
use crate::inputs::{env, line_errors, load_settings};
use crate::inspect::parse::Inspection;
use crate::mirror_map::pull::{self as decide_pull, Decision, LocalImage, Request, Step};
use crate::mirror_map::{self, render, Mapping, Original};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::config::InspectChoice;
use crate::inspect::fallback::ReadPath;
use crate::inspect::Inspector;
use crate::report::{summarize, EntryReport, Kind, Report, Status, TargetReport};
use crate::step_error::{Cause, StepError};
use crate::session::Session;
use crate::ui::Ui;

/// The inputs, read and checked: nothing has touched docker or a registry.
struct Inputs {
    label: String,
    /// images.txt without its tag-selecting lines (those are in `selecting`).
    entries: Vec<Entry>,
    selecting: Vec<Entry>,
    originals: Vec<Original>,
    settings: Settings,
    target: Target,
}

fn load_inputs(ui: &Ui, sel: &Select, over: &Overrides, platform: Option<&Platform>) -> Result<Inputs, Vec<String>> {
    let mut errors = Vec::new();
    let explicit = sel.images_file.is_some();
    let path = sel.images_file.clone().unwrap_or_else(|| PathBuf::from("images.txt"));
    let label = path.display().to_string();
    let parsed = match images::read_capped(&path) {
        Ok(text) => images::parse_with_warnings(&label, &text).map_err(|e| errors.extend(line_errors(e))).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Some(images::Parsed::default()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            errors.push(format!("{label}: not found"));
            None
        }
        Err(e) => {
            errors.push(format!("{label}: {e}"));
            None
        }
    };
    // --mirror replaces config.env's targets: they are not resolved (nor their errors reported).
    let over = Overrides { mode: sel.mirror.as_ref().map(|_| "none".to_string()).or_else(|| over.mode.clone()), ..over.clone() };
    let settings = load_settings(sel.config.as_deref(), &over).map_err(|e| errors.extend(e)).ok();
    let target = match &sel.mirror {
        Some(m) => Target::from_mirror(m, sel.naming.unwrap_or_default()).map_err(|e| errors.push(e)).ok(),
        None => settings.as_ref().and_then(|s| pick_target(s, sel.from.as_deref(), sel.config.as_deref().unwrap_or(std::path::Path::new(crate::inputs::DEFAULT_CONFIG))).map_err(|e| errors.push(e)).ok()),
    };
    let mut originals = Vec::new();
    for text in &sel.images {
        match Original::parse(text, platform.cloned()) {
            Ok(o) => originals.push(o),
            Err(e) => errors.push(format!("{text:?}: {e}")),
        }
    }
    if !sel.compose.is_empty() {
        match crate::compose::load(&sel.compose, &env) {
            Ok(project) => {
                for w in &project.warnings {
                    ui.warn(w);
                }
                for s in &project.build_only {
                    ui.info(&format!("service {s} is built locally (build: without image:): nothing to pull"));
                }
                // As compose: services of inactive profiles do not run, and a
                // service with `build:` is built here, not pulled (unless asked).
                let mut active = project.env_profiles.clone();
                active.extend(sel.profile.iter().flat_map(|p| crate::compose::split_profiles(p)));
                let mut services = Vec::new();
                for s in &project.services {
                    if !s.active(&active) {
                        let shown = if active.is_empty() { "none".to_string() } else { active.join(", ") };
                        ui.info(&format!(
                            "service {}: skipped, its profiles ({}) are not active (active: {shown}; COMPOSE_PROFILES or --profile activates one)",
                            s.name,
                            s.profiles.join(", ")
                        ));
                    } else if s.build && !sel.include_buildable {
                        ui.info(&format!(
                            "service {}: skipped, it has `build:` and compose builds it (as `docker compose pull --ignore-buildable`); --include-buildable pulls {} from the mirror",
                            s.name, s.image
                        ));
                    } else {
                        services.push(s);
                    }
                }
                originals.extend(services.into_iter().map(|s| {
                    let mut o = Original::from_service(s);
                    if platform.is_some() {
                        o.platform = platform.cloned();
                    }
                    o
                }));
            }
            Err(e) => errors.extend(e.iter().map(|e| e.to_string())),
        }
    }
    if let Some(s) = &settings {
        errors.extend(images_with_secrets(&originals, &s.secrets()));
    }
    let parsed = parsed.unwrap_or_default();
    if errors.is_empty() {
        for w in &parsed.warnings {
            ui.input_warning(w);
        }
    }
    let (selecting, mut entries): (Vec<Entry>, Vec<Entry>) = parsed.entries.into_iter().partition(Entry::is_selecting);
    let naming = target.as_ref().map(|t| t.naming).unwrap_or_default();
    let selected = selected_by_lines(&originals, &entries, &selecting, naming);
    entries.extend(selected);
    if sel.images.is_empty() && sel.compose.is_empty() {
        if entries.is_empty() && selecting.is_empty() && errors.is_empty() {
            errors.push(format!("no images: name them (imgsync pull nginx:alpine), pass --compose FILE, or run where {label} is"));
        }
        originals.extend(entries.iter().map(|e| Original { platform: platform.cloned(), ..Original::from_entry(e) }));
    }
    match (settings, target) {
        (Some(settings), Some(target)) if errors.is_empty() => Ok(Inputs { label, entries, selecting, originals, settings, target }),
        _ => Err(errors),
    }
}

/// An image whose name holds one of the run's secrets (a compose
/// `${CUSTOM_PASSWORD}`) is refused before any request: it would be printed,
/// and sent to the mirror as a name. The name itself is not shown.
fn images_with_secrets(originals: &[Original], secrets: &[crate::secret::Secret]) -> Vec<String> {
    originals
        .iter()
        .filter(|o| secrets.iter().map(|s| s.expose()).any(|s| !s.is_empty() && (o.text.contains(s) || o.reference.to_string().contains(s))))
        .map(|o| match &o.origin {
            mirror_map::Origin::Compose { service, .. } => format!("service {service:?}: its image contains one of this run's secrets: refusing it (not shown)"),
            _ => "an image named on the command line contains one of this run's secrets: refusing it (not shown)".to_string(),
        })
        .collect()
}

/// Images named on the command line or in a compose file that no plain line
/// names but a tag-selecting line of the same repository selects
/// (`nginx:1.27.3` and `nginx --semver='~1.27' => web`): that line's entry
/// for the tag, so its rename and platforms apply as sync applied them.
/// (`--latest=N` is judged on the one tag; the mirror read says whether it is there.)
fn selected_by_lines(originals: &[Original], entries: &[Entry], selecting: &[Entry], naming: crate::naming::Naming) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for o in originals {
        if entries.iter().any(|e| mirror_map::same_reference(&e.source, &o.reference)) {
            continue;
        }
        let Some(tag) = o.reference.tag().filter(|_| o.reference.digest().is_none()) else { continue };
        let chosen = selecting.iter().find(|s| {
            s.source.name() == o.reference.name()
                && s.selection.as_ref().is_some_and(|sel| crate::tag_selection::select(sel, &[tag.to_string()]).is_ok())
        });
        if let Some(c) = chosen.and_then(|s| s.with_selected_tag(tag).ok()) {
            // As in sync (`naming::expand`): an explicit line owning that target wins.
            let owned = entries.iter().any(|e| crate::naming::target_name(e, naming) == crate::naming::target_name(&c, naming));
            if !owned && !out.contains(&c) {
                out.push(c);
            }
        }
    }
    out
}

/// `--from`, else the first configured target.
fn pick_target(settings: &Settings, from: Option<&str>, config: &Path) -> Result<Target, String> {
    let configured: Vec<&str> = settings.targets.iter().map(|t| t.kind.as_str()).collect();
    if configured.is_empty() {
        return Err(format!(
            "{}: no target is configured (SYNC_MODE={}): set SYNC_MODE and the mirror's registry and namespace as the sync has them, \
             e.g. SYNC_MODE=aliyun, ALIYUN_REGISTRY=registry.cn-hangzhou.aliyuncs.com, ALIYUN_NAMESPACE=ns",
            config.display(),
            settings.mode
        ));
    }
    match from {
        None => Ok(settings.targets[0].clone()),
        Some(f) => settings.targets.iter().find(|t| t.kind.as_str() == f).cloned().ok_or_else(|| {
            format!("--from {f}: {} configures {} (SYNC_MODE={})", config.display(), configured.join(", "), settings.mode)
        }),
    }
}

/// `imgsync map`.
pub fn map_command(ui: &Ui, args: &MapArgs) -> Exit {
    let inputs = match load_inputs(ui, &args.select, &Overrides::default(), None) {
        Ok(i) => i,
        Err(errors) => return bad_input(ui, &errors),
    };
    // As pull does: in Actions, the run's secrets are masked in the log.
    ui.mask(&inputs.settings.secrets());
    for w in &inputs.settings.warnings {
        ui.setting_warning(w);
    }
    if let Some(runtime) = args.emit {
        let mappings = match mirror_map::map(&inputs.label, &inputs.entries, &inputs.target, &inputs.originals) {
            Ok(m) => m,
            Err(errors) => return bad_input(ui, &line_errors(errors)),
        };
        return emit_command(ui, args, runtime, &inputs, &mappings);
    }
    let sections = match map_sections(args, &inputs) {
        Ok(s) => s,
        Err(errors) => return bad_input(ui, &errors),
    };
    let out = match args.format {
        Format::Text => mirror_map::document::text(&sections),
        Format::Json => mirror_map::document::json(&sections),
        Format::Markdown => mirror_map::document::markdown(&sections),
    };
    ui.output(&out);
    if args.select.images.is_empty() && args.select.compose.is_empty() && args.report.is_none() {
        for e in &inputs.selecting {
            let sel = e.selection.as_ref().map(|s| s.to_string()).unwrap_or_default();
            ui.info(&format!(
                "{}:{}: {} {sel} selects tags; the mirror holds the same tags, and `imgsync pull` lists them there (map --report FILE lists those a sync chose)",
                inputs.label,
                e.line,
                crate::reference::familiar(&e.source).trim_end_matches(":latest")
            ));
        }
    }
    let mut problems: Vec<String> = Vec::new();
    for p in sections.iter().flat_map(|s| render::problems(&s.mappings)) {
        if !problems.contains(&p) {
            problems.push(p);
        }
    }
    for p in &problems {
        ui.error(p);
    }
    ui.finish();
    if problems.is_empty() {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

/// `map`'s output per target: every configured target unless `--from` or
/// `--mirror` names one; with `--report`, the tags the sync's selecting lines
/// chose (and, from `--previous`, the old rows of lines whose listing failed).
fn map_sections<'a>(args: &MapArgs, inputs: &'a Inputs) -> Result<Vec<mirror_map::document::Section<'a>>, Vec<String>> {
    use crate::mirror_map::{document, previous::Previous, sync_report::Selections};
    let one = args.select.from.is_some() || args.select.mirror.is_some() || inputs.settings.targets.is_empty();
    let read = |p: &Path| images::read_capped(p).map_err(|e| vec![format!("{}: {e}", p.display())]);
    let selections = match &args.report {
        Some(p) => Some(Selections::read(&p.display().to_string(), &read(p)?).map_err(|e| vec![e])?),
        None => None,
    };
    let previous = match &args.previous {
        Some(p) if p.exists() => Previous::parse(&read(p)?),
        _ => Previous::default(),
    };
    let request = document::Request {
        label: &inputs.label,
        targets: if one { vec![&inputs.target] } else { inputs.settings.targets.iter().collect() },
        entries: &inputs.entries,
        selecting: &inputs.selecting,
        originals: &inputs.originals,
        from_lines: args.select.images.is_empty() && args.select.compose.is_empty(),
        selections: selections.as_ref(),
        previous: &previous,
        snippets: args.format == Format::Markdown,
        insecure: &inputs.settings.insecure_registries,
    };
    document::sections(&request).map_err(line_errors)
}

/// `imgsync map --emit RUNTIME [--out DIR]`.
fn emit_command(ui: &Ui, args: &MapArgs, runtime: crate::mirror_map::runtime_config::Runtime, inputs: &Inputs, mappings: &[Mapping]) -> Exit {
    use crate::mirror_map::emit;
    use crate::mirror_map::runtime_config::{Mirror, Pair, Runtime};
    let target = &inputs.target;
    let mut pairs = Pair::from_mappings(mappings);
    pairs.extend(inputs.selecting.iter().filter_map(|e| Pair::from_selecting(e, target)));
    let mirror = Mirror::new(target, &inputs.settings.insecure_registries);
    let emitted = match emit::emit(runtime, &mirror, &pairs) {
        Ok(e) => e,
        Err(why) => return bad_input(ui, &[why]),
    };
    for w in &emitted.warnings {
        ui.warn(w);
    }
    match &args.out {
        None => ui.output(&emitted.to_text()),
        Some(_) if runtime == Runtime::Docker => {
            return bad_input(ui, &["--out: the Docker daemon has no configuration that serves this mirror; nothing to write (without --out, map says why)".into()])
        }
        Some(dir) => {
            for (rel, text) in &emitted.files {
                let path = dir.join(rel);
                let written = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|_| std::fs::write(&path, text));
                match written {
                    Ok(()) => ui.info(&format!("wrote {}", path.display())),
                    Err(e) => {
                        ui.error(&format!("{}: {e}", path.display()));
                        return Exit::Failed;
                    }
                }
            }
        }
    }
    ui.finish();
    Exit::Ok
}

fn bad_input(ui: &Ui, errors: &[String]) -> Exit {
    ui.input_errors(errors);
    Exit::BadInput
}

/// One image to pull: its mapping (the original's platform is the wanted one) or why there is none.
struct Work {
    mapping: Option<Mapping>,
    /// Set when the mapping could not be made (a selecting line whose tags could not be listed).
    failure: Option<(String, Failure)>,
}

/// `imgsync pull`.
pub fn pull_command(ui: &Ui, args: &PullArgs, cancel: &Arc<AtomicBool>) -> Exit {
    let flag_platform = match args.platform.as_deref().map(str::parse::<Platform>).transpose() {
        Ok(p) => p,
        Err(e) => return bad_input(ui, &[format!("--platform: {e}")]),
    };
    let over = Overrides { retries: args.retries, timeout_secs: args.timeout, ..Default::default() };
    let inputs = match load_inputs(ui, &args.select, &over, flag_platform.as_ref()) {
        Ok(i) => i,
        Err(errors) => return bad_input(ui, &errors),
    };
    // Names are checked before anything runs: a file sync refuses is refused here.
    if let Err(errors) = mirror_map::map(&inputs.label, &inputs.entries, &inputs.target, &[]) {
        return bad_input(ui, &line_errors(errors));
    }
    let Inputs { label, entries, selecting, mut originals, mut settings, target } = inputs;
    // The server reads the mirror only: one target, its login, no Docker Hub pull login.
    settings.targets = vec![target.clone()];
    settings.dockerhub_pull = None;
    if args.report.as_deref() == Some(Path::new("-")) {
        ui.keep_stdout_for_json();
    }
    ui.mask(&settings.secrets());
    for w in &settings.warnings {
        ui.setting_warning(w);
    }
    let events = |e: Event| match e {
        // Progress is printed per image below; retries and warnings as sync shows them.
        Event::Step { .. } | Event::Finished { .. } => {}
        other => ui.event(other),
    };
    let session = match Session::open(settings, Arc::clone(cancel), &events) {
        Ok(s) => s,
        Err(e) => {
            ui.fatal(&e);
            return Exit::BadInput;
        }
    };
    let base = session.ctx();
    let needs_host = originals.iter().any(|o| o.platform.is_none()) || (!selecting.is_empty() && flag_platform.is_none());
    let host = if needs_host {
        match engine_platform(&base) {
            Ok(p) => Some(p),
            Err(f) => {
                ui.error(&format!("{} — hint: {}", f.error, f.hint));
                return if session.cancelled() { Exit::Interrupted } else { Exit::Failed };
            }
        }
    } else {
        None
    };
    let wanted_default = flag_platform.clone().or(host.clone());
    for o in &mut originals {
        if o.platform.is_none() {
            o.platform = wanted_default.clone();
        }
    }
    drop_lines_for_other_platforms(&mut originals, &entries);
    // Tag-selecting lines are read only when images.txt is the list (no IMAGE, no --compose).
    let from_list = args.select.images.is_empty() && args.select.compose.is_empty();
    let selections = if from_list && !selecting.is_empty() { format!("; tag selections: {}", selecting.len()) } else { String::new() };
    ui.info(&format!(
        "pull from {} ({}/{}); images: {}{selections}{}",
        target.kind.as_str(),
        target.registry,
        target.namespace,
        originals.len(),
        host.as_ref().map(|h| format!("; engine platform {h}")).unwrap_or_default()
    ));
    let login_failures = session.login(&base);
    // The mirror is read over HTTP, through the read path sync uses (its
    // retries, 429 handling, quota reserve and token prefetch).
    let mut work: Vec<Work> = match mirror_map::map(&label, &entries, &target, &originals) {
        Ok(ms) => ms.into_iter().map(|m| Work { mapping: Some(m), failure: None }).collect(),
        Err(errors) => {
            drop(session);
            return bad_input(ui, &line_errors(errors));
        }
    };
    let reader = mirror_reader(&session);
    if from_list {
        let wanted = wanted_default.clone().expect("a platform: the flag's or the engine's");
        for e in &selecting {
            work.extend(expand_selection(&base, &reader, &label, e, &target, &wanted, login_failures.get(&target.registry)));
        }
    }
    if let Ok(r) = &reader {
        let mirrors: Vec<ImageRef> = work.iter().filter_map(|w| w.mapping.as_ref()?.mirror.as_deref()).filter_map(|m| ImageRef::parse(m).ok()).collect();
        r.expect(&mirrors.iter().collect::<Vec<_>>());
    }
    let mut reports = Vec::new();
    for w in &work {
        let r = match (&w.mapping, &w.failure) {
            (_, Some((source, f))) => failed_entry(source, f),
            (Some(m), None) => {
                if session.cancelled() {
                    let f = Failure::new("interrupted before this image started", Family::Interrupted.hint());
                    entry_report(m, &target, Err(f), 0)
                } else {
                    let pulling = Pulling { ui, session: &session, reader: &reader, target: &target, keep_mirror_tag: args.keep_mirror_tag };
                    pull_one(&pulling, m, login_failures.get(&target.registry))
                }
            }
            (None, None) => continue,
        };
        reports.push(r);
    }
    ui.finish();
    let summary = summarize(&reports);
    let report = Report { kind: Kind::Pull, engine: Some("pull".to_string()), summary, tag_lists: Vec::new(), entries: reports, rate_limits: Default::default(), plan_only: false, warnings: Vec::new() };
    let interrupted = session.cancelled();
    let after = crate::publish::After { report_file: args.report.as_deref(), badge: None };
    crate::publish::publish(ui, &label, &report, &session.settings, &after);
    drop(reader);
    drop(session);
    Exit::after_run(&report, interrupted)
}

/// From images.txt, one line per platform (`--platform=linux/amd64 mysql:8.0`,
/// `--platform=linux/arm64 mysql:8.0`): the lines for other platforms are not
/// this server's business when another line of the same image covers its
/// platform. With no covering line, each stays (and fails, naming the
/// platforms the mirror has).
fn drop_lines_for_other_platforms(originals: &mut Vec<Original>, entries: &[Entry]) {
    let covers = |o: &Original| match o.origin {
        mirror_map::Origin::ImagesTxt { line } => entries.iter().find(|e| e.line == line).is_none_or(|e| {
            e.platforms.is_empty() || o.platform.as_ref().is_some_and(|p| e.platforms.iter().any(|q| q.matches(p)))
        }),
        _ => true,
    };
    let keep: Vec<bool> = originals
        .iter()
        .map(|o| covers(o) || !originals.iter().any(|x| mirror_map::same_reference(&x.reference, &o.reference) && covers(x)))
        .collect();
    let mut keep = keep.into_iter();
    originals.retain(|_| keep.next().unwrap_or(true));
}

/// The engine's platform (see the module comment).
fn engine_platform(ctx: &Ctx) -> Result<Platform, Failure> {
    let out = ctx
        .run(Cmd::new(["version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"]).timeout(ctx.timeouts.quick))
        .map_err(|e| Failure::from_docker(&e))?;
    let text = out.stdout_text();
    parse_engine_platform(text.trim())
        .map_err(|e| Failure::new(format!("the Docker engine reports its platform as {}: {e}", crate::sanitize::line(text.trim())), "pass --platform os/arch"))
}

/// `os/arch` as an engine reports it: plain words only (it is printed).
fn parse_engine_platform(s: &str) -> Result<Platform, String> {
    let p: Platform = s.parse()?;
    Platform::from_registry(&p.os, &p.arch, p.variant.as_deref())
}

/// A tag-selecting line: the mirror's tags (the server may not reach the
/// source), selected as sync selects the source's, one mapping per tag.
fn expand_selection(ctx: &Ctx, reader: &Reader, label: &str, e: &Entry, target: &Target, wanted: &Platform, login: Option<&Failure>) -> Vec<Work> {
    let sel = e.selection.as_ref().expect("a selecting line");
    let shown = format!("{}:{} ({sel})", crate::reference::familiar(&e.source).trim_end_matches(":latest"), e.line);
    let fail = |f: Failure| vec![Work { mapping: None, failure: Some((shown.clone(), f)) }];
    if let Some(f) = login {
        return fail(f.clone());
    }
    let line_mirror = match mirror_map::map(label, std::slice::from_ref(e), target, &[Original::from_entry(e)]) {
        Ok(mut ms) if !ms.is_empty() => ms.remove(0).mirror.unwrap_or_default(),
        Ok(_) => return fail(Failure::new("no mirror name", "check the line")),
        Err(errs) => return fail(Failure::new(line_errors(errs).join("; "), "fix the line")),
    };
    let repo_ref = match ImageRef::parse(&line_mirror) {
        Ok(r) => r,
        Err(m) => return fail(Failure::new(m, "fix the line")),
    };
    let reader = match reader {
        Ok(r) => r,
        Err(m) => return fail(Failure::new(m.clone(), NO_CONFIG)),
    };
    let listed = match reader.list_tags(ctx, &repo_ref) {
        Ok(t) => t,
        Err(err) => return fail(mirror_failure(&err, &target.registry)),
    };
    let selected = match crate::tag_selection::select(sel, &listed) {
        Ok(s) => s.tags,
        Err(err) => {
            return fail(Failure::new(
                format!("the mirror {}: {err}", repo_ref.name()),
                "run the sync first, or widen the selection on the line",
            ))
        }
    };
    let expansion = crate::naming::expand(std::slice::from_ref(e), &HashMap::from([(e.line, selected)]), &[target.naming]);
    expansion
        .entries
        .iter()
        .map(|c| {
            let o = Original { platform: Some(wanted.clone()), ..Original::from_entry(c) };
            match mirror_map::map(label, std::slice::from_ref(c), target, &[o]) {
                Ok(mut ms) if !ms.is_empty() => Work { mapping: Some(ms.remove(0)), failure: None },
                Ok(_) => Work { mapping: None, failure: None },
                Err(errs) => Work { mapping: None, failure: Some((c.source.to_string(), Failure::new(line_errors(errs).join("; "), "fix the line"))) },
            }
        })
        .collect()
}

/// The mirror's reader: HTTP only (a server reads its own mirror), or why there is none.
type Reader<'s> = Result<ReadPath<'s>, String>;

/// The hint when the registry client could not be set up.
const NO_CONFIG: &str = "check the docker config (DOCKER_CONFIG or ~/.docker/config.json)";

/// The reader behind the seam, or why there is none.
fn as_reader<'r>(reader: &'r Reader) -> Result<&'r dyn Inspector, &'r str> {
    match reader {
        Ok(r) => Ok(r),
        Err(m) => Err(m.as_str()),
    }
}

fn mirror_reader<'s>(session: &'s Session) -> Reader<'s> {
    let client = session.registry().map_err(|m| m.clone())?;
    let chosen = crate::inspect::choose(InspectChoice::Registry, Ok(client), crate::engine::EngineKind::Daemon.reader(), 1, &|| {})?;
    Ok(chosen.inspector)
}

/// A read failure in the words of a server pulling from its mirror: the read
/// path's error, with the hint said for a mirror where that is clearer.
fn mirror_failure(e: &StepError, reg: &str) -> Failure {
    let f = Failure::from_step(e);
    let hint = match (&e.cause, e.family()) {
        (_, Family::Auth | Family::Permission) => format!(
            "the mirror refused to be read: log in on this machine (`docker login {reg}`), or set the target's username and password \
             (the environment or .env.local beside config.env); a public mirror needs neither"
        ),
        (_, Family::RateLimit) => "the registry's rate limit: wait and run again".into(),
        (_, Family::TlsTrust) => format!("the registry's certificate is not trusted: put its CA in /etc/docker/certs.d/{reg}/ca.crt"),
        (Cause::Setup(_), _) => format!("{NO_CONFIG} and its credential helpers"),
        (Cause::Parse(_), _) => "the mirror holds something imgsync cannot read; sync the image again".into(),
        (_, Family::Network | Family::TokenEndpoint | Family::Timeout) => {
            "the mirror's registry did not answer well: check its address in config.env and any proxy; run again".into()
        }
        _ => f.hint,
    };
    Failure::new(f.error, hint)
}

/// What the registry holds under the mirror reference, with the wanted
/// platform's config digest when the index does not name it.
pub(crate) fn read_mirror(
    ctx: &Ctx,
    reader: Result<&dyn Inspector, &str>,
    mirror: &str,
    platform: &Platform,
    line_platforms: &[Platform],
    reg: &str,
) -> Result<Option<Inspection>, Failure> {
    let r = ImageRef::parse(mirror).map_err(|m| Failure::new(m, "fix the line"))?;
    let reader = reader.map_err(|m| Failure::new(m, NO_CONFIG))?;
    let Some(mut insp) = reader.inspect(ctx, &r, false).map_err(|e| mirror_failure(&e, reg))? else {
        return Ok(None);
    };
    if let Some(digest) = decide_pull::config_needed(&insp, platform, line_platforms) {
        reader.fill_configs(ctx, &r, &mut insp, &[digest]).map_err(|e| mirror_failure(&e, reg))?;
    }
    Ok(Some(insp))
}

/// `docker image inspect REF`: None when the engine has no such image.
fn local_image(ctx: &Ctx, reference: &str) -> Result<Option<LocalImage>, Failure> {
    match ctx.run_once(Cmd::new(["image", "inspect", "--", reference]).timeout(ctx.timeouts.quick)) {
        Ok(out) => LocalImage::from_inspect(&out.stdout).map(Some).map_err(|m| Failure::new(m, Family::Other.hint())),
        Err(e) if !e.timed_out && !e.interrupted && e.stderr.to_ascii_lowercase().contains("no such image") => Ok(None),
        Err(e) => Err(Failure::from_docker(&e)),
    }
}

/// The docker arguments of a step, with `--` before the references.
fn step_cmd(ctx: &Ctx, step: &Step) -> Cmd {
    let args: Vec<String> = match step {
        Step::Pull { reference, platform } => vec!["pull".into(), "--quiet".into(), "--platform".into(), platform.to_string(), "--".into(), reference.clone()],
        Step::Tag { from, to } => vec!["tag".into(), "--".into(), from.clone(), to.clone()],
        Step::Untag { reference } => vec!["image".into(), "rm".into(), "--".into(), reference.clone()],
    };
    let timeout = if matches!(step, Step::Pull { .. }) { ctx.timeouts.transfer } else { ctx.timeouts.quick };
    Cmd::new(args).timeout(timeout)
}

/// What every image of a pull run shares.
struct Pulling<'p> {
    ui: &'p Ui,
    session: &'p Session<'p>,
    reader: &'p Reader<'p>,
    target: &'p Target,
    keep_mirror_tag: bool,
}

fn pull_one(p: &Pulling, m: &Mapping, login: Option<&Failure>) -> EntryReport {
    match legacy_instead(p, m) {
        Some(old) => {
            p.ui.info(&format!("{}: mirrored under its old name {}", m.original.text, old.mirror.as_deref().unwrap_or_default()));
            pull_mapping(p, &old, login)
        }
        None => pull_mapping(p, m, login),
    }
}

/// A digest-only line mirrored before its tag became `sha256_<hex>`: when
/// the mirror has nothing under the new tag but holds the old `sha256-<hex>`,
/// the mapping to that old mirror (asked through the mirror's reader: one HEAD each).
fn legacy_instead(p: &Pulling, m: &Mapping) -> Option<Mapping> {
    let legacy = m.legacy_mirror()?;
    let reader = p.reader.as_ref().ok()?;
    let ctx = p.session.ctx();
    let exists = |r: &str| -> Option<bool> {
        let r = ImageRef::parse(r).ok()?;
        reader.head_digest(&ctx, &r).ok().map(|d| d.is_some())
    };
    if exists(m.mirror.as_deref()?)? || !exists(&legacy)? {
        return None;
    }
    Some(Mapping { mirror: Some(legacy), ..m.clone() })
}

fn pull_mapping(p: &Pulling, m: &Mapping, login: Option<&Failure>) -> EntryReport {
    let Pulling { ui, session, reader, target, keep_mirror_tag } = *p;
    let counter = Counting::new(session.docker());
    let line = m.line().unwrap_or(0);
    let ctx = session.ctx().with_docker(&counter).line(line);
    let outcome = (|| -> Result<Status, Failure> {
        let platform = m.original.platform.clone().or_else(|| m.pull_platform().cloned()).expect("every original has a platform by now");
        let mirror = match (&m.mirror, login) {
            (Some(_), Some(f)) => return Err(f.clone()),
            (Some(r), None) => read_mirror(&ctx, as_reader(reader), r, &platform, &m.platforms, &target.registry)?,
            (None, _) => None,
        };
        if m.original.reference.digest().is_some() && m.mirror.as_ref().is_some_and(|r| r != &m.original.text) {
            return Err(Failure::new(
                format!("{} names a digest: docker cannot tag a pulled image with a digest, so compose would still look for it at its registry", m.original.text),
                format!("name a tag in the compose file (or pull {} and use that name)", m.mirror.as_deref().unwrap_or("the mirror")),
            ));
        }
        let local = local_image(&ctx, &m.original.text)?;
        let same_name = m.mirror.as_deref().and_then(|r| ImageRef::parse(r).ok()).is_some_and(|r| mirror_map::same_reference(&r, &m.original.reference));
        let mirror_tag_existed = match (&m.mirror, &mirror, same_name) {
            (Some(r), Some(_), false) => local_image(&ctx, r)?.is_some(),
            _ => false,
        };
        let req = Request { mapping: m, platform: &platform, mirror: mirror.as_ref(), local: local.as_ref(), mirror_tag_existed, keep_mirror_tag };
        match decide_pull::decide(&req) {
            Decision::Present { why } => {
                ui.info(&format!("{}: present ({why})", m.original.text));
                Ok(Status::Present)
            }
            Decision::Failed { message } => Err(Failure::new(message, failed_hint(m, mirror.is_some()))),
            Decision::Pull(plan) => {
                let mirror_ref = m.mirror.clone().unwrap_or_default();
                ui.info(&format!("{}: pulling {mirror_ref} ({platform})", m.original.text));
                // On a terminal docker shows its own progress (a multi-GB pull is not a spinner).
                let pull = step_cmd(&ctx, &plan.pull);
                if ui.docker_progress() {
                    let pull = Cmd { args: pull.args.iter().filter(|a| *a != "--quiet").cloned().collect(), ..pull }.show_output();
                    ui.suspend(|| ctx.run(pull)).map_err(|e| Failure::from_docker(&e))?;
                } else {
                    ctx.run(pull).map_err(|e| Failure::from_docker(&e))?;
                }
                let pulled = local_image(&ctx, &mirror_ref)?
                    .ok_or_else(|| Failure::new(format!("after the pull, the engine has no {mirror_ref}"), "run again"))?;
                if let Err(message) = decide_pull::verify(&plan.expect, &mirror_ref, &pulled) {
                    if let Some(untag) = &plan.untag {
                        let _ = ctx.run_once(step_cmd(&ctx, untag).cleanup());
                    }
                    return Err(Failure::new(message, "run imgsync pull again"));
                }
                if let Some(tag) = &plan.tag {
                    ctx.run(step_cmd(&ctx, tag)).map_err(|e| Failure::from_docker(&e))?;
                }
                if let Some(untag) = &plan.untag {
                    if let Err(e) = ctx.run_once(step_cmd(&ctx, untag).cleanup()) {
                        ui.warn(&format!("{}: the mirror tag {mirror_ref} stays: {}", m.original.text, e.reason()));
                    }
                }
                Ok(Status::Pulled)
            }
        }
    })();
    entry_report(m, target, outcome, counter.count())
}

/// The one-line fix for a failed decision (the message says the details).
fn failed_hint(m: &Mapping, in_registry: bool) -> &'static str {
    match (in_registry, m.line_to_add()) {
        (true, _) => "pull a platform the mirror has with --platform, or add this platform to the images.txt line and sync",
        (false, Some(_)) => "add the line above to images.txt in the sync repository and run the sync, then pull again",
        (false, None) => "run the sync (or wait for its next run), then pull again",
    }
}

fn entry_report(m: &Mapping, target: &Target, outcome: Result<Status, Failure>, docker_calls: usize) -> EntryReport {
    let (status, error, hint) = match outcome {
        Ok(s) => (s, None, None),
        Err(f) => (Status::of_failure(&f.hint), Some(f.error), Some(f.hint)),
    };
    let platforms = m.original.platform.iter().map(|p| p.to_string()).collect();
    match &m.mirror {
        Some(mirror) => EntryReport {
            line: m.line().unwrap_or(0),
            source: m.original.text.clone(),
            selected_by: None,
            platforms,
            targets: vec![TargetReport { target: target.kind.as_str().to_string(), reference: mirror.clone(), status, error, hint, why: Default::default(), signatures: None }],
            error: None,
            hint: None,
            docker_calls,
            requests: Default::default(),
        },
        None => EntryReport { line: 0, source: m.original.text.clone(), selected_by: None, platforms, targets: Vec::new(), error, hint, docker_calls, requests: Default::default() },
    }
}

fn failed_entry(source: &str, f: &Failure) -> EntryReport {
    EntryReport {
        line: 0,
        source: source.to_string(),
        selected_by: None,
        platforms: Vec::new(),
        targets: Vec::new(),
        error: Some(f.error.clone()),
        hint: Some(f.hint.clone()),
        docker_calls: 0,
        requests: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn arguments_parse() {
        let cli = crate::cli::Cli::try_parse_from([
            "imgsync", "pull", "nginx:alpine", "--compose", "a.yml", "--compose", "b.yml", "--from", "ghcr", "--platform", "linux/arm64", "--keep-mirror-tag",
        ])
        .unwrap();
        let crate::cli::Command::Pull(p) = cli.command else { panic!() };
        assert_eq!(p.select.images, ["nginx:alpine"]);
        assert_eq!(p.select.compose, [PathBuf::from("a.yml"), PathBuf::from("b.yml")]);
        assert_eq!(p.select.from.as_deref(), Some("ghcr"));
        assert!(p.keep_mirror_tag);
        assert!(crate::cli::Cli::try_parse_from(["imgsync", "map", "--from", "quay"]).is_err());
        let cli = crate::cli::Cli::try_parse_from(["imgsync", "map", "--format", "markdown", "--images", "x.txt"]).unwrap();
        let crate::cli::Command::Map(m) = cli.command else { panic!() };
        assert_eq!((m.format, m.select.images_file), (Format::Markdown, Some(PathBuf::from("x.txt"))));
    }

    #[test]
    fn lines_for_other_platforms_give_way() {
        let es = images::parse("images.txt", "--platform=linux/amd64 mysql:8.0\n--platform=linux/arm64 mysql:8.0\n--platform=linux/arm64 redis:7\nbusybox").unwrap();
        let amd: Platform = "linux/amd64".parse().unwrap();
        let mut os: Vec<Original> = es.iter().map(|e| Original { platform: Some(amd.clone()), ..Original::from_entry(e) }).collect();
        drop_lines_for_other_platforms(&mut os, &es);
        // mysql's arm64 line gives way to its amd64 line; redis has no amd64 line, so it stays (and fails).
        assert_eq!(os.iter().map(|o| o.origin.clone()).collect::<Vec<_>>(), [1, 3, 4].map(|line| mirror_map::Origin::ImagesTxt { line }));
    }

    #[test]
    fn a_selecting_line_claims_the_tags_it_selects() {
        let parsed = images::parse_with_warnings("images.txt", "nginx --semver='~1.27' => web\nredis:7\n").unwrap();
        let (selecting, entries): (Vec<Entry>, Vec<Entry>) = parsed.entries.into_iter().partition(Entry::is_selecting);
        let os: Vec<Original> = ["nginx:1.27.3", "nginx:1.26.0", "redis:7", "nginx:1.27.3"].iter().map(|t| Original::parse(t, None).unwrap()).collect();
        let extra = selected_by_lines(&os, &entries, &selecting, crate::naming::Naming::Flat);
        assert_eq!(extra.len(), 1);
        let mut all = entries.clone();
        all.extend(extra);
        let target = Target {
            kind: crate::config::TargetKind::Aliyun,
            registry: "registry.cn-hangzhou.aliyuncs.com".into(),
            namespace: "ns".into(),
            username: None,
            password: None,
            naming: crate::naming::Naming::Flat,
        };
        let ms = mirror_map::map("images.txt", &all, &target, &os[..2]).unwrap();
        assert_eq!(ms[0].mirror.as_deref(), Some("registry.cn-hangzhou.aliyuncs.com/ns/web:1.27.3"));
        assert_eq!(ms[0].line(), Some(1));
        assert_eq!(ms[1].line(), None, "1.26 is not selected: the plain rule");
    }

    #[test]
    fn engine_platform_words_only() {
        assert_eq!(parse_engine_platform("linux/amd64").unwrap(), "linux/amd64".parse().unwrap());
        assert!(parse_engine_platform("linux/AMD64\n::x").is_err());
        assert!(parse_engine_platform("").is_err());
    }

    #[test]
    fn step_commands_end_options() {
        let limits = crate::config::Limits::default();
        let cancel = AtomicBool::new(false);
        let docker = crate::docker::Cli::new(PathBuf::from("docker"), Default::default(), Arc::new(AtomicBool::new(false)));
        let ctx = Ctx::new(&docker, &limits, &cancel, &|_| {});
        let pull = step_cmd(&ctx, &Step::Pull { reference: "r/ns/a:1".into(), platform: "linux/amd64".parse().unwrap() });
        assert_eq!(pull.args, ["pull", "--quiet", "--platform", "linux/amd64", "--", "r/ns/a:1"]);
        let rm = step_cmd(&ctx, &Step::Untag { reference: "r/ns/a:1".into() });
        assert_eq!(rm.args, ["image", "rm", "--", "r/ns/a:1"], "never --force");
    }

    /// A mirror read from memory through the `Inspector` seam: what pull asks, and what it gets.
    struct Mirror {
        holds: Option<Inspection>,
        refusal: Option<StepError>,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl Inspector for Mirror {
        fn inspect(&self, _: &Ctx, reference: &ImageRef, _: bool) -> Result<Option<Inspection>, StepError> {
            self.asked.lock().unwrap().push(format!("inspect {reference}"));
            match &self.refusal {
                Some(e) => Err(e.clone()),
                None => Ok(self.holds.clone()),
            }
        }
        fn fill_configs(&self, _: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
            self.asked.lock().unwrap().push(format!("configs {} {}", repository.name(), digests.join(",")));
            for i in insp.images.iter_mut().filter(|i| digests.contains(&i.digest)) {
                i.config = Some(format!("config-of-{}", i.digest));
            }
            Ok(())
        }
    }

    #[test]
    fn the_mirror_is_read_through_the_inspector_seam() {
        let image = |d: &str, p: &str| crate::inspect::parse::Image { platform: Some(p.parse().unwrap()), digest: d.into(), config: None, layers_size: None };
        let index = Inspection { digest: Some("sha256:index".into()), index: true, images: vec![image("sha256:amd", "linux/amd64"), image("sha256:arm", "linux/arm64")], attestations: 0 };
        let mirror = Mirror { holds: Some(index), refusal: None, asked: Default::default() };
        let limits = crate::config::Limits::default();
        let cancel = AtomicBool::new(false);
        let docker = crate::docker::Cli::new(PathBuf::from("docker"), Default::default(), Arc::new(AtomicBool::new(false)));
        let ctx = Ctx::new(&docker, &limits, &cancel, &|_| {});
        let amd64: Platform = "linux/amd64".parse().unwrap();
        let got = read_mirror(&ctx, Ok(&mirror), "r.example/ns/a:1", &amd64, &[], "r.example").unwrap().unwrap();
        // Only the wanted platform's child is read, for its config digest.
        assert_eq!(*mirror.asked.lock().unwrap(), ["inspect r.example/ns/a:1", "configs r.example/ns/a sha256:amd"]);
        assert_eq!(got.images[0].config.as_deref(), Some("config-of-sha256:amd"));
        assert_eq!(got.images[1].config, None);
        // A refusal is the mirror's, with the pull hint; no reader is a setup failure.
        let refused = Mirror { holds: None, refusal: Some(StepError::http("GET https://r.example/v2/ns/a/manifests/1", 401, "")), asked: Default::default() };
        let f = read_mirror(&ctx, Ok(&refused), "r.example/ns/a:1", &amd64, &[], "r.example").unwrap_err();
        assert!(f.error.contains("HTTP 401") && f.hint.contains("docker login r.example"), "{f:?}");
        let f = read_mirror(&ctx, Err("bad docker config"), "r.example/ns/a:1", &amd64, &[], "r.example").unwrap_err();
        assert_eq!((f.error.as_str(), f.hint.as_str()), ("bad docker config", NO_CONFIG));
    }

    #[test]
    fn an_image_holding_a_run_secret_is_refused_before_any_request() {
        let svc = crate::compose::Service {
            name: "web".into(),
            image: "registry.example.com/app:Secr3tPassw0rd".into(),
            reference: crate::reference::ImageRef::parse("registry.example.com/app:Secr3tPassw0rd").unwrap(),
            platform: None,
            file: "compose.yml".into(),
            build: false,
            profiles: vec![],
        };
        let o = Original::from_service(&svc);
        let errs = images_with_secrets(std::slice::from_ref(&o), &[crate::secret::Secret::new("Secr3tPassw0rd")]);
        assert_eq!(errs.len(), 1);
        assert!(!errs[0].contains("Secr3t") && errs[0].contains("\"web\""), "{}", errs[0]);
        assert!(images_with_secrets(&[o], &[crate::secret::Secret::new("other")]).is_empty());
    }
}
