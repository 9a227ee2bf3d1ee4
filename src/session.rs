//! One place opens a run: the settings (resolved once), the docker CLI with
//! secret redaction and cancellation, the private DOCKER_CONFIG with exactly the
//! registries of [`Settings::logins`], and where events go. `sync`, `plan`,
//! `copy`, `doctor` and `clean-disk` all use it; the private config is removed
//! when the session is dropped (or by the signal handler on a forced exit).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;

use crate::config::{Login, Settings};
use crate::credentials::{self, PrivateConfig};
use crate::docker::{self, Docker, Redactor};
use crate::ctx::Ctx;
use crate::failure::{Event, Failure};

pub struct Session<'a> {
    pub settings: Settings,
    pub cancel: Arc<AtomicBool>,
    events: &'a (dyn Fn(Event) + Sync),
    docker: docker::Cli,
    private: PrivateConfig,
    /// The HTTP read path, built on first use: a run that never reads a
    /// registry directly builds none.
    registry: std::sync::OnceLock<Result<crate::registry::Client, String>>,
}

impl<'a> Session<'a> {
    /// Finds docker on PATH and opens the session.
    pub fn open(settings: Settings, cancel: Arc<AtomicBool>, events: &'a (dyn Fn(Event) + Sync)) -> Result<Self> {
        Self::with_program(docker::Cli::locate()?, settings, cancel, events)
    }

    /// Opens the session with a docker program already found (doctor reports finding it).
    pub fn with_program(program: PathBuf, settings: Settings, cancel: Arc<AtomicBool>, events: &'a (dyn Fn(Event) + Sync)) -> Result<Self> {
        let user_dir = credentials::user_config_dir(&|k| std::env::var(k).ok());
        let private = PrivateConfig::create(user_dir.as_deref(), &settings.login_registries())?;
        let docker = docker::Cli::new(program, Redactor::new(&settings.secrets()), Arc::clone(&cancel))
            .with_env("DOCKER_CONFIG", private.path());
        Ok(Session { settings, cancel, events, docker, private, registry: std::sync::OnceLock::new() })
    }

    pub fn docker(&self) -> &dyn Docker {
        &self.docker
    }

    pub fn events(&self) -> &'a (dyn Fn(Event) + Sync) {
        self.events
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// The run's registry client (reads only), with docker's credentials: the
    /// private config's `auths`, credential helpers (spawned through the process
    /// module, only for registries asked about) and this run's own logins, which
    /// win. `Err`: the private config could not be read (a message for users).
    pub fn registry(&self) -> Result<&crate::registry::Client, String> {
        use crate::registry::{Client, ClientConfig, Credential, Credentials};
        self.registry
            .get_or_init(|| {
                let helpers = Box::new(docker::CredentialHelpers::new(Arc::clone(&self.cancel)));
                let mut config = crate::registry::DockerConfig::load(self.private.path())?;
                // The keychain the private copy dropped (the run logs in) still
                // holds the user's credentials for what the run only reads.
                if config.creds_store.is_none() {
                    config.creds_store = self.private.dropped_store().map(str::to_string);
                }
                let mut creds = Credentials::new(config, helpers);
                for l in self.settings.logins() {
                    creds = creds.with(l.registry, Credential::Basic { username: l.username.to_string(), password: l.secret.expose().to_string() });
                }
                let mut config = ClientConfig {
                    insecure_registries: self.settings.insecure_registries.clone(),
                    first_answer: std::time::Duration::from_secs(self.settings.read_timeout_secs),
                    // Given up once it timed out as often as one request may be tried.
                    unreachable_after: self.settings.retries + 1,
                    cancel: Some(Arc::clone(&self.cancel)),
                    ..ClientConfig::default()
                };
                if let Some(dir) = &self.settings.registry_certs_dir {
                    config.certs_dir = dir.clone();
                }
                Ok(Client::new(config, creds))
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The credentials of `registries` (what the run reads: sources, targets
    /// without a login) from the keychain the private copy dropped, written
    /// into the private config's `auths` so the run's docker calls find them.
    /// Only when a store was dropped; helpers run once per registry (shared
    /// with the HTTP read path's lookups). Failures are warnings' business:
    /// returned as text.
    pub fn share_read_credentials(&self, registries: &[&str]) -> Result<(), String> {
        if self.private.dropped_store().is_none() {
            return Ok(());
        }
        let logins: Vec<String> = self.settings.login_registries().iter().map(|r| credentials::registry_key(r)).collect();
        let client = self.registry()?;
        let mut seen = std::collections::BTreeSet::new();
        let mut entries = Vec::new();
        for r in registries {
            let key = credentials::registry_key(r);
            if logins.contains(&key) || !seen.insert(key) {
                continue;
            }
            if let Ok(Some(c)) = client.credential_for(r) {
                entries.push((r.to_string(), c.to_auth_entry()));
            }
        }
        self.private.add_read_credentials(&entries).map_err(|e| format!("{e:#}"))
    }

    /// A context for run-level steps, with the session's limits.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx::new(&self.docker, &self.settings.limits(), &self.cancel, self.events).insecure(&self.settings.insecure_registries)
    }

    /// Logs in as [`Settings::logins`] says, each once; every outcome, in that order.
    pub fn login_each(&self, ctx: &Ctx) -> Vec<(Login<'_>, Result<(), Failure>)> {
        self.settings
            .logins()
            .into_iter()
            .map(|l| {
                let r = credentials::login(ctx, l.registry, l.username, l.secret);
                (l, r)
            })
            .collect()
    }

    /// Logs in; a failed login fails that registry's targets, not the run.
    pub fn login(&self, ctx: &Ctx) -> HashMap<String, Failure> {
        self.login_each(ctx).into_iter().filter_map(|(l, r)| Some((l.registry.to_string(), r.err()?))).collect()
    }
}
