//! The HTTP read path (issue 11) behind the [`Inspector`] seam: manifests are
//! read straight from the registries with the run's [`Client`], no docker
//! process. `head_digest` is one HEAD (free on Docker Hub); `inspect` and
//! `fill_configs` GET (counted, and a pull on Docker Hub), so the run asks
//! them only when a decision needs content.
//!
//! Under `--inspect auto` a registry the HTTP path cannot serve (TLS trust,
//! a connection failing after retries, plain HTTP refused, answers it cannot
//! read) falls back to the docker inspector, once per registry, with a note;
//! under `--inspect registry` those are the entry's errors.

use std::collections::BTreeSet;
use std::sync::Mutex;

use crate::diagnose::Classify;
use crate::family::Family;
use crate::engine::inspector::Inspector;
use crate::engine::Ctx;
use crate::inspect::{self, Inspection, Raw};
use crate::reference::ImageRef;
use crate::registry::{self, Client, ErrorKind, Repository, Tally};
use crate::step_error::StepError;

/// Pulls kept in reserve: at or below this many left in a registry's window,
/// the run stops GETting from it (a 429 hint) rather than spend the last ones.
pub const RATE_LIMIT_RESERVE: u64 = 2;

pub struct RegistryInspector<'a> {
    client: &'a Client,
    /// The docker inspector for registries HTTP cannot serve (`auto` only).
    fallback: Option<&'a dyn Inspector>,
    /// Runs before the first docker call of a fallback (the run's logins).
    before_docker: &'a (dyn Fn() + Sync),
    fallen: Mutex<BTreeSet<String>>,
    /// Repositories the run will read, by registry, until that registry's
    /// first answer: then their pull tokens come in batches ([`Client::prefetch_tokens`]).
    prefetch: Mutex<std::collections::HashMap<String, Vec<Repository>>>,
}

/// Repositories per token request when prefetching (repeated `scope=`).
const PREFETCH_BATCH: usize = 50;

impl<'a> RegistryInspector<'a> {
    pub fn new(client: &'a Client, fallback: Option<&'a dyn Inspector>, before_docker: &'a (dyn Fn() + Sync)) -> Self {
        RegistryInspector { client, fallback, before_docker, fallen: Mutex::new(BTreeSet::new()), prefetch: Mutex::default() }
    }

    fn docker_for(&self, registry: &str) -> Option<&'a dyn Inspector> {
        let fallen = self.fallen.lock().unwrap_or_else(|e| e.into_inner()).contains(registry);
        if fallen {
            (self.before_docker)();
            self.fallback
        } else {
            None
        }
    }

    /// Runs `op` with the classified backoff; a failure the HTTP path cannot
    /// get past moves the registry to docker (auto) and says so once.
    fn call<T>(
        &self,
        ctx: &Ctx,
        registry: &str,
        op: impl FnMut(&Tally) -> Result<T, registry::Error>,
    ) -> Result<Result<T, StepError>, ()> {
        let own = Tally::default();
        let tally = ctx.requests.unwrap_or(&own);
        let mut op = op;
        match ctx.retry(|| op(tally).map_err(Http)) {
            Ok(v) => Ok(Ok(v)),
            // A registry that timed out for good is down, not unreadable by
            // HTTP: docker would only wait out its own timeouts there.
            Err(Http(e)) if self.fallback.is_some() && cannot_serve(&e) && !self.client.is_unreachable(registry) => {
                let first = self.fallen.lock().unwrap_or_else(|p| p.into_inner()).insert(registry.to_string());
                if first {
                    ctx.warn(format!(
                        "{}: the HTTP read path cannot serve this registry ({}); reading it with docker for the rest of the run",
                        registry,
                        step_error(&e).reason()
                    ));
                }
                (self.before_docker)();
                Err(())
            }
            Err(Http(e)) => Ok(Err(step_error(&e))),
        }
    }

    /// Stops before a GET that would spend one of the last pulls of `registry`.
    fn check_quota(&self, registry: &str, what: &str) -> Result<(), StepError> {
        match self.client.rate_limit(registry) {
            Some(rl) if rl.remaining <= RATE_LIMIT_RESERVE => Err(StepError::http(
                what.to_string(),
                429,
                format!(
                    "rate limit nearly reached: {} of {} pulls left{}; stopped before spending them",
                    rl.remaining,
                    rl.limit,
                    rl.window_s.map(|w| format!(" in a {w}s window")).unwrap_or_default()
                ),
            )),
            _ => Ok(()),
        }
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

/// A registry error in the run's terms: an HTTP status keeps its status (so
/// diagnose and retry classify it as any registry answer); TLS, the token
/// endpoint and connections get their own causes.
pub fn step_error(e: &registry::Error) -> StepError {
    use crate::step_error::Cause;
    let what = format!("{} {}", e.method, e.url);
    let message = e.registry_message().map(crate::sanitize::line).unwrap_or_default();
    let token_endpoint = !e.url.contains("/v2/");
    let cause = match (&e.kind, e.status) {
        (ErrorKind::Tls(m), _) => Cause::Tls(m.clone()),
        (ErrorKind::Unauthorized | ErrorKind::Denied, Some(s)) => Cause::Http { status: s, body: message },
        (ErrorKind::Transport(m), _) if token_endpoint => Cause::Token(format!("unreachable: {m}")),
        (ErrorKind::InvalidResponse(m), _) if token_endpoint => Cause::Token(m.clone()),
        (ErrorKind::Status, Some(s)) if token_endpoint && s >= 500 => Cause::Token(format!("HTTP {s}")),
        (ErrorKind::Transport(m), _) => Cause::Transport(m.clone()),
        (ErrorKind::Unreachable, _) => Cause::Transport(format!("registry {} unreachable: it did not answer in time before, so it is not asked again this run", host_of_url(&e.url))),
        (_, Some(s)) if s != 200 => Cause::Http { status: s, body: message },
        (ErrorKind::PlainHttpRefused, _) => Cause::Parse(format!("{e}: plain HTTP only to loopback and INSECURE_REGISTRIES")),
        _ => Cause::Parse(e.to_string()),
    };
    StepError { what, cause }
}

/// `host[:port]` of a URL, for messages.
fn host_of_url(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or(rest)
}

/// A registry error for the retry loop.
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
}

fn parse_ref(reference: &str) -> Result<(Repository, String), StepError> {
    let image = ImageRef::parse(reference).map_err(|m| StepError::parse(format!("inspect {reference}"), m))?;
    Ok((Repository::of(&image), Repository::reference_of(&image)))
}

impl Inspector for RegistryInspector<'_> {
    fn head_first(&self, reference: &str) -> bool {
        match parse_ref(reference) {
            Ok((repo, _)) => !self.fallen.lock().unwrap_or_else(|e| e.into_inner()).contains(&repo.registry),
            Err(_) => false,
        }
    }

    fn expect(&self, references: &[String]) {
        let mut map = self.prefetch.lock().unwrap_or_else(|e| e.into_inner());
        for r in references {
            if let Ok((repo, _)) = parse_ref(r) {
                let list = map.entry(repo.registry.clone()).or_default();
                if !list.iter().any(|x| x.name == repo.name) {
                    list.push(repo);
                }
            }
        }
    }

    fn inspect(&self, ctx: &Ctx, reference: &str, want_platform: bool) -> Result<Option<Inspection>, StepError> {
        let (repo, tag) = parse_ref(reference)?;
        if let Some(docker) = self.docker_for(&repo.registry) {
            return docker.inspect(ctx, reference, want_platform);
        }
        self.check_quota(&repo.registry, &format!("GET {}", self.client.url(&repo, &format!("manifests/{tag}"))))?;
        let got = match self.call(ctx, &repo.registry, |t| self.client.get_manifest(&repo, &tag, t)) {
            Ok(r) => r?,
            Err(()) => return self.fallback.expect("fell back").inspect(ctx, reference, want_platform),
        };
        let Some(m) = got else { return Ok(None) };
        match inspect::parse_raw(&m.bytes).map_err(|e| StepError::parse(format!("inspect {reference}"), e))? {
            Raw::Index(mut i) => {
                i.digest = Some(m.descriptor.digest);
                Ok(Some(i))
            }
            Raw::Manifest(mut img) => {
                // A single manifest's platform lives in its config blob (small;
                // not a pull on Docker Hub): read it, as docker's inspection does.
                if let Some(config) = img.config.clone() {
                    match self.call(ctx, &repo.registry, |t| self.client.get_blob(&repo, &config, t)) {
                        Ok(Ok(Some(bytes))) => {
                            img.platform = platform_of_config(&bytes).map_err(|m| StepError::parse(format!("inspect {reference}"), m))?
                        }
                        Ok(Ok(None)) | Ok(Err(_)) => {}
                        Err(()) => return self.fallback.expect("fell back").inspect(ctx, reference, want_platform),
                    }
                }
                if want_platform && img.platform.is_none() {
                    return Err(StepError::parse(format!("inspect {reference}"), "the image config names no platform"));
                }
                Ok(Some(Inspection { digest: Some(m.descriptor.digest), index: false, images: vec![img], attestations: 0 }))
            }
        }
    }

    fn fill_configs(&self, ctx: &Ctx, name: &str, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
        let (repo, _) = parse_ref(name)?;
        if let Some(docker) = self.docker_for(&repo.registry) {
            return docker.fill_configs(ctx, name, insp, digests);
        }
        let wanted: Vec<String> =
            insp.images.iter().filter(|i| i.config.is_none() && digests.contains(&i.digest)).map(|i| i.digest.clone()).collect();
        if wanted.is_empty() {
            return Ok(());
        }
        self.check_quota(&repo.registry, &format!("GET {}", self.client.url(&repo, "manifests/")))?;
        // The children of one index at once: each is one GET.
        let results: Vec<Result<Result<Option<registry::Manifest>, StepError>, ()>> = std::thread::scope(|s| {
            let handles: Vec<_> =
                wanted.iter().map(|d| s.spawn(|| self.call(ctx, &repo.registry, |t| self.client.get_manifest(&repo, d, t)))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        if results.iter().any(|r| r.is_err()) {
            return self.fallback.expect("fell back").fill_configs(ctx, name, insp, digests);
        }
        for (digest, r) in wanted.iter().zip(results) {
            let reference = format!("{name}@{digest}");
            let m = r.expect("checked")?.ok_or_else(|| StepError::http(format!("GET {reference}"), 404, "manifest unknown"))?;
            match inspect::parse_raw(&m.bytes) {
                Ok(Raw::Manifest(child)) => {
                    if let Some(img) = insp.images.iter_mut().find(|i| &i.digest == digest) {
                        img.config = child.config;
                        img.layers_size = child.layers_size;
                    }
                }
                Ok(Raw::Index(_)) => return Err(StepError::parse(format!("inspect {reference}"), "a nested index is not supported")),
                Err(m) => return Err(StepError::parse(format!("inspect {reference}"), m)),
            }
        }
        Ok(())
    }

    fn head_digest(&self, ctx: &Ctx, reference: &str) -> Result<Option<String>, StepError> {
        let (repo, tag) = parse_ref(reference)?;
        if let Some(docker) = self.docker_for(&repo.registry) {
            return docker.head_digest(ctx, reference);
        }
        match self.call(ctx, &repo.registry, |t| self.client.resolve_manifest(&repo, &tag, t)) {
            Ok(r) => {
                let d = r?.map(|d| d.digest);
                // The registry has answered once: its challenge is known, so the
                // other repositories' tokens can come in a few requests.
                let batch = self.prefetch.lock().unwrap_or_else(|e| e.into_inner()).remove(&repo.registry);
                if let Some(repos) = batch.filter(|r| r.len() > 1) {
                    let own = Tally::default();
                    let _ = self.client.prefetch_tokens(&repos, PREFETCH_BATCH, ctx.requests.unwrap_or(&own));
                }
                Ok(d)
            }
            Err(()) => self.fallback.expect("fell back").head_digest(ctx, reference),
        }
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
}
