//! Registry presets (issue 22): the checks that catch the expensive mistakes
//! before the first push, against real registries.
//! - a token server that grants `pull` only: doctor ✗ with the read-only
//!   hint, sync fails the target with it once, before any push;
//! - a harbor target whose project does not exist (a fake projects API in a
//!   proxy in front of a real registry): doctor and sync say "create project P",
//!   nothing is pushed; with the project there the same sync pushes;
//! - an swr target with SWR_AK/SWR_SK: the derived login reaches the registry
//!   (its htpasswd holds the expected derived password), and neither key nor
//!   the password shows in any process's argv, the output or the report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::pki::Pki;
use crate::common::proxy::FaultProxy;
use crate::common::secure_registry::{Listen, SecureOptions, SecureRegistry};
use crate::common::token_server::{TokenConfig, TokenServer};
use crate::common::{imgsync_bin, unique, Docker, ImageSpec, Registry, Workspace};

const READ_ONLY_HINT: &str = "this token is read-only (Docker Hub's default is Public Repo Read-only); create one with Read & Write";

fn workspace() -> Workspace {
    let mut ws = Workspace::new();
    ws.set_env("IMGSYNC_RETRY_BASE_MS", "50");
    ws
}

#[test]
fn a_pull_only_token_fails_doctor_and_sync_before_any_push() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new(dir.path());
    let mut config = TokenConfig::default();
    config.users.insert("reader".into(), "pw".into());
    config.pull_only.insert("reader".into());
    let tokens = TokenServer::start(&pki, config);
    let target = SecureRegistry::start(SecureOptions { listen: Listen::Loopback, tls: None, auth_yaml: tokens.registry_auth_yaml() })
        .unwrap_or_else(|e| panic!("{e}"));
    let src = Registry::start();
    let a = src.push_image("lib/a:v1", &ImageSpec::new(&unique("ro-a")));
    let b = src.push_image("lib/b:v1", &ImageSpec::new(&unique("ro-b")));
    let mut ws = workspace();
    ws.config(&format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=team\nCUSTOM_USERNAME=reader\n", target.host()));
    ws.set_env("CUSTOM_PASSWORD", "pw");
    ws.images(&format!("{}\n{}\n", a.reference(), b.reference()));

    let doctor = ws.run(&["doctor"]);
    let line = doctor.stdout.lines().find(|l| l.starts_with("✗ push permission at")).unwrap_or_else(|| panic!("no push check\n{}", doctor.dump()));
    assert!(line.contains("granted pull only") && line.contains(READ_ONLY_HINT), "{line}");
    assert_ne!(doctor.code, 0, "{}", doctor.dump());
    let asked: Vec<_> = tokens.log().into_iter().filter(|l| l.scopes.iter().any(|s| s.ends_with(":pull,push"))).collect();
    assert!(asked.iter().any(|l| l.user.as_deref() == Some("reader") && l.granted == ["repository:team/imgsync-check:pull"]), "{asked:?}");

    let sync = ws.sync(&[]);
    sync.expect_code(1);
    let warned = sync.stderr.matches(READ_ONLY_HINT).count();
    assert_eq!(warned, 1, "said once, before the copies\n{}", sync.dump());
    for line in [1, 2] {
        let t = &sync.entry(line)["targets"][0];
        assert_eq!(t["status"], "failed", "{}", sync.dump());
        assert!(t["hint"].as_str().unwrap_or("").contains(READ_ONLY_HINT), "{}", sync.dump());
    }
    // Nothing pushed: no repository under the namespace, and no upload was started.
    assert!(target.backing.catalog().iter().all(|r| !r.starts_with("team/")), "{:?}", target.backing.catalog());
    assert!(!target.log().contains("PUT /v2/team") && !target.log().contains("POST /v2/team"), "{}", target.log());
}

/// A Harbor projects API answering for `projects` only, in front of `upstream`.
fn harbor_front(upstream: &Registry, projects: &'static [&'static str]) -> FaultProxy {
    let addr: SocketAddr = upstream.host().parse().unwrap();
    FaultProxy::intercepting(
        addr,
        Arc::new(move |line: &str| {
            let rest = line.strip_prefix("HEAD /api/v2.0/projects?project_name=")?;
            let name = rest.split_whitespace().next().unwrap_or("");
            let status = if projects.contains(&name) { "200 OK" } else { "404 Not Found" };
            Some(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n"))
        }),
    )
}

#[test]
fn a_missing_harbor_project_stops_doctor_and_sync_with_create_project() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let reg = Registry::start();
    let harbor = harbor_front(&reg, &["present"]);
    let host = format!("127.0.0.1:{}", harbor.addr().port());
    let src = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("harbor")));
    let ws = workspace();
    ws.images(&format!("{} => app\n", img.reference()));

    ws.config(&format!("SYNC_MODE=harbor\nHARBOR_REGISTRY={host}\nHARBOR_NAMESPACE=absent/mirror\n"));
    let doctor = ws.run(&["doctor"]);
    assert_ne!(doctor.code, 0, "{}", doctor.dump());
    let line = doctor.stdout.lines().find(|l| l.starts_with("✗ Harbor project absent")).unwrap_or_else(|| panic!("{}", doctor.dump()));
    assert!(line.contains("create project absent"), "{line}");

    let sync = ws.sync(&[]);
    sync.expect_code(1);
    let t = &sync.entry(1)["targets"][0];
    assert!(t["hint"].as_str().unwrap_or("").starts_with("create project absent"), "{}", sync.dump());
    assert_eq!(sync.stderr.matches("create project absent").count(), 1, "said once before the copies\n{}", sync.dump());
    assert!(reg.catalog().is_empty(), "nothing pushed: {:?}", reg.catalog());

    // The project there: the same check passes and the sync pushes.
    ws.config(&format!("SYNC_MODE=harbor\nHARBOR_REGISTRY={host}\nHARBOR_NAMESPACE=present/mirror\n"));
    let doctor = ws.run(&["doctor"]);
    assert!(doctor.stdout.lines().any(|l| l.starts_with("✓ Harbor project present") && l.ends_with("exists")), "{}", doctor.dump());
    let sync = ws.sync(&[]);
    sync.expect_code(0);
    assert_eq!(reg.platform_configs("present/mirror/app:v1"), Some(img.configs()), "{}", sync.dump());

    // A robot user whose `$` a shell ate draws a warning with how to quote it (the registry here takes any login).
    let mut robot = workspace();
    robot.config(&format!("SYNC_MODE=harbor\nHARBOR_REGISTRY={host}\nHARBOR_NAMESPACE=present/mirror\nHARBOR_USERNAME=robotpresent+ci\n"));
    robot.set_env("HARBOR_PASSWORD", "pw");
    let doctor = robot.run(&["doctor"]);
    let line = doctor.stdout.lines().find(|l| l.contains("HARBOR_USERNAME:")).unwrap_or_else(|| panic!("{}", doctor.dump()));
    assert!(line.contains("was eaten") && line.contains("'robot$present+ci'"), "{line}");
}

fn proc_cmdlines() -> Vec<(u32, Vec<u8>)> {
    let pids: Vec<u32> = std::fs::read_dir("/proc").map(|d| d.flatten().filter_map(|e| e.file_name().to_str()?.parse().ok()).collect()).unwrap_or_default();
    pids.into_iter().filter_map(|p| Some((p, std::fs::read(format!("/proc/{p}/cmdline")).ok()?))).collect()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[test]
fn an_swr_target_logs_in_with_the_derived_key_and_never_shows_it() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    // The worked example of src/preset.rs (computed with Python's hmac when written):
    // user <project>@<AK>, password hex(HMAC-SHA256(key=SK, msg=AK)).
    let ak = "AKEXAMPLE0123456789";
    let sk = "SKEXAMPLE0123456789abcdefghijklmnopqrstu";
    let derived = "c1a4e821a093c5bd5d047e7557827a9ea913d8193ecb506db1b1031beeca33ed";
    let dst = Registry::start_with_auth(&format!("cn-north-4@{ak}"), derived);
    // A slower link keeps the run alive long enough to look at every process.
    let slow = FaultProxy::start(dst.host().parse().unwrap(), crate::common::proxy::Fault::Latency(Duration::from_millis(10)), 0);
    let src = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("swr")).layer_size(1 << 20));
    let ws = workspace();
    ws.config(&format!("SYNC_MODE=swr\nSWR_REGISTRY=127.0.0.1:{}\nSWR_PROJECT=cn-north-4\nSWR_NAMESPACE=org\n", slow.addr().port()));
    ws.images(&format!("{} => app\n", img.reference()));

    // doctor: the derived login is shown as <project>@*** and its push grant read (Basic: nothing to read).
    let mut probe = workspace();
    probe.config(&ws.read("config.env").unwrap());
    probe.set_env("SWR_AK", ak);
    probe.set_env("SWR_SK", sk);
    let doctor = probe.run(&["doctor"]);
    assert!(doctor.stdout.lines().any(|l| l.starts_with("✓ login to ") && l.ends_with("(swr): as cn-north-4@***")), "{}", doctor.dump());
    assert!(doctor.stdout.lines().any(|l| l.starts_with("✓ swr namespace and login: SWR_NAMESPACE=org")), "{}", doctor.dump());
    for secret in [ak, sk, derived] {
        assert!(!doctor.all_output().contains(secret), "{secret} shown by doctor\n{}", doctor.dump());
    }
    assert!(doctor.stdout.lines().any(|l| l.starts_with("✓ swr login at ") && l.ends_with("accepted as cn-north-4@***")), "{}", doctor.dump());
    // A wrong secret key: the derived login is refused at doctor and before sync's first push.
    probe.set_env("SWR_SK", "not-the-key");
    let doctor = probe.run(&["doctor"]);
    assert!(doctor.stdout.lines().any(|l| l.starts_with("✗ swr login at ") && l.contains("cn-north-4@*** refused")), "{}", doctor.dump());
    probe.images(&format!("{} => app\n", img.reference()));
    let sync = probe.sync(&[]);
    sync.expect_code(1);
    let error = sync.entry(1)["targets"][0]["error"].as_str().unwrap_or("").to_string();
    // The inspection's HEAD of the target is already refused: the entry fails there, before any push, with SWR's hint.
    assert!(error.contains("as cn-north-4@*** refused"), "{}", sync.dump());
    assert!(sync.entry(1)["targets"][0]["hint"].as_str().unwrap_or("").contains("set SWR_SK (and SWR_AK)"), "{}", sync.dump());
    assert!(dst.catalog().is_empty(), "nothing pushed: {:?}", dst.catalog());
    assert!(!sync.all_output().contains(ak), "{}", sync.dump());

    let mut cmd = std::process::Command::new(imgsync_bin());
    cmd.args(["sync", "--engine", "daemon", "--report", "report.json"])
        .current_dir(ws.path())
        .env_clear()
        .env("HOME", ws.home())
        .env("TMPDIR", ws.path().join("tmp"))
        .env("IMGSYNC_RETRY_BASE_MS", "50")
        .env("SWR_AK", ak)
        .env("SWR_SK", sk)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(ws.path().join(".stdout")).unwrap())
        .stderr(std::fs::File::create(ws.path().join(".stderr")).unwrap());
    for key in ["PATH", "DOCKER_HOST"] {
        if let Some(v) = std::env::var_os(key) {
            cmd.env(key, v);
        }
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let mut saw_push = false;
    let mut leaked = Vec::new();
    let status = loop {
        for (pid, argv) in proc_cmdlines() {
            saw_push |= contains(&argv, "\0push\0");
            for secret in [ak, sk, derived] {
                if contains(&argv, secret) {
                    leaked.push((pid, String::from_utf8_lossy(&argv).replace('\0', " ")));
                }
            }
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("imgsync did not finish\n{}", ws.read(".stderr").unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let out = format!("--- stdout ---\n{}\n--- stderr ---\n{}", ws.read(".stdout").unwrap_or_default(), ws.read(".stderr").unwrap_or_default());
    let report = ws.read("report.json").unwrap_or_default();
    assert_eq!(status.code(), Some(0), "{out}\n{report}");
    // The registry accepted only the derived login: the push is there.
    assert_eq!(dst.platform_configs("org/app:v1"), Some(img.configs()), "{out}");
    assert!(saw_push, "the docker push child was looked at");
    assert!(leaked.is_empty(), "a key in a process's argv: {leaked:#?}");
    for secret in [ak, sk, derived] {
        assert!(!out.contains(secret) && !report.contains(secret), "{secret} shown\n{out}\n{report}");
    }
    assert!(out.contains("cn-north-4@***") || !out.contains("cn-north-4@"), "{out}");
}
