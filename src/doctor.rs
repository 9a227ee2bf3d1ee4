//! `imgsync doctor`: one line per check, ✓ or ✗ with the fix.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::app::{self, Exit};
use crate::cli::SyncArgs;
use crate::config::{self, EnvFile};
use crate::credentials::{self, PrivateConfig};
use crate::docker::{self, Cmd, Docker, Redactor};
use crate::engine::Ctx;
use crate::naming;
use crate::ui::Ui;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    /// A failed optional check informs; only required ones fail the doctor.
    pub required: bool,
    pub what: String,
    pub detail: String,
}

impl Check {
    fn pass(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Check { ok: true, required: true, what: what.into(), detail: detail.into() }
    }
    fn fail(what: impl Into<String>, detail: impl Into<String>) -> Self {
        Check { ok: false, required: true, what: what.into(), detail: detail.into() }
    }
    fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

pub fn run(ui: &Ui, args: &SyncArgs) -> Exit {
    let checks = checks(args);
    for c in &checks {
        ui.check(c);
    }
    if checks.iter().all(|c| c.ok || !c.required) {
        Exit::Ok
    } else {
        Exit::Failed
    }
}

fn checks(args: &SyncArgs) -> Vec<Check> {
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
    // Settings first: the logins below need them.
    let label = args.common.config.display().to_string();
    let file = match std::fs::read_to_string(&args.common.config) {
        Ok(text) => config::parse_env_file(&label, &text),
        Err(_) => Ok(EnvFile { file: label.clone(), ..Default::default() }),
    };
    let settings = match file {
        Ok(f) => config::resolve(&f, &env, &args.common.overrides()),
        Err(errors) => Err(errors.iter().map(|e| e.to_string()).collect()),
    };
    let secrets = settings.as_ref().map(|s| s.secrets()).unwrap_or_default();
    let logins: Vec<String> = settings.as_ref().map(|s| s.targets.iter().map(|t| t.registry.clone()).collect()).unwrap_or_default();
    let private = match PrivateConfig::create(credentials::user_config_dir(&env).as_deref(), &logins) {
        Ok(p) => p,
        Err(e) => {
            out.push(Check::fail("private docker config", format!("{e:#}")));
            return out;
        }
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let cli = docker::Cli::new(program, Redactor::new(&secrets), Arc::clone(&cancel)).with_env("DOCKER_CONFIG", private.path());
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
            let ctx = Ctx::new(&cli, s.retries, s.timeout_secs, &cancel, &|_| {});
            for t in &s.targets {
                let what = format!("login to {} ({})", t.registry, t.kind.as_str());
                match (&t.username, &t.password) {
                    (Some(u), Some(p)) => match credentials::login(&ctx, &t.registry, u, p) {
                        Ok(()) => out.push(Check::pass(what, format!("as {u}"))),
                        Err(f) => out.push(Check::fail(what, format!("{} — {}", f.error, f.hint))),
                    },
                    _ => out.push(Check::fail(what, "no credentials set; pushes will fail unless the registry allows anonymous pushes").optional()),
                }
            }
        }
        Err(errors) => {
            for e in errors {
                out.push(Check::fail("settings", e.clone()));
            }
        }
    }
    match app::load_entries(&args.images) {
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
    drop(private);
    out
}
