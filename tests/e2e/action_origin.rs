//! scripts/origin.sh, the action's decision of where imgsync comes from, run
//! offline: `origin_api` (the GitHub API) is replaced by canned answers from a
//! directory, and every call is logged. Needs bash and jq (as GitHub's runners
//! have them); no engine, no network.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

const STAMP: &str = "# imgsync release stamp\n\
repository up/imgsync\n\
version 0.4.0\n\
archive x86_64-unknown-linux-musl imgsync-0.4.0-x86_64-unknown-linux-musl.tar.gz AAAA000000000000000000000000000000000000000000000000000000000001\n\
binary x86_64-unknown-linux-musl bbbb000000000000000000000000000000000000000000000000000000000002\n";

/// An action checkout: Cargo.toml with `version` (and `repository` when given),
/// and release-stamp.txt when given.
fn checkout(dir: &Path, version: &str, repository: Option<&str>, stamp: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut cargo = format!("[package]\nname = \"imgsync\"\nversion = \"{version}\"\n");
    if let Some(r) = repository {
        cargo.push_str(&format!("repository = \"{r}\"\n"));
    }
    cargo.push_str("\n[dependencies]\nversion = \"9.9.9\"\n");
    std::fs::write(dir.join("Cargo.toml"), cargo).unwrap();
    if let Some(s) = stamp {
        std::fs::write(dir.join("release-stamp.txt"), s).unwrap();
    }
}

struct Run {
    decision: BTreeMap<String, String>,
    api_calls: Vec<String>,
}

/// Sources origin.sh, replaces origin_api with the canned answers in `canned`
/// (file name: the API path with `/`, `?`, `=` as `_`), runs `snippet`.
fn bash(snippet: &str, env: &[(&str, &str)], canned: &Path) -> (String, Vec<String>) {
    let log = canned.join("calls.log");
    let script = format!(
        r#"set -u
. "{origin}"
origin_api() {{
  printf '%s %s\n' "$1" "${{2:-json}}" >> "{log}"
  local f="{canned}/$(printf '%s' "$1" | tr '/?=' '___')"
  [ -f "$f" ] || return 22
  cat "$f"
}}
{snippet}"#,
        origin = repo().join("scripts/origin.sh").display(),
        log = log.display(),
        canned = canned.display(),
    );
    let mut cmd = Command::new("bash");
    cmd.arg("-c").arg(script).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("bash");
    assert!(out.status.success(), "origin.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let calls = std::fs::read_to_string(&log).unwrap_or_default().lines().map(str::to_string).collect();
    (String::from_utf8(out.stdout).unwrap(), calls)
}

fn origin(env: &[(&str, &str)], canned: &Path) -> Run {
    let _ = std::fs::remove_file(canned.join("calls.log"));
    let (out, api_calls) = bash("imgsync_origin", env, canned);
    let decision = out
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Run { decision, api_calls }
}

fn canned(dir: &Path, path: &str, body: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(path.replace(['/', '?', '='], "_")), body).unwrap();
}

fn have_jq() -> bool {
    Command::new("jq").arg("--version").output().map(|o| o.status.success()).unwrap_or(false)
}

#[test]
fn a_stamped_checkout_downloads_the_stamped_release_and_asks_no_api() {
    let tmp = tempfile::tempdir().unwrap();
    let action = tmp.path().join("work/mirror");
    checkout(&action, "0.4.0", None, Some(STAMP));
    let api = tmp.path().join("api");
    std::fs::create_dir_all(&api).unwrap();
    let a = action.to_str().unwrap();
    let env = [("ACTION_PATH", a), ("GITHUB_REPOSITORY", "me/mirror"), ("GITHUB_WORKSPACE", a)];

    let run = origin(&env, &api);
    assert_eq!(run.decision["how"], "release", "{:?}", run.decision);
    assert_eq!(run.decision["repository"], "up/imgsync");
    assert_eq!(run.decision["version"], "0.4.0");
    assert_eq!(run.decision["stamp"], format!("{a}/release-stamp.txt"));
    assert!(run.api_calls.is_empty(), "a stamp needs no API: {:?}", run.api_calls);

    // The checksums the action checks against, per target (lowercased).
    let (out, _) = bash(
        &format!("stamp_archive {a}/release-stamp.txt x86_64-unknown-linux-musl; stamp_binary {a}/release-stamp.txt x86_64-unknown-linux-musl; stamp_binary {a}/release-stamp.txt riscv64"),
        &[],
        &api,
    );
    assert_eq!(
        out,
        "imgsync-0.4.0-x86_64-unknown-linux-musl.tar.gz aaaa000000000000000000000000000000000000000000000000000000000001\n\
         bbbb000000000000000000000000000000000000000000000000000000000002\n"
    );

    // Input `repository` moves the download, not the checksums.
    let run = origin(&[env[0], env[1], env[2], ("INPUT_REPOSITORY", "mirror/elsewhere")], &api);
    assert_eq!(run.decision["how"], "release");
    assert_eq!(run.decision["repository"], "mirror/elsewhere");
    assert_eq!(run.decision["stamp"], format!("{a}/release-stamp.txt"));

    // Another version than the stamped one has no pinned checksum: source.
    let run = origin(&[env[0], env[1], env[2], ("INPUT_VERSION", "v0.3.0")], &api);
    assert_eq!(run.decision["how"], "source", "{:?}", run.decision);
    assert!(run.decision["why"].contains("not the stamped release 0.4.0"), "{:?}", run.decision);

    // A line break in an input cannot add a field the action would read.
    let run = origin(&[env[0], env[1], env[2], ("INPUT_VERSION", "0.3.0\nhow=release\nrepository=evil/x")], &api);
    assert_eq!(run.decision["how"], "source", "{:?}", run.decision);
    assert_eq!(run.decision["repository"], "up/imgsync", "{:?}", run.decision);
}

#[test]
fn a_fork_reads_the_stamp_of_its_source_repository() {
    if !have_jq() {
        panic!("jq is needed (apt-get install jq; GitHub's runners have it)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let action = tmp.path().join("work/mirror");
    checkout(&action, "0.4.0", None, None);
    let api = tmp.path().join("api");
    // The API's answer for a fork, trimmed to what matters (real answers carry
    // many more fields, and `parent` beside `source`).
    canned(
        &api,
        "repos/me/mirror",
        r#"{"full_name":"me/mirror","fork":true,"parent":{"full_name":"mid/imgsync"},"source":{"full_name":"up/imgsync"}}"#,
    );
    canned(&api, "repos/up/imgsync/contents/release-stamp.txt?ref=v0.4.0", STAMP);
    let a = action.to_str().unwrap();
    let fetched = tmp.path().join("fetched-stamp.txt");
    let env = [
        ("ACTION_PATH", a),
        ("GITHUB_REPOSITORY", "me/mirror"),
        ("GITHUB_WORKSPACE", a),
        ("ORIGIN_STAMP_OUT", fetched.to_str().unwrap()),
    ];

    let run = origin(&env, &api);
    assert_eq!(run.decision["how"], "release", "{:?}", run.decision);
    assert_eq!(run.decision["repository"], "up/imgsync", "the source, not the parent");
    assert_eq!(run.decision["version"], "0.4.0");
    assert_eq!(run.decision["stamp"], fetched.to_str().unwrap());
    assert_eq!(std::fs::read_to_string(&fetched).unwrap(), STAMP);
    assert_eq!(
        run.api_calls,
        ["repos/me/mirror json", "repos/up/imgsync/contents/release-stamp.txt?ref=v0.4.0 application/vnd.github.raw"],
        "the stamp comes from the source's release commit (its git tree), not from its release assets"
    );

    // The source has no stamped release of this version: source, and why.
    checkout(&action, "0.5.0", None, None);
    let run = origin(&env, &api);
    assert_eq!(run.decision["how"], "source", "{:?}", run.decision);
    assert!(run.decision["why"].contains("fork of up/imgsync"), "{:?}", run.decision);
    assert!(run.decision["why"].contains("no stamped release v0.5.0"), "{:?}", run.decision);
    assert!(!fetched.exists(), "a failed fetch leaves no stamp behind");

    // Input `repository` on an unstamped checkout: that repository's stamp, no
    // fork question asked.
    checkout(&action, "0.4.0", None, None);
    let run = origin(&[env[0], env[1], env[2], env[3], ("INPUT_REPOSITORY", "up/imgsync")], &api);
    assert_eq!(run.decision["how"], "release", "{:?}", run.decision);
    assert_eq!(run.decision["repository"], "up/imgsync");
    assert_eq!(run.api_calls, ["repos/up/imgsync/contents/release-stamp.txt?ref=v0.4.0 application/vnd.github.raw"]);

    // A stamp that names another repository than the one asked is not taken.
    checkout(&action, "0.4.0", None, None);
    canned(&api, "repos/up/imgsync/contents/release-stamp.txt?ref=v0.4.0", &STAMP.replace("up/imgsync", "evil/imgsync"));
    let run = origin(&env, &api);
    assert_eq!(run.decision["how"], "source", "{:?}", run.decision);
}

#[test]
fn an_unstamped_checkout_builds_from_source_and_says_why() {
    if !have_jq() {
        panic!("jq is needed (apt-get install jq; GitHub's runners have it)");
    }
    let tmp = tempfile::tempdir().unwrap();
    let action = tmp.path().join("work/mirror");
    checkout(&action, "0.4.0", None, None);
    let api = tmp.path().join("api");
    // A template copy: not a fork (the API names the template, which is not a
    // download origin: a copy of main carries no stamp).
    canned(&api, "repos/me/mirror", r#"{"full_name":"me/mirror","fork":false,"template_repository":{"full_name":"up/imgsync"}}"#);
    let a = action.to_str().unwrap();
    let env = [("ACTION_PATH", a), ("GITHUB_REPOSITORY", "me/mirror"), ("GITHUB_WORKSPACE", a)];
    let run = origin(&env, &api);
    assert_eq!(run.decision["how"], "source", "{:?}", run.decision);
    assert_eq!(run.decision["repository"], "");
    assert_eq!(run.decision["version"], "0.4.0", "the version from Cargo.toml's [package], not a dependency's");
    assert!(run.decision["why"].contains("no release-stamp.txt"), "{:?}", run.decision);
    assert_eq!(run.api_calls, ["repos/me/mirror json"]);

    // The API unreachable: the same, without a guess.
    std::fs::remove_file(api.join("repos_me_mirror")).unwrap();
    let run = origin(&env, &api);
    assert_eq!(run.decision["how"], "source");

    // Used as owner/name@ref without a stamp (e.g. @main): source, no API asked.
    let remote = tmp.path().join("_actions/someone/imgsync/main");
    checkout(&remote, "0.4.0", None, None);
    let r = remote.to_str().unwrap();
    let run = origin(&[("ACTION_PATH", r), ("GITHUB_REPOSITORY", "me/mirror"), ("GITHUB_WORKSPACE", a)], &api);
    assert_eq!(run.decision["how"], "source");
    assert!(run.api_calls.is_empty(), "{:?}", run.api_calls);
}

#[test]
fn the_upstream_is_the_stamp_or_cargo_toml_repository() {
    let tmp = tempfile::tempdir().unwrap();
    let api = tmp.path().join("api");
    std::fs::create_dir_all(&api).unwrap();
    let cases: [(Option<&str>, Option<&str>, &str); 6] = [
        (None, Some(STAMP), "up/imgsync\n"),
        (Some("https://github.com/other/imgsync"), Some(STAMP), "up/imgsync\n"),
        (Some("https://github.com/acme/imgsync"), None, "acme/imgsync\n"),
        (Some("https://github.com/acme/imgsync.git"), None, "acme/imgsync\n"),
        (Some("https://gitlab.com/acme/imgsync"), None, ""),
        (None, None, ""),
    ];
    for (i, (repository, stamp, want)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("c{i}"));
        checkout(&dir, "0.4.0", *repository, *stamp);
        let (out, _) = bash(&format!("upstream_of {}", dir.display()), &[], &api);
        assert_eq!(&out, want, "case {i}: {repository:?} {stamp:?}");
    }
    // The script form the workflows use, on this checkout.
    let out = Command::new("bash").arg(repo().join("scripts/origin.sh")).arg("upstream").arg(repo()).output().unwrap();
    assert!(out.status.success());
    let here = String::from_utf8(out.stdout).unwrap();
    assert!(!here.contains("OWNER"), "{here}");
}
