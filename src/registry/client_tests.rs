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

#[test]
fn referrers_are_an_index_or_none_without_the_api() {
    let s = Server::start(|r| match r.path() {
        p if p.starts_with("/v2/with/referrers/") => reply(200, &[("content-type", manifest::OCI_INDEX)], BODY),
        _ => reply(404, &[], b"404 page not found\n"),
    });
    let c = client();
    let t = Tally::default();
    assert_eq!(c.get_referrers(&Repository::new(&s.host(), "with"), D1, &t).unwrap().as_deref(), Some(BODY));
    assert_eq!(c.get_referrers(&Repository::new(&s.host(), "without"), D1, &t).unwrap(), None, "distribution 2.8 has no such route");
    let asked = s.requests();
    assert_eq!(asked[0].target, format!("/v2/with/referrers/{D1}"));
    assert_eq!(asked[0].header("accept"), Some(manifest::OCI_INDEX));
    assert_eq!(t.snapshot().get, 2);
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

// --- Issue 19: one origin rule, bounded tag lists -------------------------

#[test]
fn a_redirect_target_cannot_challenge_for_the_registry() {
    // Audit 2 #1: A redirects to B; B answers 401 naming C's realm. The
    // challenge is B's, not A's: A's credentials never go to C.
    let c_srv = Server::start(|_| reply(200, &[], br#"{"token":"cdn-token"}"#));
    let realm = format!(r#"Bearer realm="http://{}/token",service="cdn""#, c_srv.host());
    let b_srv = Server::start(move |_| reply(401, &[("www-authenticate", realm.as_str())], b""));
    let b_host = b_srv.host();
    let a_srv = Server::start(move |r| reply(307, &[("location", &format!("http://{b_host}{}", r.target))], b""));
    let creds = Credentials::anonymous().with(&a_srv.host(), Credential::Basic { username: "alice".into(), password: "s3cr3t-A".into() });
    let c = Client::new(ClientConfig::default(), creds);
    let t = Tally::default();
    let repo = Repository::new(&a_srv.host(), "app");
    let e = c.head_manifest(&repo, "v1", &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    assert!(c_srv.requests().is_empty(), "the redirect target's realm got a request: {:?}", c_srv.requests());
    assert!(b_srv.requests().iter().all(|r| r.header("authorization").is_none()), "no credentials cross origins");
    // A later request to A does not use the poisoned challenge either.
    let _ = c.head_manifest(&repo, "v2", &t);
    assert!(c_srv.requests().is_empty());
}

#[test]
fn a_same_origin_redirect_keeps_authenticating() {
    let s = Server::start(|r| {
        if r.path().ends_with("/old") {
            return reply(308, &[("location", "/v2/a/manifests/new")], b"");
        }
        if r.header("authorization") == Some(token::basic_header("u", "p").as_str()) {
            reply(200, &[("docker-content-digest", D1)], b"")
        } else {
            reply(401, &[("www-authenticate", r#"Basic realm="r""#)], b"")
        }
    });
    let creds = Credentials::anonymous().with(&s.host(), Credential::Basic { username: "u".into(), password: "p".into() });
    let c = Client::new(ClientConfig::default(), creds);
    let t = Tally::default();
    assert!(matches!(c.head_manifest(&Repository::new(&s.host(), "a"), "old", &t).unwrap(), Head::Found(_)));
}

#[test]
fn redirects_never_downgrade_and_never_carry_user_info() {
    use super::client::check_redirect;
    let u = |s: &str| url::Url::parse(s).unwrap();
    let none: Vec<String> = Vec::new();
    // Audit 2 #4: https -> http is refused, even to loopback.
    for to in ["http://evil.test/v2/x", "http://127.0.0.1:5000/v2/x"] {
        let e = check_redirect(&u("https://reg.test/v2/x"), &u(to), &none).unwrap_err();
        assert_eq!(e, ErrorKind::PlainHttpRefused, "{to}");
    }
    // Plain HTTP onward only to a host that gets plain HTTP anyway.
    assert_eq!(check_redirect(&u("http://127.0.0.1:1/v2/x"), &u("http://evil.test/x"), &none).unwrap_err(), ErrorKind::PlainHttpRefused);
    assert!(check_redirect(&u("http://127.0.0.1:1/v2/x"), &u("http://127.0.0.1:2/x"), &none).is_ok());
    assert!(check_redirect(&u("http://lan:5000/v2/x"), &u("http://lan:5000/x"), &["lan:5000".to_string()]).is_ok());
    assert!(check_redirect(&u("http://127.0.0.1:1/v2/x"), &u("https://cdn.test/blob?sig=1"), &none).is_ok());
    assert!(check_redirect(&u("https://reg.test/v2/x"), &u("https://cdn.test/blob"), &none).is_ok());
    assert!(check_redirect(&u("https://reg.test/v2/x"), &u("https://u:p@cdn.test/blob"), &none).is_err());
    assert!(check_redirect(&u("https://reg.test/v2/x"), &u("ftp://cdn.test/blob"), &none).is_err());
}

#[test]
fn token_realms_are_parsed_as_urls() {
    use super::client::realm_allows;
    let u = |s: &str| url::Url::parse(s).unwrap();
    let none: Vec<String> = Vec::new();
    // Audit 2 #5: user info before the host is refused outright.
    assert!(realm_allows(&u("http://localhost:80@evil.test/token"), "127.0.0.1:5000", &none).is_err());
    assert!(realm_allows(&u("https://user@auth.test/token"), "reg.test", &none).is_err());
    // Plain HTTP realms only for a plain-HTTP registry, and only to a host that gets plain HTTP.
    assert!(realm_allows(&u("http://127.0.0.1:9/token"), "127.0.0.1:5000", &none).is_ok());
    assert!(realm_allows(&u("http://evil.test/token"), "127.0.0.1:5000", &none).is_err());
    // As docker: a loopback token server over plain HTTP serves an https registry too.
    assert!(realm_allows(&u("http://localhost:9/token"), "reg.test", &none).is_ok());
    assert!(realm_allows(&u("http://evil.test/token"), "reg.test", &none).is_err());
    assert!(realm_allows(&u("http://lan:5000/token"), "lan:5000", &["lan:5000".to_string()]).is_ok());
    assert!(realm_allows(&u("https://auth.docker.io/token"), "docker.io", &none).is_ok());
    assert!(realm_allows(&u("file:///etc/passwd"), "docker.io", &none).is_err());
}

#[test]
fn error_text_names_only_hosts_contacted() {
    // Audit 2 #12: `#@` made the error name a host never asked.
    let other = Server::start(|_| reply(404, &[], b""));
    let other_port = other.port;
    let s = Server::start(move |r| {
        if r.query("last").is_some() || r.target == "/" {
            return reply(404, &[], b"");
        }
        let host = r.header("host").unwrap().to_string();
        let link = format!(r#"<http://{host}#@127.0.0.1:{other_port}/v2/x/tags/list?last=a>; rel="next""#);
        reply(200, &[("link", &link)], br#"{"tags":["a"]}"#)
    });
    let e = client().list_tags(&Repository::new(&s.host(), "x"), &Tally::default()).unwrap_err();
    assert!(!e.to_string().contains(&other_port.to_string()), "{e}");
    assert!(other.requests().is_empty());
}

fn big_page(tags: usize, prefix: &str) -> Vec<u8> {
    let mut body = String::with_capacity(tags * 8 + 32);
    body.push_str(r#"{"name":"x","tags":["#);
    for i in 0..tags {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"{prefix}t{i}\""));
    }
    body.push_str("]}");
    body.into_bytes()
}

#[test]
fn an_oversized_tag_page_is_refused_naming_the_repository() {
    // Audit 2 #3: a page of 6 MiB (64 MiB were read before).
    let body = Arc::new(big_page(700_000, ""));
    assert!(body.len() > 6 << 20);
    let s = Server::start(move |_| reply(200, &[], &body));
    let e = client().list_tags(&Repository::new(&s.host(), "team/x"), &Tally::default()).unwrap_err();
    let text = e.to_string();
    assert!(text.contains("team/x") && text.contains("MiB"), "{text}");
}

#[test]
fn tag_count_and_bytes_are_capped_across_pages() {
    // 40,000 tags a page, endless: stops at the total tag cap (100,000), not at 100 pages.
    let s = Server::start(move |r| {
        let page: usize = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        let body = big_page(40_000, &format!("p{page}-"));
        reply(200, &[("link", &format!(r#"</v2/x/tags/list?page={}>; rel="next""#, page + 1))], &body)
    });
    let t = Tally::default();
    let e = client().list_tags(&Repository::new(&s.host(), "x"), &t).unwrap_err();
    assert!(e.to_string().contains("100000 tags"), "{e}");
    assert!(t.snapshot().get <= 3, "{:?}", t.snapshot());
    // The same tags on every page are counted once, and the bytes still end it.
    let same = Arc::new(big_page(40_000, ""));
    let s = Server::start(move |r| {
        let page: usize = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        reply(200, &[("link", &format!(r#"</v2/x/tags/list?page={}>; rel="next""#, page + 1))], &same)
    });
    let e = client().list_tags(&Repository::new(&s.host(), "x"), &Tally::default()).unwrap_err();
    assert!(e.to_string().contains("more than 16 MiB"), "{e}");
}

#[test]
fn a_tag_listing_has_a_deadline() {
    let s = Server::start(|r| {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let page: usize = r.query("page").and_then(|p| p.parse().ok()).unwrap_or(0);
        reply(200, &[("link", &format!(r#"</v2/x/tags/list?page={}>; rel="next""#, page + 1))], br#"{"tags":["a"]}"#)
    });
    let c = Client::new(ClientConfig { tag_list_deadline: std::time::Duration::from_millis(350), ..Default::default() }, Credentials::anonymous());
    let start = std::time::Instant::now();
    let e = c.list_tags(&Repository::new(&s.host(), "x"), &Tally::default()).unwrap_err();
    assert!(start.elapsed() < std::time::Duration::from_secs(2), "{:?}", start.elapsed());
    assert!(e.to_string().contains("took longer than"), "{e}");
}

#[test]
fn a_cancelled_run_sends_no_further_request() {
    let s = pager(1000, |n| format!(r#"</v2/a/tags/list?page={n}>; rel="next""#));
    let cancel = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let c = Client::new(ClientConfig { cancel: Some(cancel), ..Default::default() }, Credentials::anonymous());
    let e = c.list_tags(&Repository::new(&s.host(), "a"), &Tally::default()).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Interrupted);
    assert!(s.requests().is_empty());
}
