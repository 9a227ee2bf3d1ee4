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
use crate::engine::Ctx;
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

    /// The private DOCKER_CONFIG every docker call of this session uses.
    pub fn private_config(&self) -> &std::path::Path {
        self.private.path()
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
                let mut creds = Credentials::from_docker_config_dir(self.private.path(), helpers)?;
                for l in self.settings.logins() {
                    creds = creds.with(l.registry, Credential::Basic { username: l.username.to_string(), password: l.secret.expose().to_string() });
                }
                let config = ClientConfig { insecure_registries: self.settings.insecure_registries.clone(), ..ClientConfig::default() };
                Ok(Client::new(config, creds))
            })
            .as_ref()
            .map_err(Clone::clone)
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
