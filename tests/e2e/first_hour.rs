//! End-to-end: a new user's first hour (issue 20). No green run that did
//! nothing (a missing `--config`, unknown config.env keys, SYNC_MODE=none),
//! one message per root cause (a wrong password for five entries), a dead
//! registry that fails fast beside a live one, and flags each command owns
//! (`doctor --badge`, `--jobs 0`, `--report -`).

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

fn workspace() -> Workspace {
    let mut ws = Workspace::new();
    ws.set_env("IMGSYNC_RETRY_BASE_MS", "50");
    ws
}

/// A "registry" that accepts connections and never answers (a blackholed
/// host behind a load balancer). Stops, and closes every socket, on drop.
struct Tarpit {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Tarpit {
    fn start() -> Tarpit {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => held.push(s),
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Tarpit { port, stop, thread: Some(thread) }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// No engine or registry needed: inputs are refused before anything runs.
#[test]
fn a_missing_config_and_foreign_flags_are_exit_2() {
    let ws = workspace();
    ws.images("nginx:alpine\n");
    let run = ws.run(&["plan", "--config", "confg.env"]);
    run.expect_code(2);
    assert!(run.stderr.contains("error: --config confg.env: not found"), "{}", run.dump());
    let run = ws.run(&["sync", "--config", "confg.env"]);
    run.expect_code(2);
    // Each command takes only its own flags.
    for args in [&["doctor", "--badge", "x"][..], &["doctor", "--shard", "1/2"], &["doctor", "--report", "r.json"], &["plan", "--badge", "x"], &["plan", "--dry-run"]] {
        let run = ws.run(args);
        run.expect_code(2);
        assert!(run.stderr.contains("unexpected argument"), "{args:?}\n{}", run.dump());
    }
    // The command line takes what config.env takes, and refuses what it refuses.
    for args in [&["plan", "--jobs", "0"][..], &["plan", "--timeout", "0"], &["plan", "--inspect-jobs", "0"]] {
        let run = ws.run(args);
        run.expect_code(2);
        assert!(run.stderr.contains("expected a whole number of at least 1") || run.stderr.contains("is not in 1..=1024"), "{args:?}\n{}", run.dump());
    }
}

#[test]
fn unknown_keys_and_plan_only_are_said_under_actions_too() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("fh-none")));
    let mut ws = workspace();
    ws.images(&format!("{}\n", img.reference()));
    ws.config("# the shipped file, with a typo\nSYNC_MOD=aliyun\nCLEAN_DISK_SPACE=false\n");
    let run = ws.run(&["plan", "--report", "report.json"]);
    run.expect_code(0);
    assert!(run.stderr.contains("warning: config.env:2: unknown key SYNC_MOD, ignored: did you mean SYNC_MODE?"), "{}", run.dump());
    assert!(run.stderr.contains("warning: plan only: SYNC_MODE=none"), "{}", run.dump());
    assert_eq!(run.report()["plan_only"], true, "{}", run.dump());
    // doctor says the same about the key; with -q only what needs fixing.
    let doctor = ws.run(&["doctor"]);
    assert!(doctor.stdout.contains("! config.env: config.env:2: unknown key SYNC_MOD, ignored: did you mean SYNC_MODE?"), "{}", doctor.dump());
    let quiet = ws.run(&["doctor", "-q"]);
    assert!(quiet.stdout.contains("unknown key SYNC_MOD") && !quiet.stdout.lines().any(|l| l.starts_with("✓ ")), "{}", quiet.dump());

    // Under GitHub Actions: a ::warning, and the step summary says it too.
    ws.config("SYNC_MODE=none\n");
    ws.set_env("GITHUB_ACTIONS", "true");
    ws.set_env("GITHUB_STEP_SUMMARY", &ws.path().join("summary.md").display().to_string());
    let run = ws.run(&["sync"]);
    run.expect_code(0);
    assert!(run.stderr.lines().any(|l| l.starts_with("::warning::plan only: SYNC_MODE=none")), "{}", run.dump());
    // A settings warning with a line is an annotation on that line of the file.
    ws.config("SYNC_MODE=none\nJOB=2\n");
    let run = ws.run(&["plan"]);
    assert!(run.stderr.contains("::warning file=config.env,line=2::unknown key JOB, ignored: did you mean JOBS?"), "{}", run.dump());
    let summary = ws.read("summary.md").unwrap_or_default();
    assert!(summary.contains("⚠️ **plan only: SYNC\\_MODE=none"), "{summary}");
    assert!(!summary.contains("✅"), "{summary}");
}

#[test]
fn tech_shrimp_secret_names_are_read_with_a_note() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("fh-alias")));
    let mut ws = workspace();
    ws.images(&format!("{} => app\n", img.reference()));
    ws.config(&format!("SYNC_MODE=aliyun\nALIYUN_REGISTRY={}\n", dst.host()));
    ws.set_env("ALIYUN_NAME_SPACE", "mirror");
    let run = ws.run(&["plan", "--report", "report.json"]);
    run.expect_code(0);
    assert!(run.stderr.contains("warning: ALIYUN_NAME_SPACE is read as ALIYUN_NAMESPACE"), "{}", run.dump());
    assert_eq!(run.targets(1), [(format!("{}/mirror/app:v1", dst.host()), "would-sync".to_string())], "{}", run.dump());
    // Without it: the error says where the setting can come from.
    ws.set_env("ALIYUN_NAME_SPACE", "");
    let run = ws.run(&["plan"]);
    run.expect_code(2);
    assert!(run.stderr.contains("set ALIYUN_NAMESPACE, in config.env or the environment (a repository secret or variable reaches imgsync only when the workflow passes it"), "{}", run.dump());
}

#[test]
fn a_wrong_password_for_five_entries_is_said_once_naming_the_variable() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start_with_auth("mirror-bot", &unique("pw-real"));
    let mut ws = workspace();
    let wrong = unique("pw-wrong");
    ws.custom_target(&dst, "mirror", Some(&wrong));
    let mut list = String::new();
    for i in 0..5 {
        let img = src.push_image(&format!("lib/app{i}:v1"), &ImageSpec::new(&unique("fh-401")));
        list.push_str(&format!("{}\n", img.reference()));
    }
    ws.images(&list);
    ws.set_env("GITHUB_ACTIONS", "true");
    ws.set_env("GITHUB_STEP_SUMMARY", &ws.path().join("summary.md").display().to_string());
    let run = ws.run(&["plan", "--report", "report.json"]);
    run.expect_code(1);
    let cause = format!("[1] 5 entries: login to {} as mirror-bot refused (lines 1, 2, 3, 4, 5)", dst.host());
    assert_eq!(run.stdout.matches(&cause).count(), 1, "the refusal once\n{}", run.dump());
    assert_eq!(run.stdout.lines().filter(|l| l.starts_with("    hint: ")).count(), 1, "the hint once\n{}", run.dump());
    assert!(run.stdout.contains("set CUSTOM_PASSWORD (and CUSTOM_USERNAME)"), "the hint names the variable\n{}", run.dump());
    assert!(!run.stdout.contains("HTTP 401): HTTP 401"), "{}", run.dump());
    // REASON cells stay short.
    for row in run.stdout.lines().filter(|l| l.contains("  failed  ")) {
        assert!(row.chars().count() < 200, "{row}");
    }
    // One annotation for the five.
    let annotations: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("::error ")).collect();
    assert_eq!(annotations.len(), 1, "{}", run.dump());
    assert!(annotations[0].contains("5 entries: login to "), "{}", run.dump());
    let summary = ws.read("summary.md").unwrap_or_default();
    assert_eq!(summary.matches("5 entries: login to ").count(), 1, "{summary}");
    assert_eq!(summary.matches("| ❌ failed |").count(), 5, "each failed entry once: {summary}");
    // The report keeps every entry's full text.
    for line in 1..=5 {
        let t = &run.entry(line)["targets"][0];
        let error = t["error"].as_str().unwrap_or("");
        assert!(error.contains("refused") && error.contains(&format!("app{}", line - 1)), "line {line}: {error}");
        assert!(t["hint"].as_str().unwrap_or("").contains("CUSTOM_PASSWORD"), "{t}");
    }
    // The secret only in the runner's mask command.
    assert!(run.all_output().lines().filter(|l| l.contains(&wrong)).all(|l| l.starts_with("::add-mask::")), "{}", run.dump());
}

#[test]
fn a_registry_that_never_answers_fails_fast_beside_a_live_one() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let live = Registry::start();
    let dst = Registry::start();
    let pit = Tarpit::start();
    let a = live.push_image("lib/a:v1", &ImageSpec::new(&unique("fh-live-a")));
    let b = live.push_image("lib/b:v1", &ImageSpec::new(&unique("fh-live-b")));
    // Default retries and waits: what a user gets.
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    ws.set_env("GITHUB_STEP_SUMMARY", &ws.path().join("summary.md").display().to_string());
    ws.images(&format!(
        "{}\n{}/lib/dead1:v1\n{}/lib/dead2:v1\n{}/lib/dead3:v1\n{}\n",
        a.reference(),
        pit.host(),
        pit.host(),
        pit.host(),
        b.reference()
    ));
    let start = Instant::now();
    let run = ws.run(&["plan", "--report", "report.json"]);
    let took = start.elapsed();
    run.expect_code(1);
    assert!(took < Duration::from_secs(45), "took {took:?}\n{}", run.dump());
    assert_eq!(run.status(1), "would-sync", "{}", run.dump());
    assert_eq!(run.status(5), "would-sync", "{}", run.dump());
    // The live entries are done in their normal time, not after the stalled ones.
    for line in [1, 5] {
        let done = run.stderr.lines().find_map(|l| l.strip_prefix(&format!("line {line}: would-sync in "))).unwrap_or_else(|| panic!("line {line}\n{}", run.dump()));
        let secs: f64 = done.split(' ').next().and_then(|s| s.parse().ok()).unwrap_or(f64::MAX);
        assert!(secs < 5.0, "line {line} took {done}\n{}", run.dump());
    }
    let errors: Vec<String> = (2..=4).map(|l| run.entry(l)["error"].as_str().unwrap_or("").to_string()).collect();
    assert!(errors.iter().all(|e| e.contains("timeout") || e.contains("unreachable")), "{errors:#?}");
    assert!(errors.iter().any(|e| e.contains("unreachable")), "later entries fail at once: {errors:#?}");
    // Not retried through docker either.
    assert!(!run.stderr.contains("reading it with docker"), "{}", run.dump());
    // Each failed entry once in the job summary, and the cause once below it.
    let summary = ws.read("summary.md").unwrap_or_default();
    for dead in ["dead1", "dead2", "dead3"] {
        assert_eq!(summary.lines().filter(|l| l.starts_with("| ") && l.contains(&format!("/lib/{dead}:v1"))).count(), 1, "{dead}\n{summary}");
    }
    assert_eq!(summary.matches("3 entries: ").count(), 1, "{summary}");
    for l in 2..=4 {
        assert_eq!(run.entry(l)["docker_calls"], 0, "{}", run.dump());
    }
    // A shorter first-answer limit, as a flag: faster still.
    let start = Instant::now();
    let run = ws.run(&["plan", "--read-timeout", "2", "--retries", "0"]);
    run.expect_code(1);
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}\n{}", start.elapsed(), run.dump());
}

#[test]
fn report_dash_is_json_on_stdout_and_the_table_on_stderr() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("fh-dash")));
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{} => app\n", img.reference()));
    // Under Actions too: the mask commands go to stderr then.
    ws.set_env("GITHUB_ACTIONS", "true");
    ws.set_env("CUSTOM_USERNAME", "bot");
    ws.set_env("CUSTOM_PASSWORD", "pw-dash");
    let run = ws.run(&["plan", "--report", "-"]);
    run.expect_code(0);
    assert!(run.stderr.contains("::add-mask::pw-dash"), "{}", run.dump());
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{}", run.dump()));
    assert_eq!(v["entries"][0]["targets"][0]["status"], "would-sync", "{}", run.dump());
    assert!(run.stderr.contains("ENTRY") && run.stderr.contains("would-sync"), "the table on stderr\n{}", run.dump());
    assert!(!ws.path().join("-").exists(), "no file named -");
}

#[test]
fn compose_pull_skips_buildable_and_inactive_profile_services_saying_why() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let dst = Registry::start();
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.write(
        "docker-compose.yml",
        "services:\n  app:\n    image: example.com/me/app:1\n    build: .\n  debug:\n    image: example.com/tools/dbg:1\n    profiles: [debug]\n",
    );
    let run = ws.run(&["pull", "--compose", "docker-compose.yml", "--report", "r.json"]);
    run.expect_code(0);
    assert_eq!(run.report()["entries"].as_array().map(Vec::len), Some(0), "{}", run.dump());
    assert!(run.stderr.contains("service app: skipped, it has `build:` and compose builds it"), "{}", run.dump());
    assert!(run.stderr.contains("service debug: skipped, its profiles (debug) are not active"), "{}", run.dump());
    assert!(run.stdout.contains("pull: 0 pulled, 0 present, 0 failed"), "{}", run.dump());
    assert!(run.stderr.contains("; images: 0"), "the header counts what it pulls\n{}", run.dump());
    // Activated (by flag or COMPOSE_PROFILES), and with --include-buildable: both are
    // wanted, and fail as not mirrored (nothing was synced).
    for (args, env) in [(&["--profile", "debug", "--include-buildable"][..], None), (&["--include-buildable"][..], Some("debug"))] {
        let mut ws2 = workspace();
        ws2.custom_target(&dst, "mirror", None);
        ws2.write("docker-compose.yml", &ws.read("docker-compose.yml").unwrap());
        if let Some(p) = env {
            ws2.set_env("COMPOSE_PROFILES", p);
        }
        let mut all = vec!["pull", "--compose", "docker-compose.yml", "--report", "r.json"];
        all.extend_from_slice(args);
        let run = ws2.run(&all);
        run.expect_code(1);
        assert_eq!(run.report()["entries"].as_array().map(Vec::len), Some(2), "{}", run.dump());
    }
}

#[test]
fn progress_lines_quiet_and_verbose() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let password = unique("pw-v");
    let dst = Registry::start_with_auth("mirror-bot", &password);
    let a = src.push_image("lib/a:v1", &ImageSpec::new(&unique("fh-prog-a")).layer_size(200_000));
    let b = src.push_image("lib/b:v1", &ImageSpec::new(&unique("fh-prog-b")));
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{} => a\n{} => b\n", a.reference(), b.reference()));
    // -v: each docker command (the login's secret on stdin, never shown) and each HTTP request.
    let run = ws.sync(&["-v"]);
    run.expect_code(0);
    assert!(run.stderr.lines().any(|l| l.starts_with("$ docker login ") && l.contains("--password-stdin")), "{}", run.dump());
    assert!(run.stderr.lines().any(|l| l.starts_with("$ docker push ")), "{}", run.dump());
    assert!(run.stderr.lines().any(|l| l.starts_with(&format!("HEAD http://{}/v2/", src.host())) && l.contains("→ 200")), "{}", run.dump());
    assert!(!run.stderr.contains(&password), "{}", run.dump());
    // Without a terminal: one line per finished entry, with its time (and bytes where known).
    for line in [1, 2] {
        let done: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with(&format!("line {line}: synced in "))).collect();
        assert_eq!(done.len(), 1, "line {line}\n{}", run.dump());
        assert!(done[0].contains(" s"), "{}", done[0]);
    }
    assert!(run.stderr.lines().any(|l| l.starts_with("line 1: synced in ") && l.contains("of layers copied")), "{}", run.dump());
    // -q: the summary only.
    let run = ws.sync(&["-q"]);
    run.expect_code(0);
    assert_eq!(run.stderr.trim(), "", "{}", run.dump());
    assert!(run.stdout.starts_with("engine daemon: 0 synced, 2 up-to-date") || run.stdout.starts_with("engine none (nothing copied): 0 synced, 2 up-to-date"), "{}", run.dump());
    assert!(!run.stdout.contains("ENTRY"), "{}", run.dump());
}

#[test]
fn plan_says_why_each_target_would_sync_and_the_report_has_the_digests() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let src = Registry::start();
    let dst = Registry::start();
    let two = ["linux/amd64", "linux/arm64/v8"];
    let a = src.push_image("lib/a:v1", &ImageSpec::new(&unique("fh-why-a")));
    let b = src.push_image("lib/b:v1", &ImageSpec::new(&unique("fh-why-b")));
    let seed_c = unique("fh-why-c");
    let c = src.push_image("lib/c:v1", &ImageSpec::new(&seed_c).platforms(&two));
    // At the target: another b, and c for amd64 only.
    let old_b = dst.push_image("mirror/b:v1", &ImageSpec::new(&unique("fh-why-b-old")));
    let old_c = dst.push_image("mirror/c:v1", &ImageSpec::new(&seed_c).platforms(&["linux/amd64"]).force_index());
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{} => a\n{} => b\n{} => c\n", a.reference(), b.reference(), c.reference()));
    let run = ws.run(&["plan", "--report", "report.json"]);
    run.expect_code(0);
    let row = |n: usize| run.stdout.lines().find(|l| l.starts_with(&format!("{n}:"))).unwrap_or_else(|| panic!("row {n}\n{}", run.dump())).to_string();
    assert!(row(1).ends_with("would-sync  missing at the target"), "{}", run.dump());
    assert!(row(2).ends_with("would-sync  digest differs"), "{}", run.dump());
    assert!(row(3).ends_with("would-sync  platform missing: linux/arm64/v8"), "{}", run.dump());
    let t = |line: u64| run.entry(line)["targets"][0].clone();
    assert_eq!(t(1)["reason"], "missing at the target");
    assert!(t(1)["target_digest"].is_null(), "{}", run.dump());
    assert_eq!(t(2)["source_digest"], b.digest.as_str(), "{}", run.dump());
    assert_eq!(t(2)["target_digest"], old_b.digest.as_str(), "{}", run.dump());
    assert_eq!(t(3)["source_digest"], c.digest.as_str(), "{}", run.dump());
    assert_eq!(t(3)["target_digest"], old_c.digest.as_str(), "{}", run.dump());
}

/// One entry on a stalled registry, default settings: its own retries give it up in time.
#[test]
fn a_single_entry_on_a_registry_that_never_answers_ends_within_45_s() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let live = Registry::start();
    let dst = Registry::start();
    let pit = Tarpit::start();
    let a = live.push_image("lib/a:v1", &ImageSpec::new(&unique("fh-one-a")));
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{}\n{}/lib/dead:v1\n", a.reference(), pit.host()));
    let start = Instant::now();
    let run = ws.run(&["plan", "--report", "report.json"]);
    let took = start.elapsed();
    run.expect_code(1);
    assert!(took < Duration::from_secs(45), "took {took:?}\n{}", run.dump());
    assert_eq!(run.status(1), "would-sync", "{}", run.dump());
    assert!(run.entry(2)["error"].as_str().unwrap_or("").contains("timeout"), "{}", run.dump());
    assert!(!run.stderr.contains("reading it with docker"), "{}", run.dump());
    eprintln!("one stalled entry: {took:?}");
}

/// `pull` on a terminal (a pseudo-terminal from script(1)): docker's own
/// progress, no `--quiet`; without one, `--quiet` as before.
#[test]
fn pull_shows_dockers_progress_on_a_terminal() {
    let Some(docker) = Docker::get_or_skip() else { return };
    let Some(script) = which::which("script").ok() else {
        eprintln!("SKIPPED pull_shows_dockers_progress_on_a_terminal: no script(1)");
        return;
    };
    let src = Registry::start();
    let dst = Registry::start();
    let img = src.push_image("lib/tty:v1", &ImageSpec::new(&unique("fh-tty")));
    let mut ws = workspace();
    ws.custom_target(&dst, "mirror", None);
    ws.images(&format!("{}\n", img.reference()));
    ws.sync(&[]).expect_code(0);
    let calls = crate::common::docker_wrapper::RecordingDocker::new();
    let line = format!("{} pull {} --report r.json", imgsync_bin().display(), img.reference());
    let mut cmd = std::process::Command::new(script);
    cmd.args(["-qec", &line, "/dev/null"])
        .current_dir(ws.path())
        .env_clear()
        .env("HOME", ws.home())
        .env("TMPDIR", ws.path().join("tmp"))
        .env("PATH", calls.path_with(&[]))
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null());
    if let Some(h) = std::env::var_os("DOCKER_HOST") {
        cmd.env("DOCKER_HOST", h);
    }
    let out = cmd.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let pulls: Vec<String> = calls.calls().into_iter().filter(|c| c.starts_with("pull ")).collect();
    assert_eq!(pulls.len(), 1, "{pulls:?}\n{text}");
    assert!(!pulls[0].contains("--quiet"), "{pulls:?}");
    assert!(text.contains("Pulling from mirror/") || text.contains("Pull complete") || text.contains("Downloaded newer image"), "docker's progress\n{text}");
    assert!(ws.read("r.json").unwrap_or_default().contains("\"pulled\""), "{text}");
    docker.rmi(&[&img.reference()]);
}
