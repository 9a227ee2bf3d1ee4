//! `imgsync doctor`: one line per check, ✓ or ✗ with the fix. It opens the
//! same session as a sync (settings, private config, logins), so it checks
//! exactly what a sync would do.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::SyncArgs;
use crate::config::{EnvFile, Overrides, Settings};
use crate::docker::{self, Cmd};
use crate::inputs::{self, load_entries};
use crate::naming;
use crate::session::Session;

pub use crate::check::Check;

/// Every check, in the order shown.
pub fn checks(args: &SyncArgs, cancel: &Arc<AtomicBool>) -> Vec<Check> {
    let mut out = Vec::new();
    let program = match docker::Cli::locate() {
        Ok(p) => {
            out.push(Check::pass("docker on PATH", p.display().to_string()));
            p
        }
        Err(e) => {
            out.push(Check::fail("docker on PATH", format!("{e:#}")));
            return out;
        }
    };
    // Settings first: the logins below need them. Bad settings still leave the
    // engine checks worth running, with a session that logs in nowhere.
    let settings = inputs::load_settings(&args.common);
    let session_settings = match &settings {
        Ok(s) => s.clone(),
        Err(_) => none_settings(),
    };
    let session = match Session::with_program(program, session_settings, Arc::clone(cancel), &|_| {}) {
        Ok(s) => s,
        Err(e) => {
            out.push(Check::fail("private docker config", format!("{e:#}")));
            return out;
        }
    };
    let cli = session.docker();
    let quick = std::time::Duration::from_secs(30);
    match cli.run(&Cmd::new(["version", "--format", "{{.Server.Version}}"]).timeout(quick)) {
        Ok(o) => out.push(Check::pass("Docker engine reachable", format!("engine {}", o.stdout_text().trim()))),
        Err(e) => out.push(Check::fail(
            "Docker engine reachable",
            format!("{} — start Docker or point DOCKER_HOST at a running engine (the imagetools engine still works without one)", e.reason()),
        ).optional()),
    }
    match cli.run(&Cmd::new(["buildx", "version"]).timeout(quick)) {
        Ok(o) => out.push(Check::pass("buildx plugin", format!("{} — the imagetools engine is available", o.stdout_text().trim()))),
        Err(_) => out.push(
            Check::fail("buildx plugin", "not found — the daemon engine (pull/tag/push) will be used; install buildx (GitHub: docker/setup-buildx-action) for registry-to-registry copies")
                .optional(),
        ),
    }
    if let Ok(o) = cli.run(&Cmd::new(["info", "--format", "{{.DockerRootDir}}"]).timeout(quick)) {
        let root = o.stdout_text().trim().to_string();
        match crate::clean_disk::free_bytes(Path::new(&root)) {
            Ok(b) => {
                let gib = b as f64 / (1u64 << 30) as f64;
                let c = Check::pass("free disk under docker's data root", format!("{gib:.1} GiB free at {root}"));
                out.push(if gib < 5.0 {
                    Check { ok: false, detail: format!("{} — low: set CLEAN_DISK_SPACE=true or free disk", c.detail), ..c }.optional()
                } else {
                    c
                });
            }
            Err(_) => out.push(Check::fail("free disk under docker's data root", format!("{root} is not readable here (remote engine?)")).optional()),
        }
    }
    match &settings {
        Ok(s) => {
            for w in &s.warnings {
                out.push(Check::fail("config.env", w.clone()).optional());
            }
            let targets: Vec<String> = s.targets.iter().map(|t| format!("{} → {}/{}", t.kind.as_str(), t.registry, t.namespace)).collect();
            out.push(Check::pass(
                "settings",
                format!("SYNC_MODE={}: {}", s.mode, if targets.is_empty() { "no targets (plan only)".into() } else { targets.join(", ") }),
            ));
            let ctx = session.ctx();
            let logins = session.login_each(&ctx);
            let mut shown = vec![false; logins.len()];
            for t in &s.targets {
                let what = format!("login to {} ({})", t.registry, t.kind.as_str());
                let done = logins.iter().position(|(l, _)| l.registry == t.registry && Some(l.username) == t.username.as_deref());
                match done {
                    Some(i) => {
                        shown[i] = true;
                        out.push(login_check(what, &logins[i]));
                    }
                    None => out.push(Check::fail(what, "no credentials set; pushes will fail unless the registry allows anonymous pushes").optional()),
                }
            }
            // Logins for pulls only (Docker Hub), which no target line showed.
            for (_, l) in logins.iter().enumerate().filter(|(i, _)| !shown[*i]) {
                out.push(login_check(format!("login to {} (pulls)", l.0.registry), l));
            }
        }
        Err(errors) => {
            for e in errors {
                out.push(Check::fail("settings", e.clone()));
            }
        }
    }
    match load_entries(&args.images) {
        Ok((label, entries)) => {
            out.push(Check::pass(label.clone(), format!("{} entries parse", entries.len())));
            if let Ok(s) = &settings {
                match crate::plan::destinations(&label, &entries, &s.targets) {
                    Ok(dests) => {
                        for (e, d) in entries.iter().zip(dests) {
                            let (name, tag) = naming::target_name(e);
                            let to = if d.refs.is_empty() { format!("{name}:{tag}") } else { d.refs.join(", ") };
                            out.push(Check::pass(format!("{label}:{}", e.line), format!("{} → {to}", e.source)));
                        }
                    }
                    Err(errors) => out.extend(errors.iter().map(|e| Check::fail(label.clone(), e.to_string()))),
                }
            }
        }
        Err(errors) => out.extend(errors.into_iter().map(|e| Check::fail("images.txt", e))),
    }
    drop(session);
    out
}

fn login_check(what: String, (login, result): &(crate::config::Login, Result<(), crate::failure::Failure>)) -> Check {
    match result {
        Ok(()) => Check::pass(what, format!("as {}", login.username)),
        Err(f) => Check::fail(what, format!("{} — {}", f.error, f.hint)),
    }
}

/// The settings of an empty config: no targets, no logins.
fn none_settings() -> Settings {
    crate::config::resolve(&EnvFile::default(), &|_| None, &Overrides::default()).expect("the empty config resolves")
}
