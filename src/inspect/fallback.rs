//! The run's reader: each registry is read over HTTP or with docker, as
//! `--inspect` says. Under `auto` a registry the HTTP reader cannot serve
//! ([`ReadError::Unservable`]) moves to the docker reader for the rest of the
//! run, once, with a note; under `registry` that is the entry's error. Tag
//! lists always come over HTTP (the docker CLI has no way to list them).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::ctx::Ctx;
use crate::inspect::http::{HttpInspector, ReadError};
use crate::inspect::parse::Inspection;
use crate::inspect::Inspector;
use crate::reference::ImageRef;
use crate::registry::RateLimit;
use crate::step_error::StepError;

/// Which reader serves manifests.
pub enum Route<'a> {
    /// `--inspect docker` (or `auto` without a registry client): the docker
    /// reader; `tags` is the HTTP reader for tag lists, or why there is none.
    Docker { tags: Result<HttpInspector<'a>, String> },
    /// `--inspect registry`.
    Http(HttpInspector<'a>),
    /// `--inspect auto`: HTTP, docker for registries HTTP cannot serve.
    HttpThenDocker(HttpInspector<'a>),
}

pub struct ReadPath<'a> {
    route: Route<'a>,
    docker: Box<dyn Inspector + 'a>,
    /// Runs before every docker read (the run's logins, made once).
    before_docker: &'a (dyn Fn() + Sync),
    /// Registries moved to docker during this run.
    fallen: Mutex<BTreeSet<String>>,
}

/// What one read should go to.
enum Via<'r, 'a> {
    Http(&'r HttpInspector<'a>, bool),
    Docker,
}

impl<'a> ReadPath<'a> {
    pub fn new(route: Route<'a>, docker: Box<dyn Inspector + 'a>, before_docker: &'a (dyn Fn() + Sync)) -> Self {
        ReadPath { route, docker, before_docker, fallen: Mutex::new(BTreeSet::new()) }
    }

    fn fallen(&self, registry: &str) -> bool {
        self.fallen.lock().unwrap_or_else(|e| e.into_inner()).contains(registry)
    }

    /// Where a read of `registry` goes; `Http(_, true)` may fall back.
    fn via(&self, registry: &str) -> Via<'_, 'a> {
        match &self.route {
            Route::Http(h) => Via::Http(h, false),
            Route::HttpThenDocker(h) if !self.fallen(registry) => Via::Http(h, true),
            Route::HttpThenDocker(_) | Route::Docker { .. } => Via::Docker,
        }
    }

    fn docker(&self) -> &dyn Inspector {
        (self.before_docker)();
        self.docker.as_ref()
    }

    /// Reads `registry` over HTTP (`read`), or with docker (`with_docker`)
    /// when the route says so or HTTP cannot serve it.
    fn route<T>(
        &self,
        ctx: &Ctx,
        registry: &str,
        read: impl FnOnce(&HttpInspector<'a>) -> Result<T, ReadError>,
        with_docker: impl FnOnce(&dyn Inspector) -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        match self.via(registry) {
            Via::Docker => with_docker(self.docker()),
            Via::Http(h, may_fall) => match read(h) {
                Err(ReadError::Unservable(e)) if may_fall => {
                    let first = self.fallen.lock().unwrap_or_else(|p| p.into_inner()).insert(registry.to_string());
                    if first {
                        ctx.warn(format!(
                            "{registry}: the HTTP read path cannot serve this registry ({}); reading it with docker for the rest of the run",
                            e.reason()
                        ));
                    }
                    with_docker(self.docker())
                }
                r => r.map_err(ReadError::into_step),
            },
        }
    }

    fn tags_reader(&self) -> Result<&HttpInspector<'a>, &str> {
        match &self.route {
            Route::Http(h) | Route::HttpThenDocker(h) => Ok(h),
            Route::Docker { tags } => tags.as_ref().map_err(String::as_str),
        }
    }
}

impl Inspector for ReadPath<'_> {
    fn inspect(&self, ctx: &Ctx, reference: &ImageRef, want_platform: bool) -> Result<Option<Inspection>, StepError> {
        self.route(ctx, reference.registry(), |h| h.read(ctx, reference, want_platform), |d| d.inspect(ctx, reference, want_platform))
    }

    fn fill_configs(&self, ctx: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
        // The HTTP reader leaves `insp` as it was when it cannot serve the registry.
        let filled = std::cell::RefCell::new(insp.clone());
        self.route(
            ctx,
            repository.registry(),
            |h| h.read_configs(ctx, repository, &mut filled.borrow_mut(), digests),
            |d| d.fill_configs(ctx, repository, &mut filled.borrow_mut(), digests),
        )?;
        *insp = filled.into_inner();
        Ok(())
    }

    fn head_digest(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<String>, StepError> {
        self.route(ctx, reference.registry(), |h| h.read_head(ctx, reference), |d| d.head_digest(ctx, reference))
    }

    fn head_first(&self, reference: &ImageRef) -> bool {
        matches!(self.via(reference.registry()), Via::Http(..))
    }

    /// `references` are on one registry (the first one's route serves all).
    fn head_digests(&self, ctx: &Ctx, references: &[ImageRef]) -> Result<Vec<Option<String>>, StepError> {
        let Some(first) = references.first() else { return Ok(Vec::new()) };
        self.route(ctx, first.registry(), |h| h.read_heads(ctx, references), |d| d.head_digests(ctx, references))
    }

    fn raw_manifest(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<crate::registry::Manifest>, StepError> {
        self.route(ctx, reference.registry(), |h| h.read_raw(ctx, reference), |d| d.raw_manifest(ctx, reference))
    }

    fn referrers(&self, ctx: &Ctx, repository: &ImageRef, digest: &str) -> Result<Option<Vec<u8>>, StepError> {
        self.route(ctx, repository.registry(), |h| h.read_referrers(ctx, repository, digest), |d| d.referrers(ctx, repository, digest))
    }

    fn expect(&self, references: &[&ImageRef]) {
        if let Route::Http(h) | Route::HttpThenDocker(h) = &self.route {
            h.remember(references);
        }
    }

    fn list_tags(&self, ctx: &Ctx, repository: &ImageRef) -> Result<Vec<String>, StepError> {
        match self.tags_reader() {
            Ok(h) => h.read_tags(ctx, repository).map_err(ReadError::into_step),
            Err(m) => Err(StepError::setup(format!("list the tags of {}", repository.name()), format!("cannot read tag lists: {m}"))),
        }
    }

    fn probe(&self, ctx: &Ctx, reference: &ImageRef) -> Result<(), StepError> {
        match self.tags_reader() {
            Ok(h) => h.read_probe(ctx, reference).map_err(ReadError::into_step),
            Err(m) => Err(StepError::setup(format!("read {}", reference.registry()), m.to_string())),
        }
    }

    fn rate_limits(&self) -> BTreeMap<String, RateLimit> {
        self.tags_reader().map(HttpInspector::quotas).unwrap_or_default()
    }
}
