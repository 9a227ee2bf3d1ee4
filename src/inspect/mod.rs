//! The read path: what registries hold, asked with as few requests as
//! possible (the top level first, child manifests only when a decision needs
//! them). sync, pull, doctor and tag listing all read through one
//! [`Inspector`], built by [`choose`] alone:
//!
//! - `docker.rs`: the docker CLI readers (`buildx imagetools inspect --raw`,
//!   `docker manifest inspect --verbose`);
//! - `http.rs`: the registry client's reader (no process), which knows nothing
//!   of docker;
//! - `fallback.rs`: the run's reader, which routes each registry to HTTP or to
//!   docker (`--inspect`), moving a registry HTTP cannot serve to docker;
//! - `parse.rs`: manifests and indexes, parsed (pure).
//!
//! Every request runs through the step context (`Ctx::retry`): one retry
//! policy (family-aware, jitter, longer after a 429, a registry's
//! `Retry-After` honoured up to the longest wait) and one mapping of registry
//! errors to families and hints ([`http::step_error`]).

pub mod docker;
pub mod fallback;
pub mod http;
pub mod parse;

use std::collections::BTreeMap;

use crate::config::InspectChoice;
use crate::ctx::Ctx;
use crate::reference::ImageRef;
use crate::registry::{Client, Manifest, RateLimit};
use crate::step_error::StepError;
use fallback::{ReadPath, Route};
use parse::Inspection;

/// Reads manifests and tag lists from registries. Implementations make their
/// requests through `ctx` (retries, timeouts, cancellation and events come with it).
pub trait Inspector: Sync {
    /// What `reference` holds: `Ok(None)` when the registry has no such reference.
    /// `want_platform`: a single manifest's platform is needed (it lives in its config).
    fn inspect(&self, ctx: &Ctx, reference: &ImageRef, want_platform: bool) -> Result<Option<Inspection>, StepError>;

    /// Fills in config digests (and layer sizes) for the child manifests of
    /// `repository`'s index listed in `digests` (its tag is not read).
    fn fill_configs(&self, ctx: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError>;

    /// The top-level digest of `reference`, `Ok(None)` when absent. An HTTP
    /// reader answers with one HEAD request; the docker CLI has only `inspect`.
    fn head_digest(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<String>, StepError> {
        Ok(self.inspect(ctx, reference, false)?.and_then(|i| i.digest))
    }

    /// [`Inspector::head_digest`] of several references on one registry, at
    /// once where the reader can (the HTTP reader on the run's idle readers,
    /// never a thread of its own per reference); the first failure fails all.
    fn head_digests(&self, ctx: &Ctx, references: &[ImageRef]) -> Result<Vec<Option<String>>, StepError> {
        references.iter().map(|r| self.head_digest(ctx, r)).collect()
    }

    /// `head_digest` of `reference` is cheap (one HEAD, no process, no pull):
    /// the run then asks digests first and reads content only when they differ.
    fn head_first(&self, _reference: &ImageRef) -> bool {
        false
    }

    /// The references the run is about to ask about: an HTTP reader may
    /// fetch their pull tokens in a few batched requests.
    fn expect(&self, _references: &[&ImageRef]) {}

    /// Every tag of `repository` (its tag is not read), as the registry lists them.
    fn list_tags(&self, _ctx: &Ctx, repository: &ImageRef) -> Result<Vec<String>, StepError> {
        Err(StepError::setup(format!("list the tags of {}", repository.name()), "the docker CLI cannot list tags"))
    }

    /// Reachable and trusted: what `doctor` checks per registry, with `reference` as a sample.
    fn probe(&self, ctx: &Ctx, reference: &ImageRef) -> Result<(), StepError> {
        self.head_digest(ctx, reference).map(|_| ())
    }

    /// The manifest `reference` holds, as the registry sent it (signatures
    /// compare and join referrers indexes). Only the HTTP reader has it.
    fn raw_manifest(&self, _ctx: &Ctx, reference: &ImageRef) -> Result<Option<Manifest>, StepError> {
        Err(StepError::setup(format!("read {reference}"), "only the HTTP read path reads manifests as they are"))
    }

    /// The referrers API's index of manifests whose subject is `digest` in
    /// `repository`'s repository, as sent; `Ok(None)` when the registry has no
    /// referrers API (or the reader cannot ask).
    fn referrers(&self, _ctx: &Ctx, _repository: &ImageRef, _digest: &str) -> Result<Option<Vec<u8>>, StepError> {
        Ok(None)
    }

    /// Pull quotas the registries announced so far, by registry.
    fn rate_limits(&self) -> BTreeMap<String, RateLimit> {
        BTreeMap::new()
    }
}

/// The run's reader, and what to tell the user about the choice.
pub struct Chosen<'a> {
    pub inspector: ReadPath<'a>,
    /// Said once before the run (e.g. the HTTP read path is unavailable).
    pub note: Option<String>,
}

/// Whether the run reads registries over HTTP: `--inspect auto|registry`
/// with a registry client. `Err`: `--inspect registry` without one (bad input).
pub fn reads_http(choice: InspectChoice, client: &Result<&Client, String>) -> Result<bool, String> {
    match (choice, client) {
        (InspectChoice::Docker, _) => Ok(false),
        (_, Ok(_)) => Ok(true),
        (InspectChoice::Registry, Err(e)) => Err(format!("--inspect registry: {e}")),
        (InspectChoice::Auto, Err(_)) => Ok(false),
    }
}

/// The one place the run's reader is chosen. `--inspect docker`: the docker
/// CLI reader `docker` (the engine's, `EngineKind::reader`).
/// `registry`: HTTP alone. `auto`: HTTP, falling back per registry to
/// `docker`, with `before_docker` (the run's logins) run before its first
/// docker call. Tag lists always come over HTTP. `jobs`: the run's reads at
/// once (an index's children share them). `Err`: `--inspect registry`
/// without a registry client.
pub fn choose<'a>(
    choice: InspectChoice,
    client: Result<&'a Client, String>,
    docker: docker::Reader,
    jobs: usize,
    before_docker: &'a (dyn Fn() + Sync),
) -> Result<Chosen<'a>, String> {
    let docker = docker.boxed();
    reads_http(choice, &client)?;
    let reader = |c: &'a Client| http::HttpInspector::new(c, jobs);
    let (route, note) = match (choice, client) {
        (InspectChoice::Registry, Ok(c)) => (Route::Http(reader(c)), None),
        (InspectChoice::Auto, Ok(c)) => (Route::HttpThenDocker(reader(c)), None),
        (InspectChoice::Auto, Err(e)) => (
            Route::Docker { tags: Err(e.clone()) },
            Some(format!("the HTTP read path is unavailable ({e}); reading registries with docker")),
        ),
        (_, client) => (Route::Docker { tags: client.map(reader) }, None),
    };
    Ok(Chosen { inspector: ReadPath::new(route, docker, before_docker), note })
}
