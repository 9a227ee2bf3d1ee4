//! Settings: command-line flag > environment > .env.local > config.env > default.
//!
//! Every setting is read, checked and turned into a typed value here, once,
//! in [`resolve_with_local`]; every bad setting is reported together, each with its
//! file and line or its variable name. Nothing else reads .env.local or
//! config.env. The environment is read elsewhere only for what is not an
//! imgsync setting: docker's (`DOCKER_CONFIG`, `HOME`: `credentials.rs`),
//! GitHub Actions' (`GITHUB_*`, `RUNNER_ENVIRONMENT`: `github.rs`, `app.rs`,
//! `preset_check.rs` for an ACR VPC host on a hosted runner), compose
//! files' variables (`compose.rs`), the state file's default directory when
//! `--state`/`STATE_FILE` is unset (`state::default_path`), and which variables to
//! hide from docker's children (`docker.rs`).
//!
//! config.env is meant to be committed, so a secret there is ignored with a
//! warning. `.env.local` (beside it, git-ignored) is the developer's own file:
//! any key, secrets included, with the same grammar.
//!
//! Adding a setting: a field on [`Settings`] and one line in [`resolve`]
//! (`r.get`, `r.parse`, `r.number` or `r.choice`), plus its README line.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;

use crate::line_error::LineError;
use crate::secret::{is_secret_key, Secret};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Aliyun,
    Ghcr,
    Dockerhub,
    Custom,
    /// Registry presets (issue 22, `preset.rs`).
    Harbor,
    Swr,
    Cnb,
    Gitlab,
    Tcr,
}

impl TargetKind {
    /// Every kind, in SYNC_MODE's documented order: the one list that parsing,
    /// `--from` and the error texts are made from.
    pub const ALL: [TargetKind; 9] = [
        TargetKind::Aliyun,
        TargetKind::Ghcr,
        TargetKind::Dockerhub,
        TargetKind::Custom,
        TargetKind::Harbor,
        TargetKind::Swr,
        TargetKind::Cnb,
        TargetKind::Gitlab,
        TargetKind::Tcr,
    ];

    /// The kinds' names, as SYNC_MODE and `--from` take them.
    pub fn names() -> [&'static str; 9] {
        TargetKind::ALL.map(TargetKind::as_str)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Aliyun => "aliyun",
            TargetKind::Ghcr => "ghcr",
            TargetKind::Dockerhub => "dockerhub",
            TargetKind::Custom => "custom",
            TargetKind::Harbor => "harbor",
            TargetKind::Swr => "swr",
            TargetKind::Cnb => "cnb",
            TargetKind::Gitlab => "gitlab",
            TargetKind::Tcr => "tcr",
        }
    }

    /// The prefix of this target's settings: `ALIYUN`, `GHCR`, `DOCKERHUB`, `CUSTOM`.
    pub fn key_prefix(self) -> &'static str {
        match self {
            TargetKind::Aliyun => "ALIYUN",
            TargetKind::Ghcr => "GHCR",
            TargetKind::Dockerhub => "DOCKERHUB",
            TargetKind::Custom => "CUSTOM",
            TargetKind::Harbor => "HARBOR",
            TargetKind::Swr => "SWR",
            TargetKind::Cnb => "CNB",
            TargetKind::Gitlab => "GITLAB",
            TargetKind::Tcr => "TCR",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Target {
    pub kind: TargetKind,
    pub registry: String,
    pub namespace: String,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// NAMING / `<TARGET>_NAMING` (issue 21): flat or path names.
    pub naming: crate::naming::Naming,
}

impl Target {
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("{}/{}/{}:{}", self.registry, self.namespace, name, tag)
    }

    /// The fix for a refused write at this target, naming what to change.
    pub fn permission_hint(&self) -> String {
        match self.kind {
            TargetKind::Aliyun => format!(
                "ALIYUN_USERNAME may not push to {}/{}: create the namespace {} in the ACR console first (names are namespace/repository); ACR Personal allows 3 namespaces and 300 repositories, and a full quota answers `denied` too",
                self.registry, self.namespace, self.namespace
            ),
            TargetKind::Ghcr => "GHCR_TOKEN (or GITHUB_TOKEN) may not write packages: give the workflow `permissions: packages: write`, or a token with write:packages".to_string(),
            TargetKind::Dockerhub => format!("DOCKERHUB_TOKEN may not push to {}: give the access token Read & Write scope", self.namespace),
            TargetKind::Custom => format!("CUSTOM_USERNAME may not push to {}/{}: give that account push rights there", self.registry, self.namespace),
            TargetKind::Harbor | TargetKind::Swr | TargetKind::Cnb | TargetKind::Gitlab | TargetKind::Tcr => {
                crate::preset::permission_hint(self.kind.as_str(), &self.namespace).unwrap_or_default()
            }
        }
    }

    /// `--mirror REGISTRY/NAMESPACE` (map and pull on a server without
    /// config.env): a custom target without credentials (docker's own login
    /// on that machine serves it), checked as config.env's targets are.
    pub fn from_mirror(mirror: &str, naming: crate::naming::Naming) -> Result<Target, String> {
        let mirror = mirror.trim().trim_end_matches('/');
        let bad = |why: String| format!("--mirror {mirror:?}: {why}");
        let (registry, namespace) = mirror
            .split_once('/')
            .ok_or_else(|| bad("expected REGISTRY/NAMESPACE, e.g. ghcr.io/owner or registry.example.com:5000/team/mirror".into()))?;
        check_registry(registry).map_err(bad)?;
        crate::naming::check_namespace(namespace).map_err(|e| bad(format!("namespace: {e}")))?;
        crate::registry_rules::check_target(registry, namespace, naming).map_err(|r| match r {
            crate::registry_rules::Refusal::PathMode { .. } => bad(format!("{}; use --naming flat", r.why())),
            _ => bad(r.why().to_string()),
        })?;
        Ok(Target {
            kind: TargetKind::Custom,
            registry: registry.to_ascii_lowercase(),
            namespace: namespace.to_string(),
            username: None,
            password: None,
            naming,
        })
    }

    /// The login user as logs and messages may show it: SWR's carries the
    /// access key (`<project>@<AK>`), shown as `<project>@***`.
    pub fn shown_user(&self) -> Option<String> {
        let u = self.username.as_deref()?;
        Some(if self.kind == TargetKind::Swr { crate::preset::shown_user(u) } else { u.to_string() })
    }

    /// The fix for a refused login or read at this target, naming the
    /// variables that hold its credentials (not every registry's advice).
    pub fn auth_hint(&self) -> String {
        let (user, secret, note) = match self.kind {
            TargetKind::Aliyun => ("ALIYUN_USERNAME", "ALIYUN_PASSWORD", "; ACR takes the registry password set in its console, not the account password"),
            TargetKind::Ghcr => ("GHCR_USERNAME", "GHCR_TOKEN", " (or the workflow's GITHUB_TOKEN with `permissions: packages: write`)"),
            TargetKind::Dockerhub => ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", "; Docker Hub takes an access token"),
            TargetKind::Custom => ("CUSTOM_USERNAME", "CUSTOM_PASSWORD", ""),
            TargetKind::Harbor => ("HARBOR_USERNAME", "HARBOR_PASSWORD", "; a robot account's name contains `$` (robot$project+name): quote it so no shell or CI variable eats it, and create the project first (a missing project answers `unauthorized`)"),
            TargetKind::Swr => ("SWR_AK", "SWR_SK", "; imgsync derives SWR's long-term login from the access key pair (user <project>@<AK>), so check SWR_PROJECT (default: the region) too"),
            TargetKind::Cnb => ("CNB_USERNAME", "CNB_TOKEN", "; CNB logs in as the user `cnb` with an access token that may push to the repository"),
            TargetKind::Gitlab => ("GITLAB_USERNAME", "GITLAB_TOKEN", "; GitLab takes a deploy token or personal access token with write_registry (in GitLab CI: CI_REGISTRY_USER and CI_REGISTRY_PASSWORD)"),
            TargetKind::Tcr => ("TCR_USERNAME", "TCR_PASSWORD", "; TCR Personal's user is your Tencent Cloud account ID, with the registry password set in its console"),
        };
        format!(
            "check the username and the token/password secret: set {secret} (and {user}) for {}{note}; a repository secret reaches imgsync only when the workflow passes it in `env:`; `imgsync doctor` tries the login",
            self.registry
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    Auto,
    Imagetools,
    Daemon,
}

/// `--inspect`: how the run reads registries (issue 11). `auto` = the HTTP read
/// path with a per-registry fallback to docker when HTTP cannot serve a
/// registry; `registry` = HTTP only; `docker` = the docker CLI as before.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum InspectChoice {
    Auto,
    Registry,
    Docker,
}

/// Default HTTP_READ_TIMEOUT: a registry that has not started answering by
/// then is taken as unreachable (a stalled host must not hold a run for minutes).
/// 8 s: with the default 3 retries and their waits, one stalled registry is
/// given up within about 40 s; a registry's first answer rarely takes a second.
pub const DEFAULT_READ_TIMEOUT_SECS: u64 = 8;

/// Default parallel registry reads (`INSPECT_JOBS`): network-bound, separate from copy jobs.
pub const DEFAULT_INSPECT_JOBS: usize = 32;

/// What the command line says; `None` defers to environment and config.env.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub mode: Option<String>,
    pub engine: Option<EngineChoice>,
    pub jobs: Option<usize>,
    pub retries: Option<u32>,
    pub timeout_secs: Option<u64>,
    pub inspect: Option<InspectChoice>,
    pub inspect_jobs: Option<usize>,
    pub state_file: Option<PathBuf>,
    pub read_timeout_secs: Option<u64>,
    pub signatures: Option<crate::signatures::Choice>,
}

/// How hard and how long each step tries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Extra attempts after a transient failure.
    pub retries: u32,
    /// `--timeout`: caps every step's time limit.
    pub timeout_secs: Option<u64>,
    /// The first retry's wait in milliseconds; later waits scale from it.
    pub retry_base_ms: u64,
}

impl Default for Limits {
    /// No retries, default time limits: for steps outside a sync (clean-disk).
    fn default() -> Self {
        Limits { retries: 0, timeout_secs: None, retry_base_ms: DEFAULT_RETRY_BASE_MS }
    }
}

const DEFAULT_RETRY_BASE_MS: u64 = 1000;

/// One `docker login` the run makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Login<'a> {
    pub registry: &'a str,
    pub username: &'a str,
    pub secret: &'a Secret,
    /// The user name carries a secret (SWR: `<project>@<AK>`): never in argv or logs.
    pub hidden_user: bool,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: String,
    pub targets: Vec<Target>,
    pub clean_disk: bool,
    pub engine: EngineChoice,
    /// `--jobs`: parallel inspections and transfers, in both engines; None = the
    /// engine's defaults (`engine::default_jobs`).
    pub jobs: Option<usize>,
    pub retries: u32,
    pub timeout_secs: Option<u64>,
    /// Docker Hub login for pulling (higher rate limits), when both are set.
    pub dockerhub_pull: Option<(String, Secret)>,
    pub warnings: Vec<String>,
    /// `IMGSYNC_RETRY_BASE_MS`: scales every retry wait (the tests make them short).
    pub retry_base_ms: u64,
    /// WEBHOOK_*: where the run's summary goes, if anywhere.
    pub webhook: Option<crate::webhook::Webhook>,
    /// BADGE_TZ: the time zone of the README badge's date.
    pub badge_tz: crate::badge::Tz,
    /// INSECURE_REGISTRIES: registries (`host[:port]`, lowercase) reached over
    /// plain HTTP. Docker takes `--insecure` for them, the daemon engine is used
    /// for runs that touch them, and an HTTP registry client must use `http://`
    /// for exactly these (see [`Settings::is_insecure`]).
    pub insecure_registries: Vec<String>,
    /// Keys whose value in effect came from `.env.local` (sorted), for doctor:
    /// it names them, never their values.
    pub from_local: Vec<String>,
    /// INSPECT / `--inspect`: how registries are read.
    pub inspect: InspectChoice,
    /// INSPECT_JOBS / `--inspect-jobs`: parallel registry reads (HTTP read path);
    /// None = [`DEFAULT_INSPECT_JOBS`], or `--jobs` when that is set.
    pub inspect_jobs: Option<usize>,
    /// STATE_FILE / `--state`: remembered pairs; None = [`default_state_path`].
    pub state_file: Option<PathBuf>,
    /// REGISTRY_CERTS_DIR: docker's `certs.d` layout for the HTTP read path (default /etc/docker/certs.d).
    pub registry_certs_dir: Option<PathBuf>,
    /// HTTP_READ_TIMEOUT / `--read-timeout`: how long a registry may take to
    /// start answering an HTTP read (connect, TLS, the response's headers).
    pub read_timeout_secs: u64,
    /// SIGNATURES / `--signatures`: None = the default (copy, except with the
    /// daemon engine); `Some(Copy)` was asked for explicitly.
    pub signatures: Option<crate::signatures::Choice>,
}

impl Settings {
    /// Every secret value, for redaction and masking.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut v: Vec<Secret> = self.targets.iter().filter_map(|t| t.password.clone()).collect();
        // SWR's user is `<project>@<AK>`: the access key is masked too.
        let swr_keys = self.targets.iter().filter(|t| t.kind == TargetKind::Swr).filter_map(|t| t.username.as_deref()?.split_once('@'));
        v.extend(swr_keys.map(|(_, ak)| Secret::new(ak)));
        v.extend(self.dockerhub_pull.iter().map(|(_, s)| s.clone()));
        v.extend(self.webhook.as_ref().map(|w| w.secret().clone()));
        v
    }

    pub fn limits(&self) -> Limits {
        Limits { retries: self.retries, timeout_secs: self.timeout_secs, retry_base_ms: self.retry_base_ms }
    }

    /// The logins of a run, the one answer for sync, copy and doctor: every
    /// target with credentials, then Docker Hub when pull credentials are set
    /// (higher pull rate limits). A registry and user pair appears once.
    pub fn logins(&self) -> Vec<Login<'_>> {
        let mut out: Vec<Login> = Vec::new();
        let targets = self.targets.iter().filter_map(|t| {
            let hidden_user = t.kind == TargetKind::Swr;
            Some(Login { registry: t.registry.as_str(), username: t.username.as_deref()?, secret: t.password.as_ref()?, hidden_user })
        });
        let hub = self.dockerhub_pull.iter().map(|(u, s)| Login { registry: "docker.io", username: u.as_str(), secret: s, hidden_user: false });
        for l in targets.chain(hub) {
            if !out.iter().any(|o| o.registry == l.registry && o.username == l.username) {
                out.push(l);
            }
        }
        out
    }

    /// Whether `registry` (`host[:port]`) was listed in INSECURE_REGISTRIES.
    /// Loopback registries are not implied here: docker treats them as
    /// insecure on its own, and [`crate::engine::insecure_flag`] adds them.
    #[cfg(test)]
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_listed_insecure(&self.insecure_registries, registry)
    }

    /// Registries the run logs in to: the private docker config must not send
    /// their credentials to the user's credential helpers.
    pub fn login_registries(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in self.logins() {
            if !out.iter().any(|r| r == l.registry) {
                out.push(l.registry.to_string());
            }
        }
        out
    }
}

/// A parsed config.env: key -> (value, line).
#[derive(Clone, Debug, Default)]
pub struct EnvFile {
    pub file: String,
    pub values: HashMap<String, (String, usize)>,
}

pub fn parse_env_file(file: &str, text: &str) -> Result<EnvFile, Vec<LineError>> {
    parse_env(file, text, true)
}

/// `.env.local`: as [`parse_env_file`], but an error never quotes the line,
/// which may hold a secret.
pub fn parse_local_env_file(file: &str, text: &str) -> Result<EnvFile, Vec<LineError>> {
    parse_env(file, text, false)
}

fn parse_env(file: &str, text: &str, quote_lines: bool) -> Result<EnvFile, Vec<LineError>> {
    let mut values = HashMap::new();
    let mut errors = Vec::new();
    // Windows editors may start the file with a byte order mark; it is not part of the first key.
    let text = crate::images::strip_bom(text);
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
        let Some((k, v)) = t.split_once('=') else {
            let message = if quote_lines {
                format!("expected KEY=VALUE, found {t:?}")
            } else {
                "expected KEY=VALUE (the line is not shown: this file may hold secrets)".to_string()
            };
            errors.push(LineError { file: file.into(), line, message });
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            let message = if quote_lines {
                format!("invalid key {k:?}")
            } else {
                "invalid key: use letters, digits and _ before the = (the line is not shown: this file may hold secrets)".to_string()
            };
            errors.push(LineError { file: file.into(), line, message });
            continue;
        }
        match unquote(v.trim()) {
            Ok(v) => {
                values.insert(k.to_string(), (v, line));
            }
            Err(m) => errors.push(LineError { file: file.into(), line, message: m }),
        }
    }
    if errors.is_empty() {
        Ok(EnvFile { file: file.into(), values })
    } else {
        Err(errors)
    }
}

fn unquote(v: &str) -> Result<String, String> {
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            return match rest.find(q) {
                Some(end) if rest[end + 1..].trim().is_empty() || rest[end + 1..].trim_start().starts_with('#') => {
                    Ok(rest[..end].to_string())
                }
                Some(_) => Err(format!("unexpected text after the closing {q}")),
                None => Err(format!("missing closing {q}")),
            };
        }
    }
    // Unquoted: a ` #` starts a comment.
    let v = match v.find(" #").or_else(|| v.find("\t#")) {
        Some(i) => &v[..i],
        None => v,
    };
    Ok(v.trim().to_string())
}

/// A setting's value: the environment, else config.env (never for secrets).
/// Empty counts as unset, so an empty variable (an unset GitHub secret) does
/// not hide the file's value.
#[cfg(test)]
pub fn lookup(file: &EnvFile, env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    lookup_layers(file, &EnvFile::default(), env, key)
}

fn nonempty(v: &str) -> Option<String> {
    Some(v.trim().to_string()).filter(|v| !v.is_empty())
}

/// A setting's value: the environment, else `.env.local` (any key, secrets
/// too: it is never committed), else config.env (never for secrets).
pub fn lookup_layers(file: &EnvFile, local: &EnvFile, env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    env(key)
        .and_then(|v| nonempty(&v))
        .or_else(|| local.values.get(key).and_then(|(v, _)| nonempty(v)))
        .or_else(|| if is_secret_key(key) { None } else { file.values.get(key).and_then(|(v, _)| nonempty(v)) })
}

/// Reads settings with their origin, and collects every error with it:
/// `config.env:LINE: KEY="value": why` for a file, `KEY="value": why` for
/// the environment or a flag (the variable's name says where to look).
struct Resolver<'a> {
    file: &'a EnvFile,
    local: &'a EnvFile,
    env: &'a dyn Fn(&str) -> Option<String>,
    errors: RefCell<Vec<String>>,
    /// Every key asked for: what config.env may hold ([`known_keys`]).
    asked: RefCell<std::collections::BTreeSet<String>>,
    /// Migration notes (an alias used), each once.
    notes: RefCell<Vec<String>>,
}

impl Resolver<'_> {
    fn get(&self, key: &str) -> Option<String> {
        self.asked.borrow_mut().insert(key.to_string());
        lookup_layers(self.file, self.local, self.env, key)
    }

    /// `key`, else its migration `alias` (another project's name for it),
    /// with a note naming both the first time the alias is used.
    fn get_or_alias(&self, key: &str, alias: &str) -> Option<String> {
        self.get(key).or_else(|| {
            let v = self.get(alias)?;
            let note = format!(
                "{}{alias} is read as {key} (tech-shrimp/docker_image_pusher's name); rename it to {key} when convenient",
                self.origin(alias)
            );
            let mut notes = self.notes.borrow_mut();
            if !notes.contains(&note) {
                notes.push(note);
            }
            Some(v)
        })
    }

    fn set_in_env(&self, key: &str) -> bool {
        (self.env)(key).is_some_and(|v| !v.trim().is_empty())
    }

    /// Where a key's value came from, as an error prefix.
    fn origin(&self, key: &str) -> String {
        if self.set_in_env(key) {
            return String::new();
        }
        if let Some((_, line)) = self.local.values.get(key).filter(|(v, _)| nonempty(v).is_some()) {
            return format!("{}:{line}: ", self.local.file);
        }
        match self.file.values.get(key) {
            Some((_, line)) if !is_secret_key(key) => format!("{}:{line}: ", self.file.file),
            _ => String::new(),
        }
    }

    fn error(&self, message: String) {
        self.errors.borrow_mut().push(message);
    }

    fn bad(&self, key: &str, value: &str, why: impl std::fmt::Display) {
        self.error(format!("{}{key}={value:?}: {why}", self.origin(key)));
    }

    /// A value turned into a typed one by `parse`, whose error says what was expected.
    fn parse<T>(&self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let v = self.get(key)?;
        match parse(&v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.bad(key, &v, e);
                None
            }
        }
    }

    /// A whole number in `range`; a flag, when given, wins (clap checked it).
    fn number(&self, key: &str, flag: Option<u64>, range: std::ops::RangeInclusive<u64>) -> Option<u64> {
        if flag.is_some() {
            return flag;
        }
        self.parse(key, |v| match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ if *range.end() == u64::MAX => Err(format!("expected a whole number of at least {}", range.start())),
            _ => Err(format!("expected a whole number from {} to {}", range.start(), range.end())),
        })
    }

    /// One of `choices`, case-insensitively; `what` lists them for the error.
    fn choice<T: Copy>(&self, key: &str, choices: &[(&str, T)], what: &str) -> Option<T> {
        self.parse(key, |v| {
            let v = v.to_ascii_lowercase();
            choices.iter().find(|(name, _)| *name == v).map(|(_, t)| *t).ok_or_else(|| format!("expected {what}"))
        })
    }
}

/// Resolves settings without a `.env.local`. `env` is the process environment (injected for tests).
/// The most retries `RETRIES` and `--retries` take.
pub const MAX_RETRIES: u64 = 20;

pub fn resolve(
    file: &EnvFile,
    env: &dyn Fn(&str) -> Option<String>,
    over: &Overrides,
) -> Result<Settings, Vec<String>> {
    resolve_with_local(file, &EnvFile::default(), env, over)
}

/// The state file's default place: `$XDG_CACHE_HOME/imgsync/state.json`, else
/// `~/.cache/imgsync/state.json` (`~/Library/Caches/imgsync` on macOS,
/// `%LOCALAPPDATA%\imgsync` on Windows).
pub fn default_state_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library/Caches"))
    } else {
        var("XDG_CACHE_HOME").filter(|p| p.is_absolute()).or_else(|| var("HOME").map(|h| h.join(".cache")))
    }?;
    Some(base.join("imgsync").join("state.json"))
}

/// Resolves settings: flag (`over`) > environment (`env`, injected for tests)
/// > `local` (.env.local) > `file` (config.env) > default.
pub fn resolve_with_local(
    file: &EnvFile,
    local: &EnvFile,
    env: &dyn Fn(&str) -> Option<String>,
    over: &Overrides,
) -> Result<Settings, Vec<String>> {
    let (resolved, asked) = resolve_keys(file, local, env, over);
    // A key nothing reads is a typo or a setting of another tool: say so,
    // with the line and the nearest key the resolver knows.
    let known = known_keys(&asked);
    let unknown: Vec<String> = [file, local].iter().flat_map(|f| unknown_keys(f, &known)).collect();
    match resolved {
        Ok(mut s) => {
            s.warnings.extend(unknown);
            Ok(s)
        }
        // The run stops anyway; a misspelt key is then often the reason.
        Err(mut errors) => {
            errors.extend(unknown);
            Err(errors)
        }
    }
}

/// Every key the resolver reads, whatever the values: the keys it asked for
/// in this run, plus two probe runs with every target configured, one with
/// nothing set (every fallback is asked) and one with everything set (every
/// key behind another is asked). A setting added to the resolver is known here
/// with no second list.
fn known_keys(asked: &std::collections::BTreeSet<String>) -> std::collections::BTreeSet<String> {
    let all = Overrides { mode: Some("aliyun,ghcr,dockerhub,custom,harbor,swr,cnb,gitlab,tcr".into()), ..Default::default() };
    let empty = EnvFile::default();
    let mut known = asked.clone();
    for probe in [&(|_: &str| None) as &dyn Fn(&str) -> Option<String>, &|_: &str| Some("1".to_string())] {
        known.extend(resolve_keys(&empty, &empty, probe, &all).1);
    }
    known
}

/// `FILE:LINE: unknown key K (did you mean KNOWN?)` for each key of `f` not in `known`, by line.
fn unknown_keys(f: &EnvFile, known: &std::collections::BTreeSet<String>) -> Vec<String> {
    let mut unknown: Vec<(&String, usize)> = f.values.iter().filter(|(k, _)| !known.contains(*k)).map(|(k, (_, l))| (k, *l)).collect();
    unknown.sort_by_key(|(_, l)| *l);
    unknown
        .into_iter()
        .map(|(k, line)| {
            let near = known
                .iter()
                .map(|c| (strsim::damerau_levenshtein(&k.to_ascii_uppercase(), c), c))
                .filter(|(d, c)| *d <= if c.len() >= 6 { 2 } else { 1 })
                .min();
            match near {
                Some((_, c)) => format!("{}:{line}: unknown key {k}, ignored: did you mean {c}?", f.file),
                None => format!("{}:{line}: unknown key {k}, ignored (imgsync does not read it)", f.file),
            }
        })
        .collect()
}

/// The resolver proper: the settings (or every error) and the keys it read.
fn resolve_keys(
    file: &EnvFile,
    local: &EnvFile,
    env: &dyn Fn(&str) -> Option<String>,
    over: &Overrides,
) -> (Result<Settings, Vec<String>>, std::collections::BTreeSet<String>) {
    let mut warnings = Vec::new();
    let mut keys: Vec<_> = file.values.iter().filter(|(k, _)| is_secret_key(k)).collect();
    keys.sort_by_key(|(_, (_, line))| *line);
    for (k, (_, line)) in keys {
        warnings.push(format!(
            "{}:{line}: {k} is a secret and config.env is meant to be committed; the value there is ignored. Set {k} in the environment (a repository secret) instead, or on your machine in .env.local beside config.env (git-ignored).",
            file.file
        ));
    }
    let r = Resolver { file, local, env, errors: RefCell::new(Vec::new()), asked: RefCell::default(), notes: RefCell::default() };
    let get = |k: &str| r.get(k);
    let mode = over.mode.clone().or_else(|| get("SYNC_MODE")).unwrap_or_else(|| "none".into()).to_ascii_lowercase();
    let kinds = match parse_mode(&mode) {
        Ok(k) => k,
        Err(e) => {
            // From the flag, the message names the flag.
            match &over.mode {
                Some(_) => r.error(e.replacen("SYNC_MODE=", "--mode ", 1)),
                None => r.error(format!("{}{e}", r.origin("SYNC_MODE"))),
            }
            Vec::new()
        }
    };
    let mut targets = Vec::new();
    for kind in kinds {
        match target(kind, &r) {
            Ok(t) => targets.push(t),
            Err(e) => e.into_iter().for_each(|e| r.error(e)),
        }
    }
    let bools = [("true", true), ("1", true), ("yes", true), ("false", false), ("0", false), ("no", false)];
    let clean_disk = r.choice("CLEAN_DISK_SPACE", &bools, "true or false").unwrap_or(false);
    let engines = [("auto", EngineChoice::Auto), ("imagetools", EngineChoice::Imagetools), ("daemon", EngineChoice::Daemon)];
    let engine = over.engine.or_else(|| r.choice("ENGINE", &engines, "auto, imagetools or daemon")).unwrap_or(EngineChoice::Auto);
    let jobs = r.number("JOBS", over.jobs.map(|j| j as u64), 1..=u64::MAX).map(|j| j as usize);
    // 20 retries already wait minutes under the longest backoff; more only hammers a registry.
    let retries = r.number("RETRIES", over.retries.map(u64::from), 0..=MAX_RETRIES).unwrap_or(3) as u32;
    let timeout_secs = r.number("TIMEOUT", over.timeout_secs, 1..=u64::MAX);
    let retry_base_ms = r.number(RETRY_BASE_MS_KEY, None, 0..=60_000).unwrap_or(DEFAULT_RETRY_BASE_MS);
    let dockerhub_pull = match (get("DOCKERHUB_USERNAME"), get("DOCKERHUB_TOKEN")) {
        (Some(u), Some(t)) => Some((u, Secret::new(t))),
        _ => None,
    };
    // An hour is far beyond any chat service's answer; a huge value would overflow the clock.
    r.number("WEBHOOK_TIMEOUT", None, 1..=3600);
    let webhook = match crate::webhook::Webhook::from_env(&get) {
        Ok(w) => w,
        Err(crate::webhook::SettingError::Timeout(_)) => None, // already reported, with its line
        Err(e) => {
            r.error(e.to_string());
            None
        }
    };
    // Checked once here; each target reads it (or its own `<TARGET>_NAMING`) in `target_naming`.
    r.choice("NAMING", &[("flat", ()), ("path", ())], "flat or path");
    let badge_tz = r.parse("BADGE_TZ", crate::badge::Tz::parse).unwrap_or_else(crate::badge::Tz::utc);
    let insecure_registries = r.parse("INSECURE_REGISTRIES", parse_registry_list).unwrap_or_default();
    let inspects = [("auto", InspectChoice::Auto), ("registry", InspectChoice::Registry), ("docker", InspectChoice::Docker)];
    let inspect = over.inspect.or_else(|| r.choice("INSPECT", &inspects, "auto, registry or docker")).unwrap_or(InspectChoice::Auto);
    let inspect_jobs = r.number("INSPECT_JOBS", over.inspect_jobs.map(|j| j as u64), 1..=1024).map(|j| j as usize);
    // The state file's default place is a setting like any other, resolved here.
    let state_file = over
        .state_file
        .clone()
        .or_else(|| get("STATE_FILE").filter(|v| !v.trim().is_empty()).map(PathBuf::from))
        .or_else(|| default_state_path(env));
    let registry_certs_dir = get("REGISTRY_CERTS_DIR").filter(|v| !v.trim().is_empty()).map(PathBuf::from);
    let read_timeout_secs = r.number("HTTP_READ_TIMEOUT", over.read_timeout_secs, 1..=600).unwrap_or(DEFAULT_READ_TIMEOUT_SECS);
    use crate::signatures::Choice;
    let signatures = over.signatures.or_else(|| r.choice("SIGNATURES", &[("copy", Choice::Copy), ("off", Choice::Off)], "copy or off"));
    if signatures == Some(Choice::Copy) && engine == EngineChoice::Daemon {
        let at = if over.signatures.is_some() { String::new() } else { r.origin("SIGNATURES") };
        r.error(format!(
            "{at}SIGNATURES=copy cannot be kept with the daemon engine: it pulls and pushes, so the copies get new digests and no signature would verify against them; use --engine imagetools, or SIGNATURES=off"
        ));
    }
    // A flag beats .env.local, so a key set by its flag did not come from there.
    let flagged = |k: &str| match k {
        "SYNC_MODE" => over.mode.is_some(),
        "ENGINE" => over.engine.is_some(),
        "JOBS" => over.jobs.is_some(),
        "RETRIES" => over.retries.is_some(),
        "TIMEOUT" => over.timeout_secs.is_some(),
        "INSPECT" => over.inspect.is_some(),
        "INSPECT_JOBS" => over.inspect_jobs.is_some(),
        "STATE_FILE" => over.state_file.is_some(),
        "HTTP_READ_TIMEOUT" => over.read_timeout_secs.is_some(),
        "SIGNATURES" => over.signatures.is_some(),
        _ => false,
    };
    let mut from_local: Vec<String> = local
        .values
        .iter()
        .filter(|(k, (v, _))| nonempty(v).is_some() && !r.set_in_env(k) && !flagged(k))
        .map(|(k, _)| k.clone())
        .collect();
    from_local.sort();
    warnings.extend(r.notes.take());
    let asked = r.asked.take();
    let errors = r.errors.into_inner();
    let settings = if errors.is_empty() {
        Ok(Settings {
            mode,
            targets,
            clean_disk,
            engine,
            jobs,
            retries,
            timeout_secs,
            dockerhub_pull,
            warnings,
            retry_base_ms,
            webhook,
            badge_tz,
            insecure_registries,
            from_local,
            inspect,
            inspect_jobs,
            state_file,
            registry_certs_dir,
            read_timeout_secs,
            signatures,
        })
    } else {
        Err(errors)
    };
    (settings, asked)
}

/// Scales every retry wait, for end-to-end tests: the base delay in milliseconds (default 1000).
pub const RETRY_BASE_MS_KEY: &str = "IMGSYNC_RETRY_BASE_MS";

/// A registry address as docker takes it: `host` or `host:port`, where host is
/// a DNS name or an IPv4 address. Anything else (a path, a scheme, a leading
/// `-` that docker would read as a flag) is refused; so is a bracketed IPv6
/// address, with its own message (not supported end to end yet).
pub fn check_registry(value: &str) -> Result<(), String> {
    let expected = || "expected a registry address such as registry.example.com or 127.0.0.1:5000 (host[:port], no scheme or path)".to_string();
    if value.starts_with('[') {
        return Err(crate::reference::IPV6_UNSUPPORTED.to_string());
    }
    let (host, port) = crate::reference::split_host_port(value).ok_or_else(expected)?;
    let label_ok = |l: &str| {
        !l.is_empty() && l.len() <= 63 && !l.starts_with('-') && !l.ends_with('-') && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.len() > 253 || !host.split('.').all(label_ok) || port == Some(0) {
        return Err(expected());
    }
    Ok(())
}

/// INSECURE_REGISTRIES: a comma list of `host[:port]`, each checked as a
/// registry address (so none can be read as a docker flag), lowercased
/// (host names are case-insensitive), duplicates folded.
pub fn parse_registry_list(value: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        check_registry(entry).map_err(|e| format!("entry {entry:?}: {e}; separate entries with commas"))?;
        let entry = entry.to_ascii_lowercase();
        if !out.contains(&entry) {
            out.push(entry);
        }
    }
    Ok(out)
}

/// Whether `registry` is one of `list` (INSECURE_REGISTRIES). The match is
/// exact on host and port, as docker's own insecure-registries entries are:
/// `r.example:5000` does not cover `r.example` (port 443).
pub fn is_listed_insecure(list: &[String], registry: &str) -> bool {
    list.iter().any(|e| e.eq_ignore_ascii_case(registry))
}

pub fn parse_mode(mode: &str) -> Result<Vec<TargetKind>, String> {
    let mut kinds = Vec::new();
    for part in mode.split(',').map(str::trim) {
        let add: &[TargetKind] = match part {
            "none" if mode.trim() == "none" => &[],
            "double" => &[TargetKind::Aliyun, TargetKind::Ghcr],
            one if TargetKind::names().contains(&one) => {
                std::slice::from_ref(TargetKind::ALL.iter().find(|k| k.as_str() == one).expect("a listed name"))
            }
            _ => {
                // SYNC_MODE's words: the kinds, with `double` after ghcr and `none` last.
                let mut modes: Vec<&str> = TargetKind::names().to_vec();
                modes.insert(2, "double");
                modes.push("none");
                let near = modes
                    .iter()
                    .copied()
                    .map(|m| (strsim::damerau_levenshtein(part, m), m))
                    .filter(|(d, _)| *d <= 2)
                    .min()
                    .map(|(_, m)| format!(" (did you mean {m}?)"))
                    .unwrap_or_default();
                return Err(format!("SYNC_MODE={mode:?}: expected {}, or a comma list such as aliyun,ghcr{near}", modes.join(", ")));
            }
        };
        for k in add {
            if !kinds.contains(k) {
                kinds.push(*k);
            }
        }
    }
    Ok(kinds)
}

/// tech-shrimp/docker_image_pusher's secret names, read as imgsync's (with a note).
const ALIASES: [(&str, &str); 3] =
    [("ALIYUN_NAMESPACE", "ALIYUN_NAME_SPACE"), ("ALIYUN_USERNAME", "ALIYUN_REGISTRY_USER"), ("ALIYUN_PASSWORD", "ALIYUN_REGISTRY_PASSWORD")];

/// Where a missing setting can come from, for the "set X" error.
fn where_to_set(missing: &str) -> &'static str {
    // The first word is the variable to set; the rest says what it goes with.
    if missing.split(' ').next().is_some_and(is_secret_key) {
        "in the environment (a repository secret reaches imgsync only when the workflow passes it in `env:`) or, on your machine, in .env.local"
    } else {
        "in config.env or the environment (a repository secret or variable reaches imgsync only when the workflow passes it in `env:`)"
    }
}

fn target(kind: TargetKind, r: &Resolver) -> Result<Target, Vec<String>> {
    let get = |k: &str| match ALIASES.iter().find(|(key, _)| *key == k) {
        Some((key, alias)) => r.get_or_alias(key, alias),
        None => r.get(k),
    };
    let mut missing = Vec::new();
    let mut need = |keys: &[&str]| -> String {
        match keys.iter().find_map(|k| get(k)) {
            Some(v) => v,
            None => {
                missing.push(keys.join(" (or ") + &")".repeat(keys.len() - 1));
                String::new()
            }
        }
    };
    let (registry, namespace, user_keys, secret_keys): (String, String, &[&str], &[&str]) = match kind {
        TargetKind::Aliyun => (
            need(&["ALIYUN_REGISTRY"]),
            need(&["ALIYUN_NAMESPACE"]),
            &["ALIYUN_USERNAME"],
            &["ALIYUN_PASSWORD"],
        ),
        TargetKind::Ghcr => (
            "ghcr.io".into(),
            need(&["GHCR_OWNER", "GITHUB_REPOSITORY_OWNER"]).to_ascii_lowercase(),
            &["GHCR_USERNAME", "GITHUB_ACTOR"],
            &["GHCR_TOKEN", "GITHUB_TOKEN"],
        ),
        TargetKind::Dockerhub => (
            "docker.io".into(),
            need(&["DOCKERHUB_NAMESPACE", "DOCKERHUB_USERNAME"]).to_ascii_lowercase(),
            &["DOCKERHUB_USERNAME"],
            &["DOCKERHUB_TOKEN"],
        ),
        TargetKind::Custom => (
            need(&["CUSTOM_REGISTRY"]),
            need(&["CUSTOM_NAMESPACE"]),
            &["CUSTOM_USERNAME"],
            &["CUSTOM_PASSWORD"],
        ),
        TargetKind::Harbor => (need(&["HARBOR_REGISTRY"]), need(&["HARBOR_NAMESPACE"]), &["HARBOR_USERNAME"], &["HARBOR_PASSWORD"]),
        TargetKind::Swr => {
            // The registry from the region, or the region from the registry.
            let registry = get("SWR_REGISTRY")
                .or_else(|| get("SWR_REGION").map(|r| format!("swr.{}.myhuaweicloud.com", r.to_ascii_lowercase())))
                .unwrap_or_else(|| need(&["SWR_REGISTRY", "SWR_REGION"]));
            (registry, need(&["SWR_NAMESPACE"]), &["SWR_USERNAME"], &["SWR_PASSWORD"])
        }
        TargetKind::Cnb => (
            get("CNB_REGISTRY").unwrap_or_else(|| crate::preset::CNB_REGISTRY.into()),
            need(&["CNB_NAMESPACE"]),
            &["CNB_USERNAME"],
            &["CNB_TOKEN"],
        ),
        TargetKind::Gitlab => (
            get("GITLAB_REGISTRY").unwrap_or_else(|| crate::preset::GITLAB_REGISTRY.into()),
            need(&["GITLAB_NAMESPACE"]).to_ascii_lowercase(),
            &["GITLAB_USERNAME", "CI_REGISTRY_USER"],
            &["GITLAB_TOKEN", "CI_REGISTRY_PASSWORD"],
        ),
        TargetKind::Tcr => (
            get("TCR_REGISTRY").unwrap_or_else(|| crate::preset::TCR_REGISTRY.into()),
            need(&["TCR_NAMESPACE"]),
            &["TCR_USERNAME"],
            &["TCR_PASSWORD"],
        ),
    };
    let mut username = user_keys.iter().find_map(|k| get(k));
    let mut password = secret_keys.iter().find_map(|k| get(k)).map(Secret::new);
    match kind {
        // CNB's user is fixed: a token alone is enough.
        TargetKind::Cnb if username.is_none() && password.is_some() => username = Some(crate::preset::CNB_USER.into()),
        // SWR's long-term login, derived from the access key pair.
        TargetKind::Swr => match (get("SWR_AK").map(Secret::new), get("SWR_SK").map(Secret::new)) {
            (Some(ak), Some(sk)) => {
                let region = get("SWR_REGION").or_else(|| crate::preset::swr_region_of(&registry.to_ascii_lowercase()).map(str::to_string));
                match get("SWR_PROJECT").or(region) {
                    Some(project) => {
                        let (u, p) = crate::preset::swr_login(&project, &ak, &sk);
                        (username, password) = (Some(u), Some(p));
                    }
                    None => missing.push("SWR_PROJECT (or SWR_REGION; the registry is not swr.<region>.myhuaweicloud.com)".into()),
                }
            }
            (Some(_), None) => missing.push("SWR_SK (the secret key for SWR_AK)".into()),
            (None, Some(_)) => missing.push("SWR_AK (the access key for SWR_SK)".into()),
            (None, None) => {}
        },
        _ => {}
    }
    // Credentials come in pairs; a user without a secret is a mistake worth naming.
    match (&username, &password) {
        (Some(_), None) => missing.push(format!("{} (the secret for {})", secret_keys.join(" or "), user_keys[0])),
        (None, Some(_)) => missing.push(format!("{} (the user for {})", user_keys.join(" or "), secret_keys[0])),
        _ => {}
    }
    let registry = registry.trim_end_matches('/').to_string();
    let mut errors: Vec<String> = missing
        .into_iter()
        .map(|m| format!("SYNC_MODE includes {}: set {m}, {}", kind.as_str(), where_to_set(&m)))
        .collect();
    let registry_key = match kind {
        TargetKind::Aliyun => Some("ALIYUN_REGISTRY"),
        TargetKind::Custom => Some("CUSTOM_REGISTRY"),
        TargetKind::Harbor => Some("HARBOR_REGISTRY"),
        TargetKind::Swr => Some("SWR_REGISTRY"),
        TargetKind::Cnb => Some("CNB_REGISTRY"),
        TargetKind::Gitlab => Some("GITLAB_REGISTRY"),
        TargetKind::Tcr => Some("TCR_REGISTRY"),
        TargetKind::Ghcr | TargetKind::Dockerhub => None,
    };
    if let (Some(key), false) = (registry_key, registry.is_empty()) {
        if let Err(e) = check_registry(&registry) {
            errors.push(format!("{}{key}={registry:?}: {e}", r.origin(key)));
        }
    }
    if let Err(e) = if namespace.is_empty() { Ok(()) } else { crate::naming::check_namespace(&namespace) } {
        errors.push(format!("{} namespace {namespace:?}: {e}", kind.as_str()));
    }
    let naming = target_naming(kind, r);
    if errors.is_empty() {
        let rules = crate::registry_rules::rules_for_preset(kind.as_str()).or_else(|| crate::registry_rules::rules_for(&registry));
        if let Err(refusal) = crate::registry_rules::check_rules(rules, &namespace, naming) {
            errors.push(refusal_message(kind, &registry, &namespace, naming, &refusal, r));
        }
        if let Some(u) = &username {
            if let Err(e) = crate::preset::check_user(kind.as_str(), kind.key_prefix(), u) {
                errors.push(e);
            }
        }
    }
    if errors.is_empty() {
        Ok(Target { kind, registry, namespace, username, password, naming })
    } else {
        Err(errors)
    }
}

/// `<TARGET>_NAMING`, else `NAMING`, else flat.
fn target_naming(kind: TargetKind, r: &Resolver) -> crate::naming::Naming {
    use crate::naming::Naming;
    let namings = [("flat", Naming::Flat), ("path", Naming::Path)];
    let own = format!("{}_NAMING", kind.key_prefix());
    r.choice(&own, &namings, "flat or path")
        .or_else(|| r.get("NAMING").and_then(|v| namings.iter().find(|(n, _)| v.eq_ignore_ascii_case(n)).map(|(_, m)| *m)))
        .unwrap_or_default()
}

/// A registry-table refusal in the user's words: which setting, why, and the fix.
fn refusal_message(kind: TargetKind, registry: &str, namespace: &str, naming: crate::naming::Naming, refusal: &crate::registry_rules::Refusal, r: &Resolver) -> String {
    use crate::registry_rules::Refusal;
    let p = kind.key_prefix();
    let own = format!("{p}_NAMING");
    match refusal {
        Refusal::PathMode { why, .. } => {
            let (key, origin) = if r.get(&own).is_some() { (own.clone(), r.origin(&own)) } else { ("NAMING".to_string(), r.origin("NAMING")) };
            format!(
                "{origin}{key}={:?} for the {} target ({registry}): {why}; set {own}=flat (path naming needs a registry that nests, e.g. ghcr, Harbor or a distribution registry)",
                naming.as_str(),
                kind.as_str()
            )
        }
        Refusal::NamespaceTooDeep { why, .. } => {
            format!("{p}_NAMESPACE={namespace:?} ({registry}): {why}; use one name such as {:?}", namespace.replace('/', "-"))
        }
        Refusal::NamespaceTooShallow { why, .. } => format!("{p}_NAMESPACE={namespace:?} ({registry}): {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |k| m.get(k).cloned()
    }

    fn file(text: &str) -> EnvFile {
        parse_env_file("config.env", text).unwrap()
    }

    #[test]
    fn env_file_forms() {
        let f = file("# c\nSYNC_MODE=aliyun # trailing\nexport A='x y'\nB=\"q#r\"\r\nC=\n");
        assert_eq!(f.values["SYNC_MODE"].0, "aliyun");
        assert_eq!(f.values["A"].0, "x y");
        assert_eq!(f.values["B"].0, "q#r");
        assert_eq!(f.values["C"], (String::new(), 5));
        let e = parse_env_file("config.env", "OK=1\nnonsense\nX=\"open\n").unwrap_err();
        assert_eq!(e.iter().map(|e| e.line).collect::<Vec<_>>(), [2, 3]);
        assert!(e[0].to_string().starts_with("config.env:2: "));
    }

    #[test]
    fn missing_file_means_none() {
        let s = resolve(&EnvFile::default(), &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.mode, "none");
        assert!(s.targets.is_empty());
        assert_eq!(s.retries, 3);
    }

    #[test]
    fn precedence_flag_env_file() {
        let f = file("SYNC_MODE=ghcr\nJOBS=2\nGHCR_OWNER=FileOwner");
        let env = env_of(&[("SYNC_MODE", "custom"), ("CUSTOM_REGISTRY", "r.example:5000"), ("CUSTOM_NAMESPACE", "ns"), ("GITHUB_REPOSITORY_OWNER", "Me")]);
        let s = resolve(&f, &env, &Overrides::default()).unwrap();
        assert_eq!(s.targets[0].kind, TargetKind::Custom);
        assert_eq!(s.jobs, Some(2));
        let over = Overrides { mode: Some("ghcr".into()), jobs: Some(5), ..Default::default() };
        let s = resolve(&f, &env, &over).unwrap();
        assert_eq!(s.targets[0].namespace, "fileowner");
        assert_eq!(s.jobs, Some(5));
    }

    #[test]
    fn double_needs_both_and_names_variables() {
        let f = file("SYNC_MODE=double");
        let errs = resolve(&f, &env_of(&[]), &Overrides::default()).unwrap_err();
        let all = errs.join("\n");
        assert!(all.contains("ALIYUN_REGISTRY"), "{all}");
        assert!(all.contains("ALIYUN_NAMESPACE"), "{all}");
        assert!(all.contains("GHCR_OWNER (or GITHUB_REPOSITORY_OWNER)"), "{all}");
    }

    #[test]
    fn ghcr_defaults_from_github_env() {
        let env = env_of(&[("GITHUB_REPOSITORY_OWNER", "Octo"), ("GITHUB_ACTOR", "octo"), ("GITHUB_TOKEN", "ghs_x")]);
        let s = resolve(&file("SYNC_MODE=ghcr"), &env, &Overrides::default()).unwrap();
        let t = &s.targets[0];
        assert_eq!((t.registry.as_str(), t.namespace.as_str()), ("ghcr.io", "octo"));
        assert_eq!(t.reference("nginx", "alpine"), "ghcr.io/octo/nginx:alpine");
        assert_eq!(t.password.as_ref().unwrap().expose(), "ghs_x");
        assert_eq!(format!("{:?}", t.password), "Some(Secret(***))");
    }

    #[test]
    fn secrets_in_file_warn_and_are_ignored() {
        let f = file("SYNC_MODE=custom\nCUSTOM_REGISTRY=h:1\nCUSTOM_NAMESPACE=n\nCUSTOM_USERNAME=u\nCUSTOM_PASSWORD=p");
        let errs = resolve(&f, &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs.join(" ").contains("CUSTOM_PASSWORD"));
        let s = resolve(&f, &env_of(&[("CUSTOM_PASSWORD", "envpw")]), &Overrides::default()).unwrap();
        assert_eq!(s.targets[0].password.as_ref().unwrap().expose(), "envpw");
        assert!(s.warnings[0].starts_with("config.env:5: CUSTOM_PASSWORD is a secret"), "{:?}", s.warnings);
        assert!(!s.warnings[0].contains("envpw") && !s.warnings[0].contains("=p"));
    }

    #[test]
    fn empty_env_does_not_hide_the_file() {
        let f = file("SYNC_MODE=custom\nCUSTOM_REGISTRY=h:1\nCUSTOM_NAMESPACE=n\nCUSTOM_USERNAME=fileuser");
        let s = resolve(&f, &env_of(&[("CUSTOM_USERNAME", ""), ("CUSTOM_PASSWORD", "pw"), ("SYNC_MODE", "  ")]), &Overrides::default()).unwrap();
        assert_eq!(s.targets[0].username.as_deref(), Some("fileuser"));
        assert_eq!(lookup(&f, &env_of(&[]), "CUSTOM_PASSWORD"), None);
    }

    #[test]
    fn modes() {
        use TargetKind::*;
        assert_eq!(parse_mode("double").unwrap(), [Aliyun, Ghcr]);
        assert_eq!(parse_mode("aliyun,ghcr,custom").unwrap(), [Aliyun, Ghcr, Custom]);
        assert_eq!(parse_mode("none").unwrap(), []);
        assert!(parse_mode("none,ghcr").is_err());
        assert!(parse_mode("s3").is_err());
        assert!(parse_mode("aliyn").unwrap_err().ends_with("(did you mean aliyun?)"));
        let errs = resolve(&EnvFile::default(), &env_of(&[]), &Overrides { mode: Some("aliyn".into()), ..Default::default() }).unwrap_err();
        assert!(errs[0].starts_with("--mode \"aliyn\": expected aliyun"), "{errs:?}");
    }

    #[test]
    fn bad_values_are_named() {
        let errs = resolve(&file("CLEAN_DISK_SPACE=maybe\nJOBS=0\nENGINE=fast"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }

    #[test]
    fn one_login_answer_for_sync_and_doctor() {
        // Two targets, one without credentials, and a Docker Hub source with credentials.
        let f = file("SYNC_MODE=custom,ghcr\nCUSTOM_REGISTRY=r.example:5000\nCUSTOM_NAMESPACE=ns\nGHCR_OWNER=me\nDOCKERHUB_USERNAME=hubuser");
        let env = env_of(&[("CUSTOM_USERNAME", "cu"), ("CUSTOM_PASSWORD", "cpw"), ("DOCKERHUB_TOKEN", "dht")]);
        let s = resolve(&f, &env, &Overrides::default()).unwrap();
        assert_eq!(s.targets.len(), 2);
        let logins: Vec<(&str, &str, &str)> = s.logins().iter().map(|l| (l.registry, l.username, l.secret.expose())).collect();
        // ghcr has no credentials: no login; Docker Hub comes in for the pulls.
        assert_eq!(logins, [("r.example:5000", "cu", "cpw"), ("docker.io", "hubuser", "dht")]);
        assert_eq!(s.login_registries(), ["r.example:5000", "docker.io"]);
        // `Session::login_each` (sync and doctor) walks exactly this list.
    }

    #[test]
    fn a_dockerhub_target_and_pull_login_are_one_login() {
        let env = env_of(&[("SYNC_MODE", "dockerhub"), ("DOCKERHUB_USERNAME", "me"), ("DOCKERHUB_TOKEN", "t")]);
        let s = resolve(&EnvFile::default(), &env, &Overrides::default()).unwrap();
        assert_eq!(s.logins().len(), 1);
    }

    #[test]
    fn every_bad_setting_is_reported_with_its_place() {
        let f = file("SYNC_MODE=custom\nCUSTOM_REGISTRY=--debug\nCUSTOM_NAMESPACE=ns\nJOBS=0\nBADGE_TZ=+99:00");
        let errs = resolve(&f, &env_of(&[("WEBHOOK_TIMEOUT", "18446744073709551615")]), &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("config.env:2: CUSTOM_REGISTRY=\"--debug\": expected a registry address")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("config.env:4: JOBS=\"0\"")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("config.env:5: BADGE_TZ=")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("WEBHOOK_TIMEOUT=\"18446744073709551615\": expected a whole number from 1 to 3600")), "{errs:#?}");
    }

    #[test]
    fn a_bad_webhook_setting_is_reported_once() {
        let env = env_of(&[("WEBHOOK_URL", "https://hooks.example/T/x")]);
        // The resolver reports WEBHOOK_TIMEOUT with its place; the webhook's own error for it is dropped.
        let errs = resolve(&file("WEBHOOK_TIMEOUT=0"), &env, &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].starts_with("config.env:1: WEBHOOK_TIMEOUT=\"0\""), "{errs:#?}");
        // Other webhook settings are the webhook's to report.
        let errs = resolve(&file("WEBHOOK_ON=never"), &env, &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].contains("WEBHOOK_ON=\"never\""), "{errs:#?}");
    }

    #[test]
    fn settings_resolved_once() {
        let f = file("BADGE_TZ=+08:00\nWEBHOOK_FORMAT=slack");
        let s = resolve(&f, &env_of(&[("WEBHOOK_URL", "https://hooks.example/T/x"), ("IMGSYNC_RETRY_BASE_MS", "50")]), &Overrides::default()).unwrap();
        assert_eq!(s.badge_tz, crate::badge::Tz::parse("+08:00").unwrap());
        assert!(s.webhook.is_some());
        assert_eq!(s.limits(), Limits { retries: 3, timeout_secs: None, retry_base_ms: 50 });
        assert_eq!(s.secrets().len(), 1, "the webhook URL is masked");
    }

    #[test]
    fn signatures_copy_or_off_and_never_copy_with_the_daemon_engine() {
        use crate::signatures::Choice;
        assert_eq!(resolve(&file(""), &env_of(&[]), &Overrides::default()).unwrap().signatures, None, "the default: copy where digests are kept");
        assert_eq!(resolve(&file("SIGNATURES=Off"), &env_of(&[]), &Overrides::default()).unwrap().signatures, Some(Choice::Off));
        let over = Overrides { signatures: Some(Choice::Off), ..Default::default() };
        assert_eq!(resolve(&file("SIGNATURES=copy"), &env_of(&[]), &over).unwrap().signatures, Some(Choice::Off), "the flag wins");
        let errs = resolve(&file("SIGNATURES=sign"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("SIGNATURES=\"sign\"") && e.contains("copy or off")), "{errs:#?}");
        let errs = resolve(&file("ENGINE=daemon\nSIGNATURES=copy"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("config.env:2: SIGNATURES=copy cannot be kept with the daemon engine")), "{errs:#?}");
        let over = Overrides { signatures: Some(Choice::Copy), engine: Some(EngineChoice::Daemon), ..Default::default() };
        let errs = resolve(&file(""), &env_of(&[]), &over).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("SIGNATURES=copy cannot be kept")), "{errs:#?}");
        // Turned off, or left to the default, the daemon engine is fine.
        assert!(resolve(&file("ENGINE=daemon\nSIGNATURES=off"), &env_of(&[]), &Overrides::default()).is_ok());
        assert!(resolve(&file("ENGINE=daemon"), &env_of(&[]), &Overrides::default()).is_ok());
    }

    #[test]
    fn read_path_settings() {
        let d = resolve(&EnvFile::default(), &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!((d.inspect, d.inspect_jobs, d.state_file.clone(), d.registry_certs_dir.clone()), (InspectChoice::Auto, None, None, None));
        let f = file("INSPECT=Registry\nINSPECT_JOBS=64\nSTATE_FILE=/var/cache/imgsync.json\nREGISTRY_CERTS_DIR=/tmp/certs.d");
        let s = resolve(&f, &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.inspect, InspectChoice::Registry);
        assert_eq!(s.inspect_jobs, Some(64));
        assert_eq!(s.state_file, Some(PathBuf::from("/var/cache/imgsync.json")));
        assert_eq!(s.registry_certs_dir, Some(PathBuf::from("/tmp/certs.d")));
        // Flags win.
        let over = Overrides { inspect: Some(InspectChoice::Docker), inspect_jobs: Some(2), state_file: Some("s.json".into()), ..Default::default() };
        let s = resolve(&f, &env_of(&[]), &over).unwrap();
        assert_eq!((s.inspect, s.inspect_jobs, s.state_file), (InspectChoice::Docker, Some(2), Some(PathBuf::from("s.json"))));
        let errs = resolve(&file("INSPECT=http\nINSPECT_JOBS=0"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("INSPECT=\"http\"") && e.contains("auto, registry or docker")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("INSPECT_JOBS=\"0\"")), "{errs:#?}");
    }

    #[test]
    fn registry_addresses() {
        for ok in ["registry.example.com", "127.0.0.1:5000", "localhost:5000", "r-1.example:443"] {
            assert_eq!(check_registry(ok), Ok(()), "{ok}");
        }
        for bad in ["--debug", "-r", "https://r.example", "r.example/path", "r.example:0", "r.example:99999", "r.example:", "", "a..b", "r example", "[::1", "host:-1", "[::1]:5000", "[fe80::1]"] {
            assert!(check_registry(bad).is_err(), "{bad}");
        }
        let env = env_of(&[("SYNC_MODE", "aliyun"), ("ALIYUN_REGISTRY", "-x"), ("ALIYUN_NAMESPACE", "ns")]);
        let errs = resolve(&EnvFile::default(), &env, &Overrides::default()).unwrap_err();
        assert!(errs[0].starts_with("ALIYUN_REGISTRY=\"-x\": "), "{errs:?}");
    }
    #[test]
    fn env_local_precedence_and_secrets() {
        let f = file("SYNC_MODE=custom\nCUSTOM_REGISTRY=h:1\nCUSTOM_NAMESPACE=filens\nCUSTOM_USERNAME=u\nCUSTOM_PASSWORD=committed\nJOBS=2");
        let local = parse_local_env_file(".env.local", "\u{feff}CUSTOM_PASSWORD=localpw\nCUSTOM_NAMESPACE=localns\nJOBS=3\nRETRIES=\n").unwrap();
        // .env.local beats config.env, and holds secrets.
        let s = resolve_with_local(&f, &local, &env_of(&[]), &Overrides::default()).unwrap();
        let t = &s.targets[0];
        assert_eq!((t.namespace.as_str(), t.password.as_ref().unwrap().expose(), s.jobs), ("localns", "localpw", Some(3)));
        // The secret in config.env is still warned about (and ignored).
        assert!(s.warnings[0].starts_with("config.env:5: CUSTOM_PASSWORD is a secret"), "{:?}", s.warnings);
        assert_eq!(s.from_local, ["CUSTOM_NAMESPACE", "CUSTOM_PASSWORD", "JOBS"], "an empty value is unset");
        // The environment beats .env.local, a flag beats both.
        let env = env_of(&[("CUSTOM_PASSWORD", "envpw"), ("JOBS", "4")]);
        let s = resolve_with_local(&f, &local, &env, &Overrides { jobs: Some(5), ..Default::default() }).unwrap();
        assert_eq!((s.targets[0].password.as_ref().unwrap().expose(), s.jobs), ("envpw", Some(5)));
        assert_eq!(s.from_local, ["CUSTOM_NAMESPACE"]);
        // Errors name .env.local's line.
        let bad = parse_local_env_file(".env.local", "JOBS=0").unwrap();
        let errs = resolve_with_local(&f, &bad, &env_of(&[("CUSTOM_PASSWORD", "x")]), &Overrides::default()).unwrap_err();
        assert_eq!(errs, [".env.local:1: JOBS=\"0\": expected a whole number of at least 1"]);
        // Docker Hub pull credentials from .env.local too.
        let local = parse_local_env_file(".env.local", "DOCKERHUB_USERNAME=me\nDOCKERHUB_TOKEN=dht").unwrap();
        let s = resolve_with_local(&EnvFile::default(), &local, &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.dockerhub_pull.as_ref().map(|(u, t)| (u.as_str(), t.expose())), Some(("me", "dht")));
        assert_eq!(s.secrets().len(), 1);
    }

    #[test]
    fn env_local_errors_never_quote_the_line() {
        let e = parse_local_env_file(".env.local", "OK=1\nhunter2\nmy-key=hunter3").unwrap_err();
        let all: Vec<String> = e.iter().map(|e| e.to_string()).collect();
        assert_eq!(all.len(), 2);
        assert!(all[0].starts_with(".env.local:2: expected KEY=VALUE"), "{all:?}");
        assert!(all.iter().all(|m| !m.contains("hunter")), "{all:?}");
        // config.env still quotes (it holds no secrets), and a BOM is no part of a key.
        assert!(parse_env_file("config.env", "nonsense").unwrap_err()[0].to_string().contains("\"nonsense\""));
        assert_eq!(file("\u{feff}SYNC_MODE=ghcr").values["SYNC_MODE"].0, "ghcr");
    }

    #[test]
    fn naming_modes_per_target() {
        use crate::naming::Naming;
        let f = file("SYNC_MODE=custom,ghcr\nCUSTOM_REGISTRY=h:1\nCUSTOM_NAMESPACE=team/mirror\nGHCR_OWNER=me\nNAMING=path\nCUSTOM_NAMING=flat");
        let s = resolve(&f, &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!((s.targets[0].naming, s.targets[1].naming), (Naming::Flat, Naming::Path));
        assert_eq!(s.targets[0].namespace, "team/mirror", "a namespace may contain '/'");
        let d = resolve(&file("SYNC_MODE=ghcr\nGHCR_OWNER=me"), &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(d.targets[0].naming, Naming::Flat, "flat by default");
        let errs = resolve(&file("NAMING=deep\nSYNC_MODE=ghcr\nGHCR_OWNER=me\nGHCR_NAMING=x"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs.iter().any(|e| e.starts_with("config.env:1: NAMING=\"deep\": expected flat or path")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("config.env:4: GHCR_NAMING=\"x\"")), "{errs:#?}");
        let errs = resolve(&file("SYNC_MODE=custom\nCUSTOM_REGISTRY=h:1\nCUSTOM_NAMESPACE=a//b"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs[0].contains("namespace \"a//b\""), "{errs:#?}");
    }

    #[test]
    fn a_mirror_on_the_command_line() {
        use crate::naming::Naming;
        let t = Target::from_mirror("Registry.example.com:5000/team/mirror/", Naming::Path).unwrap();
        assert_eq!((t.registry.as_str(), t.namespace.as_str(), t.naming), ("registry.example.com:5000", "team/mirror", Naming::Path));
        assert_eq!(t.reference("docker.io/library/nginx", "1.27"), "registry.example.com:5000/team/mirror/docker.io/library/nginx:1.27");
        assert!(Target::from_mirror("ghcr.io", Naming::Flat).unwrap_err().contains("expected REGISTRY/NAMESPACE"));
        assert!(Target::from_mirror("https://ghcr.io/o", Naming::Flat).is_err());
        assert!(Target::from_mirror("ghcr.io/O", Naming::Flat).is_err());
        let e = Target::from_mirror("registry.cn-hangzhou.aliyuncs.com/ns", Naming::Path).unwrap_err();
        assert!(e.contains("ACR Personal") && e.ends_with("use --naming flat"), "{e}");
    }

    #[test]
    fn registries_that_do_not_nest_refuse_path_naming() {
        let f = file("SYNC_MODE=aliyun,ghcr\nALIYUN_REGISTRY=registry.cn-hangzhou.aliyuncs.com\nALIYUN_NAMESPACE=ns\nGHCR_OWNER=me\nNAMING=path");
        let errs = resolve(&f, &env_of(&[]), &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].starts_with("config.env:5: NAMING=\"path\" for the aliyun target (registry.cn-hangzhou.aliyuncs.com): Aliyun ACR Personal accepts only NAMESPACE/NAME"), "{errs:#?}");
        assert!(errs[0].contains("set ALIYUN_NAMING=flat"), "{errs:#?}");
        let s = resolve(&f, &env_of(&[("ALIYUN_NAMING", "flat")]), &Overrides::default()).unwrap();
        assert_eq!(s.targets.len(), 2);
        let errs = resolve(&file("SYNC_MODE=dockerhub\nDOCKERHUB_NAMESPACE=me/x"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs[0].contains("Docker Hub accepts only NAMESPACE/NAME") && errs[0].contains("\"me-x\""), "{errs:#?}");
    }

    #[test]
    fn registry_presets() {
        use crate::naming::Naming;
        let f = file("SYNC_MODE=harbor,swr,cnb,gitlab,tcr\nHARBOR_REGISTRY=harbor.example.com\nHARBOR_NAMESPACE=proj/mirror\nHARBOR_USERNAME=robot$proj+ci\nSWR_REGISTRY=swr.cn-north-4.myhuaweicloud.com\nSWR_NAMESPACE=org\nCNB_NAMESPACE=org/repo\nGITLAB_NAMESPACE=Group/Project\nTCR_NAMESPACE=ns\nHARBOR_NAMING=path");
        let env = env_of(&[
            ("HARBOR_PASSWORD", "hp"),
            ("SWR_AK", "AKEXAMPLE0123456789"),
            ("SWR_SK", "SKEXAMPLE0123456789abcdefghijklmnopqrstu"),
            ("CNB_TOKEN", "ct"),
            ("GITLAB_USERNAME", "deploy"),
            ("GITLAB_TOKEN", "gt"),
        ]);
        let s = resolve(&f, &env, &Overrides::default()).unwrap();
        let kinds: Vec<&str> = s.targets.iter().map(|t| t.kind.as_str()).collect();
        assert_eq!(kinds, ["harbor", "swr", "cnb", "gitlab", "tcr"]);
        let [harbor, swr, cnb, gitlab, tcr] = &s.targets[..] else { unreachable!() };
        assert_eq!((harbor.registry.as_str(), harbor.namespace.as_str(), harbor.naming), ("harbor.example.com", "proj/mirror", Naming::Path));
        // SWR: the project defaults to the region read from the host; the login is derived (see preset.rs for the worked example).
        assert_eq!(swr.username.as_deref(), Some("cn-north-4@AKEXAMPLE0123456789"));
        assert_eq!(swr.password.as_ref().unwrap().expose(), "c1a4e821a093c5bd5d047e7557827a9ea913d8193ecb506db1b1031beeca33ed");
        assert_eq!(swr.shown_user().as_deref(), Some("cn-north-4@***"));
        assert!(s.logins().iter().any(|l| l.hidden_user && l.registry == swr.registry));
        let secrets: Vec<String> = s.secrets().iter().map(|x| x.expose().to_string()).collect();
        assert!(secrets.contains(&"AKEXAMPLE0123456789".to_string()), "the access key is masked too");
        // CNB: default registry, fixed user.
        assert_eq!((cnb.registry.as_str(), cnb.username.as_deref()), ("docker.cnb.cool", Some("cnb")));
        assert_eq!((gitlab.registry.as_str(), gitlab.namespace.as_str()), ("registry.gitlab.com", "group/project"));
        assert_eq!((tcr.registry.as_str(), tcr.username.as_deref()), ("ccr.ccs.tencentyun.com", None));
        // SWR_PROJECT wins; SWR_REGION gives the registry.
        let env2 = env_of(&[("SYNC_MODE", "swr"), ("SWR_REGION", "ap-southeast-1"), ("SWR_NAMESPACE", "o"), ("SWR_PROJECT", "ap-southeast-1_sub"), ("SWR_AK", "a"), ("SWR_SK", "b")]);
        let t = &resolve(&EnvFile::default(), &env2, &Overrides::default()).unwrap().targets[0];
        assert_eq!((t.registry.as_str(), t.username.as_deref()), ("swr.ap-southeast-1.myhuaweicloud.com", Some("ap-southeast-1_sub@a")));
    }

    #[test]
    fn registry_presets_refuse_what_cannot_work() {
        let errs = |text: &str, env: &[(&str, &str)]| resolve(&file(text), &env_of(env), &Overrides::default()).unwrap_err();
        // SWR on a host without a region: the project is required.
        let e = errs("SYNC_MODE=swr\nSWR_REGISTRY=127.0.0.1:5000\nSWR_NAMESPACE=o", &[("SWR_AK", "a"), ("SWR_SK", "b")]);
        assert!(e[0].starts_with("SYNC_MODE includes swr: set SWR_PROJECT"), "{e:?}");
        let e = errs("SYNC_MODE=swr\nSWR_NAMESPACE=o", &[]);
        assert!(e[0].contains("set SWR_REGISTRY (or SWR_REGION)"), "{e:?}");
        let e = errs("SYNC_MODE=swr\nSWR_REGION=r\nSWR_NAMESPACE=o", &[("SWR_AK", "a")]);
        assert!(e[0].contains("SWR_SK"), "{e:?}");
        assert!(!e.iter().any(|m| m.contains("\"a\"")), "never the key: {e:?}");
        // CNB: org/repo, user cnb.
        let e = errs("SYNC_MODE=cnb\nCNB_NAMESPACE=org", &[]);
        assert!(e[0].contains("Tencent CNB needs the namespace to be an existing repository's path"), "{e:?}");
        let e = errs("SYNC_MODE=cnb\nCNB_NAMESPACE=org/repo\nCNB_USERNAME=me", &[("CNB_TOKEN", "t")]);
        assert!(e[0].contains("logs in as the user `cnb`"), "{e:?}");
        // GitLab: group/project, and path naming is too deep, on any host.
        let e = errs("SYNC_MODE=gitlab\nGITLAB_REGISTRY=gitlab.example.com:5050\nGITLAB_NAMESPACE=group", &[]);
        assert!(e[0].contains("GitLab needs the namespace to be the project path"), "{e:?}");
        let e = errs("SYNC_MODE=gitlab\nGITLAB_NAMESPACE=g/p\nGITLAB_NAMING=path", &[]);
        assert!(e[0].contains("set GITLAB_NAMING=flat"), "{e:?}");
        // TCR Personal: one namespace level.
        let e = errs("SYNC_MODE=tcr\nTCR_NAMESPACE=a/b", &[]);
        assert!(e[0].contains("Tencent TCR Personal accepts only NAMESPACE/NAME"), "{e:?}");
        // Harbor needs its registry and project.
        let e = errs("SYNC_MODE=harbor", &[]);
        assert!(e.iter().any(|m| m.contains("set HARBOR_REGISTRY")) && e.iter().any(|m| m.contains("set HARBOR_NAMESPACE")), "{e:?}");
        // The keys are known (no unknown-key warning), and secret ones never come from config.env.
        let s = resolve(&file("SYNC_MODE=tcr\nTCR_NAMESPACE=n\nHARBOR_REGISTRY=x\nSWR_REGION=r\nCNB_REGISTRY=c\nGITLAB_NAMESPACE=g/p"), &env_of(&[]), &Overrides::default()).unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        let s = resolve(&file("SYNC_MODE=tcr\nTCR_NAMESPACE=n\nSWR_SK=oops"), &env_of(&[]), &Overrides::default()).unwrap();
        assert!(s.warnings[0].contains("SWR_SK is a secret"), "{:?}", s.warnings);
    }

    #[test]
    fn unknown_keys_are_named_with_the_nearest_known_one() {
        let f = file("SYNC_MOD=aliyun\nJOB=2\nCUSTOM_NAMESPCE=x\nWEBHOOK_FORMT=slack\nTOTALLY_ELSE=1\nHTTP_READ_TIMEOUT=5");
        let s = resolve(&f, &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(
            s.warnings,
            [
                "config.env:1: unknown key SYNC_MOD, ignored: did you mean SYNC_MODE?",
                "config.env:2: unknown key JOB, ignored: did you mean JOBS?",
                "config.env:3: unknown key CUSTOM_NAMESPCE, ignored: did you mean CUSTOM_NAMESPACE?",
                "config.env:4: unknown key WEBHOOK_FORMT, ignored: did you mean WEBHOOK_FORMAT?",
                "config.env:5: unknown key TOTALLY_ELSE, ignored (imgsync does not read it)",
            ]
        );
        assert_eq!(s.read_timeout_secs, 5);
        // Keys of a target not in use are still known; so is .env.local's.
        let f = file("SYNC_MODE=ghcr\nGHCR_OWNER=o\nALIYUN_REGISTRY=r\nCUSTOM_USERNAME=u\nDOCKERHUB_NAMESPACE=n\nINSECURE_REGISTRIES=\nBADGE_TZ=UTC");
        let local = parse_local_env_file(".env.local", "WEBHOOK_ON=failure\nSYNCMODE=x").unwrap();
        let s = resolve_with_local(&f, &local, &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.warnings, [".env.local:2: unknown key SYNCMODE, ignored: did you mean SYNC_MODE?"]);
        // When the run stops on an error, the misspelt key is said with it.
        let errs = resolve(&file("SYNC_MODE=custom\nCUSTOM_REGISTRY=r:1\nCUSTOM_NAMESPCE=x"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs[0].starts_with("SYNC_MODE includes custom: set CUSTOM_NAMESPACE, in config.env or the environment"), "{errs:?}");
        assert_eq!(errs[1], "config.env:3: unknown key CUSTOM_NAMESPCE, ignored: did you mean CUSTOM_NAMESPACE?");
    }

    #[test]
    fn hints_name_the_targets_own_variables() {
        let t = |kind| Target { kind, registry: "r.example".into(), namespace: "ns".into(), username: None, password: None, naming: Default::default() };
        assert!(t(TargetKind::Custom).auth_hint().contains("set CUSTOM_PASSWORD (and CUSTOM_USERNAME) for r.example"));
        assert!(!t(TargetKind::Custom).auth_hint().contains("Docker Hub"), "no other registry's advice");
        assert!(t(TargetKind::Aliyun).auth_hint().contains("ALIYUN_PASSWORD") && t(TargetKind::Aliyun).auth_hint().contains("ACR"));
        assert!(t(TargetKind::Ghcr).permission_hint().contains("packages: write"));
        assert!(t(TargetKind::Aliyun).permission_hint().contains("create the namespace ns"));
        assert!(t(TargetKind::Dockerhub).permission_hint().contains("DOCKERHUB_TOKEN"));
    }

    #[test]
    fn tech_shrimp_secret_names_are_aliases_with_a_note() {
        let f = file("SYNC_MODE=aliyun\nALIYUN_REGISTRY=registry.cn-hangzhou.aliyuncs.com\nALIYUN_NAME_SPACE=ns\nALIYUN_REGISTRY_USER=me");
        let s = resolve(&f, &env_of(&[("ALIYUN_REGISTRY_PASSWORD", "pw")]), &Overrides::default()).unwrap();
        let t = &s.targets[0];
        assert_eq!((t.namespace.as_str(), t.username.as_deref(), t.password.as_ref().map(Secret::expose)), ("ns", Some("me"), Some("pw")));
        assert_eq!(s.warnings.len(), 3, "one note per alias, no unknown-key warning: {:?}", s.warnings);
        assert!(s.warnings[0].starts_with("config.env:3: ALIYUN_NAME_SPACE is read as ALIYUN_NAMESPACE"), "{:?}", s.warnings);
        assert!(s.warnings.iter().any(|w| w.starts_with("ALIYUN_REGISTRY_PASSWORD is read as ALIYUN_PASSWORD")), "{:?}", s.warnings);
        // imgsync's own name wins, and then no note.
        let s = resolve(&f, &env_of(&[("ALIYUN_PASSWORD", "a"), ("ALIYUN_REGISTRY_PASSWORD", "b"), ("ALIYUN_USERNAME", "u"), ("ALIYUN_NAMESPACE", "n2")]), &Overrides::default()).unwrap();
        assert_eq!(s.targets[0].password.as_ref().unwrap().expose(), "a");
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        // A missing secret says where it can come from.
        let errs = resolve(&file("SYNC_MODE=aliyun\nALIYUN_REGISTRY=r\nALIYUN_NAMESPACE=n\nALIYUN_USERNAME=u"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert!(errs[0].contains("set ALIYUN_PASSWORD (the secret for ALIYUN_USERNAME), in the environment (a repository secret reaches imgsync only when the workflow passes it"), "{errs:?}");
    }

    #[test]
    fn insecure_registries() {
        let s = resolve(&file("INSECURE_REGISTRIES=10.0.0.2:5000, Mirror.LAN ,10.0.0.2:5000,"), &env_of(&[]), &Overrides::default()).unwrap();
        assert_eq!(s.insecure_registries, ["10.0.0.2:5000", "mirror.lan"]);
        assert!(s.is_insecure("10.0.0.2:5000") && s.is_insecure("MIRROR.lan"));
        assert!(!s.is_insecure("10.0.0.2") && !s.is_insecure("mirror.lan:5000"), "host and port match exactly, as in docker");
        assert!(!s.is_insecure("127.0.0.1:5000"), "loopback is the engine's business, not the list's");
        let errs = resolve(&file("\nINSECURE_REGISTRIES=ok:1,http://x:5000"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("config.env:2: INSECURE_REGISTRIES=\"ok:1,http://x:5000\": entry \"http://x:5000\": expected a registry address"), "{errs:?}");
        assert!(parse_registry_list("--debug").is_err());
        assert_eq!(parse_registry_list(" ").unwrap(), Vec::<String>::new());
    }

    #[test]
    fn default_path_follows_the_platform_cache_dir() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            "XDG_CACHE_HOME" => Some("/xdg".to_string()),
            _ => None,
        };
        let p = default_state_path(&env).unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(p, PathBuf::from("/xdg/imgsync/state.json"));
            let p = default_state_path(&|k| (k == "HOME").then(|| "/home/u".to_string())).unwrap();
            assert_eq!(p, PathBuf::from("/home/u/.cache/imgsync/state.json"));
            // A relative XDG_CACHE_HOME is invalid per the spec.
            let p = default_state_path(&|k| match k {
                "HOME" => Some("/h".into()),
                "XDG_CACHE_HOME" => Some("rel".into()),
                _ => None,
            });
            assert_eq!(p.unwrap(), PathBuf::from("/h/.cache/imgsync/state.json"));
        }
        assert_eq!(default_state_path(&|_| None), None);
    }

    #[test]
    fn retries_have_a_sane_maximum() {
        // Audit 2 #9: RETRIES accepted 4294967295.
        for bad in ["21", "4294967295"] {
            let errs = resolve(&EnvFile::default(), &env_of(&[("RETRIES", bad)]), &Overrides::default()).unwrap_err();
            assert!(errs.iter().any(|e| e.contains("RETRIES") && e.contains("0 to 20")), "{errs:?}");
        }
        let s = resolve(&EnvFile::default(), &env_of(&[("RETRIES", "20")]), &Overrides::default()).unwrap();
        assert_eq!(s.retries, 20);
        use clap::Parser;
        assert!(crate::cli::Cli::try_parse_from(["imgsync", "sync", "--retries", "21"]).is_err());
        assert!(crate::cli::Cli::try_parse_from(["imgsync", "sync", "--retries", "20"]).is_ok());
    }

    #[test]
    fn bracketed_ipv6_registries_are_refused_with_a_plain_message() {
        // Issue 19: `CUSTOM_REGISTRY=[::1]:PORT` passed here, then every entry failed with a parse error.
        let env = env_of(&[("SYNC_MODE", "custom"), ("CUSTOM_REGISTRY", "[::1]:5000"), ("CUSTOM_NAMESPACE", "ns")]);
        let errs = resolve(&EnvFile::default(), &env, &Overrides::default()).unwrap_err();
        assert!(errs.iter().any(|e| e.contains("IPv6")), "{errs:?}");
        let e = crate::reference::ImageRef::parse("[::1]:5000/repo:tag").unwrap_err();
        assert!(e.contains("IPv6"), "{e}");
    }
}
