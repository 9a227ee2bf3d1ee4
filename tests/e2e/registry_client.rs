//! The registry client against the real distribution registry
//! (`docker-registry serve`): plain HTTP on loopback, htpasswd Basic, token
//! auth with the test token server, and TLS with a private CA on a
//! non-loopback address in a network namespace. Each test asserts the exact
//! requests sent, as the client counts them and as the registry (its
//! Prometheus metrics) and the token server saw them.


use base64::Engine as _;
use crate::common::pki::Pki;
use crate::common::secure_registry::{Listen, SecureOptions, SecureRegistry};
use crate::common::token_server::{TokenConfig, TokenServer};
use crate::common::docker_wrapper::is_root;
use crate::common::*;
use imgsync::registry::client::Head;
use imgsync::registry::{Client, ClientConfig, Counts, Credential, Credentials, DockerConfig, ErrorKind, Repository, Tally};

fn client_with(credentials: Credentials, certs_dir: Option<&std::path::Path>) -> Client {
    let certs_dir = certs_dir.map_or_else(|| std::path::PathBuf::from("/nonexistent-certs.d"), |d| d.to_path_buf());
    Client::new(ClientConfig { certs_dir, ..Default::default() }, credentials)
}



#[test]
fn plain_http_head_get_and_tags_with_exact_counts() {
    let reg = Registry::start();
    let multi = reg.push_image("lib/app:v1", &ImageSpec::new(&unique("rc-multi")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let single = reg.push_image("lib/app:single", &ImageSpec::new(&unique("rc-single")).oci());
    for t in ["a", "b", "c"] {
        reg.push_image(&format!("lib/app:{t}"), &ImageSpec::new(&unique("rc-tag")));
    }
    let (heads0, gets0, tags0) = (reg.request_count("manifest", "head"), reg.request_count("manifest", "get"), reg.request_count("tags", "get"));

    let c = Client::new(ClientConfig { tag_page_size: 2, ..Default::default() }, Credentials::anonymous());
    let repo = Repository::new(&reg.host(), "lib/app");
    let t = Tally::default();

    // HEAD: the index's digest, not a platform's (all four Accept types).
    let Head::Found(d) = c.head_manifest(&repo, "v1", &t).unwrap() else { panic!("v1 not found") };
    assert_eq!(d.digest, multi.digest);
    assert!(d.is_index(), "{}", d.media_type);
    let Head::Found(d) = c.head_manifest(&repo, "single", &t).unwrap() else { panic!() };
    assert_eq!((d.digest.as_str(), d.media_type.as_str()), (single.digest.as_str(), OCI_MANIFEST));
    assert_eq!(c.head_manifest(&repo, "nope", &t).unwrap(), Head::Missing);
    assert_eq!(c.resolve_manifest(&repo, "v1", &t).unwrap().unwrap().digest, multi.digest);
    assert_eq!(c.ping(&reg.host(), &Tally::default()).unwrap(), None, "open registry");
    assert_eq!(t.snapshot(), Counts { head: 4, get: 0, token: 0 });
    assert_eq!(reg.request_count("manifest", "head") - heads0, 4);
    assert_eq!(reg.request_count("manifest", "get") - gets0, 0, "no GET for a HEAD-able registry");

    // GET: verified against the tag's announced digest and by digest.
    let m = c.get_manifest(&repo, "v1", &t).unwrap().unwrap();
    assert_eq!(m.descriptor.digest, multi.digest);
    assert_eq!(m.json().unwrap()["manifests"].as_array().unwrap().len(), 2);
    let by_digest = c.get_manifest(&repo, &multi.platforms[0].manifest, &t).unwrap().unwrap();
    assert_eq!(by_digest.descriptor.digest, multi.platforms[0].manifest);
    assert_eq!(reg.request_count("manifest", "get") - gets0, 2);

    // Both sides of an entry at once.
    let (a, b) = c.resolve_pair((&repo, "v1"), (&Repository::new(&reg.host(), "lib/mirror"), "v1"), &t);
    assert_eq!((a.unwrap().unwrap().digest, b.unwrap()), (multi.digest.clone(), None));
    assert_eq!(reg.request_count("manifest", "head") - heads0, 6);

    // Tags: distribution 2.8 ignores `n` (as Docker Hub long did) and sends
    // all in one page without Link; paging itself is tested on canned answers.
    let mut tags = c.list_tags(&repo, &t).unwrap();
    tags.sort();
    assert_eq!(tags, ["a", "b", "c", "single", "v1"]);
    assert_eq!(reg.request_count("tags", "get") - tags0, 1);
    assert_eq!(t.snapshot(), Counts { head: 6, get: 3, token: 0 });
    assert_eq!(c.totals(), t.snapshot() + Counts { head: 0, get: 1, token: 0 }, "totals include the ping");
    let e = c.list_tags(&Repository::new(&reg.host(), "no/such"), &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(c.rate_limits().is_empty(), "distribution sends no rate-limit headers");
}

#[test]
fn htpasswd_basic_from_a_docker_config() {
    let reg = Registry::start_with_auth("alice", "s3cret");
    let img = reg.push_image("team/app:v1", &ImageSpec::new(&unique("rc-basic")));
    let heads0 = reg.request_count("manifest", "head");
    let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let cfg = DockerConfig::parse(format!(r#"{{"auths": {{"{}": {{"auth": "{auth}"}}}}}}"#, reg.host()).as_bytes()).unwrap();
    let c = client_with(Credentials::new(cfg, Box::new(imgsync::registry::credentials::NoHelpers)), None);
    let repo = Repository::new(&reg.host(), "team/app");
    let t = Tally::default();
    assert_eq!(c.resolve_manifest(&repo, "v1", &t).unwrap().unwrap().digest, img.digest);
    assert_eq!(c.resolve_manifest(&repo, "v1", &t).unwrap().unwrap().digest, img.digest);
    // One 401 to learn Basic, then Basic up front.
    assert_eq!(t.snapshot(), Counts { head: 3, get: 0, token: 0 });
    assert_eq!(reg.request_count("manifest", "head") - heads0, 3);

    // Anonymous: refused, with the registry's text kept but not shown.
    let anon = client_with(Credentials::anonymous(), None);
    let e = anon.head_manifest(&repo, "v1", &Tally::default()).unwrap_err();
    assert_eq!((e.kind.clone(), e.status), (ErrorKind::Unauthorized, Some(401)));
    // A wrong password: one 401, one retry with Basic, then refused.
    let wrong = client_with(Credentials::anonymous().with(&reg.host(), Credential::Basic { username: "alice".into(), password: "no".into() }), None);
    let t = Tally::default();
    assert_eq!(wrong.head_manifest(&repo, "v1", &t).unwrap_err().kind, ErrorKind::Unauthorized);
    assert_eq!(t.snapshot().head, 2);
}

fn token_setup() -> (tempfile::TempDir, Pki, TokenServer) {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut config = TokenConfig::default();
    config.users.insert("pusher".into(), "pw".into());
    config.refresh_tokens.insert("refresh-abc".into(), "pusher".into());
    config.private.insert("team/private".into());
    let tokens = TokenServer::start(&pki, config);
    (dir, pki, tokens)
}

/// Anonymous pull, Basic and identity tokens against one token-auth registry
/// (`host` reached with `certs_dir` trust); returns nothing, asserts counts.
fn exercise_token_registry(reg: &SecureRegistry, tokens: &TokenServer, certs_dir: Option<&std::path::Path>) {
    let public = reg.backing.push_image("lib/app:v1", &ImageSpec::new(&unique("rc-tok")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    reg.backing.push_image("lib/other:v1", &ImageSpec::new(&unique("rc-tok2")));
    let private = reg.backing.push_image("team/private:v1", &ImageSpec::new(&unique("rc-priv")));
    let tok0 = tokens.requests();

    let c = client_with(Credentials::anonymous(), certs_dir);
    // doctor's look: reachable, trusted, and the challenge names the realm
    // (ping teaches the client nothing: the counts below stay as without it).
    let ping = Tally::default();
    match c.ping(&reg.host(), &ping).unwrap() {
        Some(imgsync::registry::challenge::Challenge::Bearer { realm, service, .. }) => {
            assert_eq!((realm, service.as_deref()), (tokens.realm(), Some(crate::common::token_server::SERVICE)));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(ping.snapshot(), Counts { head: 0, get: 1, token: 0 });
    let app = Repository::new(&reg.host(), "lib/app");
    let t = Tally::default();
    assert_eq!(c.resolve_manifest(&app, "v1", &t).unwrap().unwrap().digest, public.digest);
    assert_eq!(t.snapshot(), Counts { head: 2, get: 0, token: 1 }, "401, token, HEAD");
    let log = tokens.log();
    let first = &log[tok0];
    assert_eq!((first.method.as_str(), first.user.as_deref()), ("GET", None));
    assert_eq!(first.scopes, ["repository:lib/app:pull"]);
    assert_eq!(first.granted, ["repository:lib/app:pull"]);

    // Same repository: cached token. Another repository: its own token, no 401.
    assert_eq!(c.head_manifest(&app, "nope", &t).unwrap(), Head::Missing);
    let other = Repository::new(&reg.host(), "lib/other");
    assert!(matches!(c.head_manifest(&other, "v1", &t).unwrap(), Head::Found(_)));
    let m = c.get_manifest(&app, "v1", &t).unwrap().unwrap();
    assert_eq!(m.descriptor.digest, public.digest);
    assert_eq!(c.list_tags(&app, &t).unwrap(), ["v1"]);
    assert_eq!(t.snapshot(), Counts { head: 4, get: 2, token: 2 });
    assert_eq!(reg.request_count("manifest", "head"), 4);
    assert_eq!(reg.request_count("manifest", "get"), 1);
    assert_eq!(reg.request_count("tags", "get"), 1);
    assert_eq!(tokens.requests() - tok0, 2);

    // A private repository: the anonymous token does not grant it.
    let private_repo = Repository::new(&reg.host(), "team/private");
    let t = Tally::default();
    let e = c.head_manifest(&private_repo, "v1", &t).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unauthorized, "{e}");
    // The host's challenge is known: the token comes first, the registry
    // refuses it, and a token fetched for this very request is not fetched again.
    assert_eq!(t.snapshot(), Counts { head: 1, get: 0, token: 1 }, "no retry, no loop");

    // Basic credentials go to the token endpoint (never to the registry).
    let basic = client_with(Credentials::anonymous().with(&reg.host(), Credential::Basic { username: "pusher".into(), password: "pw".into() }), certs_dir);
    let t = Tally::default();
    assert_eq!(basic.resolve_manifest(&private_repo, "v1", &t).unwrap().unwrap().digest, private.digest);
    assert_eq!(t.snapshot(), Counts { head: 2, get: 0, token: 1 });
    let last = tokens.log().last().unwrap().clone();
    assert_eq!((last.method.as_str(), last.user.as_deref()), ("GET", Some("pusher")));

    // An identity token from a credential helper: POST refresh_token grant.
    struct Helper;
    impl imgsync::registry::CredentialHelper for Helper {
        fn get(&self, helper: &str, _server: &str) -> Result<Option<(String, String)>, String> {
            assert_eq!(helper, "test");
            Ok(Some(("<token>".into(), "refresh-abc".into())))
        }
    }
    let cfg = DockerConfig::parse(br#"{"credsStore": "test"}"#).unwrap();
    let ident = client_with(Credentials::new(cfg, Box::new(Helper)), certs_dir);
    let t = Tally::default();
    assert_eq!(ident.resolve_manifest(&private_repo, "v1", &t).unwrap().unwrap().digest, private.digest);
    assert_eq!(t.snapshot(), Counts { head: 2, get: 0, token: 1 });
    let last = tokens.log().last().unwrap().clone();
    assert_eq!((last.method.as_str(), last.user.as_deref(), last.status), ("POST", Some("pusher"), 200));

    // A wrong password is refused by the token server.
    let bad = client_with(Credentials::anonymous().with(&reg.host(), Credential::Basic { username: "pusher".into(), password: "x".into() }), certs_dir);
    let e = bad.head_manifest(&app, "v1", &Tally::default()).unwrap_err();
    assert_eq!((e.kind, e.status, e.method), (ErrorKind::Unauthorized, Some(401), "GET"));
    assert!(e.url.ends_with("/token"), "{}", e.url);
}

#[test]
fn token_auth_over_plain_http_on_loopback() {
    let (_dir, _pki, tokens) = token_setup();
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Loopback, tls: None, auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    exercise_token_registry(&reg, &tokens, None);
}

#[test]
fn token_auth_over_tls_with_a_private_ca_off_loopback() {
    if !is_root() {
        eprintln!("SKIPPED: a network namespace needs root (scripts/test.sh runs as root)");
        return;
    }
    let (_dir, pki, tokens) = token_setup();
    let ns = crate::common::secure_registry::Netns::create().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = pki.server_cert("registry", &[std::net::IpAddr::V4(ns.ns_ip)], &["registry.test"]);
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Netns(ns), tls: Some((cert, key)), auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!imgsync::reference::is_loopback_host(&reg.host()));
    // Without the CA: TLS refuses the private CA (nothing reaches a handler).
    let untrusted = client_with(Credentials::anonymous(), None);
    let e = untrusted.head_manifest(&Repository::new(&reg.host(), "lib/app"), "v1", &Tally::default()).unwrap_err();
    assert!(matches!(&e.kind, ErrorKind::Tls(m) if m.contains("UnknownIssuer")), "{e}");
    assert!(!e.is_retryable());
    assert!(e.url.starts_with("https://"), "{}", e.url);
    assert_eq!(reg.request_count("manifest", "head"), 0);
    // With certs.d/<host:port>/ca.crt, as docker reads it.
    let certs_dir = pki.certs_d(&reg.host());
    exercise_token_registry(&reg, &tokens, Some(&certs_dir));
}

/// The fake helper script answers like docker's helpers do (the process
/// module's implementation of `CredentialHelper` will be tested with it).
#[test]
fn fake_credential_helper_script_speaks_the_helper_protocol() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let h = crate::common::cred_helper::FakeCredentialHelper::write(dir.path(), "imgsync-test", &[("ghcr.io", "octo", "pat'x"), ("https://index.docker.io/v1/", "<token>", "idt")]);
    let get = |server: &str| {
        let mut child = Command::new(h.dir.join("docker-credential-imgsync-test"))
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(child.stdin.take().unwrap(), "{server}").unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8(out.stdout).unwrap())
    };
    let (ok, out) = get("ghcr.io");
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["Username"].as_str(), v["Secret"].as_str()), (Some("octo"), Some("pat'x")));
    let (ok, out) = get("https://index.docker.io/v1/");
    assert!(ok && out.contains("<token>"));
    let (ok, out) = get("other.io");
    assert!(!ok);
    assert_eq!(out.trim(), "credentials not found in native keychain");
    assert_eq!(h.asked(), ["ghcr.io", "https://index.docker.io/v1/", "other.io"]);
}

/// Many entries from many threads over token auth: exactly one 401 for the
/// cold start, one token per repository, one HEAD per manifest.
#[test]
fn parallel_heads_over_token_auth_count_exactly() {
    let (_dir, _pki, tokens) = token_setup();
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Loopback, tls: None, auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    let (repos, tags) = (20, 5);
    let mut want = Vec::new();
    for r in 0..repos {
        let img = reg.backing.push_image(&format!("par/app{r}:t0"), &ImageSpec::new(&unique("rc-par")));
        let bytes = reg.backing.manifest(&format!("par/app{r}"), "t0").unwrap().bytes;
        for t in 1..tags {
            reg.backing.put_manifest(&format!("par/app{r}"), &format!("t{t}"), DOCKER_MANIFEST, &bytes);
        }
        for t in 0..tags {
            want.push((r, t, img.digest.clone()));
        }
    }
    let c = client_with(Credentials::anonymous(), None);
    let t = Tally::default();
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for chunk in want.chunks(want.len().div_ceil(16)) {
            let (c, t, host) = (&c, &t, reg.host());
            s.spawn(move || {
                for (r, tag, digest) in chunk {
                    let repo = Repository::new(&host, &format!("par/app{r}"));
                    assert_eq!(&c.resolve_manifest(&repo, &format!("t{tag}"), t).unwrap().unwrap().digest, digest);
                }
            });
        }
    });
    let took = start.elapsed();
    let n = (repos * tags) as u64;
    assert_eq!(t.snapshot(), Counts { head: n + 1, get: 0, token: repos as u64 });
    assert_eq!(reg.request_count("manifest", "head"), n + 1);
    assert_eq!(tokens.requests() as u64, repos as u64);
    eprintln!("{n} manifests, {repos} repositories, 16 threads: {:?} ({:?} per HEAD)", took, took / n as u32);
}

/// A measurement, not a timed test (`cargo test --test registry_client -- --ignored --nocapture`):
/// 1,000 HEADs of 500 two-platform entries' source and target through a
/// proxy adding 50 ms each way, 32 at a time. Measured on the 2-core
/// machine under load (load average 8): 5.5 s (1.4 s with LAT_MS=0).
#[test]
#[ignore]
fn measure_noop_heads_at_50ms() {
    use crate::common::proxy::{Fault, FaultProxy};
    let reg = Registry::start();
    let spec = ImageSpec::new(&unique("rc-bench")).platforms(&["linux/amd64", "linux/arm64/v8"]);
    let img = reg.push_image("bench/app:t0", &spec);
    reg.push_image("bench/mirror:t0", &spec);
    let index = reg.manifest("bench/app", "t0").unwrap();
    let entries = 500;
    for i in 1..entries {
        reg.put_manifest("bench/app", &format!("t{i}"), &index.media_type, &index.bytes);
        reg.put_manifest("bench/mirror", &format!("t{i}"), &index.media_type, &index.bytes);
    }
    // LAT_MS=0 gives the CPU-bound base.
    let ms: u64 = std::env::var("LAT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
    let proxy = FaultProxy::start(reg.host().parse().unwrap(), Fault::Latency(std::time::Duration::from_millis(ms)), 0);
    let host = proxy.addr().to_string();
    let c = client_with(Credentials::anonymous(), None);
    let t = Tally::default();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let start = std::time::Instant::now();
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= entries {
                    break;
                }
                let tag = format!("t{i}");
                let (a, b) = c.resolve_pair(
                    (&Repository::new(&host, "bench/app"), &tag),
                    (&Repository::new(&host, "bench/mirror"), &tag),
                    &t,
                );
                assert_eq!(a.unwrap().unwrap().digest, img.digest);
                assert_eq!(b.unwrap().unwrap().digest, img.digest);
            });
        }
    });
    let took = start.elapsed();
    assert_eq!(t.snapshot(), Counts { head: 2 * entries as u64, get: 0, token: 0 });
    assert_eq!(proxy.requests(), 2 * entries);
    eprintln!("{entries} entries (2 HEADs each) at {ms} ms each way, 32 in flight: {took:?}");
}

/// Tokens for many repositories in a few requests (repeated `scope=`).
#[test]
fn prefetched_tokens_cover_many_repositories() {
    let (_dir, _pki, tokens) = token_setup();
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Loopback, tls: None, auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = ImageSpec::new(&unique("rc-pre"));
    let repos: Vec<Repository> = (0..41)
        .map(|i| {
            reg.backing.push_image(&format!("pre/app{i}:v1"), &spec);
            Repository::new(&reg.host(), &format!("pre/app{i}"))
        })
        .collect();
    let c = client_with(Credentials::anonymous(), None);
    let t = Tally::default();
    // Nothing known about the host yet: nothing to do.
    assert_eq!(c.prefetch_tokens(&repos, 20, &t).unwrap(), 0);
    // The first entry learns the challenge (401, token, HEAD).
    c.resolve_manifest(&repos[0], "v1", &t).unwrap().unwrap();
    // The other 40 in two token requests.
    assert_eq!(c.prefetch_tokens(&repos, 20, &t).unwrap(), 2);
    let log = tokens.log();
    assert_eq!(log.last().unwrap().scopes.len(), 20);
    assert_eq!(log.last().unwrap().granted.len(), 20);
    for r in &repos[1..] {
        c.resolve_manifest(r, "v1", &t).unwrap().unwrap();
    }
    assert_eq!(t.snapshot(), Counts { head: 2 + 40, get: 0, token: 3 });
    assert_eq!(reg.request_count("manifest", "head"), 42);
    assert_eq!(tokens.requests(), 3);
}

/// The GET path an inspector takes when a decision needs content (a platform
/// subset without a remembered pair): the index, then each platform's
/// manifest for its config digest, parsed by `inspect::parse_raw`.
#[test]
fn platform_configs_by_get_with_inspect_parse_raw() {
    use imgsync::inspect::parse::{parse_raw, Raw};
    let reg = Registry::start();
    let img = reg.push_image("lib/multi:v1", &ImageSpec::new(&unique("rc-cfg")).platforms(&["linux/amd64", "linux/arm64/v8"]).attestations());
    let c = client_with(Credentials::anonymous(), None);
    let repo = Repository::new(&reg.host(), "lib/multi");
    let t = Tally::default();
    let head = c.resolve_manifest(&repo, "v1", &t).unwrap().unwrap();
    let index = c.get_manifest(&repo, &head.digest, &t).unwrap().unwrap();
    let Raw::Index(inspection) = parse_raw(&index.bytes).unwrap() else { panic!("not an index") };
    assert_eq!(inspection.attestations, 2);
    let mut configs = std::collections::BTreeMap::new();
    for image in &inspection.images {
        let m = c.get_manifest(&repo, &image.digest, &t).unwrap().unwrap();
        let Raw::Manifest(one) = parse_raw(&m.bytes).unwrap() else { panic!() };
        configs.insert(normalize_platform(&image.platform.as_ref().unwrap().to_string()), one.config.unwrap());
    }
    assert_eq!(configs, img.configs());
    assert_eq!(t.snapshot(), Counts { head: 1, get: 3, token: 0 });
    assert_eq!(reg.request_count("manifest", "get"), 3);
}

/// A private registry as most people run one: htpasswd Basic over TLS with
/// their own CA, on a non-loopback address.
#[test]
fn htpasswd_basic_over_tls_off_loopback() {
    if !is_root() {
        eprintln!("SKIPPED: a network namespace needs root (scripts/test.sh runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    std::fs::write(&htpasswd, format!("bob:{}\n", bcrypt::hash("pw", 5).unwrap())).unwrap();
    let ns = crate::common::secure_registry::Netns::create().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = pki.server_cert("basic", &[std::net::IpAddr::V4(ns.ns_ip)], &[]);
    let auth_yaml = format!("auth:\n  htpasswd:\n    realm: imgsync-test\n    path: {}\n", htpasswd.display());
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Netns(ns), tls: Some((cert, key)), auth_yaml }).unwrap_or_else(|e| panic!("{e}"));
    let img = reg.backing.push_image("team/app:v1", &ImageSpec::new(&unique("rc-tlsbasic")));
    let certs_dir = pki.certs_d(&reg.host());
    let c = client_with(Credentials::anonymous().with(&reg.host(), Credential::Basic { username: "bob".into(), password: "pw".into() }), Some(&certs_dir));
    let repo = Repository::new(&reg.host(), "team/app");
    let t = Tally::default();
    for _ in 0..3 {
        assert_eq!(c.resolve_manifest(&repo, "v1", &t).unwrap().unwrap().digest, img.digest);
    }
    assert_eq!(t.snapshot(), Counts { head: 4, get: 0, token: 0 }, "one 401, then Basic up front");
    assert_eq!(reg.request_count("manifest", "head"), 4);
    // Tags and a verified GET, with Basic up front.
    let t = Tally::default();
    assert_eq!(c.list_tags(&repo, &t).unwrap(), ["v1"]);
    assert_eq!(c.get_manifest(&repo, "v1", &t).unwrap().unwrap().descriptor.digest, img.digest);
    assert_eq!(t.snapshot(), Counts { head: 0, get: 2, token: 0 });
}
