//! The client's flows against canned answers (recorded shapes of
//! distribution, Docker Hub, Harbor, GHCR): authentication, Accept, fallbacks,
//! digest checks, paging, rate limits, and the exact requests sent.

use std::sync::Arc;

use super::client::Head;
use super::credentials::tests::FakeHelper;
use super::testserver::{reply, Request, Server};
use super::*;

const D1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";
const BODY: &[u8] = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;

fn body_digest() -> String {
    manifest::digest_of(BODY, None)
}

fn client() -> Client {
    Client::new(ClientConfig::default(), Credentials::anonymous())
}

fn bearer_ok(r: &Request) -> bool {
    r.header("authorization").is_some_and(|a| a.starts_with("Bearer tok-"))
}

/// A token-auth registry like Harbor (challenge without scope) whose token
/// endpoint is on the same server; tokens name the scope they were given for.
fn harbor() -> Server {
    Server::start(|r| {
        if r.path() == "/service/token" {
            let scope = r.query("scope").unwrap_or_default();
            let user = r.header("authorization").map(|_| "user").unwrap_or("anon");
            return reply(200, &[], format!(r#"{{"token":"tok-{user}-{scope}","expires_in":1800}}"#).as_bytes());
        }
        if !bearer_ok(r) {
            let realm = format!("http://{}/service/token", r.header("host").unwrap());
            let challenge = format!(r#"Bearer realm="{realm}",service="harbor-registry""#);
            return reply(401, &[("www-authenticate", &challenge)], br#"{"errors":[{"code":"UNAUTHORIZED","message":"unauthorized"}]}"#);
        }
        // The token must be for this repository.
        let repo = r.path().trim_start_matches("/v2/").split("/manifests/").next().unwrap().to_string();
        if !r.header("authorization").unwrap().ends_with(&format!("repository:{repo}:pull")) {
            return reply(401, &[("www-authenticate", r#"Bearer realm="x""#)], b"");
        }
        if r.path().ends_with("/missing") {
            return reply(404, &[("content-type", "application/json")], br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#);
        }
        reply(200, &[("docker-content-digest", D1), ("content-type", manifest::OCI_INDEX)], BODY)
    })
}

#[test]
fn bearer_flow_builds_the_scope_and_caches_tokens_per_repository() {
    let s = harbor();
    let c = client();
    let a = Repository::new(&s.host(), "proj/a");
    let t = Tally::default();
    let head = c.head_manifest(&a, "v1", &t).unwrap();
    assert_eq!(head, Head::Found(Descriptor { digest: D1.into(), media_type: manifest::OCI_INDEX.into(), size: Some(BODY.len() as u64) }));
    // 401, token, HEAD again.
    assert_eq!(t.snapshot(), Counts { head: 2, get: 0, token: 1 });
    let reqs = s.requests();
    let tok = &reqs[1];
    assert_eq!(tok.method, "GET");
    assert_eq!(tok.query("service").as_deref(), Some("harbor-registry"));
    assert_eq!(tok.query("scope").as_deref(), Some("repository:proj/a:pull"), "built although the challenge had none");
    assert_eq!(tok.header("authorization"), None, "anonymous");

    // Same repository: the cached token goes up front.
    let t2 = Tally::default();
    assert!(matches!(c.head_manifest(&a, "v2", &t2).unwrap(), Head::Found(_)));
    assert_eq!(t2.snapshot(), Counts { head: 1, get: 0, token: 0 });
    // Another repository on the known host: its token first, no 401.
    let b = Repository::new(&s.host(), "proj/b");
    let t3 = Tally::default();
    assert_eq!(c.head_manifest(&b, "missing", &t3).unwrap(), Head::Missing);
    assert_eq!(t3.snapshot(), Counts { head: 1, get: 0, token: 1 });
    assert_eq!(c.totals(), Counts { head: 4, get: 0, token: 2 });
}

#[test]
fn accept_carries_all_four_types_on_head_and_get() {
    let s = harbor();
    let c = client();
    let a = Repository::new(&s.host(), "x");
    let t = Tally::default();
    c.head_manifest(&a, "v1", &t).unwrap();
    let err = c.get_manifest(&a, "v1", &t).unwrap_err();
    // The canned registry announces D1, which is not the body's digest.
    assert_eq!(err.kind, ErrorKind::DigestMismatch { expected: D1.into(), actual: body_digest() });
    for r in s.requests().iter().filter(|r| r.path().contains("/manifests/")) {
        let accept = r.header("accept").unwrap();
        for ty in [manifest::OCI_INDEX, manifest::OCI_MANIFEST, manifest::DOCKER_LIST, manifest::DOCKER_MANIFEST] {
            assert!(accept.contains(ty), "{} lacks {ty}: {accept}", r.method);
        }
    }
}

#[test]
fn basic_credentials_on_the_token_request_and_identity_tokens_by_post() {
    let s = harbor();
    let helper = FakeHelper::default().answer("store", &s.host(), "robot$ci", "secret");
    let cfg = DockerConfig::parse(br#"{"credsStore":"store"}"#).unwrap();
    let c = Client::new(ClientConfig::default(), Credentials::new(cfg, Box::new(helper)));
    let t = Tally::default();
    c.head_manifest(&Repository::new(&s.host(), "p/a"), "v1", &t).unwrap();
    let tok = s.requests().into_iter().find(|r| r.path() == "/service/token").unwrap();
    assert_eq!(tok.header("authorization"), Some(token::basic_header("robot$ci", "secret").as_str()));
    assert_eq!(tok.query("account").as_deref(), Some("robot$ci"));

    // An identity token: POST grant_type=refresh_token; nothing in the URL.
    let s2 = Server::start(|r| {
        if r.path() == "/oauth2/token" {
            assert_eq!(r.method, "POST");
            assert!(r.body.contains("grant_type=refresh_token") && r.body.contains("refresh_token=rt-secret"), "{}", r.body);
            return reply(200, &[], br#"{"access_token":"tok-id"}"#);
        }
        if r.header("authorization") == Some("Bearer tok-id") {
            return reply(200, &[("docker-content-digest", D1)], b"");
        }
        let challenge = format!(r#"Bearer realm="http://{}/oauth2/token",service="acr""#, r.header("host").unwrap());
        reply(401, &[("www-authenticate", &challenge)], b"")
    });
    let creds = Credentials::anonymous().with(&s2.host(), Credential::IdentityToken { username: None, token: "rt-secret".into() });
    let c = Client::new(ClientConfig::default(), creds);
    let t = Tally::default();
    assert!(matches!(c.head_manifest(&Repository::new(&s2.host(), "a"), "v1", &t).unwrap(), Head::Found(_)));
    assert_eq!(t.snapshot(), Counts { head: 2, get: 0, token: 1 });
    assert!(s2.requests().iter().all(|r| !r.target.contains("rt-secret")));
}

#[test]
fn basic_auth_registry_gets_credentials_after_the_first_challenge() {
    let s = Server::start(|r| {
        if r.header("authorization") == Some(token::basic_header("u", "p").as_str()) {
            reply(200, &[("docker-content-digest", D1)], b"")
        } else {
            reply(401, &[("www-authenticate", r#"Basic realm="imgsync-test""#)], b"")
        }
    });
    let creds = Credentials::anonymous().with(&s.host(), Credential::Basic { username: "u".into(), password: "p".into() });
    let c = Client::new(ClientConfig::default(), creds);
    let t = Tally::default();
    let r = Repository::new(&s.host(), "a");
    c.head_manifest(&r, "v1", &t).unwrap();
    c.head_manifest(&r, "v2", &t).unwrap();
    assert_eq!(t.snapshot(), Counts { head: 3, get: 0, token: 0 });
    // Without credentials: one request, then unauthorized.
    let c = client();
    let t = Tally::default();
    let e = c.head_manifest(&r, "v1", &t).unwrap_err();
    assert_eq!((e.kind, e.status), (ErrorKind::Unauthorized, Some(401)));
    assert_eq!(t.snapshot().head, 1);
}

#[test]
fn a_refused_token_is_retried_once_not_forever() {
    // GHCR answers a private package's anonymous token with a token that
    // does not grant it: the registry keeps saying 401.
    let s = Server::start(|r| {
        if r.path() == "/token" {
            return reply(200, &[], br#"{"token":"tok-useless"}"#);
        }
        let challenge = format!(r#"Bearer realm="http://{}/token",service="ghcr.io",scope="repository:o/private:pull""#, r.header("host").unwrap());
        reply(401, &[("www-authenticate", &challenge)], br#"{"errors":[{"code":"UNAUTHORIZED","message":"\u001b[2Jauthentication required"}]}"#)
    });
    let c = client();
    let t = Tally::default();
    let e = c.head_manifest(&Repository::new(&s.host(), "o/private"), "v1", &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized);
    assert!(!e.to_string().contains("authentication required"), "registry text is not printed: {e}");
    assert_eq!(t.snapshot(), Counts { head: 2, get: 0, token: 1 });
}

#[test]
fn head_without_digest_or_unsupported_falls_back_to_get_once_per_host() {
    for head_status in [200u16, 405, 501] {
        let s = Server::start(move |r| {
            if r.method == "HEAD" {
                return reply(head_status, &[("content-type", manifest::OCI_INDEX)], b"");
            }
            reply(200, &[("content-type", manifest::OCI_INDEX)], BODY)
        });
        let c = client();
        let repo = Repository::new(&s.host(), "a");
        let t = Tally::default();
        let d = c.resolve_manifest(&repo, "v1", &t).unwrap().unwrap();
        assert_eq!(d.digest, body_digest(), "hashed from the body");
        assert_eq!(t.snapshot(), Counts { head: 1, get: 1, token: 0 }, "HEAD {head_status}");
        // The host is known now: straight to GET.
        let t = Tally::default();
        c.resolve_manifest(&repo, "v2", &t).unwrap().unwrap();
        assert_eq!(t.snapshot(), Counts { head: 0, get: 1, token: 0 });
    }
}

#[test]
fn get_verifies_the_asked_digest_and_a_missing_manifest_is_none() {
    let digest = body_digest();
    let s = Server::start(|r| {
        if r.path().ends_with("/gone") {
            return reply(404, &[], b"");
        }
        reply(200, &[("content-type", "application/vnd.oci.image.index.v1+json; charset=utf-8")], BODY)
    });
    let c = client();
    let repo = Repository::new(&s.host(), "a");
    let t = Tally::default();
    let m = c.get_manifest(&repo, &digest, &t).unwrap().unwrap();
    assert_eq!((m.descriptor.digest.as_str(), m.descriptor.media_type.as_str()), (digest.as_str(), manifest::OCI_INDEX));
    assert!(m.descriptor.is_index());
    let e = c.get_manifest(&repo, D1, &t).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::DigestMismatch { .. }));
    assert_eq!(c.get_manifest(&repo, "gone", &t).unwrap(), None);
    assert_eq!(c.resolve_manifest(&repo, "gone", &t).unwrap(), None);
}

fn pager(pages: usize, link: fn(usize) -> String) -> Server {
    Server::start(move |r| {
        let page: usize = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let body = format!(r#"{{"name":"a","tags":["t{page}a","t{page}b"]}}"#);
        if page + 1 < pages {
            reply(200, &[("link", &link(page + 1))], body.as_bytes())
        } else {
            reply(200, &[], body.as_bytes())
        }
    })
}

#[test]
fn tags_follow_absolute_and_relative_links() {
    let s = pager(3, |n| format!(r#"</v2/a/tags/list?n=2&page={n}>; rel="next""#));
    let c = client();
    let t = Tally::default();
    let tags = c.list_tags(&Repository::new(&s.host(), "a"), &t).unwrap();
    assert_eq!(tags, ["t0a", "t0b", "t1a", "t1b", "t2a", "t2b"]);
    assert_eq!(t.snapshot(), Counts { head: 0, get: 3, token: 0 });
    assert_eq!(s.requests()[0].target, "/v2/a/tags/list?n=1000");
    // Relative to the page (Quay's style of opaque next pages).
    let s = pager(2, |n| format!(r#"<list?page={n}>; rel="next""#));
    assert_eq!(c.list_tags(&Repository::new(&s.host(), "a"), &t).unwrap().len(), 4);
    assert_eq!(s.requests()[1].target, "/v2/a/tags/list?page=1");
}

#[test]
fn tag_paging_is_capped_and_stays_on_the_host() {
    let s = pager(1000, |n| format!(r#"</v2/a/tags/list?page={n}>; rel="next""#));
    let c = Client::new(ClientConfig { max_tag_pages: 5, ..Default::default() }, Credentials::anonymous());
    let t = Tally::default();
    let e = c.list_tags(&Repository::new(&s.host(), "a"), &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooManyPages(5));
    assert_eq!(t.snapshot().get, 5);
    let s = pager(2, |_| r#"<http://198.51.100.7/v2/a/tags/list?page=1>; rel="next""#.to_string());
    let e = c.list_tags(&Repository::new(&s.host(), "a"), &t).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::InvalidResponse(_)), "{e}");
}

#[test]
fn rate_limits_are_kept_per_registry() {
    let s = Server::start(|_| {
        reply(200, &[("docker-content-digest", D1), ("ratelimit-limit", "100;w=21600"), ("ratelimit-remaining", "98;w=21600")], b"")
    });
    let c = client();
    c.head_manifest(&Repository::new(&s.host(), "a"), "v1", &Tally::default()).unwrap();
    assert_eq!(c.rate_limit(&s.host()), Some(RateLimit { limit: 100, remaining: 98, window_s: Some(21600) }));
    assert_eq!(c.rate_limits().len(), 1);
}

#[test]
fn parallel_heads_share_tokens_and_connections() {
    let s = Arc::new(harbor());
    let c = client();
    let repo = Repository::new(&s.host(), "p/a");
    let t = Tally::default();
    // A cold start: the first request to the host learns the challenge while
    // the others wait, so exactly one 401 and one token.
    std::thread::scope(|sc| {
        for i in 0..8 {
            let (c, repo, t) = (&c, &repo, &t);
            sc.spawn(move || {
                for j in 0..5 {
                    c.head_manifest(repo, &format!("v{i}-{j}"), t).unwrap();
                }
            });
        }
    });
    assert_eq!(t.snapshot(), Counts { head: 1 + 40, get: 0, token: 1 });
    assert!(s.connections() <= 9, "connections are reused: {}", s.connections());
}

#[test]
fn a_cold_start_waits_for_one_request_not_for_each_other() {
    // Each answer takes 100 ms: 8 threads' first requests take about 200 ms
    // (the learning one, then the rest at once), not 800 ms.
    let s = Server::start(|_| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        reply(200, &[("docker-content-digest", D1)], b"")
    });
    let c = client();
    let repo = Repository::new(&s.host(), "a");
    let start = std::time::Instant::now();
    std::thread::scope(|sc| {
        for i in 0..8 {
            let (c, repo) = (&c, &repo);
            sc.spawn(move || c.head_manifest(repo, &format!("v{i}"), &Tally::default()).unwrap());
        }
    });
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_millis(600), "{took:?}");
}
