//! Webhook delivery against a small HTTP server on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use imgsync::report::{EntryReport, Report, Status, TargetReport};
use imgsync::notify::{self, Outcome};
use imgsync::webhook::{Format, On, Webhook};
use serde_json::Value;

const TOKEN: &str = "s3cretT0ken42";

struct Request {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_request(stream: &TcpStream) -> Request {
    let mut r = BufReader::new(stream);
    let mut request_line = String::new();
    r.read_line(&mut request_line).unwrap();
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut req = Request { request_line: request_line.trim_end().to_string(), headers, body: Vec::new() };
    let len: usize = req.header("content-length").expect("a JSON body has a length").parse().unwrap();
    req.body = vec![0; len];
    r.read_exact(&mut req.body).unwrap();
    req
}

/// Answers one request with `status` and `body`; hands the request back.
fn serve_once(status: &'static str, body: &'static str) -> (String, mpsc::Receiver<Request>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook/{TOKEN}?key={TOKEN}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = read_request(&stream);
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(answer.as_bytes()).unwrap();
        let _ = tx.send(req);
    });
    (url, rx)
}

fn report() -> Report {
    let t = |r: &str, status, error: Option<&str>, hint: Option<&str>| TargetReport {
        target: "custom".into(),
        reference: r.into(),
        status,
        error: error.map(Into::into),
        hint: hint.map(Into::into),
        why: Default::default(),
        signatures: None,
    };
    Report::new(
        "imagetools",
        vec![
            EntryReport {
                line: 1,
                source: "docker.io/library/nginx:alpine".into(),
                selected_by: None,
                platforms: vec![],
                targets: vec![t("r.example/ns/nginx:alpine", Status::Synced, None, None)],
                error: None,
                hint: None,
                docker_calls: 2, requests: Default::default(),
            },
            EntryReport {
                line: 2,
                source: "docker.io/library/redis:7".into(),
                selected_by: None,
                platforms: vec![],
                targets: vec![t("r.example/ns/redis:7", Status::Failed, Some("unauthorized"), Some("check the username and password"))],
                error: None,
                hint: None,
                docker_calls: 2, requests: Default::default(),
            },
        ],
    )
}

#[test]
fn every_format_posts_its_exact_body() {
    let r = report();
    for format in [Format::Feishu, Format::DingTalk, Format::WeCom, Format::Slack, Format::Discord, Format::Generic] {
        let (url, rx) = serve_once("200 OK", r#"{"errcode":0,"errmsg":"ok"}"#);
        let body = notify::body(format, &r);
        notify::send(&url, &body, Duration::from_secs(5)).unwrap();
        let req = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(req.request_line, format!("POST /hook/{TOKEN}?key={TOKEN} HTTP/1.1"));
        assert!(req.header("content-type").unwrap().starts_with("application/json"));
        let got: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(got, body, "{format:?}");
    }
    // The text itself, once, as a chat shows it.
    let text = "imgsync: 1 synced, 1 failed, 0 up-to-date\n\
                Failed (1):\n- docker.io/library/redis:7 → r.example/ns/redis:7\n  check the username and password\n\
                Synced (1):\n- docker.io/library/nginx:alpine → r.example/ns/nginx:alpine";
    assert_eq!(notify::body(Format::Slack, &r), serde_json::json!({ "text": text }));
}

#[test]
fn server_error_is_an_error_without_the_token() {
    let (url, _rx) = serve_once("500 Internal Server Error", r#"{"error":"db down"}"#);
    let start = Instant::now();
    let e = notify::send(&url, &notify::body(Format::Generic, &report()), Duration::from_secs(5)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert!(e.contains("HTTP 500") && e.contains("db down"), "{e}");
    assert!(e.contains("http://127.0.0.1:"), "{e}");
    assert!(!e.contains(TOKEN) && !e.contains("/hook"), "{e}");
}

#[test]
fn an_error_code_in_a_200_answer_is_an_error() {
    // DingTalk answers 200 with an errcode when, e.g., the keyword is missing.
    let (url, _rx) = serve_once("200 OK", r#"{"errcode":310000,"errmsg":"keywords not in content"}"#);
    let e = notify::send(&url, &notify::body(Format::DingTalk, &report()), Duration::from_secs(5)).unwrap_err();
    assert!(e.contains("310000") && e.contains("keywords not in content"), "{e}");
    assert!(!e.contains(TOKEN));
}

#[test]
fn unreachable_is_an_error_at_once() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook/{TOKEN}");
    let start = Instant::now();
    let e = notify::send(&url, &serde_json::json!({}), Duration::from_secs(5)).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
    assert!(e.starts_with(&format!("webhook to http://127.0.0.1:{port} failed: ")), "{e}");
    assert!(!e.contains(TOKEN), "{e}");
}

#[test]
fn a_silent_server_runs_into_the_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook/{TOKEN}", listener.local_addr().unwrap());
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let server = thread::spawn(move || {
        // Accept and read, never answer; hold the connection until the test is done.
        let (stream, _) = listener.accept().unwrap();
        let _ = done_rx.recv_timeout(Duration::from_secs(10));
        drop(stream);
    });
    let start = Instant::now();
    let e = notify::send(&url, &serde_json::json!({"x": 1}), Duration::from_millis(300)).unwrap_err();
    let took = start.elapsed();
    done_tx.send(()).unwrap();
    server.join().unwrap();
    assert!(took >= Duration::from_millis(250) && took < Duration::from_secs(3), "{took:?}");
    assert!(e.contains("no answer within 0.3s"), "{e}");
    assert!(!e.contains(TOKEN));
}

#[test]
fn notify_sends_skips_and_reports_failure() {
    let r = report();
    let (url, rx) = serve_once("204 No Content", "");
    let env = |k: &str| match k {
        "WEBHOOK_URL" => Some(url.clone()),
        "WEBHOOK_FORMAT" => Some("discord".to_string()),
        _ => None,
    };
    let hook = Webhook::from_env(&env).unwrap().unwrap();
    let sent = hook.notify(&r);
    assert!(matches!(&sent, Outcome::Sent { format: Format::Discord, .. }), "{sent}");
    assert!(sent.to_string().starts_with("webhook: sent a discord message to http://127.0.0.1:"));
    let got: Value = serde_json::from_slice(&rx.recv().unwrap().body).unwrap();
    assert!(got["content"].as_str().unwrap().starts_with("imgsync: 1 synced, 1 failed"));

    // Nothing changed and WEBHOOK_ON=change: no request at all (the server is gone).
    let quiet = Report::new("daemon", vec![]);
    assert_eq!(hook.notify(&quiet), Outcome::Skipped);

    let mut down = hook.clone();
    down.on = On::Always;
    match down.notify(&quiet) {
        Outcome::Failed(e) => assert!(!e.contains(TOKEN), "{e}"),
        other => panic!("{other}"),
    }
}
