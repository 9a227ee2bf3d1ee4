//! End-to-end, issue 19: the real binary against hostile servers and files on
//! loopback (the audit's reproductions), each run watched from /proc: it must
//! end on its own, with at most 64 threads and 200 MB of peak memory.
//!
//! - a 3,000-platform index: refused when parsed, no child manifest read;
//! - endless 60 MiB tag pages: the line fails at the first page, naming the repository;
//! - a compose alias bomb in mapping keys and a 50,000-deep `${a:-…}`: exit 2, no abort;
//! - an empty PATH entry with `docker-credential-desktop` in the working directory: never run;
//! - a registry that redirects to a host that challenges: its login never reaches that realm.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::*;

const MAX_THREADS: u64 = 64;
const MAX_RSS_KIB: u64 = 200 * 1024;

/// A body: bytes, or `head` + `unit` × `count` + `tail` written as it goes (60 MiB without holding it).
#[derive(Clone)]
enum Body {
    Bytes(Vec<u8>),
    Repeat { head: Vec<u8>, unit: Vec<u8>, count: usize, tail: Vec<u8> },
}

impl Body {
    fn len(&self) -> usize {
        match self {
            Body::Bytes(b) => b.len(),
            Body::Repeat { head, unit, count, tail } => head.len() + unit.len() * count + tail.len(),
        }
    }
}

struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Body,
}

fn answer(status: u16, headers: &[(&str, &str)], body: Body) -> Answer {
    Answer { status, headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), body }
}

/// One request as logged: method, target, whether it carried Authorization.
type Logged = (String, String, bool);

struct Hostile {
    port: u16,
    log: Arc<Mutex<Vec<Logged>>>,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    fn start(handler: impl Fn(&str, &str) -> Answer + Send + Sync + 'static) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler = Arc::new(handler);
        let (l, s) = (log.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (l, h) = (l.clone(), handler.clone());
                std::thread::spawn(move || serve(conn, &l, h.as_ref()));
            }
        });
        Hostile { port, log, stop }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(conn: TcpStream, log: &Mutex<Vec<Logged>>, handler: &(dyn Fn(&str, &str) -> Answer + Send + Sync)) {
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or("").to_string(), parts.next().unwrap_or("").to_string());
    let mut auth = false;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
        auth |= h.to_ascii_lowercase().starts_with("authorization:");
    }
    log.lock().unwrap().push((method.clone(), target.clone(), auth));
    let a = handler(&method, &target);
    let mut head = format!("HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n", a.status, a.body.len());
    for (k, v) in &a.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if out.write_all(head.as_bytes()).is_err() || method == "HEAD" {
        return;
    }
    // The client may hang up early (it read what it allows): write errors end it.
    let _ = match &a.body {
        Body::Bytes(b) => out.write_all(b),
        Body::Repeat { head, unit, count, tail } => (|| {
            out.write_all(head)?;
            let chunk = unit.repeat(4096);
            for _ in 0..count / 4096 {
                out.write_all(&chunk)?;
            }
            for _ in 0..count % 4096 {
                out.write_all(unit)?;
            }
            out.write_all(tail)
        })(),
    };
}

#[track_caller]
fn within_bounds(run: &Run) {
    assert!(run.code >= 0, "ended by a signal or the harness timeout\n{}", run.dump());
    assert!(run.peak_threads <= MAX_THREADS, "{} threads\n{}", run.peak_threads, run.dump());
    assert!(run.peak_rss_kib <= MAX_RSS_KIB, "peak RSS {} KiB\n{}", run.peak_rss_kib, run.dump());
}

fn custom_target(ws: &Workspace, target: &Hostile, extra: &str) {
    ws.config(&format!("SYNC_MODE=custom\nCUSTOM_REGISTRY={}\nCUSTOM_NAMESPACE=ns\n{extra}", target.host()));
}

fn not_found() -> Hostile {
    Hostile::start(|_, _| answer(404, &[("content-type", "application/json")], Body::Bytes(br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#.to_vec())))
}

#[test]
fn a_3000_platform_index_is_refused_before_any_child_is_read() {
    if Docker::get_or_skip().is_none() {
        return;
    }
    let child = format!("sha256:{}", "c".repeat(64));
    let entries: Vec<String> = (0..3000)
        .map(|i| format!(r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{child}","size":400,"platform":{{"os":"linux","architecture":"a{i}"}}}}"#))
        .collect();
    let index = format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#, entries.join(","))
        .into_bytes();
    let digest = sha256_digest(&index);
    let (d, body) = (digest.clone(), index.clone());
    let source = Hostile::start(move |_, target| {
        let index_type = "application/vnd.oci.image.index.v1+json";
        if target.ends_with("/manifests/v1") || target.ends_with(&format!("/manifests/{d}")) {
            return answer(200, &[("docker-content-digest", &d), ("content-type", index_type)], Body::Bytes(body.clone()));
        }
        answer(404, &[], Body::Bytes(Vec::new()))
    });
    let target = not_found();
    let ws = Workspace::new();
    custom_target(&ws, &target, "ENGINE=daemon\nINSPECT=registry\n");
    ws.images(&format!("{}/src:v1\n", source.host()));
    let run = ws.run(&["sync", "--engine", "daemon"]);
    within_bounds(&run);
    assert_eq!(run.code, 1, "{}", run.dump());
    assert!(run.all_output().contains("more than the 1000"), "{}", run.dump());
    let children = source.requests().iter().filter(|(_, t, _)| t.contains(&child)).count();
    assert_eq!(children, 0, "no child manifest is read: {:?}", source.requests());
}

#[test]
fn endless_oversized_tag_pages_fail_the_line_in_bounded_memory() {
    let source = Hostile::start(|_, target| {
        let page: usize = target.rsplit("page=").next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let link = format!(r#"</v2/x/tags/list?page={}>; rel="next""#, page + 1);
        // 60 MiB of one-character tags, then the next page, forever.
        let body = Body::Repeat { head: br#"{"name":"x","tags":["#.to_vec(), unit: br#""a","#.to_vec(), count: 15_700_000, tail: br#""a"]}"#.to_vec() };
        answer(200, &[("content-type", "application/json"), ("link", &link)], body)
    });
    let target = not_found();
    let ws = Workspace::new();
    custom_target(&ws, &target, "INSPECT=registry\nRETRIES=0\n");
    ws.images(&format!("{}/x --latest=1\n", source.host()));
    let run = ws.run(&["plan"]);
    within_bounds(&run);
    assert_ne!(run.code, 0, "{}", run.dump());
    let out = run.all_output();
    assert!(out.contains(&format!("{}/x", source.host())) && out.contains("4 MiB"), "{}", run.dump());
    let lists = source.requests().iter().filter(|(_, t, _)| t.contains("/tags/list")).count();
    assert!(lists <= 2, "{lists} tag pages asked");
}

fn alias_bomb(levels: usize) -> String {
    let mut out = vec!["services:".to_string(), "  web:".into(), "    image: nginx:alpine".into(), "x-l0: &l0 [a, a, a, a, a, a, a, a, a, a]".into()];
    for k in 1..=levels {
        let items: Vec<String> = (0..10).map(|i| format!("{{? *l{} : {i}}}", k - 1)).collect();
        out.push(format!("x-l{k}: &l{k} [{}]", items.join(", ")));
    }
    out.join("\n") + "\n"
}

#[test]
fn a_compose_alias_bomb_and_a_deep_interpolation_exit_2_in_bounds() {
    let target = not_found();
    let ws = Workspace::new();
    custom_target(&ws, &target, "");
    // 928 bytes that grew past 3 GB.
    ws.write("bomb.yml", &alias_bomb(6));
    let run = ws.run(&["map", "--compose", "bomb.yml"]);
    within_bounds(&run);
    run.expect_code(2);
    assert!(run.stderr.contains("aliases"), "{}", run.dump());
    // 50,000 nested defaults overflowed the stack (SIGABRT).
    let deep = "${a:-".repeat(50_000) + "nginx" + &"}".repeat(50_000);
    ws.write("deep.yml", &format!("services:\n  web:\n    image: \"{deep}\"\n"));
    let run = ws.run(&["map", "--compose", "deep.yml"]);
    within_bounds(&run);
    run.expect_code(2);
    assert!(run.stderr.contains("nested"), "{}", run.dump());
}

#[test]
#[cfg(unix)]
fn an_empty_path_entry_never_runs_a_helper_from_the_working_directory() {
    use std::os::unix::fs::PermissionsExt;
    let registry = Hostile::start(|_, _| answer(401, &[("www-authenticate", r#"Basic realm="r""#)], Body::Bytes(Vec::new())));
    let target = not_found();
    let mut ws = Workspace::new();
    custom_target(&ws, &target, "INSPECT=registry\nRETRIES=0\n");
    ws.images(&format!("{}/app:v1\n", registry.host()));
    let docker_dir = ws.home().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    std::fs::write(docker_dir.join("config.json"), r#"{"credsStore":"desktop"}"#).unwrap();
    let marker = ws.path().join("PWNED");
    let helper = ws.path().join("docker-credential-desktop");
    std::fs::write(&helper, format!("#!/bin/sh\ntouch '{}'\necho '{{\"Username\":\"u\",\"Secret\":\"s\"}}'\n", marker.display())).unwrap();
    std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A trailing colon: an empty entry, which `which` reads as the working directory.
    ws.set_env("PATH", &format!("{}:", std::env::var("PATH").unwrap_or_default()));
    let run = ws.run(&["plan"]);
    within_bounds(&run);
    assert!(!marker.exists(), "the helper in the working directory ran\n{}", run.dump());
    assert!(registry.requests().iter().all(|(_, _, auth)| !auth), "no credentials were sent");
}

#[test]
fn a_redirect_target_never_collects_the_registrys_credentials() {
    // Audit 2 #1: A redirects to B; B answers 401 naming C's realm. A's
    // login (in the user's docker config) must never reach C.
    let c = Hostile::start(|_, _| answer(200, &[], Body::Bytes(br#"{"token":"cdn-token"}"#.to_vec())));
    let realm = format!(r#"Bearer realm="http://{}/token",service="cdn""#, c.host());
    let b = Hostile::start(move |_, _| answer(401, &[("www-authenticate", realm.as_str())], Body::Bytes(Vec::new())));
    let b_host = b.host();
    let a = Hostile::start(move |_, target| answer(307, &[("location", &format!("http://{b_host}{target}"))], Body::Bytes(Vec::new())));
    let target = not_found();
    let ws = Workspace::new();
    custom_target(&ws, &target, "INSPECT=registry\nRETRIES=0\n");
    ws.images(&format!("{}/app:v1\n", a.host()));
    let docker_dir = ws.home().join(".docker");
    std::fs::create_dir_all(&docker_dir).unwrap();
    let auth = "YWxpY2U6czNjcjN0LUE="; // alice:s3cr3t-A
    std::fs::write(docker_dir.join("config.json"), format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, a.host())).unwrap();
    let run = ws.run(&["plan"]);
    within_bounds(&run);
    assert!(c.requests().is_empty(), "the redirect target's realm was asked: {:?}\n{}", c.requests(), run.dump());
    assert!(b.requests().iter().all(|(_, _, auth)| !auth), "credentials crossed origins");
    assert!(!run.all_output().contains("s3cr3t"), "{}", run.dump());
}
