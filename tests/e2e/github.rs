//! End-to-end: a sync as GitHub Actions runs it: masks, groups, annotations,
//! the job summary and step outputs, one webhook message, and the badge.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::*;

/// An HTTP server on 127.0.0.1 that answers `status` and hands over each body.
fn webhook_server(status: &'static str) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook/t0ken-{}", listener.local_addr().unwrap(), std::process::id());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { return };
            let mut r = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            let _ = stream.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes());
            let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
        }
    });
    (url, rx)
}

const README: &str = "# mirror\r\n\r\n![last sync](https://img.shields.io/badge/last%20sync-never-blue)\r\n\r\nText stays.\r\n";

#[test]
fn a_run_under_github_actions_reports_everywhere() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let (src, dst) = (Registry::start(), Registry::start());
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("gh")));
    ws.images(&format!("{} => app\n{}/lib/missing:v1 => missing\n", img.reference(), src.host()));
    ws.write("README.md", README);
    let (url, bodies) = webhook_server("200 OK");
    for (k, v) in [
        ("GITHUB_ACTIONS", "true".to_string()),
        ("GITHUB_STEP_SUMMARY", ws.path().join("summary.md").display().to_string()),
        ("GITHUB_OUTPUT", ws.path().join("output.txt").display().to_string()),
        ("WEBHOOK_URL", url.clone()),
        ("WEBHOOK_FORMAT", "slack".to_string()),
        ("CUSTOM_USERNAME", "bot".to_string()),
        ("CUSTOM_PASSWORD", "pa55-word-gh".to_string()),
    ] {
        ws.set_env(k, &v);
    }

    let run = ws.run(&["sync", "--engine", "daemon", "--report", "report.json", "--badge", "README.md"]);
    run.expect_code(1);
    let out = &run.stdout;
    assert!(out.contains("::add-mask::pa55-word-gh"), "secrets masked first\n{}", run.dump());
    assert!(out.contains(&format!("::add-mask::{url}")), "the webhook URL is masked too\n{}", run.dump());
    assert!(run.stderr.contains("::group::line 1") && run.stderr.contains("::endgroup::"), "{}", run.dump());
    assert!(out.contains("::error file=images.txt,line=2::"), "an annotation on the failed line\n{}", run.dump());
    assert!(!out.contains("::error file=images.txt,line=1::"), "none on the line that synced\n{}", run.dump());

    let summary = ws.read("summary.md").expect("job summary written");
    assert!(summary.contains("| 1 |") && summary.contains("synced"), "{summary}");
    assert!(summary.contains("missing"), "{summary}");
    let outputs = ws.read("output.txt").expect("step outputs written");
    assert_eq!(outputs.lines().collect::<Vec<_>>(), ["synced=1", "up_to_date=0", "failed=1"], "{outputs}");

    let body = bodies.recv_timeout(Duration::from_secs(10)).expect("one webhook message");
    assert!(body.contains("app") && body.contains("missing"), "synced and failed entries listed: {body}");
    assert!(bodies.recv_timeout(Duration::from_millis(300)).is_err(), "exactly one message per run");

    let readme = ws.read("README.md").unwrap();
    assert_ne!(readme, README, "something synced, so the badge changed");
    let (before, after) = (README.replace("never", ""), readme.clone());
    assert!(after.starts_with("# mirror\r\n\r\n![last sync](https://img.shields.io/badge/last%20sync-"));
    assert!(after.ends_with("-blue)\r\n\r\nText stays.\r\n"), "every other byte kept: {after:?} vs {before:?}");

    // Nothing new: no badge change, and WEBHOOK_ON=change sends nothing unless something failed.
    ws.images(&format!("{} => app\n", img.reference()));
    let again = ws.run(&["sync", "--engine", "daemon", "--report", "report.json", "--badge", "README.md"]);
    again.expect_code(0);
    assert_eq!(ws.read("README.md").unwrap(), readme, "nothing synced, badge untouched");
    assert!(bodies.recv_timeout(Duration::from_millis(500)).is_err(), "no message for a run that changed nothing");
}

#[test]
fn a_failing_webhook_never_changes_the_exit_code() {
    let Some(_docker) = Docker::get_or_skip() else { return };
    let (src, dst) = (Registry::start(), Registry::start());
    let mut ws = Workspace::new();
    ws.custom_target(&dst, "mirror", None);
    let img = src.push_image("lib/app:v1", &ImageSpec::new(&unique("gh-fail")));
    ws.images(&format!("{} => app\n", img.reference()));
    let (url, bodies) = webhook_server("500 Internal Server Error");
    ws.set_env("WEBHOOK_URL", &url);
    let run = ws.run(&["sync", "--engine", "daemon", "--report", "report.json"]);
    run.expect_code(0);
    assert!(bodies.recv_timeout(Duration::from_secs(10)).is_ok(), "the message was attempted");
    assert!(run.stderr.contains("webhook"), "the failure is reported\n{}", run.dump());
    assert!(!run.all_output().contains("t0ken"), "the URL's token is never shown\n{}", run.dump());

    // Unreachable: nothing listens there.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    ws.set_env("WEBHOOK_URL", &format!("http://{dead}/hook/t0ken"));
    ws.run(&["sync", "--engine", "daemon", "--force", "--report", "report.json"]).expect_code(0);
}
