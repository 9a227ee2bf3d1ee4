//! `imgsync doctor`: one line per check, ✓ or ✗ with the fix. It opens the
//! same session as a sync (settings, private config, logins), so it checks
//! exactly what a sync would do.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cli::SyncArgs;
use crate::config::{EnvFile, Overrides, Settings};
use crate::docker::{self, Cmd};
use crate::inputs::{self, load_selecting_entries};
use crate::naming;
use crate::session::Session;

use crate::check::Check;

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
    let settings = inputs::load_settings(args.common.config.as_deref(), &args.common.overrides());
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
    // `--timeout` bounds the probes too (a hung docker answers nothing).
    let quick = crate::ctx::Timeouts::new(session_settings_timeout(&settings)).probe;
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
            if !s.from_local.is_empty() {
                // Names only: .env.local is where secrets live.
                let local = inputs::local_env_path(&args.common.config_path());
                out.push(Check::pass(local.display().to_string(), format!("sets {} (values not shown)", s.from_local.join(", "))));
            }
            let targets: Vec<String> = s.targets.iter().map(|t| format!("{} → {}/{} ({} names)", t.kind.as_str(), t.registry, t.namespace, t.naming.as_str())).collect();
            out.push(Check::pass(
                "settings",
                format!("SYNC_MODE={}: {}", s.mode, if targets.is_empty() { "no targets (plan only)".into() } else { targets.join(", ") }),
            ));
            out.extend(insecure_checks(cli, &s.insecure_registries, quick));
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
            // The preset checks (issue 22): a target's registry checks need its login.
            let logged_in = |t: &crate::config::Target| {
                logins.iter().any(|(l, r)| l.registry == t.registry && Some(l.username) == t.username.as_deref() && r.is_ok()) || t.username.is_none()
            };
            out.extend(crate::preset_check::doctor_checks(&session, &logged_in));
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
    match load_selecting_entries(&args.images) {
        Ok(inputs::Loaded { label, entries, warnings }) => {
            out.push(Check::pass(label.clone(), format!("{} entries parse", entries.len())));
            for w in &warnings {
                out.push(Check::fail(format!("{}:{}", w.file, w.line), w.message.clone()).optional());
            }
            // Selecting lines: can their sources be listed (auth, existence), and what do they pick today?
            // One reader, chosen as a run chooses it, for tag lists and the read-path checks.
            let (reader, http) = doctor_reader(&session);
            // One answer per check, as before: doctor says what fails now, it does not wait it out.
            let mut ctx = session.ctx();
            ctx.policy.retries = 0;
            for e in entries.iter().filter(|e| e.is_selecting()) {
                out.push(match crate::selecting::check_line(&reader, &ctx, e) {
                    Ok(detail) => Check::pass(format!("{label}:{}", e.line), detail),
                    Err(detail) => Check::fail(format!("{label}:{}", e.line), detail),
                });
            }
            let plain: Vec<_> = entries.iter().filter(|e| !e.is_selecting()).cloned().collect();
            if let Ok(s) = &settings {
                match crate::plan::destinations(&label, &plain, &s.targets) {
                    Ok(dests) => {
                        // GHCR packages that exist but a server cannot pull anonymously (issue 22).
                        if let Ok(client) = session.registry() {
                            let refs: Vec<String> = dests.iter().flat_map(|d| d.refs.iter().cloned()).collect();
                            for w in crate::preset_check::ghcr_private_packages(client, &refs) {
                                out.push(Check::fail("GHCR package visibility", w).optional());
                            }
                        }
                        out.push(signatures_check(s, dests.iter().flat_map(|d| d.refs.first()).next().map(String::as_str)));
                        for (e, d) in plain.iter().zip(dests) {
                            let (name, tag) = naming::target_name(e, naming::Naming::Flat);
                            let to = if d.refs.is_empty() { format!("{name}:{tag}") } else { d.refs.join(", ") };
                            out.push(Check::pass(format!("{label}:{}", e.line), format!("{} → {to}", e.source)));
                        }
                    }
                    Err(errors) => out.extend(errors.iter().map(|e| Check::fail(label.clone(), e.to_string()))),
                }
                if s.inspect != crate::config::InspectChoice::Docker {
                    out.extend(read_path_checks(&reader, &ctx, http.as_ref().err(), &entries));
                }
            }
        }
        Err(errors) => out.extend(crate::images::limit_errors(errors).into_iter().map(|e| Check::fail("images.txt", e))),
    }
    drop(session);
    out
}

/// The run's reader for doctor's checks (no docker reads: doctor logs in
/// itself), and whether a registry client could be built.
/// Whether signatures travel, and the `cosign verify` line for a mirror
/// (`sample`: the first target reference of images.txt). The identity flags
/// are the signer's, which only the user knows: placeholders.
fn signatures_check(s: &Settings, sample: Option<&str>) -> Check {
    use crate::signatures::Choice;
    let what = "signatures";
    if s.signatures == Some(Choice::Off) {
        return Check::pass(what, "SIGNATURES=off: cosign signatures, attestations, SBOMs and referrers are not copied");
    }
    if s.engine == crate::config::EngineChoice::Daemon {
        return Check::fail(what, "not copied with the daemon engine (its copies get new digests); use --engine imagetools").optional();
    }
    let verify = sample.map_or_else(String::new, |r| {
        format!("; verify a mirror with: cosign verify --certificate-identity=<IDENTITY> --certificate-oidc-issuer=<ISSUER> {r} (or --key <PUBLIC KEY> for key-signed images)")
    });
    Check::pass(what, format!("copied with each image (imagetools engine): cosign .sig/.att/.sbom tags and OCI referrers{verify}"))
}

fn doctor_reader<'s>(session: &'s Session) -> (crate::inspect::fallback::ReadPath<'s>, Result<(), String>) {
    let client = session.registry();
    let http = client.map(|_| ()).map_err(|e| e.clone());
    let choice = if http.is_ok() { crate::config::InspectChoice::Registry } else { crate::config::InspectChoice::Docker };
    let chosen = crate::inspect::choose(choice, session.registry(), crate::engine::EngineKind::Daemon.reader(), 4, &|| {});
    let reader = match chosen {
        Ok(c) => c.inspector,
        // `registry` was asked only with a client: unreachable, but a reader either way.
        Err(e) => crate::inspect::fallback::ReadPath::new(
            crate::inspect::fallback::Route::Docker { tags: Err(e) },
            crate::inspect::docker::Reader::ManifestCli.boxed(),
            &|| {},
        ),
    };
    (reader, http)
}

/// The HTTP read path per source registry: reachable and trusted (`GET /v2/`),
/// then one HEAD of its first source, which also brings the pull quota a
/// registry announces (HEADs are free on Docker Hub). Through the run's reader.
fn read_path_checks(reader: &dyn crate::inspect::Inspector, ctx: &crate::ctx::Ctx, no_client: Option<&String>, entries: &[crate::images::Entry]) -> Vec<Check> {
    if let Some(e) = no_client {
        return vec![Check::fail("HTTP read path", format!("{e} — runs read registries with docker")).optional()];
    }
    let mut out = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    let tally = crate::registry::Tally::default();
    let ctx = ctx.clone().requests(&tally);
    for e in entries {
        let registry = e.source.registry().to_string();
        if !seen.insert(registry.clone()) {
            continue;
        }
        let what = format!("HTTP read path to {}", crate::sanitize::line(&registry));
        match reader.probe(&ctx, &e.source) {
            Ok(()) => out.push(Check::pass(what, "reachable and trusted")),
            Err(step) => out.push(Check::fail(what, format!("{} — {}", step.reason(), crate::failure::Failure::from_step(&step).hint)).optional()),
        }
    }
    for (host, rl) in reader.rate_limits() {
        out.push(Check::pass(format!("rate limit {host}"), rl.left()));
    }
    out
}

fn login_check(what: String, (login, result): &(crate::config::Login, Result<(), crate::failure::Failure>)) -> Check {
    match result {
        Ok(()) if login.hidden_user => Check::pass(what, format!("as {}", crate::preset::shown_user(login.username))),
        Ok(()) => Check::pass(what, format!("as {}", login.username)),
        Err(f) => Check::fail(what, format!("{} — {}", f.error, f.hint)),
    }
}

/// The settings of an empty config: no targets, no logins.
fn none_settings() -> Settings {
    crate::config::resolve(&EnvFile::default(), &|_| None, &Overrides::default()).expect("the empty config resolves")
}

/// INSECURE_REGISTRIES: each must also be in the engine's insecure-registries,
/// or `docker pull`/`push` (the daemon engine) refuse plain HTTP.
fn session_settings_timeout(settings: &Result<crate::config::Settings, Vec<String>>) -> Option<u64> {
    settings.as_ref().ok().and_then(|s| s.timeout_secs)
}

fn insecure_checks(cli: &dyn crate::docker::Docker, list: &[String], timeout: std::time::Duration) -> Vec<Check> {
    if list.is_empty() {
        return Vec::new();
    }
    let what = "INSECURE_REGISTRIES in the Docker engine";
    let cmd = Cmd::new(["info", "--format", "{{json .RegistryConfig}}"]).timeout(timeout);
    let config = match cli.run(&cmd) {
        Ok(o) => o.stdout_text(),
        Err(e) => return vec![Check::fail(what, format!("{} — could not ask the engine (`docker info`); start Docker to check", e.reason())).optional()],
    };
    match engine_insecure(&config) {
        Err(e) => vec![Check::fail(what, format!("could not read `docker info` registry settings: {e}")).optional()],
        Ok(engine) => list
            .iter()
            .map(|r| {
                let what = format!("insecure registry {r}");
                if engine.allows(r) {
                    Check::pass(what, "the Docker engine reaches it over plain HTTP (insecure-registries)")
                } else {
                    Check::fail(
                        what,
                        format!(
                            "not in the Docker engine's insecure-registries, so pulls and pushes over plain HTTP fail — add \"{r}\" to \"insecure-registries\" in /etc/docker/daemon.json (e.g. {{\"insecure-registries\": [\"{r}\"]}}) and restart Docker"
                        ),
                    )
                }
            })
            .collect(),
    }
}

/// What `docker info --format '{{json .RegistryConfig}}'` says about plain HTTP:
/// the registries marked not secure, and the CIDRs whose addresses are insecure.
#[derive(Debug, Default, PartialEq)]
pub struct EngineInsecure {
    pub names: Vec<String>,
    pub cidrs: Vec<ipnet::IpNet>,
}

impl EngineInsecure {
    /// Docker's own rule: a registry is insecure when its `host[:port]` is an
    /// insecure index entry, or its host is an IP address inside an insecure CIDR
    /// (127.0.0.0/8 is one by default).
    pub fn allows(&self, registry: &str) -> bool {
        if self.names.iter().any(|n| n.eq_ignore_ascii_case(registry)) {
            return true;
        }
        let Some((host, _)) = crate::reference::split_host_port(registry) else { return false };
        let Ok(ip) = host.parse::<std::net::IpAddr>() else { return false };
        self.cidrs.iter().any(|net| net.contains(&ip))
    }
}

pub fn engine_insecure(json: &str) -> Result<EngineInsecure, String> {
    let v: serde_json::Value = serde_json::from_str(json.trim()).map_err(|e| e.to_string())?;
    let names = v["IndexConfigs"]
        .as_object()
        .map(|m| m.iter().filter(|(_, c)| c["Secure"] == false).map(|(k, _)| k.clone()).collect())
        .unwrap_or_default();
    let cidrs = v["InsecureRegistryCIDRs"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    Ok(EngineInsecure { names, cidrs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_insecure_registries_from_docker_info() {
        let json = r#"{"AllowNondistributableArtifactsCIDRs":null,"AllowNondistributableArtifactsHostnames":null,
            "InsecureRegistryCIDRs":["::1/128","127.0.0.0/8","10.77.0.0/16"],
            "IndexConfigs":{"docker.io":{"Name":"docker.io","Mirrors":[],"Secure":true,"Official":true},
                            "mirror.lan:5000":{"Name":"mirror.lan:5000","Mirrors":[],"Secure":false,"Official":false}},
            "Mirrors":null}"#;
        let e = engine_insecure(json).unwrap();
        assert!(e.allows("mirror.lan:5000") && e.allows("MIRROR.lan:5000"));
        assert!(!e.allows("mirror.lan") && !e.allows("docker.io"));
        assert!(e.allows("127.0.0.1:5000") && e.allows("[::1]:5000") && e.allows("10.77.3.4:5000") && e.allows("10.77.3.4"));
        assert!(!e.allows("10.78.0.1:5000") && !e.allows("[::2]:5000"));
        assert_eq!(engine_insecure("null\n").unwrap(), EngineInsecure::default());
        assert!(engine_insecure("not json").is_err());
    }

    /// A scripted engine: doctor names a missing entry with the daemon.json fix.
    #[test]
    fn doctor_checks_each_insecure_registry() {
        use crate::docker::{DockerError, Output};
        struct Info(&'static str);
        impl crate::docker::Docker for Info {
            fn run(&self, _: &Cmd) -> Result<Output, DockerError> {
                Ok(Output { stdout: self.0.as_bytes().to_vec(), stderr: String::new() })
            }
        }
        let info = Info(r#"{"InsecureRegistryCIDRs":["127.0.0.0/8"],"IndexConfigs":{"a.lan:5000":{"Secure":false}}}"#);
        let checks = insecure_checks(&info, &["a.lan:5000".into(), "b.lan:5000".into()], std::time::Duration::from_secs(30));
        assert_eq!(checks.len(), 2);
        assert!(checks[0].ok);
        assert!(!checks[1].ok && checks[1].required);
        assert!(checks[1].detail.contains(r#"{"insecure-registries": ["b.lan:5000"]}"#), "{}", checks[1].detail);
        assert!(insecure_checks(&info, &[], std::time::Duration::from_secs(30)).is_empty());
    }

    /// Registries probed through the `Inspector` seam: one trusted, one not.
    struct Probes;

    impl crate::inspect::Inspector for Probes {
        fn inspect(&self, _: &crate::ctx::Ctx, r: &crate::reference::ImageRef, _: bool) -> Result<Option<crate::inspect::parse::Inspection>, crate::step_error::StepError> {
            panic!("doctor reads no manifest of {r}")
        }
        fn fill_configs(&self, _: &crate::ctx::Ctx, r: &crate::reference::ImageRef, _: &mut crate::inspect::parse::Inspection, _: &[String]) -> Result<(), crate::step_error::StepError> {
            panic!("doctor reads no manifest of {r}")
        }
        fn probe(&self, _: &crate::ctx::Ctx, r: &crate::reference::ImageRef) -> Result<(), crate::step_error::StepError> {
            match r.registry() {
                "good.example" => Ok(()),
                _ => Err(crate::step_error::StepError { what: format!("GET https://{}/v2/", r.registry()), cause: crate::step_error::Cause::Tls("invalid peer certificate: UnknownIssuer".into()) }),
            }
        }
        fn rate_limits(&self) -> std::collections::BTreeMap<String, crate::registry::RateLimit> {
            [("good.example".to_string(), crate::registry::RateLimit { limit: 100, remaining: 76, window_s: Some(21600) })].into()
        }
    }

    #[test]
    fn the_signatures_line_prints_a_cosign_verify_for_the_mirror() {
        let mut s = none_settings();
        let c = signatures_check(&s, Some("registry.example.com/ns/nginx:alpine"));
        assert!(c.ok, "{c:?}");
        assert!(
            c.detail.contains("cosign verify --certificate-identity=<IDENTITY> --certificate-oidc-issuer=<ISSUER> registry.example.com/ns/nginx:alpine"),
            "{c:?}"
        );
        s.signatures = Some(crate::signatures::Choice::Off);
        assert!(signatures_check(&s, Some("r/n/x:1")).detail.starts_with("SIGNATURES=off"));
        s.signatures = None;
        s.engine = crate::config::EngineChoice::Daemon;
        let c = signatures_check(&s, None);
        assert!(!c.ok && !c.required && c.detail.contains("daemon engine"), "{c:?}");
    }

    #[test]
    fn read_path_checks_go_through_the_inspector_seam() {
        let entries = crate::images::parse("images.txt", "good.example/a:1\ngood.example/b:1\nbad.example/c:1").unwrap();
        let docker = crate::docker::Cli::new("docker".into(), Default::default(), Arc::new(AtomicBool::new(false)));
        let cancel = AtomicBool::new(false);
        let ctx = crate::ctx::Ctx::new(&docker, &crate::config::Limits::default(), &cancel, &|_| {});
        let checks = read_path_checks(&Probes, &ctx, None, &entries);
        let shown: Vec<(String, bool)> = checks.iter().map(|c| (c.what.clone(), c.ok)).collect();
        assert_eq!(
            shown,
            [("HTTP read path to good.example".to_string(), true), ("HTTP read path to bad.example".to_string(), false), ("rate limit good.example".to_string(), true)],
            "one probe per registry, then the quotas: {checks:#?}"
        );
        assert!(checks[1].detail.contains("TLS") && checks[1].detail.contains("certs.d"), "{:?}", checks[1]);
        let none = read_path_checks(&Probes, &ctx, Some(&"bad docker config".to_string()), &entries);
        assert!(none.len() == 1 && !none[0].ok && none[0].detail.contains("bad docker config"), "{none:?}");
    }
}
