//! scripts/package.sh, then scripts/install.sh against a loopback HTTP server laid
//! out like GitHub's release downloads (`<base>/v<version>/<archive>`, its
//! `.sha256`, and a `latest` file). The scripts run under `sh`; the server is a
//! thread of this test, so nothing outlives it. This machine builds only its own
//! target, so the test packs the test build of imgsync under the host's name and
//! sets IMGSYNC_TARGET. (On Windows, install.ps1 is checked by the Portability
//! workflow instead.)
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const SCRIPT_TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The label the test packs the host build under (any target name would do: the
/// binary is prebuilt).
fn target() -> String {
    format!("{}-unknown-{}-gnu", std::env::consts::ARCH, std::env::consts::OS)
}

/// Runs a command with a deadline; kills it when the deadline passes.
fn run(cmd: Command) -> Output {
    run_with_stdin(cmd, Stdio::null())
}

fn run_with_stdin(mut cmd: Command, stdin: Stdio) -> Output {
    let mut child = cmd.stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!("timed out after {SCRIPT_TIMEOUT:?}: {cmd:?}\nstderr: {}", String::from_utf8_lossy(&out.stderr));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// A static file server on 127.0.0.1 serving `root`; 404 for anything missing.
/// Records the paths it was asked for. Stops when dropped.
struct Server {
    base: String,
    stop: Arc<AtomicBool>,
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(root: &Path) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (root, stop2, requests2) = (root.to_path_buf(), stop.clone(), requests.clone());
        let thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let _ = serve(&root, stream, &requests2);
                }
            }
        });
        Server { base: format!("http://{addr}"), stop, addr, requests, thread: Some(thread) }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(root: &Path, mut stream: TcpStream, requests: &Mutex<Vec<String>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 || header == "\r\n" || header == "\n" {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    requests.lock().unwrap().push(path.clone());
    let file = (!path.contains(".."))
        .then(|| root.join(path.trim_start_matches('/')))
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::read(p).ok());
    match file {
        Some(body) => {
            write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len())?;
            stream.write_all(&body)?;
        }
        None => write!(stream, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")?,
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Both)
}

/// package.sh with the test's imgsync binary; returns (archive, checksum file).
fn package(dist: &Path) -> (PathBuf, PathBuf) {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/package.sh"))
        .arg(target())
        .env("IMGSYNC_PACKAGE_BINARY", env!("CARGO_BIN_EXE_imgsync"))
        .env("IMGSYNC_DIST_DIR", dist);
    let out = run(cmd);
    assert!(out.status.success(), "package.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let archive = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim());
    let name = format!("imgsync-{}-{}.tar.gz", version(), target());
    assert_eq!(archive, dist.join(&name), "package.sh prints the archive's path");
    let sums = dist.join(format!("{name}.sha256"));
    let line = std::fs::read_to_string(&sums).unwrap();
    let fields: Vec<_> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "sha256sum format: {line:?}");
    assert_eq!(fields[0].len(), 64);
    assert_eq!(fields[1], name);
    assert!(line.contains(&format!("  {name}\n")), "two spaces, then the name: {line:?}");
    (archive, sums)
}

/// A release tree: <root>/v<version>/{archive, archive.sha256}, and <root>/latest
/// when `latest` is given.
fn release_tree(root: &Path, archive: &Path, sums: &Path, latest: Option<&str>) {
    let dir = root.join(format!("v{}", version()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(archive, dir.join(archive.file_name().unwrap())).unwrap();
    std::fs::copy(sums, dir.join(sums.file_name().unwrap())).unwrap();
    if let Some(v) = latest {
        std::fs::write(root.join("latest"), format!("{v}\n")).unwrap();
    }
}

fn install(base: &str, to: &Path, home: &Path, version: Option<&str>) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("scripts/install.sh"))
        .arg("--to")
        .arg(to)
        .env("HOME", home)
        .env("IMGSYNC_DOWNLOAD_BASE", base)
        .env("IMGSYNC_TARGET", target())
        .env_remove("IMGSYNC_VERSION")
        .env_remove("IMGSYNC_REPO");
    if let Some(v) = version {
        cmd.env("IMGSYNC_VERSION", v);
    }
    run(cmd)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn entries(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(rd) => rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn package_then_install_verifies_and_refuses_what_does_not_match() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (archive, sums) = package(&t.join("dist"));

    // The archive holds imgsync-<version>-<target>/{imgsync, README.md, LICENSE}.
    let listing = run({
        let mut c = Command::new("tar");
        c.arg("-tzf").arg(&archive);
        c
    });
    let listing = text(&listing.stdout);
    let top = format!("imgsync-{}-{}", version(), target());
    for f in ["imgsync", "README.md", "LICENSE"] {
        assert!(listing.lines().any(|l| l == format!("{top}/{f}")), "{f} missing from the archive:\n{listing}");
    }

    // 1. A good release, the version from the base's `latest` file.
    let good = t.join("good");
    release_tree(&good, &archive, &sums, Some(version()));
    let server = Server::start(&good);
    let to = t.join("bin-latest");
    let out = install(&server.base, &to, &home, None);
    assert!(out.status.success(), "install.sh failed:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("imgsync {}", version()), "install.sh prints the installed version");
    assert!(text(&out.stderr).contains("checksum ok"), "{}", text(&out.stderr));
    let ran = run({
        let mut c = Command::new(to.join("imgsync"));
        c.arg("--version");
        c
    });
    assert!(ran.status.success());
    assert_eq!(text(&ran.stdout).trim(), format!("imgsync {}", version()));
    assert_eq!(entries(&to), ["imgsync"], "nothing but the binary is left in the install dir");
    let asked = server.requests();
    assert!(asked.contains(&"/latest".to_string()), "{asked:?}");
    assert!(asked.contains(&format!("/v{}/{top}.tar.gz.sha256", version())), "{asked:?}");

    // 2. An explicit version, with its "v", replaces an existing binary.
    std::fs::write(to.join("imgsync"), "old").unwrap();
    let out = install(&server.base, &to, &home, Some(&format!("v{}", version())));
    assert!(out.status.success(), "install.sh failed:\n{}", text(&out.stderr));
    assert_ne!(std::fs::read(to.join("imgsync")).unwrap(), b"old");

    // 2b. The one-line form: the script on stdin (curl ... | sh -s -- --to DIR).
    let piped = t.join("bin-piped");
    let mut cmd = Command::new("sh");
    cmd.arg("-s")
        .arg("--")
        .arg("--to")
        .arg(&piped)
        .env("HOME", &home)
        .env("IMGSYNC_DOWNLOAD_BASE", &server.base)
        .env("IMGSYNC_TARGET", target())
        .env_remove("IMGSYNC_VERSION");
    let script = std::fs::File::open(repo().join("scripts/install.sh")).unwrap();
    let out = run_with_stdin(cmd, Stdio::from(script));
    assert!(out.status.success(), "install.sh on stdin failed:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("imgsync {}", version()));
    assert_eq!(entries(&piped), ["imgsync"]);
    drop(server);

    // 3. A tampered archive: refused, nothing installed, an existing binary kept.
    let tampered = t.join("tampered");
    release_tree(&tampered, &archive, &sums, Some(version()));
    let evil = tampered.join(format!("v{}", version())).join(archive.file_name().unwrap());
    let mut bytes = std::fs::read(&evil).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x01;
    std::fs::write(&evil, bytes).unwrap();
    let server = Server::start(&tampered);
    let fresh = t.join("bin-tampered");
    let out = install(&server.base, &fresh, &home, None);
    assert_eq!(out.status.code(), Some(4), "a checksum mismatch exits 4:\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("checksum mismatch"), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing was installed"), "{}", text(&out.stderr));
    assert!(entries(&fresh).is_empty(), "nothing written: {:?}", entries(&fresh));
    let kept = t.join("bin-kept");
    std::fs::create_dir_all(&kept).unwrap();
    std::fs::write(kept.join("imgsync"), "old").unwrap();
    let out = install(&server.base, &kept, &home, Some(version()));
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(kept.join("imgsync")).unwrap(), b"old", "the existing binary is kept");
    assert_eq!(entries(&kept), ["imgsync"]);
    drop(server);

    // 4. A failed download (no such release; then a missing .sha256): nothing installed.
    let partial = t.join("partial");
    release_tree(&partial, &archive, &sums, None);
    std::fs::remove_file(partial.join(format!("v{}", version())).join(sums.file_name().unwrap())).unwrap();
    let server = Server::start(&partial);
    let none = t.join("bin-none");
    let out = install(&server.base, &none, &home, Some("9.9.9"));
    assert_eq!(out.status.code(), Some(3), "a failed download exits 3:\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("download failed"), "{}", text(&out.stderr));
    assert!(entries(&none).is_empty());
    let out = install(&server.base, &none, &home, Some(version()));
    assert_eq!(out.status.code(), Some(3), "a missing .sha256 exits 3:\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains(".sha256"), "{}", text(&out.stderr));
    assert!(entries(&none).is_empty());

    // 5. A custom base without a `latest` file and no IMGSYNC_VERSION: says what to set.
    let out = install(&server.base, &none, &home, None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("IMGSYNC_VERSION"), "{}", text(&out.stderr));
    assert!(entries(&none).is_empty());
    assert!(entries(&home).is_empty(), "the default install dir was never touched");
    drop(server);
}

#[test]
fn install_script_rejects_unknown_arguments_and_windows_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("scripts/install.sh")).arg("--bogus").env("HOME", tmp.path());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unknown argument"), "{}", text(&out.stderr));

    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("scripts/install.sh"))
        .arg("--to")
        .arg(tmp.path().join("bin"))
        .env("IMGSYNC_TARGET", "x86_64-pc-windows-msvc")
        .env("IMGSYNC_VERSION", "1.0.0")
        .env("IMGSYNC_DOWNLOAD_BASE", "http://127.0.0.1:9");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("install.ps1"), "{}", text(&out.stderr));
    assert!(!tmp.path().join("bin").exists());
}

/// stamp.sh over a package.sh output: the release assets (stamped install.sh,
/// SHA256SUMS, latest, release-stamp.txt) beside the archive.
fn stamp(dist: &Path, repository: &str) {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/stamp.sh")).arg(dist).arg(repository).arg(version());
    let out = run(cmd);
    assert!(out.status.success(), "stamp.sh failed:\n{}", text(&out.stderr));
}

/// A release laid out as GitHub's download tree: <root>/v<version>/<every asset>,
/// and <root>/latest (a mirror's copy of the release's `latest` asset).
fn github_layout(root: &Path, dist: &Path) {
    let dir = root.join(format!("v{}", version()));
    std::fs::create_dir_all(&dir).unwrap();
    for f in entries(dist) {
        std::fs::copy(dist.join(&f), dir.join(&f)).unwrap();
    }
    std::fs::copy(dist.join("latest"), root.join("latest")).unwrap();
}

fn install_with(script: &Path, base: &str, to: &Path, home: &Path, target: &str) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(script)
        .arg("--to")
        .arg(to)
        .env("HOME", home)
        .env("IMGSYNC_DOWNLOAD_BASE", base)
        .env("IMGSYNC_TARGET", target)
        .env_remove("IMGSYNC_VERSION")
        .env_remove("IMGSYNC_REPO")
        .env_remove("IMGSYNC_SHA256");
    run(cmd)
}

#[test]
fn a_stamped_release_pins_its_checksums_and_a_missing_archive_lists_the_base() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let dist = t.join("dist");
    let (archive, _) = package(&dist);
    stamp(&dist, "acme/imgsync");
    let stamped = dist.join("install.sh");
    let script = std::fs::read_to_string(&stamped).unwrap();
    assert!(script.contains("STAMP_REPO='acme/imgsync'"), "the upstream is stamped in");
    assert!(script.contains(&format!("STAMP_VERSION='{}'", version())));
    let stamp_file = std::fs::read_to_string(dist.join("release-stamp.txt")).unwrap();
    assert!(stamp_file.contains(&format!("archive {} {}", target(), archive.file_name().unwrap().to_string_lossy())), "{stamp_file}");
    assert!(stamp_file.lines().any(|l| l.starts_with(&format!("binary {} ", target()))), "{stamp_file}");
    let root = t.join("release");
    github_layout(&root, &dist);
    let server = Server::start(&root);

    // 1. The script from main, no IMGSYNC_VERSION: the version comes from `latest`.
    let to = t.join("bin-main");
    let out = install_with(&repo().join("scripts/install.sh"), &server.base, &to, &home, &target());
    assert!(out.status.success(), "install.sh without IMGSYNC_VERSION failed:\n{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("imgsync {}", version()));
    assert!(server.requests().contains(&"/latest".to_string()));
    assert!(text(&out.stderr).contains("from the same place as the archive"), "says the checksum is not pinned:\n{}", text(&out.stderr));

    // 2. The stamped script: the pinned checksum, no .sha256 fetched.
    let before = server.requests().len();
    let to = t.join("bin-stamped");
    let out = install_with(&stamped, &server.base, &to, &home, &target());
    assert!(out.status.success(), "stamped install.sh failed:\n{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("pinned in this install.sh"), "{}", text(&out.stderr));
    let asked = server.requests()[before..].to_vec();
    assert!(!asked.iter().any(|p| p.ends_with(".sha256") || p == "/latest"), "{asked:?}");
    drop(server);

    // 3. Archive and .sha256 both replaced at the base (what whoever controls the
    //    base can do): the checksum pinned in the stamped script refuses it.
    let swapped = t.join("swapped");
    github_layout(&swapped, &dist);
    let vdir = swapped.join(format!("v{}", version()));
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    let mut bytes = std::fs::read(vdir.join(&name)).unwrap();
    bytes.extend_from_slice(&[0u8; 512]); // other bytes; the checksum decides before anything is unpacked
    std::fs::write(vdir.join(&name), &bytes).unwrap();
    let mut sha = sha2_hex(&bytes);
    sha.push_str(&format!("  {name}\n"));
    std::fs::write(vdir.join(format!("{name}.sha256")), sha).unwrap();
    let server = Server::start(&swapped);
    let to = t.join("bin-swapped");
    let out = install_with(&stamped, &server.base, &to, &home, &target());
    assert_eq!(out.status.code(), Some(4), "the pinned checksum refuses a swapped pair:\n{}", text(&out.stderr));
    assert!(entries(&to).is_empty());
    drop(server);

    // 4. No archive for the wanted target: the base's archives and IMGSYNC_TARGET.
    let server = Server::start(&root);
    for script in [repo().join("scripts/install.sh"), stamped.clone()] {
        let to = t.join("bin-missing");
        let out = install_with(&script, &server.base, &to, &home, "x86_64-unknown-linux-musl");
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains(&name), "lists what the base offers:\n{err}");
        assert!(err.contains("IMGSYNC_TARGET"), "{err}");
        assert!(entries(&to).is_empty());
    }

    // 5. https only: a plain-http base that is not loopback is refused before any download.
    let out = install_with(&stamped, "http://mirror.example.invalid", &t.join("bin-http"), &home, &target());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("https://"), "{}", text(&out.stderr));

    // 6. The script from main knows no repository: it says where to get one.
    let mut cmd = Command::new("sh");
    cmd.arg(repo().join("scripts/install.sh"))
        .arg("--to")
        .arg(t.join("bin-norepo"))
        .env("HOME", &home)
        .env_remove("IMGSYNC_DOWNLOAD_BASE")
        .env_remove("IMGSYNC_REPO");
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("not from a release"), "{}", text(&out.stderr));
    assert!(!t.join("bin-norepo").exists());
}

fn sha2_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
