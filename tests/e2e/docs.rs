//! The files a user copies and reads, checked as text: no placeholder upstream,
//! both READMEs walk the same path, and the workflows keep their promises
//! (the project's own CI stays upstream, release assets are never replaced,
//! the migration secrets reach imgsync, the schedule is kept alive).
//! No engine, no network.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn workflows() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(repo().join(".github/workflows"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    names.sort();
    names.into_iter().map(|n| format!(".github/workflows/{n}")).collect()
}

/// `OWNER/imgsync` was once used as a real value: copied one-liners failed
/// quietly, and whoever owned that account would have supplied the binary.
#[test]
fn no_file_names_a_placeholder_upstream() {
    let mut files = vec!["scripts/install.sh".to_string(), "scripts/install.ps1".to_string(), "action.yml".to_string()];
    files.extend(workflows());
    let mut found = Vec::new();
    for f in &files {
        for (i, line) in read(f).lines().enumerate() {
            if line.contains("OWNER/") {
                found.push(format!("{f}:{}: {line}", i + 1));
            }
        }
    }
    // The READMEs: every line that installs or uses imgsync.
    let install_line = Regex::new(r"install\.sh|install\.ps1|uses:|curl |irm |releases|attestation|IMGSYNC_").unwrap();
    for f in ["README.md", "README.zh-CN.md"] {
        for (i, line) in read(f).lines().enumerate() {
            if install_line.is_match(line) && line.contains("OWNER/") {
                found.push(format!("{f}:{}: {line}", i + 1));
            }
        }
    }
    assert!(found.is_empty(), "placeholder upstream (a repository this file cannot know):\n{}", found.join("\n"));
}

/// The user's path: the section between the `user-path` markers.
fn user_path(f: &str) -> String {
    let text = read(f);
    let start = text.find("<!-- user-path:start").unwrap_or_else(|| panic!("{f}: no user-path:start marker"));
    let end = text.find("<!-- user-path:end -->").unwrap_or_else(|| panic!("{f}: no user-path:end marker"));
    assert!(start < end, "{f}: markers out of order");
    text[start..end].to_string()
}

/// What a user types or sets on the path: imgsync commands, setting and secret
/// names, workflow files, config.env lines.
fn names(section: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let command = Regex::new(r"(?-u:\b)imgsync (sync|plan|copy|doctor|pull|map|clean-disk|completions)\b").unwrap();
    for c in command.captures_iter(section) {
        out.insert(format!("imgsync {}", &c[1]));
    }
    let setting = Regex::new(r"(?-u:\b)([A-Z][A-Z0-9]*_[A-Z0-9_]+)(?-u:\b)").unwrap();
    for c in setting.captures_iter(section) {
        out.insert(c[1].to_string());
    }
    let assignment = Regex::new(r"(?m)^([A-Z][A-Z0-9_]+)=(\S+)$").unwrap();
    for c in assignment.captures_iter(section) {
        out.insert(format!("{}={}", &c[1], &c[2]));
    }
    let workflow = Regex::new(r"(?-u:\b)(0\d-[a-z-]+\.yml)(?-u:\b)").unwrap();
    for c in workflow.captures_iter(section) {
        out.insert(c[1].to_string());
    }
    let file = Regex::new(r"`((?:images\.txt|config\.env|MIRRORS\.md|README\.md|\.env\.local))`").unwrap();
    for c in file.captures_iter(section) {
        out.insert(c[1].to_string());
    }
    out
}

#[test]
fn both_readmes_walk_the_same_user_path() {
    let en = user_path("README.md");
    let zh = user_path("README.zh-CN.md");
    let (e, z) = (names(&en), names(&zh));
    for must in ["ALIYUN_USERNAME", "ALIYUN_PASSWORD", "ALIYUN_REGISTRY", "ALIYUN_NAMESPACE", "SYNC_MODE", "imgsync pull"] {
        assert!(e.contains(must), "README.md's five-minute section does not name {must}: {e:?}");
    }
    let only_en: Vec<_> = e.difference(&z).collect();
    let only_zh: Vec<_> = z.difference(&e).collect();
    assert!(
        only_en.is_empty() && only_zh.is_empty(),
        "README.md and README.zh-CN.md disagree on the user's path:\n  only in README.md: {only_en:?}\n  only in README.zh-CN.md: {only_zh:?}"
    );
    // The ACR console steps, by their console names, in both.
    for step in ["个人实例", "命名空间", "访问凭证", "设置固定密码", "personal.cr.aliyuncs.com", "registry-vpc."] {
        assert!(en.contains(step), "README.md lacks the ACR step {step}");
        assert!(zh.contains(step), "README.zh-CN.md lacks the ACR step {step}");
    }
    // Each links to the other at the top.
    assert!(read("README.md").lines().take(5).any(|l| l.contains("(README.zh-CN.md)")));
    assert!(read("README.zh-CN.md").lines().take(5).any(|l| l.contains("(README.md)")));
}

/// The names the five-minute section uses are real: each setting is in
/// config.env or a workflow, each workflow file exists.
#[test]
fn the_user_path_names_real_settings_and_files() {
    let known: String = [read("config.env"), read(".github/workflows/01-batch-sync.yml"), read("action.yml")].concat();
    for n in names(&user_path("README.md")) {
        if n.ends_with(".yml") {
            assert!(Path::new(&repo().join(".github/workflows").join(&n)).is_file(), "{n} does not exist");
        } else if let Some((key, _)) = n.split_once('=') {
            assert!(known.contains(key), "{key} is in neither config.env nor the workflow");
        } else if !n.starts_with("imgsync ") && !n.contains('.') {
            assert!(known.contains(&n), "{n} is in neither config.env nor the workflow");
        }
    }
}

fn jobs(workflow: &str) -> Vec<(String, String)> {
    // Top-level jobs: two-space keys under `jobs:`, each with its block.
    let text = read(workflow);
    let body = &text[text.find("\njobs:\n").expect("jobs:") + 7..];
    let key = Regex::new(r"(?m)^  ([A-Za-z0-9_-]+):\s*$").unwrap();
    let starts: Vec<_> = key.captures_iter(body).map(|c| (c[1].to_string(), c.get(0).unwrap().start())).collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, (name, at))| {
            let end = starts.get(i + 1).map_or(body.len(), |n| n.1);
            (name.clone(), body[*at..end].to_string())
        })
        .collect()
}

#[test]
fn the_projects_own_workflows_run_only_upstream() {
    for (wf, gate, output) in [
        (".github/workflows/portability.yml", "upstream", "needs.upstream.outputs.is-upstream == 'true'"),
        (".github/workflows/release.yml", "check", "needs.check.outputs.go == 'true'"),
    ] {
        let all = jobs(wf);
        assert!(all.iter().any(|(n, _)| n == gate), "{wf}: no {gate} job");
        assert!(all.iter().find(|(n, _)| n == gate).unwrap().1.contains("scripts/origin.sh upstream"), "{wf}: {gate} must ask scripts/origin.sh");
        for (name, block) in &all {
            if name == gate {
                continue;
            }
            // Either gated directly, or after a gated job.
            let gated = block.contains(output) || all.iter().any(|(n, b)| n != name && b.contains(output) && block.contains(&format!("needs: {n}")));
            assert!(gated, "{wf}: job {name} runs in a user's copy (no `{output}`)");
        }
    }
    // A change to images.txt alone does not start portability.yml at all.
    let p = read(".github/workflows/portability.yml");
    assert!(p.contains("paths:") && p.contains("\"src/**\""), "portability.yml runs on every push");
}

#[test]
fn release_assets_are_never_replaced_and_the_stamp_is_committed_before_the_tags_move() {
    for wf in workflows() {
        assert!(!read(&wf).contains("--clobber"), "{wf} replaces release assets");
    }
    let r = read(".github/workflows/release.yml");
    let stamp = r.find("scripts/stamp.sh").expect("release.yml stamps the release");
    let commit = r.find("git commit").expect("release.yml commits the stamp");
    let tags = r.find("git push --force origin \"refs/tags/$TAG\" \"refs/tags/$major\"").expect("release.yml moves vX.Y.Z and the major tag");
    let publish = r.find("gh release create").expect("release.yml publishes");
    assert!(stamp < commit && commit < tags && tags < publish, "build, stamp, commit, move the tags, then publish");
    for asset in ["dist/install.sh", "dist/install.ps1", "dist/latest", "dist/SHA256SUMS"] {
        assert!(r[publish..].contains(asset), "the release does not publish {asset}");
    }
}

#[test]
fn the_workflows_pass_the_migration_secrets_and_keep_the_schedule() {
    let batch = read(".github/workflows/01-batch-sync.yml");
    for line in [
        "ALIYUN_REGISTRY: ${{ secrets.ALIYUN_REGISTRY || vars.ALIYUN_REGISTRY }}",
        "ALIYUN_NAMESPACE: ${{ secrets.ALIYUN_NAMESPACE || vars.ALIYUN_NAMESPACE }}",
        "ALIYUN_NAME_SPACE: ${{ secrets.ALIYUN_NAME_SPACE }}",
        "ALIYUN_REGISTRY_USER: ${{ secrets.ALIYUN_REGISTRY_USER }}",
        "ALIYUN_REGISTRY_PASSWORD: ${{ secrets.ALIYUN_REGISTRY_PASSWORD }}",
    ] {
        for wf in ["01-batch-sync.yml", "02-double-sync.yml", "03-to-aliyun.yml"] {
            assert!(read(&format!(".github/workflows/{wf}")).contains(line), "{wf} does not pass `{line}`");
        }
    }
    let keepalive = jobs(".github/workflows/01-batch-sync.yml").into_iter().find(|(n, _)| n == "keepalive").expect("a keepalive job");
    assert!(keepalive.1.contains("github.event_name == 'schedule'"));
    assert!(keepalive.1.contains("actions: write"));
    assert!(keepalive.1.contains("/enable"));
    assert!(batch.contains("schedule:"));
}

/// config.env's comments name settings imgsync reads: every `# KEY=value`
/// example, uncommented, is taken without an "unknown key" warning (the
/// resolver's own list decides), and the values the examples show are valid.
#[test]
fn config_env_examples_are_settings_imgsync_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let example = Regex::new(r"(?m)^# ([A-Z][A-Z0-9_]*=)").unwrap();
    let shipped = read("config.env");
    let all = example.replace_all(&shipped, "$1").into_owned();
    assert!(all.lines().filter(|l| l.contains('=') && !l.starts_with('#')).count() > 10, "the examples were not uncommented:\n{all}");
    let run = |config: &str| {
        std::fs::write(tmp.path().join("config.env"), config).unwrap();
        std::fs::write(tmp.path().join("images.txt"), "").unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_imgsync"))
            .args(["plan", "--config", "config.env", "--images", "images.txt"])
            .current_dir(tmp.path())
            .env("STATE_FILE", tmp.path().join("state.json"))
            .env("HOME", tmp.path())
            .env_remove("GITHUB_ACTIONS")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&all);
    assert_eq!(code, Some(0), "config.env with its examples uncommented:\n{err}");
    assert!(!err.contains("unknown key"), "config.env names a key imgsync does not read:\n{err}");
    // The check can fail: a misspelt key is caught.
    let (_, err) = run(&format!("{all}\nSYNC_MOD=aliyun\n"));
    assert!(err.contains("unknown key SYNC_MOD"), "{err}");
}

#[test]
fn the_demo_keeps_its_own_state_file() {
    let demo = read("scripts/demo.sh");
    let export = demo.find("export STATE_FILE=$work/").expect("demo.sh sets its own STATE_FILE");
    let first_run = demo.find("\"$bin\" sync").expect("demo.sh runs sync");
    assert!(export < first_run, "STATE_FILE is set before the first imgsync run");
}
