//! The registry read path end to end (issue 11): a no-op run proves the zero
//! (a `docker` wrapper first on PATH records every call; the registry's
//! metrics count manifest GETs), the state file makes a daemon-engine no-op
//! HEAD-only, a stale or corrupt state never hides a change, and a TLS
//! registry with a private CA and token auth is read with a credential
//! helper script on PATH and the certs directory setting.

use crate::common::pki::Pki;
use crate::common::secure_registry::{Listen, SecureOptions, SecureRegistry};
use crate::common::token_server::{TokenConfig, TokenServer};
use crate::common::docker_wrapper::{is_root, RecordingDocker};
use crate::common::*;






/// Source HEADs a no-op spends on a top digest's signatures (issue 23): its
/// three cosign tags and its referrers fallback tag.
const SIGNATURE_HEADS: u64 = 4;

fn requests(v: &serde_json::Value) -> (u64, u64, u64) {
    (v["head"].as_u64().unwrap(), v["get"].as_u64().unwrap(), v["token"].as_u64().unwrap())
}

/// Nothing changed: two HEADs for the image (and four for its signatures),
/// no GET, no docker process at all, and the report says so (engine null
/// under auto, requests per entry and in all).
#[test]
fn a_noop_run_spawns_no_docker_and_gets_no_manifest() {
    let reg = Registry::start();
    let spec = ImageSpec::new(&unique("rp-noop")).platforms(&["linux/amd64", "linux/arm64/v8"]);
    let src = reg.push_image("src/app:v1", &spec);
    let dst = reg.push_image("mirror/app:v1", &spec);
    assert_eq!(src.digest, dst.digest, "the same spec gives the same bytes");
    let mut ws = Workspace::new();
    ws.custom_target(&reg, "mirror", None);
    ws.images(&format!("{}/src/app:v1 => app\n", reg.host()));
    let wrapper = RecordingDocker::new();
    ws.set_env("PATH", &wrapper.path_with(&[]));
    let (gets0, heads0) = (reg.request_count("manifest", "get"), reg.request_count("manifest", "head"));
    let run = ws.run(&["sync", "--report", "report.json", "--state", "state.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "up-to-date", "{}", run.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "no docker process on a no-op\n{}", run.dump());
    assert_eq!(reg.request_count("manifest", "get") - gets0, 0, "no manifest GET\n{}", run.dump());
    // One HEAD per side for the image, and (SIGNATURES=copy, the default)
    // one source HEAD for each of the top digest's cosign tags (.sig, .att,
    // .sbom) and its referrers fallback tag; the source has none of them, so
    // the target is not asked about any.
    let heads = 2 + SIGNATURE_HEADS;
    assert_eq!(reg.request_count("manifest", "head") - heads0, heads, "{}", run.dump());
    let report = run.report();
    assert!(report["engine"].is_null(), "nothing copied under auto: no engine\n{}", run.dump());
    assert_eq!(requests(&run.entry(1)["requests"]), (heads, 0, 0), "{}", run.dump());
    assert_eq!(run.entry(1)["docker_calls"], 0);
    assert_eq!(requests(&report["summary"]["requests"]), (heads, 0, 0));
    assert!(report["rate_limits"].as_object().unwrap().is_empty(), "distribution announces no quota");
    assert!(run.all_output().contains(&format!("registry requests: {heads} HEAD, 0 GET, 0 token")), "{}", run.dump());

    // `plan` of a changed source: still no docker, the source's content is read.
    reg.push_image("src/app:v1", &ImageSpec::new(&unique("rp-noop-changed")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let run = ws.run(&["plan", "--report", "report.json", "--state", "state.json"]);
    assert_eq!(run.status(1), "would-sync", "{}", run.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "{}", run.dump());
    let (_, get, _) = requests(&run.entry(1)["requests"]);
    assert!(get >= 1, "a change needs content\n{}", run.dump());

    // `--inspect docker`: today's path, docker inspects.
    let run = ws.run(&["plan", "--inspect", "docker", "--report", "report.json", "--state", "state.json"]);
    assert_eq!(run.status(1), "would-sync", "{}", run.dump());
    assert!(wrapper.calls().iter().any(|c| c.starts_with("manifest inspect") || c.starts_with("buildx imagetools inspect")), "{:?}", wrapper.calls());
}

/// Daemon engine: the copy re-compresses (other digests), the run remembers
/// the pair, and the next no-op is HEAD-only with no docker. A stale or
/// corrupt state file never makes a changed source up to date.
#[test]
fn the_state_file_makes_a_daemon_noop_head_only_and_never_hides_a_change() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let reg = Registry::start();
    let img = reg.push_image("src/app:v1", &ImageSpec::new(&unique("rp-state")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let mut ws = Workspace::new();
    ws.custom_target(&reg, "mirror", None);
    ws.images(&format!("{}/src/app:v1 => app\n", reg.host()));
    let state = ws.path().join("state.json");
    let run = ws.run(&["sync", "--engine", "daemon", "--report", "report.json", "--state", "state.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(run.report()["engine"], "daemon");
    let target = reg.manifest("mirror/app", "v1").expect("copied");
    assert_ne!(target.digest, img.digest, "the daemon engine re-compresses");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&state).expect("state saved")).unwrap();
    let pair = &saved["pairs"][0];
    assert_eq!((pair["source_digest"].as_str(), pair["target_digest"].as_str()), (Some(img.digest.as_str()), Some(target.digest.as_str())), "{saved}");

    // The no-op: HEADs only, no docker.
    let wrapper = RecordingDocker::new();
    ws.set_env("PATH", &wrapper.path_with(&[]));
    let gets0 = reg.request_count("manifest", "get");
    let run = ws.run(&["sync", "--engine", "daemon", "--report", "report.json", "--state", "state.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "up-to-date", "{}", run.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "{}", run.dump());
    assert_eq!(reg.request_count("manifest", "get") - gets0, 0, "{}", run.dump());
    assert_eq!(requests(&run.entry(1)["requests"]), (2, 0, 0));
    assert_eq!(run.report()["engine"], "daemon", "the flag's engine is reported");

    // Without the state: still right, by config digests (GETs, no docker).
    let run = ws.run(&["plan", "--engine", "daemon", "--report", "report.json", "--state", "other-state.json"]);
    assert_eq!(run.status(1), "up-to-date", "{}", run.dump());
    assert!(requests(&run.entry(1)["requests"]).1 > 0);
    assert_eq!(wrapper.calls(), Vec::<String>::new());

    // A corrupt state file: a warning, and the answer is still right.
    std::fs::write(&state, "{not json").unwrap();
    let run = ws.run(&["plan", "--engine", "daemon", "--report", "report.json", "--state", "state.json"]);
    assert_eq!(run.status(1), "up-to-date", "{}", run.dump());
    assert!(run.all_output().contains("state file"), "{}", run.dump());

    // The source changes; the old pair (stale) and a forged one naming the
    // old target digest never make it up to date.
    let changed = reg.push_image("src/app:v1", &ImageSpec::new(&unique("rp-state-new")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let forged = serde_json::json!({"version": 1, "pairs": [
        {"source": format!("{}/src/app:v1", reg.host()), "platforms": [], "target": format!("{}/mirror/app:v1", reg.host()),
         "source_digest": img.digest, "target_digest": target.digest, "at": 1},
        {"source": format!("{}/src/app:v1", reg.host()), "platforms": ["linux/amd64"], "target": format!("{}/mirror/app:v1", reg.host()),
         "source_digest": changed.digest, "target_digest": target.digest, "at": 1}
    ]});
    std::fs::write(&state, forged.to_string()).unwrap();
    let run = ws.run(&["plan", "--engine", "daemon", "--report", "report.json", "--state", "state.json"]);
    assert_eq!(run.status(1), "would-sync", "{}", run.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new());
}

/// A TLS registry with a private CA and token auth, its private repository
/// readable with credentials a credential helper script (the user's
/// `credsStore`) holds, while the run logs in to its target: the certs
/// directory setting points the client at the test CA. Without it, the
/// run says what is wrong (TLS trust), or falls back to docker under auto.
#[test]
fn tls_registry_with_a_private_ca_token_auth_and_a_credential_helper() {
    if !is_root() {
        eprintln!("SKIPPED: a network namespace needs root (scripts/test.sh runs as root)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut config = TokenConfig::default();
    config.users.insert("pusher".into(), "pw".into());
    config.private.insert("team/private".into());
    let tokens = TokenServer::start(&pki, config);
    let ns = crate::common::secure_registry::Netns::create().unwrap_or_else(|e| panic!("{e}"));
    let (cert, key) = pki.server_cert("registry", &[std::net::IpAddr::V4(ns.ns_ip)], &[]);
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Netns(ns), tls: Some((cert, key)), auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    let spec = ImageSpec::new(&unique("rp-tls")).platforms(&["linux/amd64", "linux/arm64/v8"]);
    let src = reg.backing.push_image("team/private:v1", &spec);
    // The target: a loopback registry with a login (so the private copy drops credsStore).
    let target = Registry::start_with_auth("alice", "tgt-secret");
    let dst = target.push_image("mirror/app:v1", &spec);
    assert_eq!(src.digest, dst.digest);

    let mut ws = Workspace::new();
    ws.custom_target(&target, "mirror", None);
    ws.images(&format!("{}/team/private:v1 => app\n", reg.host()));
    let helper_dir = dir.path().join("helper");
    let helper = crate::common::cred_helper::FakeCredentialHelper::write(&helper_dir, "imgsync-e2e", &[(&reg.host(), "pusher", "pw")]);
    std::fs::create_dir_all(ws.home().join(".docker")).unwrap();
    std::fs::write(ws.home().join(".docker/config.json"), r#"{"credsStore": "imgsync-e2e"}"#).unwrap();
    let wrapper = RecordingDocker::new();
    ws.set_env("PATH", &wrapper.path_with(&[&helper_dir]));
    let certs_dir = pki.certs_d(&reg.host());
    ws.set_env("REGISTRY_CERTS_DIR", &certs_dir.display().to_string());
    let tok0 = tokens.requests();

    let run = ws.run(&["plan", "--report", "report.json", "--state", "state.json"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "up-to-date", "{}", run.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new(), "{}", run.dump());
    assert_eq!(helper.asked(), [reg.host()], "the keychain is asked for the source only, once");
    assert_eq!(reg.request_count("manifest", "get"), 0);
    let (head, get, token) = requests(&run.entry(1)["requests"]);
    assert_eq!((get, token), (0, 1), "{}", run.dump());
    assert!(head >= 2, "{}", run.dump());
    assert_eq!(tokens.requests() - tok0, 1);
    assert_eq!(tokens.log().last().unwrap().user.as_deref(), Some("pusher"), "the helper's credentials reached the token endpoint");
    assert!(!ws.path().join("tmp").read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("imgsync-docker-")), "the private config is gone");

    // Without the CA: `--inspect registry` names TLS trust and the fix.
    ws.set_env("REGISTRY_CERTS_DIR", &dir.path().join("empty-certs.d").display().to_string());
    let run = ws.run(&["plan", "--inspect", "registry", "--report", "report.json", "--state", "state.json"]);
    assert_eq!(run.code, 1, "{}", run.dump());
    let e = run.entry(1);
    assert!(e["error"].as_str().unwrap().contains("TLS"), "{}", run.dump());
    assert!(e["hint"].as_str().unwrap().contains("certs.d"), "{}", run.dump());
    assert_eq!(wrapper.calls(), Vec::<String>::new());
    // Under auto: docker is asked instead, once per registry, with a note.
    let run = ws.run(&["plan", "--report", "report.json", "--state", "state.json"]);
    assert!(run.all_output().contains("cannot serve this registry"), "{}", run.dump());
    assert!(!wrapper.calls().is_empty(), "docker was asked: {}", run.dump());
    wrapper.clear();
}

/// A measurement for scripts/bench.sh, not a timed test
/// (`cargo test --test e2e read_path::measure -- --ignored --nocapture`):
/// requests per entry of a no-op whose sources sit on a token-auth registry
/// (anonymous pull tokens, as Docker Hub and GHCR give), ENTRIES entries
/// (default 100) in as many repositories, the targets on a plain registry.
#[test]
#[ignore]
fn measure_noop_requests_per_entry_over_token_auth() {
    let entries: usize = std::env::var("ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let tokens = TokenServer::start(&pki, TokenConfig::default());
    let reg = SecureRegistry::start(SecureOptions { listen: Listen::Loopback, tls: None, auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    let target = Registry::start();
    let spec = ImageSpec::new(&unique("rp-measure")).platforms(&["linux/amd64", "linux/arm64/v8"]);
    let first = reg.backing.push_image("src/app0:v1", &spec);
    let mirrored = target.push_image("mirror/app0:v1", &spec);
    assert_eq!(first.digest, mirrored.digest);
    let mut lines = String::new();
    for i in 0..entries {
        if i > 0 {
            // The same bytes under other names.
            reg.backing.push_image(&format!("src/app{i}:v1"), &spec);
            target.push_image(&format!("mirror/app{i}:v1"), &spec);
        }
        lines.push_str(&format!("{}/src/app{i}:v1 => app{i}\n", reg.host()));
    }
    let mut ws = Workspace::new();
    ws.custom_target(&target, "mirror", None);
    ws.images(&lines);
    let tok0 = tokens.requests();
    let start = std::time::Instant::now();
    let run = ws.run(&["plan", "--report", "report.json", "--state", "state.json"]);
    let took = start.elapsed();
    run.expect_code(0);
    assert_eq!(run.summary("up_to_date") as usize, entries, "{}", run.dump());
    let (head, get, token) = requests(&run.report()["summary"]["requests"]);
    assert_eq!(get, 0);
    assert_eq!(token as usize, tokens.requests() - tok0, "the report counts what the token server saw");
    let n = entries as f64;
    eprintln!(
        "token-auth no-op, {entries} entries in {entries} repositories: {head} HEAD + {get} GET + {token} token = {:.2} requests per entry ({:.2} HEAD, {:.3} token); {took:?}",
        (head + get + token) as f64 / n,
        head as f64 / n,
        token as f64 / n
    );
}
