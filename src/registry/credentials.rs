//! Credentials for reading registries, found where docker finds them, in
//! docker's order (docker/cli `configfile.GetAuthConfig`):
//!
//! 1. `credHelpers[<host>]`, else `credsStore`: the helper's answer is the
//!    answer ("credentials not found" = anonymous; the file's `auths` entry is
//!    then only a placeholder);
//! 2. else `auths[<server>]`: `auth` (base64 `user:password`), `username` /
//!    `password`, `identitytoken`; keys match with or without scheme and path.
//!
//! Docker Hub's server key is `https://index.docker.io/v1/`; its aliases
//! `index.docker.io`, `docker.io` and `registry-1.docker.io` are accepted too.
//!
//! Helpers (`docker-credential-<name> get`) are processes: this module never
//! spawns them but asks a [`CredentialHelper`], which the process module
//! implements.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use base64::Engine as _;
use serde::Deserialize;

use super::repository::is_docker_hub;
use crate::reference::config_key_host as hostname;

/// How to authenticate to a registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or a personal access token).
    Basic { username: String, password: String },
    /// An OAuth refresh token (`identitytoken`, or a helper's `<token>` user):
    /// exchanged at the token realm with `grant_type=refresh_token`.
    IdentityToken { username: Option<String>, token: String },
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <secret>)"),
            Credential::IdentityToken { username, .. } => write!(f, "IdentityToken({username:?}, <secret>)"),
        }
    }
}

impl Credential {
    /// The entry docker writes in `config.json`'s `auths` for it: `auth`
    /// (base64 `user:password`), or `identitytoken` (with the user, if any).
    /// For copying a helper's answer into a private config (a file docker
    /// then reads without asking the helper again).
    pub fn to_auth_entry(&self) -> serde_json::Value {
        let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
        match self {
            Credential::Basic { username, password } => serde_json::json!({"auth": b64(format!("{username}:{password}"))}),
            Credential::IdentityToken { username, token } => match username {
                Some(u) => serde_json::json!({"auth": b64(format!("{u}:")), "identitytoken": token}),
                None => serde_json::json!({"identitytoken": token}),
            },
        }
    }
}

/// Runs `docker-credential-<helper> get` with `server` on stdin.
///
/// `Ok(None)`: the helper said "credentials not found" (anonymous).
/// `Ok(Some((user, secret)))`: its `Username` and `Secret`; a user of
/// `<token>` marks the secret as an identity token (docker's convention; this
/// module handles it). `Err(text)`: the helper failed otherwise (missing,
/// crashed, keychain locked); `text` must hold no secret.
pub trait CredentialHelper: Send + Sync {
    fn get(&self, helper: &str, server: &str) -> HelperAnswer;
}

/// A helper's answer: `Ok(None)` = "credentials not found", `Ok(Some((user, secret)))`, `Err(text)`.
pub type HelperAnswer = Result<Option<(String, String)>, String>;

/// For registries without helpers: every helper lookup is "not found".
#[derive(Debug, Default)]
pub struct NoHelpers;

impl CredentialHelper for NoHelpers {
    fn get(&self, _helper: &str, _server: &str) -> HelperAnswer {
        Ok(None)
    }
}

/// The parts of a docker `config.json` that hold credentials.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct DockerConfig {
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    pub cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    pub creds_store: Option<String>,
}

#[derive(Clone, Default, Deserialize)]
pub struct AuthEntry {
    #[serde(default)]
    pub auth: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthEntry").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Docker Hub's key in `auths` and for helpers.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";


/// Does the config key `key` name `registry`?
fn key_matches(key: &str, registry: &str) -> bool {
    let h = hostname(key);
    if is_docker_hub(registry) {
        is_docker_hub(h)
    } else {
        h.eq_ignore_ascii_case(registry)
    }
}

impl DockerConfig {
    /// Reads `<dir>/config.json`; a missing file is an empty config.
    pub fn load(dir: &Path) -> Result<DockerConfig, String> {
        let path = dir.join("config.json");
        match std::fs::read(&path) {
            Ok(bytes) => DockerConfig::parse(&bytes).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<DockerConfig, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("not a docker config: {e}"))
    }

    /// The server string docker stores and hands to helpers for `registry`.
    pub fn server_key(registry: &str) -> String {
        if is_docker_hub(registry) {
            DOCKER_HUB_SERVER.to_string()
        } else {
            registry.to_string()
        }
    }

    /// The helper docker would ask for `registry`: `credHelpers` for its host, else `credsStore`.
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        let exact = self.cred_helpers.get(hostname(&Self::server_key(registry)));
        exact
            .or_else(|| self.cred_helpers.iter().find(|(k, _)| key_matches(k, registry)).map(|(_, v)| v))
            .or(self.creds_store.as_ref())
            .map(String::as_str)
            .filter(|h| !h.is_empty())
    }

    /// The `auths` entry for `registry`, exact key first.
    pub fn auth_entry(&self, registry: &str) -> Option<&AuthEntry> {
        let key = Self::server_key(registry);
        self.auths.get(&key).or_else(|| self.auths.iter().find(|(k, _)| key_matches(k, registry)).map(|(_, v)| v))
    }

    /// Docker's lookup for `registry` (as in an image reference: `docker.io`,
    /// `ghcr.io`, `host:5000`). `Ok(None)` is anonymous.
    pub fn lookup(&self, registry: &str, helpers: &dyn CredentialHelper) -> Result<Option<Credential>, String> {
        if let Some(helper) = self.helper_for(registry) {
            let server = Self::server_key(registry);
            return Ok(helpers.get(helper, &server)?.and_then(|(user, secret)| from_pair(user, secret)));
        }
        let Some(entry) = self.auth_entry(registry) else { return Ok(None) };
        let (mut username, mut password) = (entry.username.clone(), entry.password.clone());
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| format!("the `auth` of {registry} is not base64 of user:password"))?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| format!("the `auth` of {registry} has no ':'"))?;
            username = Some(u.to_string());
            password = Some(p.to_string());
        }
        if let Some(token) = entry.identity_token.clone().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken { username: username.filter(|u| !u.is_empty()), token }));
        }
        match (username, password) {
            (Some(u), Some(p)) if !u.is_empty() || !p.is_empty() => Ok(Some(Credential::Basic { username: u, password: p })),
            _ => Ok(None),
        }
    }
}

/// A helper's answer; `<token>` as user means an identity token.
fn from_pair(user: String, secret: String) -> Option<Credential> {
    if secret.is_empty() {
        return None;
    }
    if user == "<token>" {
        return Some(Credential::IdentityToken { username: None, token: secret });
    }
    Some(Credential::Basic { username: user, password: secret })
}

/// Where the client gets credentials: explicit ones first (this run's logins),
/// then the docker config through its helpers; each registry is looked up
/// once (a helper is a process) and remembered.
pub struct Credentials {
    explicit: HashMap<String, Credential>,
    config: DockerConfig,
    helpers: Box<dyn CredentialHelper>,
    /// One slot per registry: a slow helper for one registry does not hold
    /// up lookups for others, and runs once however many threads ask.
    cache: Mutex<HashMap<String, Arc<OnceLock<Lookup>>>>,
}

/// A registry's credential lookup: `Ok(None)` anonymous, `Err` the helper failed.
type Lookup = Result<Option<Credential>, String>;

impl Default for Credentials {
    fn default() -> Self {
        Credentials::anonymous()
    }
}

impl Credentials {
    /// No credentials at all.
    pub fn anonymous() -> Credentials {
        Credentials::new(DockerConfig::default(), Box::new(NoHelpers))
    }

    /// Docker's lookup on `<dir>/config.json` (the run's private config),
    /// helpers through `helpers`. A missing file is anonymous for all.
    pub fn from_docker_config_dir(dir: &Path, helpers: Box<dyn CredentialHelper>) -> Result<Credentials, String> {
        Ok(Credentials::new(DockerConfig::load(dir)?, helpers))
    }

    pub fn new(config: DockerConfig, helpers: Box<dyn CredentialHelper>) -> Credentials {
        Credentials { explicit: HashMap::new(), config, helpers, cache: Mutex::new(HashMap::new()) }
    }

    /// Credentials for `registry` that win over the docker config (the run's
    /// own target logins).
    pub fn with(mut self, registry: &str, credential: Credential) -> Credentials {
        self.explicit.insert(normal(registry), credential);
        self
    }

    /// `Ok(None)`: anonymous.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>, String> {
        let key = normal(registry);
        if let Some(c) = self.explicit.get(&key) {
            return Ok(Some(c.clone()));
        }
        let slot = self.cache.lock().unwrap_or_else(|e| e.into_inner()).entry(key.clone()).or_default().clone();
        slot.get_or_init(|| self.config.lookup(&key, self.helpers.as_ref())).clone()
    }
}

fn normal(registry: &str) -> String {
    if is_docker_hub(registry) {
        "docker.io".to_string()
    } else {
        registry.to_ascii_lowercase()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake helper: answers from a table, counts calls, records what it was asked.
    #[derive(Default)]
    pub struct FakeHelper {
        pub answers: BTreeMap<(String, String), HelperAnswer>,
        pub calls: AtomicUsize,
        pub asked: Mutex<Vec<(String, String)>>,
    }

    impl FakeHelper {
        pub fn answer(mut self, helper: &str, server: &str, user: &str, secret: &str) -> Self {
            self.answers.insert((helper.into(), server.into()), Ok(Some((user.into(), secret.into()))));
            self
        }
    }

    impl CredentialHelper for FakeHelper {
        fn get(&self, helper: &str, server: &str) -> Result<Option<(String, String)>, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.asked.lock().unwrap().push((helper.into(), server.into()));
            self.answers.get(&(helper.to_string(), server.to_string())).cloned().unwrap_or(Ok(None))
        }
    }

    fn basic(u: &str, p: &str) -> Option<Credential> {
        Some(Credential::Basic { username: u.into(), password: p.into() })
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn auths_in_all_forms() {
        let cfg = DockerConfig::parse(
            format!(
                r#"{{"auths": {{
                    "https://index.docker.io/v1/": {{"auth": "{}"}},
                    "ghcr.io": {{"username": "gh", "password": "pat"}},
                    "https://quay.io/v2/": {{"auth": "{}"}},
                    "acr.example.io": {{"auth": "", "identitytoken": "refresh-me"}},
                    "placeholder.io": {{}}
                }}}}"#,
                b64("hubuser:hubpass"),
                b64("q:with:colon")
            )
            .as_bytes(),
        )
        .unwrap();
        let none = NoHelpers;
        for hub in ["docker.io", "index.docker.io", "registry-1.docker.io"] {
            assert_eq!(cfg.lookup(hub, &none).unwrap(), basic("hubuser", "hubpass"), "{hub}");
        }
        assert_eq!(cfg.lookup("ghcr.io", &none).unwrap(), basic("gh", "pat"));
        assert_eq!(cfg.lookup("quay.io", &none).unwrap(), basic("q", "with:colon"));
        assert_eq!(
            cfg.lookup("acr.example.io", &none).unwrap(),
            Some(Credential::IdentityToken { username: None, token: "refresh-me".into() })
        );
        assert_eq!(cfg.lookup("placeholder.io", &none).unwrap(), None);
        assert_eq!(cfg.lookup("elsewhere.io", &none).unwrap(), None);
        let bad = DockerConfig::parse(br#"{"auths": {"x.io": {"auth": "%%%"}}}"#).unwrap();
        assert!(bad.lookup("x.io", &none).is_err());
    }

    #[test]
    fn docker_order_helpers_before_auths() {
        let cfg = DockerConfig::parse(
            format!(
                r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}, "https://index.docker.io/v1/": {{}}, "plain.io": {{"auth": "{}"}}}},
                    "credHelpers": {{"ghcr.io": "gh", "index.docker.io": "hubhelper"}},
                    "credsStore": "desktop"}}"#,
                b64("file:ignored"),
                b64("file:also-ignored")
            )
            .as_bytes(),
        )
        .unwrap();
        let fake = FakeHelper::default()
            .answer("gh", "ghcr.io", "octo", "ghp_x")
            .answer("hubhelper", DOCKER_HUB_SERVER, "<token>", "idtok")
            .answer("desktop", "other.io", "d", "s");
        // credHelpers for the host wins over auths and credsStore.
        assert_eq!(cfg.lookup("ghcr.io", &fake).unwrap(), basic("octo", "ghp_x"));
        // Docker Hub is asked as https://index.docker.io/v1/; <token> is an identity token.
        assert_eq!(
            cfg.lookup("docker.io", &fake).unwrap(),
            Some(Credential::IdentityToken { username: None, token: "idtok".into() })
        );
        // credsStore for the rest; its "not found" is anonymous, the file is not read.
        assert_eq!(cfg.lookup("other.io", &fake).unwrap(), basic("d", "s"));
        assert_eq!(cfg.lookup("plain.io", &fake).unwrap(), None);
        let asked = fake.asked.lock().unwrap().clone();
        assert_eq!(asked.last().unwrap(), &("desktop".to_string(), "plain.io".to_string()));
    }

    #[test]
    fn helper_failure_is_an_error_not_anonymous() {
        let cfg = DockerConfig::parse(br#"{"credsStore": "pass"}"#).unwrap();
        let mut fake = FakeHelper::default();
        fake.answers.insert(("pass".into(), "r.io".into()), Err("docker-credential-pass: exit status 1".into()));
        assert_eq!(cfg.lookup("r.io", &fake).unwrap_err(), "docker-credential-pass: exit status 1");
    }

    #[test]
    fn explicit_first_and_helpers_asked_once() {
        let cfg = DockerConfig::parse(br#"{"credsStore": "desktop"}"#).unwrap();
        let fake = std::sync::Arc::new(FakeHelper::default().answer("desktop", "src.io", "u", "p"));
        struct Shared(std::sync::Arc<FakeHelper>);
        impl CredentialHelper for Shared {
            fn get(&self, h: &str, s: &str) -> Result<Option<(String, String)>, String> {
                self.0.get(h, s)
            }
        }
        let creds = Credentials::new(cfg, Box::new(Shared(fake.clone())))
            .with("target.io", Credential::Basic { username: "run".into(), password: "login".into() });
        assert_eq!(creds.get("target.io").unwrap(), basic("run", "login"));
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| assert_eq!(creds.get("src.io").unwrap(), basic("u", "p")));
            }
        });
        assert_eq!(creds.get("nothing.io").unwrap(), None);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2, "src.io once, nothing.io once, target.io never");
    }

    #[test]
    fn auth_entries_round_trip_through_docker_config() {
        for c in [
            Credential::Basic { username: "u".into(), password: "p:w".into() },
            Credential::IdentityToken { username: None, token: "rt".into() },
            Credential::IdentityToken { username: Some("u".into()), token: "rt".into() },
        ] {
            let key = DockerConfig::server_key("docker.io");
            let cfg: DockerConfig = serde_json::from_value(serde_json::json!({"auths": {key: c.to_auth_entry()}})).unwrap();
            assert_eq!(cfg.lookup("docker.io", &NoHelpers).unwrap(), Some(c.clone()), "{c:?}");
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let c = Credential::Basic { username: "u".into(), password: "hunter2".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
        let e: AuthEntry = serde_json::from_str(r#"{"auth":"c2VjcmV0","password":"hunter2"}"#).unwrap();
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}
