//! End-to-end: credentials, diagnosis and resilience. The real binary against a
//! real engine (scripts/test.sh) and real registries:
//!
//! - logins to an auth registry: the right password syncs, a wrong one fails with
//!   the auth hint, and neither leaves the secret (or a private DOCKER_CONFIG)
//!   anywhere, nor touches the user's `~/.docker/config.json`; a secret in
//!   config.env is warned about and ignored;
//! - a fault proxy in front of the source: 503, 429 and connection resets are
//!   retried until the sync succeeds (also when the docker CLI hides the cause),
//!   retries run out as configured, a 401 is attempted once;
//! - SIGINT, SIGTERM, SIGHUP or SIGQUIT while pushing (and a signal during
//!   doctor): exit 130, report written, nothing left
//!   behind; docker children get the secret on stdin only;
//! - `imgsync doctor` with a good and two bad setups.
//!
//! Each test starts its own registries and proxies (stopped on Drop) and uses
//! unique image content, so the tests run in parallel on one shared engine.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::proxy::{Fault, FaultProxy};
use crate::common::*;
use serde_json::Value;

/// Fast retries: the default 1 s base would make every fault test take seconds per retry.
const RETRY_BASE_MS: &str = "50";
const USER: &str = "mirror-bot";
/// The user's own docker config: an unrelated login that must survive byte for byte.
const USER_DOCKER_CONFIG: &str = r#"{"auths":{"other.example":{"auth":"eDp5"}}}"#;
const AUTH_HINT: &str = "check the username and the token/password secret";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

fn addr(reg: &Registry) -> SocketAddr {
    reg.host().parse().expect("registry host is ip:port")
}

fn proxy_host(p: &FaultProxy) -> String {
    format!("127.0.0.1:{}", p.addr().port())
}

/// A workspace with fast retries, and a HOME whose `.docker/config.json` holds
/// an unrelated login.
fn workspace() -> Workspace {
    let mut ws = Workspace::new();
    ws.set_env("IMGSYNC_RETRY_BASE_MS", RETRY_BASE_MS);
    let dot = ws.home().join(".docker");
    std::fs::create_dir_all(&dot).unwrap();
    std::fs::write(dot.join("config.json"), USER_DOCKER_CONFIG).unwrap();
    ws
}

/// Every regular file under `root` (symlinks are not followed), by path.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else { continue };
            if meta.is_dir() {
                todo.push(e.path());
            } else if meta.is_file() {
                out.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Files under the workspace (which holds HOME and TMPDIR) whose bytes contain `secret`,
/// except the workspace-level files named in `skip` (e.g. a config.env the test wrote it into).
fn files_containing(ws: &Workspace, secret: &str, skip: &[&str]) -> Vec<PathBuf> {
    let skip: Vec<PathBuf> = skip.iter().map(|s| ws.path().join(s)).collect();
    files(ws.path())
        .into_iter()
        .filter(|p| !skip.contains(p))
        .filter(|p| std::fs::read(p).is_ok_and(|b| contains(&b, secret.as_bytes())))
        .collect()
}

/// `imgsync-docker-*` directories (private DOCKER_CONFIGs) left in the run's TMPDIR.
fn private_configs_left(ws: &Workspace) -> Vec<String> {
    std::fs::read_dir(ws.path().join("tmp"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("imgsync-docker-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Paths under HOME/.docker, relative.
fn user_docker_dir(ws: &Workspace) -> BTreeSet<String> {
    let root = ws.home().join(".docker");
    let mut out = BTreeSet::new();
    let mut todo = vec![root.clone()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            out.insert(e.path().strip_prefix(&root).unwrap().display().to_string());
            if std::fs::symlink_metadata(e.path()).is_ok_and(|m| m.is_dir()) {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The secrets appear nowhere: not in stdout, stderr or the report, not in any file
/// left in the workspace, its HOME or its TMPDIR. The private DOCKER_CONFIG is gone
/// and the user's `~/.docker` is exactly as before.
#[track_caller]
fn assert_no_trace(ws: &Workspace, run: &Run, secrets: &[&str], skip_files: &[&str]) {
    for s in secrets {
        assert!(!run.all_output().contains(s), "a secret appears in the output of imgsync {}\n{}", run.args.join(" "), run.dump());
        let found = files_containing(ws, s, skip_files);
        assert!(found.is_empty(), "a secret was left in files: {found:?}\n{}", run.dump());
    }
    let left = private_configs_left(ws);
    assert!(left.is_empty(), "private DOCKER_CONFIG dirs left in TMPDIR: {left:?}\n{}", run.dump());
    let cfg = std::fs::read(ws.home().join(".docker/config.json")).expect("the user's config.json is still there");
    assert_eq!(String::from_utf8_lossy(&cfg), USER_DOCKER_CONFIG, "the user's ~/.docker/config.json changed\n{}", run.dump());
    assert_eq!(
        user_docker_dir(ws),
        BTreeSet::from(["config.json".to_string()]),
        "something was written into the user's ~/.docker\n{}",
        run.dump()
    );
}

/// stderr lines announcing a retry (`line L: retry N of \`docker ...\` in X.Ys: reason`).
fn retry_lines(run: &Run) -> Vec<String> {
    run.stderr.lines().filter(|l| l.contains(": retry ")).map(str::to_string).collect()
}

#[track_caller]
fn assert_no_local_images(docker: &Docker, ids: &BTreeSet<String>, what: &str) {
    let left = docker.images_with_ids(ids);
    assert!(left.is_empty(), "images pulled by the run are still in the engine: {left:?}\n{what}");
}

#[track_caller]
fn target(run: &Run, line: u64) -> &Value {
    let t = &run.entry(line)["targets"];
    assert_eq!(t.as_array().map(Vec::len), Some(1), "entry {line} has one target\n{}", run.dump());
    &t[0]
}

#[track_caller]
fn docker_calls(run: &Run, line: u64) -> u64 {
    run.entry(line)["docker_calls"].as_u64().unwrap_or_else(|| panic!("entry {line} has no docker_calls\n{}", run.dump()))
}

// ---------------------------------------------------------------------------
// 1. Credentials
// ---------------------------------------------------------------------------

#[test]
fn auth_target_with_the_right_password_syncs_and_leaves_no_trace() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let password = unique("pw-right");
    let dst = Registry::start_with_auth(USER, &password);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("cred-ok")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    ws.images(&format!("{} => app\n", img.reference()));

    let run = ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.targets(1), vec![(format!("{}/mirror/app:v1", dst.host()), "synced".to_string())]);
    assert_eq!(dst.platform_configs("mirror/app:v1"), Some(img.configs()));
    // skopeo, with the credentials, sees the same.
    for p in &img.platforms {
        assert_eq!(skopeo_config_digest(&dst, "mirror/app:v1", &p.platform), p.config);
    }
    assert!(!run.stderr.contains("warning"), "no warning for a clean setup\n{}", run.dump());
    assert_no_trace(&ws, &run, &[&password], &[]);
    assert_no_local_images(&docker, &img.config_digests(), &run.dump());
}

#[test]
fn auth_target_with_a_wrong_password_fails_with_the_auth_hint_and_leaves_no_trace() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let real = unique("pw-real");
    let dst = Registry::start_with_auth(USER, &real);
    let wrong = unique("pw-wrong");
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", Some(&wrong));
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("cred-bad")));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    ws.images(&format!("{} => app\n", img.reference()));

    let run = ws.sync(&[]);
    run.expect_code(1);
    assert_eq!(run.summary("failed"), 1, "{}", run.dump());
    assert_eq!(run.summary("synced"), 0, "{}", run.dump());
    let t = target(&run, 1);
    assert_eq!(t["status"], "failed", "{}", run.dump());
    let error = t["error"].as_str().unwrap_or_else(|| panic!("the failed target has an error\n{}", run.dump()));
    assert!(error.contains("login") && error.contains(USER), "the error names the login and the user: {error}\n{}", run.dump());
    let hint = t["hint"].as_str().unwrap_or_else(|| panic!("the failed target has a hint\n{}", run.dump()));
    assert!(hint.contains(AUTH_HINT), "the auth hint: {hint}\n{}", run.dump());
    assert!(run.stdout.contains(AUTH_HINT), "the table shows the hint\n{}", run.dump());
    // A 401 is not worth a retry.
    assert!(retry_lines(&run).is_empty(), "an auth failure was retried\n{}", run.dump());
    assert!(dst.catalog().is_empty(), "nothing pushed: {:?}", dst.catalog());
    assert_no_trace(&ws, &run, &[&wrong, &real], &[]);
    assert_no_local_images(&docker, &img.config_digests(), &run.dump());
}

#[test]
fn a_password_in_config_env_draws_a_warning_and_is_not_used() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let real = unique("pw-real");
    let dst = Registry::start_with_auth(USER, &real);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("cred-file")));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let config = |file_password: &str| {
        format!(
            "SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=mirror\nCUSTOM_USERNAME={USER}\nCUSTOM_PASSWORD={file_password}\n",
            dst.host()
        )
    };
    let warned = |run: &Run| {
        run.stderr.lines().any(|l| l.starts_with("warning: ") && l.contains("config.env:5") && l.contains("CUSTOM_PASSWORD"))
    };

    // The right password in config.env, a wrong one in the environment: the file's is ignored.
    let mut ws = workspace();
    ws.config(&config(&real));
    ws.images(&format!("{} => app\n", img.reference()));
    let wrong = unique("pw-wrong");
    ws.set_env("CUSTOM_PASSWORD", &wrong);
    let run = ws.sync(&[]);
    run.expect_code(1);
    assert!(warned(&run), "a warning names config.env:5 and CUSTOM_PASSWORD\n{}", run.dump());
    let t = target(&run, 1);
    assert_eq!(t["status"], "failed", "{}", run.dump());
    assert!(t["hint"].as_str().unwrap_or("").contains(AUTH_HINT), "{}", run.dump());
    assert!(dst.catalog().is_empty(), "the password from config.env was used: {:?}", dst.catalog());
    assert_no_trace(&ws, &run, &[&real, &wrong], &["config.env"]);

    // Only in config.env: as good as unset (exit 2, naming the variable).
    let ws = workspace();
    ws.config(&config(&real));
    ws.images(&format!("{} => app\n", img.reference()));
    let run = ws.sync(&[]);
    run.expect_code(2);
    assert!(
        run.stderr.lines().any(|l| l.starts_with("error: ") && l.contains("CUSTOM_PASSWORD")),
        "the error names CUSTOM_PASSWORD\n{}",
        run.dump()
    );
    assert!(run.report.is_none(), "nothing ran, no report\n{}", run.dump());
    assert!(dst.catalog().is_empty(), "the password from config.env was used: {:?}", dst.catalog());
    assert_no_trace(&ws, &run, &[&real], &["config.env"]);

    // A decoy in config.env and the right password in the environment: synced, still warned.
    let mut ws = workspace();
    let decoy = unique("pw-decoy");
    ws.config(&config(&decoy));
    ws.images(&format!("{} => app\n", img.reference()));
    ws.set_env("CUSTOM_PASSWORD", &real);
    let run = ws.sync(&[]);
    run.expect_code(0);
    assert!(warned(&run), "{}", run.dump());
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(dst.platform_configs("mirror/app:v1"), Some(img.configs()));
    assert_no_trace(&ws, &run, &[&real, &decoy], &["config.env"]);
    assert_no_local_images(&docker, &img.config_digests(), &run.dump());
}

// ---------------------------------------------------------------------------
// 2. Faults at the source
// ---------------------------------------------------------------------------

/// Spoiled requests one failed `docker manifest inspect --insecure --verbose` of
/// `repo_ref` (on the registry at `upstream`) takes before it gives up: measured
/// through a proxy that spoils everything, since the docker CLI itself retries
/// some steps (28.2: it tolerates a failed ping and, when reading the manifest
/// fails, tries again as a manifest list; 4 requests for 503/429, 2 for resets).
fn faults_per_failed_inspect(docker: &Docker, upstream: SocketAddr, fault: Fault, repo_ref: &str) -> usize {
    let witness = FaultProxy::start(upstream, fault, 1_000);
    let out = docker.run(&["manifest", "inspect", "--insecure", "--verbose", &format!("{}/{repo_ref}", proxy_host(&witness))]);
    assert!(!out.ok, "{fault:?} on every request fails `docker manifest inspect`");
    let n = witness.faults_served();
    assert!(n >= 1, "{fault:?}: the witness spoiled a request");
    n
}

/// Line 1 reads a two-platform source through a proxy that spoils exactly as many
/// requests as `failures` failed `docker manifest inspect` calls consume; line 2,
/// an image of the same shape, reads the source directly. Both must sync, line 1
/// after exactly `failures` retries of its source inspection, so with exactly
/// `failures` more docker calls than line 2; the daemon's pulls through the proxy
/// come after the faults are spent.
fn transient_source_faults_are_retried(fault: Fault, failures: usize, reasons: &[&str]) {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let spec = |s: &str| ImageSpec::new(&unique(s)).platforms(&["linux/amd64", "linux/arm64/v8"]).layer_size(64 * 1024);
    let via_proxy = src.push_image("lib/app:v1", &spec("fault-proxied"));
    let direct = src.push_image("lib/direct:v1", &spec("fault-direct"));
    let ids: BTreeSet<String> = via_proxy.config_digests().into_iter().chain(direct.config_digests()).collect();
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: ids.clone() };
    let per_attempt = faults_per_failed_inspect(&docker, addr(&src), fault, "lib/app:v1");
    let k = per_attempt * failures;
    let proxy = FaultProxy::start(addr(&src), fault, k);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    let source = format!("{}/lib/app:v1", proxy_host(&proxy));
    ws.images(&format!("{source} => app\n{} => direct\n", direct.reference()));

    let started = Instant::now();
    // Calibrated on `docker manifest inspect` (faults per failed inspect):
    // the docker read path; the HTTP one has its own test below.
    let run = ws.sync(&["--inspect", "docker"]);
    let took = started.elapsed();
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(run.status(2), "synced", "{}", run.dump());
    assert_eq!(dst.platform_configs("mirror/app:v1"), Some(via_proxy.configs()), "{}", run.dump());
    assert_eq!(dst.platform_configs("mirror/direct:v1"), Some(direct.configs()), "{}", run.dump());

    assert_eq!(proxy.faults_served(), k, "{fault:?}: every fault was served\n{}", run.dump());
    assert!(proxy.requests() > k, "after the faults, requests went through the proxy: {}", proxy.requests());
    let retries = retry_lines(&run);
    assert_eq!(retries.len(), failures, "{fault:?} x{k}: one retry per failed inspect: {retries:#?}\n{}", run.dump());
    let command = format!("`docker manifest inspect --insecure --verbose -- {source}`");
    for (n, l) in retries.iter().enumerate() {
        let want = format!("line 1: retry {} of {command} in ", n + 1);
        assert!(l.starts_with(&want), "{fault:?}: {l:?} should start with {want:?}\n{}", run.dump());
        assert!(reasons.iter().any(|r| l.contains(r)), "{fault:?}: {l:?} gives docker's reason (one of {reasons:?})");
    }
    assert_eq!(
        docker_calls(&run, 1),
        docker_calls(&run, 2) + failures as u64,
        "{fault:?}: line 1 made exactly {failures} more docker calls than the same copy without faults\n{}",
        run.dump()
    );
    assert_no_local_images(&docker, &ids, &run.dump());
    eprintln!("{fault:?} x{k} ({per_attempt} per failed inspect): sync took {took:?}, {} proxied requests", proxy.requests());
}

#[test]
fn source_503s_are_retried_until_the_sync_succeeds() {
    transient_source_faults_are_retried(Fault::Status503, 2, &["503 Service Unavailable"]);
}

#[test]
fn source_429s_are_retried_until_the_sync_succeeds() {
    transient_source_faults_are_retried(Fault::Status429, 2, &["toomanyrequests"]);
}

#[test]
fn source_connection_resets_are_retried_until_the_sync_succeeds() {
    transient_source_faults_are_retried(Fault::Reset, 2, &["connection reset by peer"]);
}

/// A single-platform source whose inspection meets fewer faults than make
/// `docker manifest inspect` give up: the CLI's fallback (read it as a manifest
/// list) then fails with "unsupported manifest format: &{...}" in place of the
/// real cause. The fault is still transient: the sync must succeed.
fn a_partial_fault_on_a_single_platform_source_is_retried(fault: Fault, k: usize) {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let img = src.push_image("lib/one:v1", &ImageSpec::new(&unique("fault-single")));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let per_attempt = faults_per_failed_inspect(&docker, addr(&src), fault, "lib/one:v1");
    assert!(k < per_attempt, "{fault:?}: {k} faults are fewer than a failed inspect takes ({per_attempt})");
    let proxy = FaultProxy::start(addr(&src), fault, k);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{}/lib/one:v1 => one\n", proxy_host(&proxy)));

    let run = ws.sync(&[]);
    assert_eq!(proxy.faults_served(), k, "{fault:?}: the faults were served\n{}", run.dump());
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(dst.platform_configs("mirror/one:v1"), Some(img.configs()));
    assert!(!retry_lines(&run).is_empty(), "{fault:?}: the failed inspect was retried\n{}", run.dump());
    assert_no_local_images(&docker, &img.config_digests(), &run.dump());
}

#[test]
fn one_reset_while_inspecting_a_single_platform_source_is_retried() {
    a_partial_fault_on_a_single_platform_source_is_retried(Fault::Reset, 1);
}

#[test]
fn two_503s_while_inspecting_a_single_platform_source_are_retried() {
    a_partial_fault_on_a_single_platform_source_is_retried(Fault::Status503, 2);
}

#[test]
fn source_503s_beyond_the_retries_fail_the_entry_with_the_network_hint() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("fault-exhaust")));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let per_attempt = faults_per_failed_inspect(&docker, addr(&src), Fault::Status503, "lib/app:v1");
    let proxy = FaultProxy::start(addr(&src), Fault::Status503, 1_000);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{}/lib/app:v1 => app\n", proxy_host(&proxy)));

    let run = ws.sync(&["--retries", "2", "--inspect", "docker"]);
    run.expect_code(1);
    assert_eq!(proxy.faults_served(), 3 * per_attempt, "one try plus two retries\n{}", run.dump());
    assert_eq!(docker_calls(&run, 1), 3, "one try plus two retries\n{}", run.dump());
    let retries = retry_lines(&run);
    assert_eq!(retries.len(), 2, "{retries:#?}\n{}", run.dump());
    assert!(retries[0].starts_with("line 1: retry 1 of ") && retries[1].starts_with("line 1: retry 2 of "), "{retries:#?}");
    let entry = run.entry(1);
    let error = entry["error"].as_str().unwrap_or_else(|| panic!("the entry has an error\n{}", run.dump()));
    assert!(error.contains("503 Service Unavailable"), "docker's reason: {error}");
    assert!(entry["hint"].as_str().unwrap_or("").contains("retried automatically"), "the network hint\n{}", run.dump());
    assert_eq!(target(&run, 1)["status"], "failed", "{}", run.dump());
    assert!(dst.catalog().is_empty(), "nothing pushed: {:?}", dst.catalog());
}

#[test]
fn an_auth_failure_at_the_source_is_attempted_once() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start_with_auth("src-owner", &unique("pw-src"));
    let dst = Registry::start();
    let img = src.push_image("lib/private:v1", &ImageSpec::new(&unique("src-auth")));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    // Two counting proxies (no faults): one to measure a single anonymous
    // `docker manifest inspect`, one for imgsync.
    let witness = FaultProxy::start(addr(&src), Fault::Status503, 0);
    let counted = FaultProxy::start(addr(&src), Fault::Status503, 0);
    let once = docker.run(&["manifest", "inspect", "--insecure", "--verbose", &format!("{}/lib/private:v1", proxy_host(&witness))]);
    assert!(!once.ok, "an anonymous inspect of an auth registry fails");
    let one_attempt = witness.requests();
    assert!(one_attempt >= 1, "the witness counted the inspect");

    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{}/lib/private:v1 => private\n", proxy_host(&counted)));
    let run = ws.sync(&["--inspect", "docker"]);
    run.expect_code(1);
    let entry = run.entry(1);
    assert!(entry["error"].is_string(), "the entry failed at its source\n{}", run.dump());
    assert!(entry["hint"].as_str().unwrap_or("").contains(AUTH_HINT), "the auth hint\n{}", run.dump());
    assert_eq!(target(&run, 1)["status"], "failed", "{}", run.dump());
    assert!(retry_lines(&run).is_empty() && !run.stderr.contains("retry"), "a 401 was retried\n{}", run.dump());
    assert_eq!(docker_calls(&run, 1), 1, "one docker call in all\n{}", run.dump());
    assert_eq!(counted.requests(), one_attempt, "imgsync made exactly the requests of one `docker manifest inspect`\n{}", run.dump());
    assert!(dst.catalog().is_empty(), "nothing pushed: {:?}", dst.catalog());
}

/// The HTTP read path meets the same source faults: each failed request is
/// one attempt, retried with the classified backoff (one retry line per
/// fault, naming the request), then the sync succeeds with no docker call
/// before the copy. Beyond the retries, the entry fails with the network hint.
fn transient_source_faults_are_retried_over_http(fault: Fault, failures: usize) {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("http-fault")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let proxy = FaultProxy::start(addr(&src), fault, failures);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    let source = format!("{}/lib/app:v1", proxy_host(&proxy));
    ws.images(&format!("{source} => app\n"));
    let run = ws.sync(&["--inspect", "registry"]);
    run.expect_code(0);
    assert_eq!(run.status(1), "synced", "{}", run.dump());
    assert_eq!(proxy.faults_served(), failures, "{}", run.dump());
    let retries = retry_lines(&run);
    assert_eq!(retries.len(), failures, "{fault:?}: one retry per failed request: {retries:#?}\n{}", run.dump());
    for (n, l) in retries.iter().enumerate() {
        let want = format!("line 1: retry {} of `HEAD http://{}/v2/lib/app/manifests/v1` in ", n + 1, proxy_host(&proxy));
        assert!(l.starts_with(&want), "{fault:?}: {l:?} should start with {want:?}\n{}", run.dump());
    }
    assert_eq!(run.entry(1)["requests"]["head"].as_u64(), Some(failures as u64 + 2), "source HEADs until one answers, one target HEAD\n{}", run.dump());
    assert_eq!(dst.platform_configs("mirror/app:v1"), Some(img.configs()));
    assert_no_local_images(&docker, &img.config_digests(), &run.dump());

    // Faults beyond the retries: the entry fails, with the network hint, and
    // the run does not fall back to docker for an answer that is not about trust.
    let always = FaultProxy::start(addr(&src), fault, 1_000);
    ws.images(&format!("{}/lib/app:v1 => app\n", proxy_host(&always)));
    let run = ws.run(&["plan", "--retries", "2", "--report", "report.json"]);
    run.expect_code(1);
    if matches!(fault, Fault::Reset) {
        // A connection that fails after the retries: docker is asked instead (auto), with a note.
        assert!(run.all_output().contains("cannot serve this registry"), "{}", run.dump());
        return;
    }
    assert_eq!(always.faults_served(), 3, "one try plus two retries\n{}", run.dump());
    assert_eq!(run.entry(1)["docker_calls"], 0, "{}", run.dump());
    let hint = run.entry(1)["hint"].as_str().unwrap_or_else(|| panic!("{}", run.dump())).to_string();
    let want = if matches!(fault, Fault::Status429) { "rate limit" } else { "retried automatically" };
    assert!(hint.contains(want), "{hint}\n{}", run.dump());
}

#[test]
fn source_503s_over_http_are_retried() {
    transient_source_faults_are_retried_over_http(Fault::Status503, 2);
}

#[test]
fn source_429s_over_http_are_retried() {
    transient_source_faults_are_retried_over_http(Fault::Status429, 2);
}

#[test]
fn source_resets_over_http_are_retried() {
    transient_source_faults_are_retried_over_http(Fault::Reset, 2);
}

/// A 401 over HTTP: one attempt, no retry, no docker process; the requests
/// the proxy saw are exactly those the report counts.
#[test]
fn an_auth_failure_at_the_source_over_http_is_attempted_once() {
    let src = Registry::start_with_auth("src-owner", &unique("pw-src"));
    let dst = Registry::start();
    src.push_image("lib/private:v1", &ImageSpec::new(&unique("src-auth-http")));
    let counted = FaultProxy::start(addr(&src), Fault::Status503, 0);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{}/lib/private:v1 => private\n", proxy_host(&counted)));
    let run = ws.run(&["plan", "--report", "report.json"]);
    run.expect_code(1);
    let entry = run.entry(1);
    assert!(entry["hint"].as_str().unwrap_or("").contains(AUTH_HINT), "the auth hint\n{}", run.dump());
    assert!(retry_lines(&run).is_empty(), "a 401 was retried\n{}", run.dump());
    assert_eq!(entry["docker_calls"], 0, "{}", run.dump());
    let r = &entry["requests"];
    let counted_here = r["head"].as_u64().unwrap() + r["get"].as_u64().unwrap() + r["token"].as_u64().unwrap();
    // The target's HEAD goes to the other registry, not through the proxy.
    assert_eq!(counted.requests() as u64, counted_here - 1, "the report counts exactly what was sent\n{}", run.dump());
    assert_eq!(counted.requests(), 1, "one HEAD, refused, not retried\n{}", run.dump());
}

// ---------------------------------------------------------------------------
// 3. Interrupt
// ---------------------------------------------------------------------------

/// Starts `imgsync ARGS` in the workspace like [`Workspace::run`] does (clean
/// environment, HOME and TMPDIR inside the workspace), without waiting.
fn spawn_imgsync(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(imgsync_bin());
    cmd.args(args)
        .current_dir(ws.path())
        .env_clear()
        .env("HOME", ws.home())
        .env("TMPDIR", ws.path().join("tmp"))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(ws.path().join(".stdout")).unwrap())
        .stderr(std::fs::File::create(ws.path().join(".stderr")).unwrap());
    for key in ["PATH", "DOCKER_HOST"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn imgsync")
}

/// (state, ppid) from /proc/PID/stat.
fn proc_stat(pid: u32) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((state, ppid))
}

fn proc_cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline")).map(|b| String::from_utf8_lossy(&b).replace('\0', " ")).unwrap_or_default()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Live (not zombie) children of `parent`, with their command lines.
fn children_of(parent: u32) -> BTreeMap<u32, String> {
    all_pids()
        .into_iter()
        .filter(|p| matches!(proc_stat(*p), Some((s, pp)) if pp == parent && s != 'Z'))
        .map(|p| (p, proc_cmdline(p)))
        .collect()
}

/// Live processes other than this one whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|p| *p != me && !matches!(proc_stat(*p), Some(('Z', _)) | None))
        .map(|p| (p, proc_cmdline(p)))
        .filter(|(_, c)| c.contains(needle))
        .collect()
}

#[test]
fn sigint_while_pushing_exits_130_and_leaves_nothing_behind() {
    interrupt_while_pushing(libc::SIGINT);
}

#[test]
fn sigterm_while_pushing_exits_130_and_leaves_nothing_behind() {
    interrupt_while_pushing(libc::SIGTERM);
}

#[test]
fn sighup_while_pushing_exits_130_and_leaves_nothing_behind() {
    interrupt_while_pushing(libc::SIGHUP);
}

#[test]
fn sigquit_while_pushing_exits_130_and_leaves_nothing_behind() {
    interrupt_while_pushing(libc::SIGQUIT);
}

/// doctor has the same handler: a signal during its login stops it with 130
/// and removes the private config (it held the login).
#[test]
fn a_signal_during_doctor_exits_130_and_leaves_no_private_config() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let password = unique("pw-doctor-sig");
    let dst = Registry::start_with_auth(USER, &password);
    // Every answer of the registry is slow, so the login takes seconds.
    let slow = FaultProxy::start(addr(&dst), Fault::Latency(Duration::from_millis(1500)), 0);
    let ws = workspace();
    ws.config(&format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=mirror\nCUSTOM_USERNAME={USER}\n", proxy_host(&slow)));
    ws.images("nginx:alpine\n");
    let mut child = spawn_imgsync(&ws, &["doctor"], &[("CUSTOM_PASSWORD", &password)]);
    let pid = child.id();
    let stderr = || ws.read(".stderr").unwrap_or_default();
    let started = Instant::now();
    while !children_of(pid).values().any(|c| c.contains(" login ")) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("doctor ended ({status}) before its login ran\n{}", stderr());
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("doctor never started its login\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(pid as libc::pid_t, libc::SIGHUP) }, 0);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("doctor did not stop after SIGHUP\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(130), "{status}\n{}", stderr());
    let left = private_configs_left(&ws);
    assert!(left.is_empty(), "private DOCKER_CONFIG left in TMPDIR: {left:?}\n{}", stderr());
}

/// Signals imgsync while its `docker push` runs (the target is behind a slow
/// link), then checks the exit code, the report and that nothing is left.
fn interrupt_while_pushing(signal: libc::c_int) {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    // The target behind a slow link: a few MiB take seconds to push.
    let slow = FaultProxy::start(addr(&dst), Fault::Latency(Duration::from_millis(40)), 0);
    let img = src.push_image(
        "lib/big:v1",
        &ImageSpec::new(&unique("sigint")).platforms(&["linux/amd64", "linux/arm64/v8"]).layer_size(4 << 20),
    );
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    assert!(docker.images_with_ids(&img.config_digests()).is_empty(), "fresh content is not local yet");
    let ws = workspace();
    ws.config(&format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=mirror\n", proxy_host(&slow)));
    ws.images(&format!("{} => big\n", img.reference()));
    let target_ref = format!("{}/mirror/big:v1", proxy_host(&slow));

    let mut child = spawn_imgsync(&ws, &["sync", "--engine", "daemon", "--report", "report.json"], &[("IMGSYNC_RETRY_BASE_MS", RETRY_BASE_MS)]);
    let pid = child.id();
    let stderr = || ws.read(".stderr").unwrap_or_default();
    let mut seen: BTreeMap<u32, String> = BTreeMap::new();
    let started = Instant::now();
    // Wait until the push is under way: the step line is out and a `docker push` child runs.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("imgsync ended ({status}) before it was pushing\n--- stderr ---\n{}", stderr());
        }
        let kids = children_of(pid);
        let pushing_child = kids.values().any(|c| c.contains(" push ") && c.contains(&target_ref));
        remember(&mut seen, kids);
        let pushing_line = stderr().lines().any(|l| l.starts_with("line 1: push "));
        if pushing_line && pushing_child {
            break;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("imgsync never got to the push within 180 s\n--- stderr ---\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    remember(&mut seen, children_of(pid));
    assert!(child.try_wait().unwrap().is_none(), "still running when interrupted\n{}", stderr());
    let to_push = started.elapsed();
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill -{signal} {pid}");
    let interrupted_at = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        remember(&mut seen, children_of(pid));
        if interrupted_at.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("imgsync did not stop within 60 s of signal {signal}\n--- stderr ---\n{}", stderr());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let to_stop = interrupted_at.elapsed();
    let out = format!("--- stdout ---\n{}\n--- stderr ---\n{}", ws.read(".stdout").unwrap_or_default(), stderr());
    assert_eq!(status.code(), Some(130), "exit code after signal {signal} ({status})\n{out}");

    // The report so far: the entry is `interrupted`, not `failed` (issue 20).
    let text = ws.read("report.json").unwrap_or_else(|| panic!("no report after signal {signal}\n{out}"));
    let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("report is not JSON ({e}): {text}"));
    let entry = report["entries"].as_array().and_then(|e| e.iter().find(|e| e["line"] == 1)).unwrap_or_else(|| panic!("no entry for line 1: {text}"));
    let t = &entry["targets"][0];
    assert_eq!(t["status"], "interrupted", "{text}\n{out}");
    assert!(t["error"].as_str().unwrap_or("").contains("interrupted"), "the error says interrupted: {text}\n{out}");
    assert_eq!(report["summary"]["failed"], 0, "{text}");
    assert_eq!(report["summary"]["interrupted"], 1, "{text}");
    assert!(ws.read(".stdout").unwrap_or_default().contains("0 failed, 1 interrupted"), "{out}");
    assert_eq!(report["summary"]["synced"], 0, "{text}");

    // Nothing left: no local image of this entry, no private config, no docker child.
    assert_no_local_images(&docker, &img.config_digests(), &out);
    let left = private_configs_left(&ws);
    assert!(left.is_empty(), "private DOCKER_CONFIG left in TMPDIR: {left:?}\n{out}");
    assert!(seen.values().any(|c| c.contains(" push ")), "the docker push child was seen: {seen:#?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let leaked = loop {
        let leaked: Vec<(u32, String)> = seen
            .iter()
            .filter(|(p, c)| matches!(proc_stat(**p), Some((s, _)) if s != 'Z') && proc_cmdline(**p) == **c)
            .map(|(p, c)| (*p, c.clone()))
            .chain(processes_mentioning(&target_ref))
            .chain(children_of(pid))
            .collect();
        if leaked.is_empty() || Instant::now() > deadline {
            break leaked;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(leaked.is_empty(), "processes of the run still running after it exited: {leaked:#?}\n{out}");
    // The interrupted push did not complete: no tag at the target.
    assert!(dst.tags("mirror/big").is_empty(), "the interrupted push left a tag: {:?}", dst.tags("mirror/big"));
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(ws.home().join(".docker/config.json")).unwrap()),
        USER_DOCKER_CONFIG
    );
    eprintln!("signal {signal}: push after {to_push:?}, stopped {to_stop:?} after the signal");
}

/// What a live process was started with: its command line and the names of the
/// environment variables whose value contains `secret`.
fn secret_in_process(pid: u32, secret: &str) -> (bool, Vec<String>) {
    let argv = contains(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default(), secret.as_bytes());
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let vars = environ
        .split(|b| *b == 0)
        .filter(|kv| contains(kv, secret.as_bytes()))
        .map(|kv| String::from_utf8_lossy(kv).split('=').next().unwrap_or("").to_string())
        .collect();
    (argv, vars)
}

#[test]
fn docker_children_get_the_secret_on_stdin_only() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let password = unique("pw-stdin");
    let dst = Registry::start_with_auth(USER, &password);
    // A slow link to the target keeps the `docker push` child alive long enough to look at.
    let slow = FaultProxy::start(addr(&dst), Fault::Latency(Duration::from_millis(20)), 0);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("stdin-only")).layer_size(1 << 20));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let ws = workspace();
    ws.config(&format!(
        "SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=mirror\nCUSTOM_USERNAME={USER}\n",
        proxy_host(&slow)
    ));
    ws.images(&format!("{} => app\n", img.reference()));

    let mut child = spawn_imgsync(
        &ws,
        &["sync", "--engine", "daemon", "--report", "report.json"],
        &[("IMGSYNC_RETRY_BASE_MS", RETRY_BASE_MS), ("CUSTOM_PASSWORD", &password)],
    );
    let pid = child.id();
    // Every docker child seen: pid -> (command line, secret in argv, variables holding the secret).
    let mut seen: BTreeMap<u32, (String, bool, Vec<String>)> = BTreeMap::new();
    let started = Instant::now();
    let status = loop {
        for (p, cmdline) in children_of(pid) {
            // Between fork and exec a child still runs imgsync's image, with
            // imgsync's environment; only what docker itself got counts.
            let program = cmdline.split_whitespace().next().unwrap_or("");
            if !program.rsplit('/').next().is_some_and(|b| b.starts_with("docker")) {
                continue;
            }
            let (argv, vars) = secret_in_process(p, &password);
            let e = seen.entry(p).or_insert((cmdline, false, Vec::new()));
            e.1 |= argv;
            for v in vars {
                if !e.2.contains(&v) {
                    e.2.push(v);
                }
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("imgsync did not finish within 300 s\n{}", ws.read(".stderr").unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = format!("--- stdout ---\n{}\n--- stderr ---\n{}", ws.read(".stdout").unwrap_or_default(), ws.read(".stderr").unwrap_or_default());
    assert_eq!(status.code(), Some(0), "{out}");
    assert_eq!(dst.platform_configs("mirror/app:v1"), Some(img.configs()), "{out}");
    assert!(seen.values().any(|(c, ..)| c.contains(" push ")), "the docker push child was looked at: {seen:#?}");
    let in_argv: Vec<&String> = seen.values().filter(|(_, argv, _)| *argv).map(|(c, ..)| c).collect();
    assert!(in_argv.is_empty(), "the secret was in a docker child's argv: {in_argv:#?}");
    let in_env: Vec<String> =
        seen.values().filter(|(.., vars)| !vars.is_empty()).map(|(c, _, vars)| format!("{vars:?} in the environment of `{}`", c.trim())).collect();
    assert!(in_env.is_empty(), "docker children inherited the secret through their environment, not only stdin:\n{}", in_env.join("\n"));
    assert!(!format!("{out}{}", ws.read("report.json").unwrap_or_default()).contains(&password), "{out}");
}

// ---------------------------------------------------------------------------
// 4. doctor
// ---------------------------------------------------------------------------

fn marked(run: &Run, mark: &str) -> Vec<String> {
    run.stdout.lines().filter(|l| l.starts_with(mark)).map(str::to_string).collect()
}

#[test]
fn doctor_passes_a_good_setup() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let password = unique("pw-doctor");
    let dst = Registry::start_with_auth(USER, &password);
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images("nginx:alpine\n--platform=linux/arm64 mysql:8.0\n");

    let run = ws.run(&["doctor"]);
    run.expect_code(0);
    let ok = marked(&run, "✓ ");
    assert!(marked(&run, "✗ ").is_empty(), "no failed check\n{}", run.dump());
    for want in [
        "✓ docker on PATH: ".to_string(),
        "✓ Docker engine reachable: ".to_string(),
        "✓ settings: SYNC_MODE=custom".to_string(),
        format!("✓ login to {} (custom): as {USER}", dst.host()),
        "✓ images.txt: 2 entries parse".to_string(),
        format!("✓ images.txt:1: docker.io/library/nginx:alpine → {}/mirror/nginx:alpine", dst.host()),
        format!("✓ images.txt:2: docker.io/library/mysql:8.0 → {}/mirror/linux_arm64_mysql:8.0", dst.host()),
    ] {
        assert!(ok.iter().any(|l| l.starts_with(&want)), "a line starting {want:?}\n{}", run.dump());
    }
    assert_no_trace(&ws, &run, &[&password], &[]);
}

#[test]
fn doctor_names_a_missing_variable() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let mut ws = workspace();
    ws.config("SYNC_MODE=aliyun\nALIYUN_REGISTRY=registry.cn-hangzhou.aliyuncs.com\n");
    ws.set_env("ALIYUN_USERNAME", "someone");
    let password = unique("pw-aliyun");
    ws.set_env("ALIYUN_PASSWORD", &password);
    ws.images("nginx:alpine\n");

    let run = ws.run(&["doctor"]);
    run.expect_code(1);
    let failed = marked(&run, "✗ ");
    assert!(
        failed.iter().any(|l| l.starts_with("✗ settings: ") && l.contains("ALIYUN_NAMESPACE")),
        "a ✗ line names ALIYUN_NAMESPACE\n{}",
        run.dump()
    );
    assert!(failed.iter().all(|l| !l.contains("ALIYUN_REGISTRY") && !l.contains("ALIYUN_PASSWORD")), "only the missing one is named\n{}", run.dump());
    assert!(marked(&run, "✓ ").iter().any(|l| l.starts_with("✓ docker on PATH")), "the other checks still run\n{}", run.dump());
    assert_no_trace(&ws, &run, &[&password], &[]);
}

#[test]
fn doctor_reports_a_wrong_password_with_the_auth_hint_and_hides_it() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let real = unique("pw-real");
    let dst = Registry::start_with_auth(USER, &real);
    let wrong = unique("pw-wrong");
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", Some(&wrong));
    ws.images("nginx:alpine\n");

    let run = ws.run(&["doctor"]);
    run.expect_code(1);
    let want = format!("✗ login to {} (custom): ", dst.host());
    let line = marked(&run, "✗ ")
        .into_iter()
        .find(|l| l.starts_with(&want))
        .unwrap_or_else(|| panic!("a line starting {want:?}\n{}", run.dump()));
    assert!(line.contains(AUTH_HINT), "the auth hint: {line}");
    assert!(line.contains(USER), "the user is named: {line}");
    assert!(marked(&run, "✓ ").iter().any(|l| l.starts_with("✓ settings: ")), "{}", run.dump());
    assert_no_trace(&ws, &run, &[&wrong, &real], &[]);
}

/// Records child command lines; a later empty read (the process was exiting)
/// never overwrites what was seen while it ran.
fn remember(seen: &mut BTreeMap<u32, String>, kids: BTreeMap<u32, String>) {
    for (pid, cmdline) in kids {
        if !cmdline.is_empty() || !seen.contains_key(&pid) {
            seen.insert(pid, cmdline);
        }
    }
}
