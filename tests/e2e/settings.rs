//! End-to-end: the run's inputs and settings. The old project's image list
//! plans as it is (two warnings), copy's selections and bad lines exit 2 with
//! their lines, a BOM in config.env is no part of a key, `.env.local` carries
//! credentials that never show, and INSECURE_REGISTRIES reaches a plain-HTTP
//! registry on a non-loopback address (a network namespace).

use std::path::{Path, PathBuf};

use crate::common::netns::{NetnsRegistry, INSECURE_CIDR};
use crate::common::*;

const SEED_LIST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/seed/images.example.txt");

/// The image word of an images.txt line (the first word that is not an option), if any.
fn image_word(line: &str) -> Option<&str> {
    let code = line.split(" #").next().unwrap_or(line);
    if code.trim_start().starts_with('#') {
        return None;
    }
    code.split_whitespace().find(|w| !w.starts_with('-'))
}

/// `quay.io/coreos/etcd:v3.5.0` -> `coreos/etcd:v3.5.0`; `busybox` -> `library/busybox:latest`.
fn local_path(image: &str) -> String {
    let mut parts: Vec<&str> = image.split('/').collect();
    if parts.len() > 1 && (parts[0].contains('.') || parts[0].contains(':')) {
        parts.remove(0);
    }
    if parts.len() == 1 {
        parts.insert(0, "library");
    }
    let path = parts.join("/");
    if path.rsplit('/').next().unwrap_or("").contains(':') {
        path
    } else {
        format!("{path}:latest")
    }
}

/// The old project's list, with every image moved to `reg` (pushed there with
/// two platforms) and nothing else changed: options, comments, Chinese text
/// and line numbers stay as they are.
fn seed_list_on(reg: &Registry) -> (String, Vec<PushedImage>) {
    let text = std::fs::read_to_string(SEED_LIST).unwrap();
    let mut out = String::new();
    let mut pushed = Vec::new();
    for line in text.lines() {
        match image_word(line) {
            Some(img) => {
                let path = local_path(img);
                pushed.push(reg.push_image(&path, &ImageSpec::new(&unique("seed")).platforms(&["linux/amd64", "linux/arm64/v8"])));
                out.push_str(&line.replacen(img, &format!("{}/{path}", reg.host()), 1));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    (out, pushed)
}

#[test]
fn the_old_projects_list_plans_with_two_warnings() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let reg = Registry::start();
    let (list, pushed) = seed_list_on(&reg);
    assert!(pushed.len() >= 8, "{list}");
    let mut ws = Workspace::new();
    ws.images(&list);
    let run = ws.run(&["plan", "--engine", "daemon", "--report", "plan.json"]);
    run.expect_code(0);
    assert_eq!(run.report()["entries"].as_array().map(Vec::len), Some(pushed.len()), "{}", run.dump());
    assert_eq!(run.summary("failed"), 0, "{}", run.dump());
    // No config.env: the run also says it only plans (issue 20), once.
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning: ") && !l.starts_with("warning: plan only")).collect();
    assert_eq!(warnings.len(), 2, "each warning once\n{}", run.dump());
    assert_eq!(run.stderr.matches("warning: plan only: SYNC_MODE=none").count(), 1, "{}", run.dump());
    assert!(warnings[0].starts_with("warning: images.txt:13: ignoring --disable-content-trust"), "{}", run.dump());
    assert!(warnings[1].starts_with("warning: images.txt:14: ignoring --pull-always"), "{}", run.dump());
    // mysql keeps its --platform.
    let mysql = run.entry(12)["platforms"].as_array().cloned().unwrap_or_default();
    assert!(mysql.len() == 1 && mysql[0].as_str().unwrap_or("").starts_with("linux/arm64"), "{}", run.dump());

    // Under GitHub Actions: an annotation on each line instead.
    ws.set_env("GITHUB_ACTIONS", "true");
    let run = ws.run(&["plan", "--engine", "daemon"]);
    run.expect_code(0);
    let notes: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("::warning file=images.txt,line=")).collect();
    assert_eq!(notes.len(), 2, "{}", run.dump());
    assert!(notes[0].starts_with("::warning file=images.txt,line=13::ignoring --disable-content-trust"), "{}", run.dump());
}

/// No engine needed: input errors stop the run before it starts. `copy`
/// refuses a selection (it reads no tag lists); a selecting line that names
/// one target tag is an input error of plan and sync.
#[test]
fn selecting_and_bad_lines_exit_2_with_their_lines() {
    let ws = Workspace::new();
    let run = ws.run(&["copy", "nginx --semver=~1.27"]);
    run.expect_code(2);
    assert!(
        run.stderr.contains("error: arguments:1: tag selection (--semver='~1.27') needs the registry's tag list"),
        "{}",
        run.dump()
    );
    ws.images("nginx:1.27\nnginx --semver='~1.27' => web:stable\n");
    for cmd in ["plan", "sync"] {
        let run = ws.run(&[cmd]);
        run.expect_code(2);
        assert!(run.stderr.contains("error: images.txt:2: `=> web:stable` names one tag"), "{cmd}\n{}", run.dump());
    }
    // Hundreds of bad lines: the first 50, then a count.
    ws.images(&"nginx;x\n".repeat(120));
    let run = ws.run(&["plan"]);
    run.expect_code(2);
    assert_eq!(run.stderr.lines().filter(|l| l.starts_with("error: images.txt:")).count(), 50, "{}", run.dump());
    assert!(run.stderr.contains("error: … and 70 more errors"), "{}", run.dump());
}

#[test]
fn a_bom_in_config_env_is_no_part_of_the_first_key() {
    let ws = Workspace::new();
    ws.images("nginx:alpine\n");
    ws.config("\u{feff}SYNC_MODE=bogus\n");
    let run = ws.run(&["plan"]);
    run.expect_code(2);
    assert!(run.stderr.contains("config.env:1: SYNC_MODE=\"bogus\": expected"), "the key was read as SYNC_MODE\n{}", run.dump());
}

/// Regular files under `root` whose bytes contain `needle`.
fn files_containing(root: &Path, needle: &str, skip: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&p) else { continue };
            if meta.is_dir() {
                todo.push(p);
            } else if meta.is_file() && p != skip && std::fs::read(&p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes())) {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn credentials_in_env_local_sync_to_an_auth_registry_and_never_show() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let password = format!("envlocal-{}", unique("pw"));
    let src = Registry::start();
    let dst = Registry::start_with_auth("mirror-bot", &password);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("envlocal")));
    let _cleanup = ImageCleanup { docker, ids: img.config_digests() };
    let ws = Workspace::new();
    ws.images(&format!("{} => app\n", img.reference()));
    ws.config(&format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=mirror\n", dst.host()));
    ws.write(".env.local", &format!("# mine, never committed\nCUSTOM_USERNAME=mirror-bot\nCUSTOM_PASSWORD='{password}'\n"));

    let run = ws.sync(&[]);
    run.expect_code(0);
    assert_eq!(run.targets(1), vec![(format!("{}/mirror/app:v1", dst.host()), "synced".to_string())]);
    assert_eq!(dst.catalog(), vec!["mirror/app".to_string()]);
    assert!(!run.all_output().contains(&password), "the password was printed\n{}", run.dump());

    // doctor names the keys that came from .env.local, never their values.
    let doctor = ws.run(&["doctor"]);
    assert!(doctor.stdout.contains("✓ .env.local: sets CUSTOM_PASSWORD, CUSTOM_USERNAME (values not shown)"), "{}", doctor.dump());
    assert!(doctor.stdout.contains(&format!("✓ login to {} (custom): as mirror-bot", dst.host())), "{}", doctor.dump());
    assert!(!doctor.all_output().contains(&password), "doctor printed the password\n{}", doctor.dump());
    // Nowhere on disk but .env.local itself (no private config or report holds it).
    let left = files_containing(ws.path(), &password, &ws.path().join(".env.local"));
    assert!(left.is_empty(), "the password was written to {left:?}");
}

/// `host:port` of a registry that docker treats as plain HTTP only when told:
/// a non-loopback address, inside a network namespace.
#[test]
fn insecure_registry_on_a_non_loopback_address() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let skip = |why: String| eprintln!("SKIPPED settings::insecure_registry_on_a_non_loopback_address: {why}");
    let info = docker.run(&["info", "--format", "{{json .RegistryConfig}}"]);
    if !info.stdout.contains(INSECURE_CIDR) {
        return skip(format!("the Docker engine does not list {INSECURE_CIDR} in insecure-registries (scripts/test.sh's private engine does)"));
    }
    let target = match NetnsRegistry::start() {
        Ok(t) => t,
        Err(e) => return skip(format!("no network namespace: {e} (needs root and iproute2)")),
    };
    let host = target.reg.host();
    assert!(!host.starts_with("127."), "{host}");
    let src = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("insecure")).platforms(&["linux/amd64", "linux/arm64/v8"]));
    let _cleanup = ImageCleanup { docker: docker.clone(), ids: img.config_digests() };
    let ws = Workspace::new();
    ws.images(&format!("{} => app\n", img.reference()));
    let config = format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={host}\nCUSTOM_NAMESPACE=mirror\n");

    // Unlisted, the docker CLI's `manifest` commands speak HTTPS to it and the
    // target fails (the engine's own pushes of each platform get through: it
    // lists the subnet).
    ws.config(&config);
    let run = ws.run(&["sync", "--report", "report.json"]);
    run.expect_code(1);
    assert_eq!(run.status(1), "failed", "{}", run.dump());

    // Listed: `--engine auto` picks the daemon engine and the copy lands.
    ws.config(&format!("{config}INSECURE_REGISTRIES={host}\n"));
    let run = ws.run(&["sync", "--report", "report.json"]);
    run.expect_code(0);
    assert_eq!(run.report()["engine"], "daemon", "{}", run.dump());
    assert_eq!(run.targets(1), vec![(format!("{host}/mirror/app:v1"), "synced".to_string())]);
    assert_eq!(target.reg.catalog(), vec!["mirror/app".to_string()]);
    assert_eq!(target.reg.platform_configs("mirror/app:v1").unwrap(), img.configs());
    let again = ws.run(&["sync", "--report", "report.json"]);
    again.expect_code(0);
    assert_eq!(again.targets(1), vec![(format!("{host}/mirror/app:v1"), "up-to-date".to_string())]);
    // imagetools is refused for it, with the way out.
    if buildx_enabled() {
        ws.link_buildx();
        let it = ws.run(&["plan", "--engine", "imagetools"]);
        it.expect_code(2);
        assert!(it.stderr.contains("--engine imagetools cannot reach") && it.stderr.contains("--engine daemon"), "{}", it.dump());
    }

    // doctor: the engine lists it.
    let doctor = ws.run(&["doctor"]);
    assert!(doctor.stdout.contains(&format!("✓ insecure registry {host}: ")), "{}", doctor.dump());
    // A listed registry the engine does not know: doctor says how to add it.
    ws.config(&format!("{config}INSECURE_REGISTRIES={host},192.0.2.1:5000\n"));
    let doctor = ws.run(&["doctor"]);
    doctor.expect_code(1);
    assert!(doctor.stdout.contains("✗ insecure registry 192.0.2.1:5000: not in the Docker engine's insecure-registries"), "{}", doctor.dump());
    assert!(doctor.stdout.contains("daemon.json"), "{}", doctor.dump());
}

/// Issue 19: bracketed IPv6 registries are a clear config error (the README
/// says so), in settings and in images.txt, before any docker or registry
/// step. No `::1` is needed for that, so this never skips.
#[test]
fn an_ipv6_registry_is_a_plain_config_error() {
    let ws = Workspace::new();
    ws.images("nginx:alpine\n");
    ws.config("SYNC_MODE=custom\nCUSTOM_REGISTRY=[::1]:5000\nCUSTOM_NAMESPACE=ns\n");
    for cmd in ["plan", "sync"] {
        let run = ws.run(&[cmd]);
        run.expect_code(2);
        assert!(run.stderr.contains("IPv6 registry addresses"), "{cmd}\n{}", run.dump());
    }
    ws.config("SYNC_MODE=none\n");
    ws.images("[::1]:5000/app:v1\n");
    let run = ws.run(&["plan"]);
    run.expect_code(2);
    assert!(run.stderr.contains("IPv6 registry addresses"), "{}", run.dump());
    let run = ws.run(&["pull", "[::1]:5000/app:v1"]);
    run.expect_code(2);
    assert!(run.stderr.contains("IPv6 registry addresses"), "{}", run.dump());
}
