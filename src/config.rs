//! Settings: command-line flag > environment > config.env > default.

use std::collections::HashMap;
use std::fmt;

use crate::images::LineError;

/// A credential. Its Debug and Display never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    Aliyun,
    Ghcr,
    Dockerhub,
    Custom,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Aliyun => "aliyun",
            TargetKind::Ghcr => "ghcr",
            TargetKind::Dockerhub => "dockerhub",
            TargetKind::Custom => "custom",
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
}

impl Target {
    pub fn reference(&self, name: &str, tag: &str) -> String {
        format!("{}/{}/{}:{}", self.registry, self.namespace, name, tag)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum EngineChoice {
    Auto,
    Imagetools,
    Daemon,
}

/// What the command line says; `None` defers to environment and config.env.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub mode: Option<String>,
    pub engine: Option<EngineChoice>,
    pub jobs: Option<usize>,
    pub retries: Option<u32>,
    pub timeout_secs: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub mode: String,
    pub targets: Vec<Target>,
    pub clean_disk: bool,
    pub engine: EngineChoice,
    /// Parallel inspections and (for imagetools) transfers; None = engine default.
    pub jobs: Option<usize>,
    pub retries: u32,
    pub timeout_secs: Option<u64>,
    /// Docker Hub login for pulling (higher rate limits), when both are set.
    pub dockerhub_pull: Option<(String, Secret)>,
    pub warnings: Vec<String>,
    /// config.env as read, for settings looked up later (webhook, badge).
    pub file: EnvFile,
}

impl Settings {
    /// Every secret value, for redaction and masking.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut v: Vec<Secret> = self.targets.iter().filter_map(|t| t.password.clone()).collect();
        v.extend(self.dockerhub_pull.iter().map(|(_, s)| s.clone()));
        v
    }
}

/// A parsed config.env: key -> (value, line).
#[derive(Clone, Debug, Default)]
pub struct EnvFile {
    pub file: String,
    pub values: HashMap<String, (String, usize)>,
}

pub fn parse_env_file(file: &str, text: &str) -> Result<EnvFile, Vec<LineError>> {
    let mut values = HashMap::new();
    let mut errors = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let t = raw.strip_suffix('\r').unwrap_or(raw).trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").map(str::trim_start).unwrap_or(t);
        let Some((k, v)) = t.split_once('=') else {
            errors.push(LineError { file: file.into(), line, message: format!("expected KEY=VALUE, found {t:?}") });
            continue;
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            errors.push(LineError { file: file.into(), line, message: format!("invalid key {k:?}") });
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

/// Variables that hold credentials: never read from config.env, never passed to children.
pub fn is_secret_key(k: &str) -> bool {
    // A webhook URL carries its token in the path.
    k.ends_with("_PASSWORD") || k.ends_with("_TOKEN") || k == "WEBHOOK_URL"
}

/// A setting's value: the environment, else config.env (never for secrets).
/// Empty counts as unset, so an empty variable (an unset GitHub secret) does
/// not hide the file's value.
pub fn lookup(file: &EnvFile, env: &dyn Fn(&str) -> Option<String>, key: &str) -> Option<String> {
    let nonempty = |v: String| Some(v.trim().to_string()).filter(|v| !v.is_empty());
    env(key).and_then(nonempty).or_else(|| {
        if is_secret_key(key) {
            None
        } else {
            file.values.get(key).and_then(|(v, _)| nonempty(v.clone()))
        }
    })
}

/// Resolves settings. `env` is the process environment (injected for tests).
pub fn resolve(
    file: &EnvFile,
    env: &dyn Fn(&str) -> Option<String>,
    over: &Overrides,
) -> Result<Settings, Vec<String>> {
    let mut warnings = Vec::new();
    let mut errors = Vec::new();
    let mut keys: Vec<_> = file.values.iter().filter(|(k, _)| is_secret_key(k)).collect();
    keys.sort_by_key(|(_, (_, line))| *line);
    for (k, (_, line)) in keys {
        warnings.push(format!(
            "{}:{line}: {k} is a secret and config.env is meant to be committed; the value there is ignored. Set {k} in the environment (a repository secret) instead.",
            file.file
        ));
    }
    let get = |k: &str| lookup(file, env, k);
    let mode = over.mode.clone().or_else(|| get("SYNC_MODE")).unwrap_or_else(|| "none".into()).to_ascii_lowercase();
    let kinds = match parse_mode(&mode) {
        Ok(k) => k,
        Err(e) => {
            errors.push(e);
            Vec::new()
        }
    };
    let mut targets = Vec::new();
    for kind in kinds {
        match target(kind, &get) {
            Ok(t) => targets.push(t),
            Err(e) => errors.extend(e),
        }
    }
    let clean_disk = match get("CLEAN_DISK_SPACE").as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => false,
        Some("true" | "1" | "yes") => true,
        Some(v) => {
            errors.push(format!("CLEAN_DISK_SPACE={v:?}: expected true or false"));
            false
        }
    };
    let engine = match over.engine {
        Some(e) => e,
        None => match get("ENGINE").as_deref() {
            None | Some("auto") => EngineChoice::Auto,
            Some("imagetools") => EngineChoice::Imagetools,
            Some("daemon") => EngineChoice::Daemon,
            Some(v) => {
                errors.push(format!("ENGINE={v:?}: expected auto, imagetools or daemon"));
                EngineChoice::Auto
            }
        },
    };
    let mut number = |key: &str, flag: Option<u64>, min: u64| -> Option<u64> {
        flag.or_else(|| {
            let v = get(key)?;
            match v.parse::<u64>() {
                Ok(n) if n >= min => Some(n),
                _ => {
                    errors.push(format!("{key}={v:?}: expected a whole number of at least {min}"));
                    None
                }
            }
        })
    };
    let jobs = number("JOBS", over.jobs.map(|j| j as u64), 1).map(|j| j as usize);
    let retries = number("RETRIES", over.retries.map(u64::from), 0).unwrap_or(3) as u32;
    let timeout_secs = number("TIMEOUT", over.timeout_secs, 1);
    let dockerhub_pull = match (get("DOCKERHUB_USERNAME"), env("DOCKERHUB_TOKEN").filter(|t| !t.is_empty())) {
        (Some(u), Some(t)) => Some((u, Secret::new(t))),
        _ => None,
    };
    if errors.is_empty() {
        Ok(Settings { mode, targets, clean_disk, engine, jobs, retries, timeout_secs, dockerhub_pull, warnings, file: file.clone() })
    } else {
        Err(errors)
    }
}

pub fn parse_mode(mode: &str) -> Result<Vec<TargetKind>, String> {
    let mut kinds = Vec::new();
    for part in mode.split(',').map(str::trim) {
        let add: &[TargetKind] = match part {
            "none" if mode.trim() == "none" => &[],
            "aliyun" => &[TargetKind::Aliyun],
            "ghcr" => &[TargetKind::Ghcr],
            "double" => &[TargetKind::Aliyun, TargetKind::Ghcr],
            "dockerhub" => &[TargetKind::Dockerhub],
            "custom" => &[TargetKind::Custom],
            _ => {
                return Err(format!(
                    "SYNC_MODE={mode:?}: expected aliyun, ghcr, double, dockerhub, custom, none, or a comma list such as aliyun,ghcr"
                ))
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

fn target(kind: TargetKind, get: &dyn Fn(&str) -> Option<String>) -> Result<Target, Vec<String>> {
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
    };
    let username = user_keys.iter().find_map(|k| get(k));
    let password = secret_keys.iter().find_map(|k| get(k)).map(Secret::new);
    // Credentials come in pairs; a user without a secret is a mistake worth naming.
    match (&username, &password) {
        (Some(_), None) => missing.push(format!("{} (the secret for {})", secret_keys.join(" or "), user_keys[0])),
        (None, Some(_)) => missing.push(format!("{} (the user for {})", user_keys.join(" or "), secret_keys[0])),
        _ => {}
    }
    let registry = registry.trim_end_matches('/').to_string();
    let mut errors: Vec<String> = missing
        .into_iter()
        .map(|m| format!("SYNC_MODE includes {}: set {m}", kind.as_str()))
        .collect();
    if !namespace.is_empty() && crate::naming::check_name(&namespace).is_err() {
        errors.push(format!(
            "{} namespace {namespace:?} is not a valid repository path component (lowercase a-z, 0-9, '.', '_', '-')",
            kind.as_str()
        ));
    }
    if errors.is_empty() {
        Ok(Target { kind, registry, namespace, username, password })
    } else {
        Err(errors)
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
    }

    #[test]
    fn bad_values_are_named() {
        let errs = resolve(&file("CLEAN_DISK_SPACE=maybe\nJOBS=0\nENGINE=fast"), &env_of(&[]), &Overrides::default()).unwrap_err();
        assert_eq!(errs.len(), 3, "{errs:?}");
    }
}
