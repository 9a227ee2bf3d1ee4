//! The HTTP reader: manifests and tag lists straight from the registries with
//! the run's [`Client`], no docker process. `head_digest` is one HEAD (free on
//! Docker Hub); `inspect` and `fill_configs` GET (counted, and a pull on
//! Docker Hub), so the run asks them only when a decision needs content.
//!
//! It knows nothing of docker: a failure it cannot get past is a
//! [`ReadError::Unservable`], and the run's [`super::fallback::ReadPath`]
//! decides what that means (docker under `--inspect auto`, an error under
//! `registry`). Every request goes through `Ctx::retry`, so a 429 or a 5xx
//! is retried by the one policy, honouring the registry's `Retry-After`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::concurrency::{parallel_map, Helpers};
use crate::ctx::Ctx;
use crate::diagnose::Classify;
use crate::family::Family;
use crate::inspect::parse::{self, Inspection, Raw};
use crate::inspect::Inspector;
use crate::reference::ImageRef;
use crate::registry::{self, Client, ErrorKind, RateLimit, Repository, Tally};
use crate::step_error::{Cause, StepError};

/// Pulls kept in reserve: at or below this many left in a registry's window,
/// the run stops GETting from it (a 429 hint) rather than spend the last ones.
pub const RATE_LIMIT_RESERVE: u64 = 2;

/// Repositories per token request when prefetching (repeated `scope=`).
const PREFETCH_BATCH: usize = 50;

/// Why a read failed: the registry's answer (`Failed`), or the HTTP path
/// cannot be used for that registry at all (`Unservable`: TLS, connections
/// failing after retries, plain HTTP refused, answers it cannot read).
#[derive(Debug)]
pub enum ReadError {
    Unservable(StepError),
    Failed(StepError),
}

impl ReadError {
    pub fn into_step(self) -> StepError {
        match self {
            ReadError::Unservable(e) | ReadError::Failed(e) => e,
        }
    }
}


pub struct HttpInspector<'a> {
    client: &'a Client,
    /// Repositories the run will read, by registry, until that registry's
    /// first answer: then their pull tokens come in batches ([`Client::prefetch_tokens`]).
    prefetch: Mutex<HashMap<String, Vec<Repository>>>,
    /// Extra readers for an index's children, shared by the whole run.
    helpers: Helpers,
}

impl<'a> HttpInspector<'a> {
    /// `jobs`: the run's reads at once; an index's children borrow idle ones.
    pub fn new(client: &'a Client, jobs: usize) -> Self {
        HttpInspector { client, prefetch: Mutex::default(), helpers: Helpers::new(jobs) }
    }

    /// Runs `op` on `registry` through the step context's retry; counts
    /// requests in the context's tally.
    fn call<T>(&self, ctx: &Ctx, registry: &str, mut op: impl FnMut(&Tally) -> Result<T, registry::Error>) -> Result<T, ReadError> {
        let own = Tally::default();
        let tally = ctx.requests.unwrap_or(&own);
        ctx.retry(|| op(tally).map_err(Http)).map_err(|Http(e)| {
            // A registry that timed out for good is down, not unreadable by
            // HTTP: docker would only wait out its own timeouts there.
            if cannot_serve(&e) && !self.client.is_unreachable(registry) {
                ReadError::Unservable(step_error(&e))
            } else {
                ReadError::Failed(step_error(&e))
            }
        })
    }

    /// Stops before a GET that would spend one of the last pulls of `registry`.
    fn check_quota(&self, registry: &str, what: &str) -> Result<(), ReadError> {
        match self.client.rate_limit(registry) {
            Some(rl) if rl.remaining <= RATE_LIMIT_RESERVE => Err(ReadError::Failed(StepError::http(
                what.to_string(),
                429,
                format!(
                    "rate limit nearly reached: {} of {} pulls left{}; stopped before spending them",
                    rl.remaining,
                    rl.limit,
                    rl.window_s.map(|w| format!(" in a {w}s window")).unwrap_or_default()
                ),
            ))),
            _ => Ok(()),
        }
    }

    /// What `reference` holds (see [`Inspector::inspect`]).
    pub fn read(&self, ctx: &Ctx, reference: &ImageRef, want_platform: bool) -> Result<Option<Inspection>, ReadError> {
        let (repo, tag) = (Repository::of(reference), Repository::reference_of(reference));
        self.check_quota(&repo.registry, &format!("GET {}", self.client.url(&repo, &format!("manifests/{tag}"))))?;
        let Some(m) = self.call(ctx, &repo.registry, |t| self.client.get_manifest(&repo, &tag, t))? else { return Ok(None) };
        let bad = |e: String| ReadError::Failed(StepError::parse(format!("inspect {reference}"), e));
        match parse::parse_raw(&m.bytes).map_err(bad)? {
            Raw::Index(mut i) => {
                i.digest = Some(m.descriptor.digest);
                Ok(Some(i))
            }
            Raw::Manifest(mut img) => {
                // A single manifest's platform lives in its config blob (small;
                // not a pull on Docker Hub): read it, as docker's inspection does.
                if let Some(config) = img.config.clone() {
                    match self.call(ctx, &repo.registry, |t| self.client.get_blob(&repo, &config, t)) {
                        Ok(Some(bytes)) => img.platform = platform_of_config(&bytes).map_err(bad)?,
                        Ok(None) | Err(ReadError::Failed(_)) => {}
                        Err(e @ ReadError::Unservable(_)) => return Err(e),
                    }
                }
                if want_platform && img.platform.is_none() {
                    return Err(bad("the image config names no platform".into()));
                }
                Ok(Some(Inspection { digest: Some(m.descriptor.digest), index: false, images: vec![img], attestations: 0 }))
            }
        }
    }

    /// Config digests of an index's children (see [`Inspector::fill_configs`]):
    /// one GET each, on this thread and the run's idle readers, never a thread per child.
    pub fn read_configs(&self, ctx: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), ReadError> {
        let repo = Repository::of(repository);
        let wanted: Vec<String> =
            insp.images.iter().filter(|i| i.config.is_none() && digests.contains(&i.digest)).map(|i| i.digest.clone()).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        self.check_quota(&repo.registry, &format!("GET {}", self.client.url(&repo, "manifests/")))?;
        let extra = self.helpers.take(wanted.len() - 1);
        let results = parallel_map(
            &wanted,
            1 + extra.count(),
            ctx.cancel,
            |d| self.call(ctx, &repo.registry, |t| self.client.get_manifest(&repo, d, t)),
            |d| Err(ReadError::Failed(StepError { what: format!("GET {}", repository.at_digest(d)), cause: Cause::Interrupted })),
        );
        drop(extra);
        // One the HTTP path cannot serve decides for all: the caller reads them elsewhere.
        if let Some(i) = results.iter().position(|r| matches!(r, Err(ReadError::Unservable(_)))) {
            return Err(results.into_iter().nth(i).and_then(Result::err).expect("an unservable result"));
        }
        for (digest, r) in wanted.iter().zip(results) {
            let reference = repository.at_digest(digest);
            let bad = |e: String| ReadError::Failed(StepError::parse(format!("inspect {reference}"), e));
            let m = r?.ok_or_else(|| ReadError::Failed(StepError::http(format!("GET {reference}"), 404, "manifest unknown")))?;
            match parse::parse_raw(&m.bytes) {
                Ok(Raw::Manifest(child)) => {
                    if let Some(img) = insp.images.iter_mut().find(|i| &i.digest == digest) {
                        img.config = child.config;
                        img.layers_size = child.layers_size;
                    }
                }
                Ok(Raw::Index(_)) => return Err(bad("a nested index is not supported".into())),
                Err(m) => return Err(bad(m)),
            }
        }
        Ok(())
    }

    /// The top-level digest, one HEAD (see [`Inspector::head_digest`]).
    pub fn read_head(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<String>, ReadError> {
        let (repo, tag) = (Repository::of(reference), Repository::reference_of(reference));
        let d = self.call(ctx, &repo.registry, |t| self.client.resolve_manifest(&repo, &tag, t))?.map(|d| d.digest);
        // The registry has answered once: its challenge is known, so the
        // other repositories' tokens can come in a few requests.
        let batch = self.prefetch.lock().unwrap_or_else(|e| e.into_inner()).remove(&repo.registry);
        if let Some(repos) = batch.filter(|r| r.len() > 1) {
            let own = Tally::default();
            let _ = self.client.prefetch_tokens(&repos, PREFETCH_BATCH, ctx.requests.unwrap_or(&own));
        }
        Ok(d)
    }

    /// The manifest as sent, one GET (see [`Inspector::raw_manifest`]).
    pub fn read_raw(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<registry::Manifest>, ReadError> {
        let (repo, tag) = (Repository::of(reference), Repository::reference_of(reference));
        self.check_quota(&repo.registry, &format!("GET {}", self.client.url(&repo, &format!("manifests/{tag}"))))?;
        self.call(ctx, &repo.registry, |t| self.client.get_manifest(&repo, &tag, t))
    }

    /// The referrers API's answer, one GET (see [`Inspector::referrers`]).
    pub fn read_referrers(&self, ctx: &Ctx, repository: &ImageRef, digest: &str) -> Result<Option<Vec<u8>>, ReadError> {
        let repo = Repository::of(repository);
        self.call(ctx, &repo.registry, |t| self.client.get_referrers(&repo, digest, t))
    }

    /// One HEAD of each of `references`, on this thread and the run's idle readers.
    pub fn read_heads(&self, ctx: &Ctx, references: &[ImageRef]) -> Result<Vec<Option<String>>, ReadError> {
        let extra = self.helpers.take(references.len().saturating_sub(1));
        let results = parallel_map(
            references,
            1 + extra.count(),
            ctx.cancel,
            |r| self.read_head(ctx, r),
            |r| Err(ReadError::Failed(StepError { what: format!("HEAD {r}"), cause: Cause::Interrupted })),
        );
        drop(extra);
        results.into_iter().collect()
    }

    /// Every tag of `repository`, all pages.
    pub fn read_tags(&self, ctx: &Ctx, repository: &ImageRef) -> Result<Vec<String>, ReadError> {
        let repo = Repository::of(repository);
        self.call(ctx, &repo.registry, |t| self.client.list_tags(&repo, t))
    }

    /// `GET /v2/` of the registry, then one HEAD of `reference`.
    pub fn read_probe(&self, ctx: &Ctx, reference: &ImageRef) -> Result<(), ReadError> {
        self.call(ctx, reference.registry(), |t| self.client.ping(reference.registry(), t))?;
        self.read_head(ctx, reference).map(|_| ())
    }

    pub fn quotas(&self) -> BTreeMap<String, RateLimit> {
        self.client.rate_limits()
    }

    /// Remembers `references`' repositories for [`HttpInspector::read_head`]'s token prefetch.
    pub fn remember(&self, references: &[&ImageRef]) {
        let mut map = self.prefetch.lock().unwrap_or_else(|e| e.into_inner());
        for r in references {
            let repo = Repository::of(r);
            let list = map.entry(repo.registry.clone()).or_default();
            if !list.iter().any(|x| x.name == repo.name) {
                list.push(repo);
            }
        }
    }
}

/// `--inspect registry`: every failure is the entry's.
impl Inspector for HttpInspector<'_> {
    fn inspect(&self, ctx: &Ctx, reference: &ImageRef, want_platform: bool) -> Result<Option<Inspection>, StepError> {
        self.read(ctx, reference, want_platform).map_err(ReadError::into_step)
    }

    fn fill_configs(&self, ctx: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
        self.read_configs(ctx, repository, insp, digests).map_err(ReadError::into_step)
    }

    fn head_digest(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<String>, StepError> {
        self.read_head(ctx, reference).map_err(ReadError::into_step)
    }

    fn head_first(&self, _: &ImageRef) -> bool {
        true
    }

    fn head_digests(&self, ctx: &Ctx, references: &[ImageRef]) -> Result<Vec<Option<String>>, StepError> {
        self.read_heads(ctx, references).map_err(ReadError::into_step)
    }

    fn raw_manifest(&self, ctx: &Ctx, reference: &ImageRef) -> Result<Option<registry::Manifest>, StepError> {
        self.read_raw(ctx, reference).map_err(ReadError::into_step)
    }

    fn referrers(&self, ctx: &Ctx, repository: &ImageRef, digest: &str) -> Result<Option<Vec<u8>>, StepError> {
        self.read_referrers(ctx, repository, digest).map_err(ReadError::into_step)
    }

    fn expect(&self, references: &[&ImageRef]) {
        self.remember(references)
    }

    fn list_tags(&self, ctx: &Ctx, repository: &ImageRef) -> Result<Vec<String>, StepError> {
        self.read_tags(ctx, repository).map_err(ReadError::into_step)
    }

    fn probe(&self, ctx: &Ctx, reference: &ImageRef) -> Result<(), StepError> {
        self.read_probe(ctx, reference).map_err(ReadError::into_step)
    }

    fn rate_limits(&self) -> BTreeMap<String, RateLimit> {
        self.quotas()
    }
}

/// `os`/`architecture`/`variant` of an image config; none named is `None`,
/// a value that is not a plain word is refused (it would be printed).
fn platform_of_config(bytes: &[u8]) -> Result<Option<crate::platform::Platform>, String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Ok(None) };
    let (Some(os), Some(arch)) = (v.get("os").and_then(|x| x.as_str()), v.get("architecture").and_then(|x| x.as_str())) else {
        return Ok(None);
    };
    crate::platform::Platform::from_registry(os, arch, v.get("variant").and_then(|x| x.as_str())).map(Some)
}

/// The HTTP path cannot be used for that registry at all (as opposed to an answer).
pub fn cannot_serve(e: &registry::Error) -> bool {
    matches!(
        e.kind,
        ErrorKind::Tls(_) | ErrorKind::Transport(_) | ErrorKind::PlainHttpRefused | ErrorKind::InvalidResponse(_) | ErrorKind::TooLarge(_)
    )
}

/// The one mapping of a registry error into the run's terms (and so into a
/// family and a hint): an HTTP status keeps its status (so diagnose and retry
/// classify it as any registry answer); TLS, the token endpoint, connections
/// and answers too long to read get their own causes.
pub fn step_error(e: &registry::Error) -> StepError {
    let what = format!("{} {}", e.method, e.url);
    // The registry's own words, else what its status means (a bare 401 says "unauthorized").
    let message = match (e.registry_message(), &e.kind) {
        (Some(m), _) => crate::sanitize::line(m),
        (None, ErrorKind::Unauthorized) => "unauthorized".into(),
        (None, ErrorKind::Denied) => "denied".into(),
        (None, ErrorKind::TooManyRequests) => "too many requests (rate limit)".into(),
        (None, _) => String::new(),
    };
    let token_endpoint = !e.url.contains("/v2/");
    let cause = match (&e.kind, e.status) {
        (ErrorKind::Tls(m), _) => Cause::Tls(m.clone()),
        (ErrorKind::Interrupted, _) => Cause::Interrupted,
        (ErrorKind::Unauthorized | ErrorKind::Denied, Some(s)) => Cause::Http { status: s, body: message },
        (ErrorKind::Transport(m), _) if token_endpoint => Cause::Token(format!("unreachable: {m}")),
        (ErrorKind::InvalidResponse(m), _) if token_endpoint => Cause::Token(m.clone()),
        (ErrorKind::Status, Some(s)) if token_endpoint && s >= 500 => Cause::Token(format!("HTTP {s}")),
        (ErrorKind::Transport(m), _) => Cause::Transport(m.clone()),
        (ErrorKind::Unreachable, _) => Cause::Transport(format!("registry {} unreachable: it did not answer in time before, so it is not asked again this run", host_of_url(&e.url))),
        (_, Some(s)) if s != 200 => Cause::Http { status: s, body: message },
        (ErrorKind::PlainHttpRefused, _) => Cause::Insecure(format!("{e}: plain HTTP only to loopback and INSECURE_REGISTRIES")),
        (ErrorKind::TooManyPages(_) | ErrorKind::TagListTooLarge(_) | ErrorKind::TooLarge(_), _) => Cause::TooLong(e.to_string()),
        (ErrorKind::Credentials(_), _) => Cause::Setup(e.to_string()),
        _ => Cause::Parse(e.to_string()),
    };
    StepError { what, cause }
}

/// `host[:port]` of a URL, for messages.
fn host_of_url(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// A registry error for the retry loop: retried when the client says it is
/// worth it, after the registry's own `Retry-After` when it sent one.
struct Http(registry::Error);

impl Classify for Http {
    fn family(&self) -> Family {
        if self.0.is_retryable() {
            step_error(&self.0).family()
        } else {
            // Not worth another try, whatever its family says (e.g. TLS, 501).
            match step_error(&self.0).family() {
                f if f.transient() => Family::Other,
                f => f,
            }
        }
    }
    fn what(&self) -> String {
        format!("{} {}", self.0.method, self.0.url)
    }
    fn reason(&self) -> String {
        step_error(&self.0).reason()
    }
    fn retry_after(&self) -> Option<std::time::Duration> {
        self.0.retry_after()
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str, status: Option<u16>, kind: ErrorKind) -> registry::Error {
        registry::Error::new("GET", url, status, kind)
    }

    #[test]
    fn registry_errors_become_step_errors_with_families() {
        let m = "https://r.example/v2/a/manifests/1";
        assert_eq!(step_error(&err(m, Some(401), ErrorKind::Unauthorized)).family(), Family::Auth);
        assert_eq!(step_error(&err(m, Some(403), ErrorKind::Denied)).family(), Family::Permission);
        assert_eq!(step_error(&err(m, Some(429), ErrorKind::TooManyRequests)).family(), Family::RateLimit);
        assert_eq!(step_error(&err(m, Some(503), ErrorKind::Status)).family(), Family::Network);
        assert!(step_error(&err(m, Some(401), ErrorKind::Unauthorized)).to_string().contains("HTTP 401"));
        let tls = step_error(&err(m, None, ErrorKind::Tls("invalid peer certificate: UnknownIssuer".into())));
        assert_eq!(tls.family(), Family::TlsTrust);
        assert!(!tls.family().transient());
        assert!(tls.family().hint().contains("certs.d"));
        let t = "https://auth.example/token";
        assert_eq!(step_error(&err(t, None, ErrorKind::Transport("connection refused".into()))).family(), Family::TokenEndpoint);
        assert_eq!(step_error(&err(t, Some(200), ErrorKind::InvalidResponse("no token".into()))).family(), Family::TokenEndpoint);
        assert_eq!(step_error(&err(t, Some(502), ErrorKind::Status)).family(), Family::TokenEndpoint);
        assert_eq!(step_error(&err(t, Some(401), ErrorKind::Unauthorized)).family(), Family::Auth);
        assert_eq!(step_error(&err(m, None, ErrorKind::Transport("reset".into()))).family(), Family::Network);
        // What may fall back to docker, and what is an answer.
        assert!(cannot_serve(&err(m, None, ErrorKind::Tls("x".into()))));
        assert!(cannot_serve(&err(m, None, ErrorKind::PlainHttpRefused)));
        assert!(!cannot_serve(&err(m, Some(401), ErrorKind::Unauthorized)));
        assert!(!cannot_serve(&err(m, Some(429), ErrorKind::TooManyRequests)));
    }

    #[test]
    fn retry_follows_the_client_not_the_family() {
        assert!(Http(err("https://r/v2/a/manifests/1", Some(503), ErrorKind::Status)).family().transient());
        assert!(!Http(err("https://r/v2/a/manifests/1", Some(501), ErrorKind::Status)).family().transient());
        assert!(!Http(err("https://r/v2/a/manifests/1", None, ErrorKind::Tls("x".into()))).family().transient());
    }

    /// An index of many children: their configs come on this thread and the
    /// run's idle readers (here 2), never a thread (and a connection) per child.
    #[test]
    fn an_index_s_children_are_read_on_the_run_s_readers() {
        use crate::registry::manifest::OCI_MANIFEST;
        use crate::registry::testserver::{reply, Server};
        let child = |n: usize| {
            format!(
                r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:{n:064x}","size":2}},"layers":[]}}"#
            )
        };
        let children: Vec<(String, String)> = (0..40).map(|n| (crate::inspect::parse::sha256_digest(child(n).as_bytes()), child(n))).collect();
        let served = children.clone();
        let server = Server::start(move |r| {
            let digest = r.path().rsplit('/').next().unwrap_or("");
            match served.iter().find(|(d, _)| d == digest) {
                Some((d, body)) => reply(200, &[("docker-content-digest", d), ("content-type", OCI_MANIFEST)], body.as_bytes()),
                None => reply(404, &[], b""),
            }
        });
        let client = Client::new(registry::ClientConfig::default(), registry::Credentials::anonymous());
        let reader = HttpInspector::new(&client, 2);
        let images = children
            .iter()
            .enumerate()
            .map(|(n, (d, _))| crate::inspect::parse::Image { platform: Some(format!("linux/arch{n}").parse().unwrap()), digest: d.clone(), config: None, layers_size: None })
            .collect();
        let mut insp = Inspection { digest: None, index: true, images, attestations: 0 };
        let digests: Vec<String> = children.iter().map(|(d, _)| d.clone()).collect();
        let docker = crate::docker::Cli::new("docker".into(), Default::default(), std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let cancel = std::sync::atomic::AtomicBool::new(false);
        let ctx = Ctx::new(&docker, &crate::config::Limits::default(), &cancel, &|_| {});
        let repo = ImageRef::parse(&format!("{}/lib/a:1", server.host())).unwrap();
        reader.read_configs(&ctx, &repo, &mut insp, &digests).map_err(ReadError::into_step).unwrap();
        assert!(insp.images.iter().enumerate().all(|(n, i)| i.config == Some(format!("sha256:{n:064x}"))));
        assert_eq!(server.requests().len(), 40, "one GET per child");
        assert!(server.connections() <= 3, "at most three readers at once: {} connections", server.connections());
        assert_eq!(reader.helpers.take(5).count(), 2, "the readers are given back");
    }
}
