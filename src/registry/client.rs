//! The registry client: blocking (ureq), `Sync`, shared by all threads of a
//! run; one connection pool per trust configuration, reused per host.
//!
//! Reads only: [`Client::head_manifest`], [`Client::resolve_manifest`]
//! (HEAD, falling back to GET where HEAD cannot answer), [`Client::get_manifest`]
//! (digest verified) and [`Client::list_tags`] (`Link` paging, capped).
//! Every request is counted by kind in the caller's [`Tally`] and in the
//! client's totals; rate-limit headers are kept per registry.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::http::HeaderMap;
use url::Url;

use super::challenge::{self, Challenge};
use super::counts::{Counts, Kind, Tally};
use super::credentials::{Credential, Credentials};
use super::error::{Error, ErrorKind};
use super::link;
use super::manifest::{self, Descriptor, Manifest};
use super::ratelimit::{self, RateLimit};
use super::repository::Repository;
use super::tls;
use super::token::{self, TokenCache};

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Registries (`host` or `host:port`) spoken to over plain HTTP, besides
    /// loopback ones (docker's `insecure-registries`).
    pub insecure_registries: Vec<String>,
    /// Extra trust per host: `<certs_dir>/<host[:port]>/*.crt`.
    pub certs_dir: PathBuf,
    /// Whole-request limit.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// First-answer limit (HTTP_READ_TIMEOUT): connecting (TLS included) and
    /// receiving the response's headers must each finish within it.
    pub first_answer: Duration,
    /// After this many timed-out requests to a registry with no answer in
    /// between, it is unreachable for the rest of the run: every request
    /// there fails at once ([`ErrorKind::Unreachable`]). 0: never.
    pub unreachable_after: u32,
    /// Idle connections kept per host: as many as requests run in parallel.
    pub connections_per_host: usize,
    /// `n` asked per tag page (a hint: registries page as they like).
    pub tag_page_size: usize,
    /// Tag listing fails when a next page is still announced after this many.
    pub max_tag_pages: usize,
    /// Manifests larger than this are refused (docker: 4 MiB).
    pub max_manifest_bytes: u64,
    /// One tag page larger than this is refused (Docker Hub's n=1000 pages are tens of KB).
    pub max_tag_page_bytes: u64,
    /// A listing of more tags than this, or of more bytes over all pages, fails.
    pub max_tags: usize,
    pub max_tag_bytes: u64,
    /// A whole tag listing (all pages) must end within this.
    pub tag_list_deadline: Duration,
    /// The run's cancel flag: once set, no further request is sent.
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
    pub user_agent: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            insecure_registries: Vec::new(),
            certs_dir: PathBuf::from(tls::DOCKER_CERTS_DIR),
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            first_answer: Duration::from_secs(8),
            unreachable_after: 0,
            connections_per_host: 32,
            tag_page_size: 1000,
            max_tag_pages: 100,
            max_manifest_bytes: 4 << 20,
            max_tag_page_bytes: 4 << 20,
            max_tags: 100_000,
            max_tag_bytes: 16 << 20,
            tag_list_deadline: Duration::from_secs(300),
            cancel: None,
            user_agent: format!("imgsync/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// What a HEAD of a manifest answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// 200 with `Docker-Content-Digest`.
    Found(Descriptor),
    /// 404: no such manifest (or repository).
    Missing,
    /// 200 without a usable digest header (some Harbor, Nexus, ECR setups).
    NoDigest,
    /// 405 or 501: HEAD is not served.
    Unsupported(u16),
}

/// A response read to the end (HEAD: no body).
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Vec<u8>,
    /// The URL that answered (after redirects): errors name it.
    url: String,
    /// It answered from the origin first asked (the registry's own).
    own_origin: bool,
}

/// Redirects followed per request (Go's http client stops at 10).
const MAX_REDIRECTS: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Head,
    Get,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Head => "HEAD",
            Method::Get => "GET",
        }
    }
}

pub struct Client {
    config: ClientConfig,
    credentials: Credentials,
    default_agent: ureq::Agent,
    /// For loopback hosts: never through a proxy (as Go's ProxyFromEnvironment, so docker).
    loopback_agent: ureq::Agent,
    /// Agents of hosts with `certs.d` entries (their own roots, their own pool).
    host_agents: Mutex<HashMap<String, ureq::Agent>>,
    /// The last challenge of each host: lets later requests authenticate up front.
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: TokenCache,
    /// Hosts that answered at least once; until then, one request at a time
    /// per host learns whether and how it authenticates (a cold start with
    /// many threads then costs one 401, not one per thread).
    probed: Mutex<HashSet<String>>,
    probes: Mutex<HashMap<String, std::sync::Arc<Mutex<()>>>>,
    /// Hosts whose HEAD gives no digest: [`Client::resolve_manifest`] GETs there.
    no_head: Mutex<HashSet<String>>,
    rate_limits: Mutex<BTreeMap<String, RateLimit>>,
    totals: Tally,
    /// Timed-out requests in a row, by registry (see [`ClientConfig::unreachable_after`]).
    stalled: Mutex<HashMap<String, u32>>,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

fn headers<'a>(h: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    h.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect()
}

/// `-v`: one line per request, `GET https://host/v2/... → 200 (12 ms)`. The
/// query is dropped: redirect URLs to storage are presigned (credentials) and
/// token URLs name the account.
fn trace(method: &str, url: &str, outcome: Result<u16, String>, started: Instant) {
    if log::log_enabled!(target: "imgsync::http", log::Level::Debug) {
        log::debug!(target: "imgsync::http", "{}", request_line(method, url, outcome, started.elapsed()));
    }
}

fn request_line(method: &str, url: &str, outcome: Result<u16, String>, took: Duration) -> String {
    // Parsed by the `url` crate, as the request was: no hand-written host split.
    let url = match Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        Err(_) => url.split(['?', '#']).next().unwrap_or(url).to_string(),
    };
    match outcome {
        Ok(status) => format!("{method} {url} → {status} ({} ms)", took.as_millis()),
        Err(e) => format!("{method} {url} → {e}"),
    }
}

/// `host[:port]` of a parsed URL, as docker names registries (IPv6 in brackets).
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    }
}

fn parse_url(method: &'static str, url: &str) -> Result<Url, Error> {
    Url::parse(url).map_err(|e| Error::new(method, "", None, ErrorKind::InvalidResponse(format!("not a URL ({e})"))))
}

/// May a request that got a redirect from `from` go on to `to`? The one
/// origin rule: never from https to plain HTTP, plain HTTP only to a host
/// that gets it anyway (loopback, insecure), no user info, http(s) only.
/// (Credentials and challenges stay with the origin first asked: see `send`.)
pub fn check_redirect(from: &Url, to: &Url, insecure: &[String]) -> Result<(), ErrorKind> {
    if !to.username().is_empty() || to.password().is_some() {
        return Err(ErrorKind::InvalidResponse("a redirect to a URL with user info".into()));
    }
    match to.scheme() {
        "https" => Ok(()),
        "http" if from.scheme() == "https" => Err(ErrorKind::PlainHttpRefused),
        "http" if tls::plain_http(&authority(to), insecure) => Ok(()),
        "http" => Err(ErrorKind::PlainHttpRefused),
        other => Err(ErrorKind::InvalidResponse(format!("a redirect to a {other:?} URL"))),
    }
}

/// May `registry`'s credentials go to the token realm `realm`? Any https
/// host (as docker); plain HTTP only to a host that gets plain HTTP anyway
/// (loopback, insecure: docker's token requests go there too, the tests'
/// token servers among them), or to the registry's own host when that is
/// spoken to over plain HTTP; never a realm with user info.
pub fn realm_allows(realm: &Url, registry: &str, insecure: &[String]) -> Result<(), ErrorKind> {
    if !realm.username().is_empty() || realm.password().is_some() {
        return Err(ErrorKind::InvalidResponse("the token realm carries user info".into()));
    }
    match realm.scheme() {
        "https" => Ok(()),
        "http" => {
            let same_host = tls::plain_http(registry, insecure)
                && crate::reference::split_host_port(registry)
                    .is_some_and(|(h, _)| realm.host_str().is_some_and(|r| r.trim_matches(['[', ']']).eq_ignore_ascii_case(h)));
            if same_host || tls::plain_http(&authority(realm), insecure) {
                Ok(())
            } else {
                Err(ErrorKind::PlainHttpRefused)
            }
        }
        other => Err(ErrorKind::InvalidResponse(format!("a token realm with scheme {other:?}"))),
    }
}

impl Client {
    pub fn new(config: ClientConfig, credentials: Credentials) -> Client {
        let default_agent = Self::agent(&config, tls::default_roots(), true);
        let loopback_agent = Self::agent(&config, tls::default_roots(), false);
        Client {
            config,
            credentials,
            default_agent,
            loopback_agent,
            host_agents: Mutex::new(HashMap::new()),
            challenges: Mutex::new(HashMap::new()),
            tokens: TokenCache::default(),
            probed: Mutex::new(HashSet::new()),
            probes: Mutex::new(HashMap::new()),
            no_head: Mutex::new(HashSet::new()),
            rate_limits: Mutex::new(BTreeMap::new()),
            totals: Tally::default(),
            stalled: Mutex::new(HashMap::new()),
        }
    }

    /// `proxy`: from the environment (`HTTPS_PROXY`, `NO_PROXY`, ...) or none.
    fn agent(config: &ClientConfig, roots: ureq::tls::RootCerts, proxy: bool) -> ureq::Agent {
        let per_host = config.connections_per_host.max(1);
        let b = ureq::Agent::config_builder();
        let b = if proxy { b } else { b.proxy(None) };
        // Redirects are followed by `send_following`, under the origin rule.
        b.http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(config.timeout))
            .timeout_connect(Some(config.connect_timeout.min(config.first_answer)))
            .timeout_recv_response(Some(config.first_answer))
            .max_idle_connections(per_host * 8)
            .max_idle_connections_per_host(per_host)
            .user_agent(config.user_agent.as_str())
            .tls_config(ureq::tls::TlsConfig::builder().root_certs(roots).build())
            .build()
            .into()
    }

    /// The agent for `url`: its own when its host has `certs.d` entries
    /// (`certs_host`: the directory name, the registry's `host[:port]` as written).
    fn agent_for(&self, method: &'static str, url: &Url, certs_host: &str) -> Result<ureq::Agent, Error> {
        if url.scheme() == "http" {
            let loopback = crate::reference::is_loopback_host(&authority(url));
            return Ok(if loopback { &self.loopback_agent } else { &self.default_agent }.clone());
        }
        let host = certs_host;
        let mut agents = self.host_agents.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(a) = agents.get(host) {
            return Ok(a.clone());
        }
        let agent = match tls::roots_for(&self.config.certs_dir, host) {
            Ok(Some(roots)) => Self::agent(&self.config, roots, true),
            Ok(None) => self.default_agent.clone(),
            Err(e) => return Err(Error::new(method, url.as_str(), None, ErrorKind::Tls(format!("trust roots: {e}")))),
        };
        agents.insert(host.to_string(), agent.clone());
        Ok(agent)
    }

    fn scheme(&self, registry: &str) -> &'static str {
        if tls::plain_http(registry, &self.config.insecure_registries) {
            "http"
        } else {
            "https"
        }
    }

    /// `scheme://host/v2/<name>/<rest>`.
    pub fn url(&self, repo: &Repository, rest: &str) -> String {
        format!("{}://{}/v2/{}/{}", self.scheme(&repo.registry), repo.host, repo.name, rest)
    }

    /// Requests sent so far by this client, by kind.
    pub fn totals(&self) -> Counts {
        self.totals.snapshot()
    }

    /// The last rate limit each registry announced (`docker.io`, ...).
    pub fn rate_limits(&self) -> BTreeMap<String, RateLimit> {
        self.rate_limits.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn rate_limit(&self, registry: &str) -> Option<RateLimit> {
        self.rate_limits.lock().unwrap_or_else(|e| e.into_inner()).get(registry).copied()
    }

    /// The credential this client uses for `registry` (`None`: anonymous).
    pub fn credential_for(&self, registry: &str) -> Result<Option<Credential>, String> {
        self.credentials.get(registry)
    }

    fn count(&self, tally: &Tally, kind: Kind) {
        tally.add(kind);
        self.totals.add(kind);
    }

    fn credential(&self, repo: &Repository, method: &'static str, url: &str) -> Result<Option<Credential>, Error> {
        self.credentials.get(&repo.registry).map_err(|e| Error::new(method, url, None, ErrorKind::Credentials(e)))
    }

    /// The `Authorization` to send for `repo` given what its host asked
    /// before; `stale` is a header the registry just refused. The flag says
    /// whether a token was fetched for it just now.
    fn authorization(
        &self,
        repo: &Repository,
        stale: Option<&str>,
        tally: &Tally,
        method: &'static str,
        url: &str,
    ) -> Result<(Option<String>, bool), Error> {
        let known = self.challenges.lock().unwrap_or_else(|e| e.into_inner()).get(&repo.host).cloned();
        match known {
            None => Ok((None, false)),
            Some(Challenge::Basic) => match self.credential(repo, method, url)? {
                Some(Credential::Basic { username, password }) => Ok((Some(token::basic_header(&username, &password)), false)),
                _ => Ok((None, false)),
            },
            Some(Challenge::Bearer { realm, service, .. }) => {
                let stale_token = stale.and_then(|s| s.strip_prefix("Bearer "));
                let mut fetched = false;
                let t = self.tokens.get_or_fetch(&repo.host, &repo.name, stale_token, || {
                    fetched = true;
                    self.fetch_token(repo, &realm, service.as_deref(), tally)
                })?;
                Ok((Some(format!("Bearer {t}")), fetched))
            }
        }
    }

    fn fetch_token(&self, repo: &Repository, realm: &str, service: Option<&str>, tally: &Tally) -> Result<token::Token, Error> {
        self.fetch_token_for(repo, &[repo.pull_scope()], realm, service, tally)
    }

    /// Pull tokens for many repositories of one registry in few requests:
    /// one token per `batch` repositories (repeated `scope=`), cached for
    /// each. Only for registries whose Bearer challenge is already known
    /// (after a first request there); others are left alone. Returns the
    /// token requests sent. Repositories with a fresh token are skipped.
    pub fn prefetch_tokens(&self, repos: &[Repository], batch: usize, tally: &Tally) -> Result<usize, Error> {
        let mut by_host: BTreeMap<&str, Vec<&Repository>> = BTreeMap::new();
        for r in repos {
            if self.tokens.cached(&r.host, &r.name).is_none() {
                let list = by_host.entry(r.host.as_str()).or_default();
                if !list.iter().any(|x| x.name == r.name) {
                    list.push(r);
                }
            }
        }
        let mut sent = 0;
        for (host, list) in by_host {
            let known = self.challenges.lock().unwrap_or_else(|e| e.into_inner()).get(host).cloned();
            let Some(Challenge::Bearer { realm, service, .. }) = known else { continue };
            for chunk in list.chunks(batch.max(1)) {
                let scopes: Vec<String> = chunk.iter().map(|r| r.pull_scope()).collect();
                let t = self.fetch_token_for(chunk[0], &scopes, &realm, service.as_deref(), tally)?;
                sent += 1;
                for r in chunk {
                    self.tokens.put(&r.host, &r.name, t.clone());
                }
            }
        }
        Ok(sent)
    }

    fn fetch_token_for(
        &self,
        repo: &Repository,
        scopes: &[String],
        realm: &str,
        service: Option<&str>,
        tally: &Tally,
    ) -> Result<token::Token, Error> {
        let method = "GET";
        let realm_url = parse_url(method, realm)?;
        realm_allows(&realm_url, &repo.registry, &self.config.insecure_registries)
            .map_err(|kind| Error::new(method, realm, None, kind))?;
        let credential = self.credential(repo, method, realm)?;
        self.fetch_token_as(scopes, realm, service, credential.as_ref(), tally)
    }

    /// A token for `scopes` as `credential` (`None`: anonymous); the realm was checked.
    fn fetch_token_as(
        &self,
        scopes: &[String],
        realm: &str,
        service: Option<&str>,
        credential: Option<&Credential>,
        tally: &Tally,
    ) -> Result<token::Token, Error> {
        let realm_url = parse_url("GET", realm)?;
        let req = token::request_scopes(realm, service, scopes, credential);
        let method = if req.post { "POST" } else { "GET" };
        let agent = self.agent_for(method, &realm_url, &authority(&realm_url))?;
        self.count(tally, Kind::Token);
        let started = Instant::now();
        let result = if req.post {
            agent.post(realm).send_form(req.params.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        } else {
            let mut b = agent.get(realm).query_pairs(req.params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            if let Some(a) = &req.authorization {
                b = b.header("Authorization", a);
            }
            b.call()
        };
        trace(method, realm, result.as_ref().map(|r| r.status().as_u16()).map_err(|e| e.to_string()), started);
        let mut resp = result.map_err(|e| Error::from_transport(method, realm, e))?;
        let status = resp.status().as_u16();
        let wait = ratelimit::retry_after(header(resp.headers(), "retry-after"));
        let body = resp.body_mut().with_config().limit(1 << 20).read_to_vec().unwrap_or_default();
        match status {
            200 => token::parse_response(&body, Instant::now())
                .map_err(|e| Error::new(method, realm, Some(status), ErrorKind::InvalidResponse(e))),
            401 => Err(Error::new(method, realm, Some(status), ErrorKind::Unauthorized).with_registry_message(&body)),
            403 => Err(Error::new(method, realm, Some(status), ErrorKind::Denied).with_registry_message(&body)),
            429 => Err(Error::new(method, realm, Some(status), ErrorKind::TooManyRequests).with_registry_message(&body).with_retry_after(wait)),
            _ => Err(Error::new(method, realm, Some(status), ErrorKind::Status).with_registry_message(&body)),
        }
    }

    /// Whether `registry` timed out often enough to be given up for this run.
    pub fn is_unreachable(&self, registry: &str) -> bool {
        let n = self.config.unreachable_after;
        n > 0 && self.stalled.lock().unwrap_or_else(|e| e.into_inner()).get(registry).is_some_and(|c| *c >= n)
    }

    /// Counts a timeout against `registry`, or clears its count on any answer.
    fn note_outcome(&self, registry: &str, result: &Result<Reply, Error>) {
        let mut stalled = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Err(e) if e.is_timeout() => *stalled.entry(registry.to_string()).or_default() += 1,
            Ok(_) => {
                stalled.remove(registry);
            }
            Err(_) => {}
        }
    }

    /// Sends one request, authenticating as the host asks: up front when its
    /// challenge is known, else after a 401 (once). Reads the body up to `limit`.
    fn send(&self, repo: &Repository, method: Method, url: &str, accept: Option<&str>, limit: u64, tally: &Tally) -> Result<Reply, Error> {
        let name = method.name();
        // A registry that stopped answering fails at once: no more waiting out the timeout.
        if self.is_unreachable(&repo.registry) {
            return Err(Error::new(name, url, None, ErrorKind::Unreachable));
        }
        if url.starts_with("http://") && !tls::plain_http(&repo.registry, &self.config.insecure_registries) {
            return Err(Error::new(name, url, None, ErrorKind::PlainHttpRefused));
        }
        let probed = |h: &str| self.probed.lock().unwrap_or_else(|e| e.into_inner()).contains(h);
        let probe = (!probed(&repo.host)).then(|| {
            let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
            probes.entry(repo.host.clone()).or_default().clone()
        });
        // Wait for the host's first request; whoever finds it still unprobed
        // after the wait is the first and keeps the lock while it asks.
        let first = probe.as_ref().map(|p| p.lock().unwrap_or_else(|e| e.into_inner())).filter(|_| !probed(&repo.host));
        let result = self.send_authenticated(repo, method, url, accept, limit, tally);
        self.note_outcome(&repo.registry, &result);
        if first.is_some() {
            self.probed.lock().unwrap_or_else(|e| e.into_inner()).insert(repo.host.clone());
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn send_authenticated(
        &self,
        repo: &Repository,
        method: Method,
        url: &str,
        accept: Option<&str>,
        limit: u64,
        tally: &Tally,
    ) -> Result<Reply, Error> {
        let name = method.name();
        let (mut auth, mut fresh) = self.authorization(repo, None, tally, name, url)?;
        let mut retried = false;
        loop {
            let reply = self.send_following(repo, method, url, accept, auth.as_deref(), limit, tally)?;
            // A challenge is the registry's only when its own origin sent it:
            // a host a redirect led to does not name the registry's realm.
            if reply.status != 401 || retried || !reply.own_origin {
                return Ok(reply);
            }
            let Some(c) = challenge::parse(headers(&reply.headers, "www-authenticate")) else {
                return Ok(reply);
            };
            let previous = self.challenges.lock().unwrap_or_else(|e| e.into_inner()).insert(repo.host.clone(), c.clone());
            // A token fetched for this very request under the same challenge
            // was refused: the registry means it (no access), no second try.
            if fresh && same_realm(previous.as_ref(), &c) {
                return Ok(reply);
            }
            let (next, next_fresh) = self.authorization(repo, auth.as_deref(), tally, name, url)?;
            if next.is_none() || next == auth {
                return Ok(reply);
            }
            (auth, fresh) = (next, next_fresh);
            retried = true;
        }
    }

    /// One request and its redirects, followed here under the origin rule:
    /// `auth` goes only to the origin first asked (scheme, host, port), and
    /// each hop must pass [`check_redirect`].
    #[allow(clippy::too_many_arguments)]
    fn send_following(
        &self,
        repo: &Repository,
        method: Method,
        url: &str,
        accept: Option<&str>,
        auth: Option<&str>,
        limit: u64,
        tally: &Tally,
    ) -> Result<Reply, Error> {
        let name = method.name();
        let first = parse_url(name, url)?;
        let origin = first.origin();
        let mut current = first.clone();
        for _ in 0..=MAX_REDIRECTS {
            if self.config.cancel.as_ref().is_some_and(|c| c.load(std::sync::atomic::Ordering::SeqCst)) {
                return Err(Error::new(name, current.as_str(), None, ErrorKind::Interrupted));
            }
            let own = current.origin() == origin;
            let certs_host = if own { repo.host.clone() } else { authority(&current) };
            let agent = self.agent_for(name, &current, &certs_host)?;
            let mut reply = self.send_once(&agent, method, current.as_str(), accept, auth.filter(|_| own), limit, tally)?;
            reply.own_origin = own;
            let location = header(&reply.headers, "location");
            match (reply.status, location) {
                (301 | 302 | 303 | 307 | 308, Some(loc)) => {
                    let next = current.join(loc.trim()).map_err(|e| {
                        Error::new(name, current.as_str(), Some(reply.status), ErrorKind::InvalidResponse(format!("a redirect to a bad URL ({e})")))
                    })?;
                    check_redirect(&current, &next, &self.config.insecure_registries)
                        .map_err(|kind| Error::new(name, current.as_str(), Some(reply.status), kind))?;
                    current = next;
                }
                _ => return Ok(reply),
            }
        }
        Err(Error::new(name, current.as_str(), None, ErrorKind::InvalidResponse(format!("more than {MAX_REDIRECTS} redirects"))))
    }

    #[allow(clippy::too_many_arguments)]
    fn send_once(
        &self,
        agent: &ureq::Agent,
        method: Method,
        url: &str,
        accept: Option<&str>,
        auth: Option<&str>,
        limit: u64,
        tally: &Tally,
    ) -> Result<Reply, Error> {
        let name = method.name();
        let transport = |e: ureq::Error| Error::from_transport(name, url, e);
        let mut b = match method {
            Method::Head => agent.head(url),
            Method::Get => agent.get(url),
        };
        if let Some(a) = accept {
            b = b.header("Accept", a);
        }
        if let Some(a) = auth {
            b = b.header("Authorization", a);
        }
        self.count(tally, if method == Method::Head { Kind::Head } else { Kind::Get });
        let started = Instant::now();
        let called = b.call();
        trace(name, url, called.as_ref().map(|r| r.status().as_u16()).map_err(|e| e.to_string()), started);
        let mut resp = called.map_err(transport)?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(rl) = ratelimit::parse(header(&headers, "ratelimit-limit"), header(&headers, "ratelimit-remaining")) {
            // Keyed by the registry as docker names it; the host is enough here.
            let host = Url::parse(url).map(|u| authority(&u)).unwrap_or_default();
            let key = if host.eq_ignore_ascii_case(super::repository::DOCKER_HUB_HOST) { "docker.io".to_string() } else { host };
            self.rate_limits.lock().unwrap_or_else(|e| e.into_inner()).insert(key, rl);
        }
        let body = if method == Method::Head {
            Vec::new()
        } else {
            // Error bodies are read (small) for the registry's message.
            let limit = if (200..300).contains(&status) { limit } else { 64 << 10 };
            // One byte past the limit tells an oversized answer from one that fits.
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut std::io::Read::take(resp.body_mut().as_reader(), limit + 1), &mut body)
                .map_err(|e| transport(ureq::Error::Io(e)))?;
            if body.len() as u64 > limit {
                if !(200..300).contains(&status) {
                    body.truncate(limit as usize); // enough of an error text
                } else {
                    return Err(Error::new(name, url, Some(status), ErrorKind::TooLarge(limit)));
                }
            }
            body
        };
        Ok(Reply { status, headers, body, url: url.to_string(), own_origin: true })
    }

    /// The error for an unexpected answer, naming the URL that gave it.
    fn fail(name: &'static str, _asked: &str, reply: &Reply) -> Error {
        let url = reply.url.as_str();
        let kind = match reply.status {
            401 => ErrorKind::Unauthorized,
            403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            429 => ErrorKind::TooManyRequests,
            _ => ErrorKind::Status,
        };
        let wait = matches!(reply.status, 429 | 503).then(|| ratelimit::retry_after(header(&reply.headers, "retry-after"))).flatten();
        Error::new(name, url, Some(reply.status), kind).with_registry_message(&reply.body).with_retry_after(wait)
    }

    /// GET `/v2/` of a registry (for `doctor`): reachable, TLS trusted, and
    /// what it asks for. `Ok(None)`: open to anonymous reads; `Ok(Some(c))`:
    /// it challenged with `c` (Basic, or Bearer with realm and service).
    pub fn ping(&self, registry: &str, tally: &Tally) -> Result<Option<Challenge>, Error> {
        let repo = Repository::new(registry, "");
        let url = format!("{}://{}/v2/", self.scheme(&repo.registry), repo.host);
        let reply = self.send_following(&repo, Method::Get, &url, None, None, 64 << 10, tally)?;
        if reply.status == 401 && !reply.own_origin {
            return Err(Self::fail("GET", &url, &reply));
        }
        match reply.status {
            200 => Ok(None),
            401 => match challenge::parse(headers(&reply.headers, "www-authenticate")) {
                Some(c) => Ok(Some(c)),
                None => Err(Error::new("GET", &url, Some(401), ErrorKind::InvalidResponse("401 without a usable challenge".into()))),
            },
            _ => Err(Self::fail("GET", &url, &reply)),
        }
    }

    /// HEAD `/v2/<name>/manifests/<reference>` with all four Accept types.
    pub fn head_manifest(&self, repo: &Repository, reference: &str, tally: &Tally) -> Result<Head, Error> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let reply = self.send(repo, Method::Head, &url, Some(manifest::ACCEPT), 0, tally)?;
        match reply.status {
            200 => {
                let digest = header(&reply.headers, "docker-content-digest").map(str::trim).filter(|d| manifest::is_digest(d));
                let Some(digest) = digest else { return Ok(Head::NoDigest) };
                Ok(Head::Found(Descriptor {
                    digest: digest.to_string(),
                    media_type: media_type(&reply.headers),
                    size: header(&reply.headers, "content-length").and_then(|s| s.trim().parse().ok()),
                }))
            }
            404 => Ok(Head::Missing),
            405 | 501 => Ok(Head::Unsupported(reply.status)),
            _ => Err(Self::fail("HEAD", &url, &reply)),
        }
    }

    /// The manifest's descriptor, by HEAD where the host serves digests on
    /// HEAD, else by GET and hashing the body (counted as a GET; the host is
    /// remembered, so its later lookups GET at once). `None`: not there.
    pub fn resolve_manifest(&self, repo: &Repository, reference: &str, tally: &Tally) -> Result<Option<Descriptor>, Error> {
        let skip_head = self.no_head.lock().unwrap_or_else(|e| e.into_inner()).contains(&repo.host);
        if !skip_head {
            match self.head_manifest(repo, reference, tally)? {
                Head::Found(d) => return Ok(Some(d)),
                Head::Missing => return Ok(None),
                Head::NoDigest | Head::Unsupported(_) => {
                    self.no_head.lock().unwrap_or_else(|e| e.into_inner()).insert(repo.host.clone());
                }
            }
        }
        Ok(self.get_manifest(repo, reference, tally)?.map(|m| m.descriptor))
    }

    /// [`Client::resolve_manifest`] of a source and a target at the same time
    /// (the second on a scoped thread): an entry's two HEADs do not wait for
    /// each other.
    pub fn resolve_pair(
        &self,
        source: (&Repository, &str),
        target: (&Repository, &str),
        tally: &Tally,
    ) -> (Result<Option<Descriptor>, Error>, Result<Option<Descriptor>, Error>) {
        std::thread::scope(|s| {
            let t = s.spawn(|| self.resolve_manifest(target.0, target.1, tally));
            let src = self.resolve_manifest(source.0, source.1, tally);
            let dst = t.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            (src, dst)
        })
    }

    /// GET `/v2/<name>/manifests/<reference>`; the body's digest must equal
    /// the reference (when it is a digest) and `Docker-Content-Digest` (when
    /// sent). `None`: not there.
    pub fn get_manifest(&self, repo: &Repository, reference: &str, tally: &Tally) -> Result<Option<Manifest>, Error> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let reply = self.send(repo, Method::Get, &url, Some(manifest::ACCEPT), self.config.max_manifest_bytes, tally)?;
        match reply.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(Self::fail("GET", &url, &reply)),
        }
        let announced = header(&reply.headers, "docker-content-digest").map(str::trim).filter(|d| manifest::is_digest(d));
        let asked = manifest::is_digest(reference).then_some(reference);
        let actual = manifest::digest_of(&reply.body, asked.or(announced));
        for expected in [asked, announced].into_iter().flatten() {
            if expected != actual {
                let kind = ErrorKind::DigestMismatch { expected: expected.to_string(), actual };
                return Err(Error::new("GET", &url, Some(200), kind));
            }
        }
        let size = Some(reply.body.len() as u64);
        Ok(Some(Manifest { descriptor: Descriptor { digest: actual, media_type: media_type(&reply.headers), size }, bytes: reply.body }))
    }

    /// GET `/v2/<name>/referrers/<digest>` (OCI distribution 1.1): the index
    /// of manifests whose `subject` is `digest`, as sent. `None`: the registry
    /// has no referrers API (404; a registry with it answers an empty index).
    /// One page: a registry pages only past thousands of referrers.
    pub fn get_referrers(&self, repo: &Repository, digest: &str, tally: &Tally) -> Result<Option<Vec<u8>>, Error> {
        let url = self.url(repo, &format!("referrers/{digest}"));
        let reply = self.send(repo, Method::Get, &url, Some(manifest::OCI_INDEX), self.config.max_manifest_bytes, tally)?;
        match reply.status {
            200 => Ok(Some(reply.body)),
            404 => Ok(None),
            _ => Err(Self::fail("GET", &url, &reply)),
        }
    }

    /// GET `/v2/<name>/blobs/<digest>` of a small blob (an image config, up
    /// to `max_manifest_bytes`), verified against the digest. `None`: not there.
    pub fn get_blob(&self, repo: &Repository, digest: &str, tally: &Tally) -> Result<Option<Vec<u8>>, Error> {
        let url = self.url(repo, &format!("blobs/{digest}"));
        let reply = self.send(repo, Method::Get, &url, None, self.config.max_manifest_bytes, tally)?;
        match reply.status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(Self::fail("GET", &url, &reply)),
        }
        let actual = manifest::digest_of(&reply.body, Some(digest));
        if actual != digest {
            return Err(Error::new("GET", &url, Some(200), ErrorKind::DigestMismatch { expected: digest.to_string(), actual }));
        }
        Ok(Some(reply.body))
    }

    /// All tags of a repository, following `Link: <...>; rel="next"` (absolute
    /// or relative, same origin only) up to `max_tag_pages` pages. Bounded:
    /// each page to `max_tag_page_bytes`, all pages to `max_tag_bytes` and
    /// `max_tags` tags, and the whole listing to `tag_list_deadline`.
    pub fn list_tags(&self, repo: &Repository, tally: &Tally) -> Result<Vec<String>, Error> {
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(default)]
            tags: Option<Vec<String>>,
        }
        let started = Instant::now();
        let cfg = &self.config;
        let mut url = self.url(repo, &format!("tags/list?n={}", cfg.tag_page_size));
        let origin = parse_url("GET", &url)?.origin();
        let mut tags: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut bytes = 0u64;
        let too_large = |url: &str, what: String| Error::new("GET", url, Some(200), ErrorKind::TagListTooLarge(format!("the tag list of {repo} is refused: {what}").into()));
        for _ in 0..cfg.max_tag_pages {
            if started.elapsed() > cfg.tag_list_deadline {
                return Err(too_large(&url, format!("took longer than {}s", cfg.tag_list_deadline.as_secs_f32())));
            }
            let reply = match self.send(repo, Method::Get, &url, Some("application/json"), cfg.max_tag_page_bytes, tally) {
                Err(e) if matches!(e.kind, ErrorKind::TooLarge(_)) => {
                    return Err(too_large(&e.url, format!("a page is larger than {}", mib(cfg.max_tag_page_bytes))))
                }
                r => r?,
            };
            if reply.status != 200 {
                return Err(Self::fail("GET", &url, &reply));
            }
            bytes += reply.body.len() as u64;
            if bytes > cfg.max_tag_bytes {
                return Err(too_large(&reply.url, format!("the pages add up to more than {}", mib(cfg.max_tag_bytes))));
            }
            let page: Page = serde_json::from_slice(&reply.body)
                .map_err(|e| Error::new("GET", &reply.url, Some(200), ErrorKind::InvalidResponse(format!("tag list: {e}"))))?;
            // Invalid and repeated tags are dropped per page: only tags a
            // selection could use are kept (and counted).
            for t in page.tags.unwrap_or_default() {
                if crate::reference::is_valid_tag(&t) && seen.insert(t.clone()) {
                    tags.push(t);
                }
            }
            if tags.len() > cfg.max_tags {
                return Err(too_large(&reply.url, format!("it lists more than {} tags", cfg.max_tags)));
            }
            let Some(next) = link::next(&headers(&reply.headers, "link")) else { return Ok(tags) };
            let next = link::resolve(&reply.url, &next).filter(|n| n.origin() == origin).ok_or_else(|| {
                Error::new("GET", &reply.url, Some(200), ErrorKind::InvalidResponse("the next page is on another host".into()))
            })?;
            url = next.to_string();
        }
        Err(Error::new("GET", &url, None, ErrorKind::TooManyPages(cfg.max_tag_pages)))
    }

    /// Preset checks (issue 22): the raw Bearer token the registry's token
    /// service issues for `actions` (e.g. `pull,push`) on `repo`, with the
    /// run's credential, so the caller can read what was granted. `Ok(None)`:
    /// the registry does not use Bearer tokens. Nothing is pushed.
    pub fn token_for_actions(&self, repo: &Repository, actions: &str, tally: &Tally) -> Result<Option<String>, Error> {
        let Some(Challenge::Bearer { realm, service, .. }) = self.ping(&repo.registry, tally)? else { return Ok(None) };
        let realm_url = parse_url("GET", &realm)?;
        realm_allows(&realm_url, &repo.registry, &self.config.insecure_registries).map_err(|kind| Error::new("GET", &realm, None, kind))?;
        let credential = self.credential(repo, "GET", &realm)?;
        let scope = format!("repository:{}:{actions}", repo.name);
        self.fetch_token_as(&[scope], &realm, service.as_deref(), credential.as_ref(), tally).map(|t| Some(t.value))
    }

    /// Preset checks: the status of a HEAD of `path_and_query` (e.g.
    /// `/api/v2.0/projects?project_name=p`) on the registry's own origin,
    /// with the run's Basic credential for it if any. Redirects are not followed.
    pub fn head_status(&self, registry: &str, path_and_query: &str, tally: &Tally) -> Result<u16, Error> {
        let repo = Repository::new(registry, "");
        let url = format!("{}://{}{path_and_query}", self.scheme(&repo.registry), repo.host);
        let auth = match self.credential(&repo, "HEAD", &url)? {
            Some(Credential::Basic { username, password }) => Some(token::basic_header(&username, &password)),
            _ => None,
        };
        let parsed = parse_url("HEAD", &url)?;
        let agent = self.agent_for("HEAD", &parsed, &repo.host)?;
        Ok(self.send_once(&agent, Method::Head, &url, None, auth.as_deref(), 0, tally)?.status)
    }

    /// Preset checks (GHCR visibility): the status of an anonymous HEAD of a
    /// manifest, with an anonymous token when the registry asks for one, as
    /// a server without credentials would see it.
    pub fn anonymous_manifest_status(&self, repo: &Repository, reference: &str, tally: &Tally) -> Result<u16, Error> {
        let url = self.url(repo, &format!("manifests/{reference}"));
        let reply = self.send_following(repo, Method::Head, &url, Some(manifest::ACCEPT), None, 0, tally)?;
        if reply.status != 401 || !reply.own_origin {
            return Ok(reply.status);
        }
        let Some(Challenge::Bearer { realm, service, .. }) = challenge::parse(headers(&reply.headers, "www-authenticate")) else { return Ok(401) };
        let realm_url = parse_url("GET", &realm)?;
        realm_allows(&realm_url, &repo.registry, &self.config.insecure_registries).map_err(|kind| Error::new("GET", &realm, None, kind))?;
        let t = match self.fetch_token_as(&[repo.pull_scope()], &realm, service.as_deref(), None, tally) {
            Ok(t) => t,
            Err(e) if matches!(e.kind, ErrorKind::Unauthorized | ErrorKind::Denied) => return Ok(e.status.unwrap_or(401)),
            Err(e) => return Err(e),
        };
        let auth = format!("Bearer {}", t.value);
        Ok(self.send_following(repo, Method::Head, &url, Some(manifest::ACCEPT), Some(&auth), 0, tally)?.status)
    }
}

fn mib(bytes: u64) -> String {
    format!("{} MiB", bytes >> 20)
}

/// Same scheme, realm and service (the scope may name other actions).
fn same_realm(a: Option<&Challenge>, b: &Challenge) -> bool {
    match (a, b) {
        (Some(Challenge::Basic), Challenge::Basic) => true,
        (Some(Challenge::Bearer { realm: r1, service: s1, .. }), Challenge::Bearer { realm: r2, service: s2, .. }) => r1 == r2 && s1 == s2,
        _ => false,
    }
}

fn media_type(h: &HeaderMap) -> String {
    header(h, "content-type").map(|t| t.split(';').next().unwrap_or(t).trim().to_string()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_drop_queries_and_userinfo() {
        let ms = Duration::from_millis(12);
        let presigned = "https://storage.example/blobs/sha256:ab?X-Amz-Signature=secret&X-Amz-Credential=AKIA";
        assert_eq!(request_line("GET", presigned, Ok(200), ms), "GET https://storage.example/blobs/sha256:ab → 200 (12 ms)");
        let token = "https://u:p@auth.example/token?account=me&scope=repository:a:pull";
        assert_eq!(request_line("GET", token, Err("timeout: connect".into()), ms), "GET https://auth.example/token → timeout: connect");
    }

    #[test]
    fn a_registry_that_keeps_timing_out_is_given_up() {
        let c = Client::new(ClientConfig { unreachable_after: 2, ..Default::default() }, Credentials::anonymous());
        let timeout = || Err(Error::new("HEAD", "http://r/v2/", None, ErrorKind::Transport("timeout: receive response".into())));
        c.note_outcome("r:1", &timeout());
        assert!(!c.is_unreachable("r:1"));
        c.note_outcome("r:1", &Ok(Reply { status: 200, headers: HeaderMap::new(), body: vec![], url: "http://r/v2/".into(), own_origin: true }));
        c.note_outcome("r:1", &timeout());
        assert!(!c.is_unreachable("r:1"), "an answer in between starts the count again");
        c.note_outcome("r:1", &Err(Error::new("HEAD", "http://r/v2/", None, ErrorKind::Transport("connection refused".into()))));
        c.note_outcome("r:1", &timeout());
        assert!(c.is_unreachable("r:1") && !c.is_unreachable("other:1"));
        // Never, when not asked for.
        let c = Client::new(ClientConfig::default(), Credentials::anonymous());
        (0..10).for_each(|_| c.note_outcome("r:1", &timeout()));
        assert!(!c.is_unreachable("r:1"));
    }

    #[test]
    fn client_is_shared_across_threads() {
        fn sync<T: Send + Sync>() {}
        sync::<Client>();
    }

    #[test]
    fn urls_and_schemes() {
        let c = Client::new(ClientConfig { insecure_registries: vec!["lan:5000".into()], ..Default::default() }, Credentials::anonymous());
        let hub = Repository::new("docker.io", "nginx");
        assert_eq!(c.url(&hub, "manifests/alpine"), "https://registry-1.docker.io/v2/library/nginx/manifests/alpine");
        assert_eq!(c.url(&Repository::new("127.0.0.1:5000", "a/b"), "tags/list"), "http://127.0.0.1:5000/v2/a/b/tags/list");
        assert_eq!(c.url(&Repository::new("lan:5000", "a"), "x"), "http://lan:5000/v2/a/x");
        assert_eq!(authority(&Url::parse("https://h:1/v2/x?y").unwrap()), "h:1");
        assert_eq!(authority(&Url::parse("http://[::1]:5000/v2/").unwrap()), "[::1]:5000");
    }

    #[test]
    fn plain_http_is_refused_for_other_hosts() {
        let c = Client::new(ClientConfig::default(), Credentials::anonymous());
        let repo = Repository::new("ghcr.io", "o/i");
        let t = Tally::default();
        let e = c.send(&repo, Method::Get, "http://ghcr.io/v2/o/i/tags/list", None, 10, &t).err().unwrap();
        assert_eq!(e.kind, ErrorKind::PlainHttpRefused);
        assert_eq!(t.snapshot().total(), 0, "nothing was sent");
    }
}
