//! Local registries with synthetic images, for `scripts/demo.sh` and
//! `scripts/bench.sh`. Built from the e2e harness, so the demo, the benchmark
//! and the tests make images the same way.
//!
//! `testbed --state FILE [--images N] [--size BYTES] [--latency MS] [--small M [--mirror-small] [--sign-small]] [--targets K] [--demo]`
//! starts a source and a target registry (loopback only), seeds images into
//! the source, puts a latency proxy in front of each when asked, writes
//! `KEY=VALUE` lines to FILE, and serves until SIGINT/SIGTERM.
//! `--sign-small` gives every second small image (app0, app2, …) a cosign
//! signature (`sha256-<hex>.sig` of its index digest, `common::signing`); with
//! `--mirror-small` the mirror holds the same signature, byte for byte.
//! `--demo` seeds three sample images and signs `library/web:1.0` the same
//! way (`WEB_SIGNATURE_TAG`, `WEB_SIGNATURE_DIGEST` in FILE).

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{ImageSpec, Registry};

struct Args {
    state: String,
    images: usize,
    size: usize,
    latency_ms: u64,
    demo: bool,
    /// Extra empty target registries (DST_1..DST_K), so every measured run starts empty.
    targets: usize,
    /// Small two-platform images (`small/appI:v1`) for no-op timing.
    small: usize,
    /// Also push the small images to the `dst` registry as `mirror/appI:v1`
    /// (the same bytes): a mirror that is already up to date.
    mirror_small: bool,
    /// Sign every second small image (a `.sig` tag for its top digest).
    sign_small: bool,
}

fn parse_args() -> Args {
    let mut a = Args { state: String::new(), images: 5, size: 1 << 20, latency_ms: 0, demo: false, targets: 0, small: 0, mirror_small: false, sign_small: false };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--state" => a.state = value(),
            "--images" => a.images = value().parse().expect("--images N"),
            "--size" => a.size = value().parse().expect("--size BYTES"),
            "--latency" => a.latency_ms = value().parse().expect("--latency MS"),
            "--demo" => a.demo = true,
            "--targets" => a.targets = value().parse().expect("--targets K"),
            "--small" => a.small = value().parse().expect("--small M"),
            "--mirror-small" => a.mirror_small = true,
            "--sign-small" => a.sign_small = true,
            other => panic!("unknown argument {other}"),
        }
    }
    assert!(!a.state.is_empty(), "--state FILE is required");
    a
}

/// Forwards TCP to `upstream`, delivering every chunk `one_way` later in each
/// direction. Chunks are pipelined, so it adds latency without capping
/// throughput, like a long network path.
fn latency_proxy(upstream: SocketAddr, one_way: Duration, stop: Arc<AtomicBool>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((client, _)) => {
                    client.set_nonblocking(false).ok();
                    if let Ok(up) = TcpStream::connect(upstream) {
                        relay(client.try_clone().unwrap(), up.try_clone().unwrap(), one_way);
                        relay(up, client, one_way);
                    }
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    addr
}

fn relay(mut from: TcpStream, mut to: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    thread::spawn(move || {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send((Instant::now() + delay, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    });
    thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if to.write_all(&chunk).is_err() {
                return;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

/// Puts `m` (a single manifest in `src`) into `dst`'s `repo` under the same
/// tag, byte for byte: its config and layer blobs, then the manifest.
fn copy_manifest(src: &Registry, m: &common::signing::Pushed, dst: &Registry, repo: &str) {
    let layers = m.json["layers"].as_array().into_iter().flatten();
    for d in std::iter::once(&m.json["config"]).chain(layers) {
        let digest = d["digest"].as_str().expect("a descriptor's digest");
        dst.put_blob(repo, &src.blob(&m.repo, digest));
    }
    dst.put_manifest(repo, m.tag.as_deref().expect("a tag"), &m.media_type, &m.bytes);
}

fn main() {
    let args = parse_args();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).expect("signal handler");
    }
    let src = Registry::start();
    let dst = Registry::start();
    let mut lines = vec![format!("SRC_DIRECT={}", src.host()), format!("DST_DIRECT={}", dst.host())];
    let mut seeded = Vec::new();
    if args.demo {
        let created = "2025-06-01T00:00:00Z";
        let web = ImageSpec::new("demo-web").platforms(&["linux/amd64", "linux/arm64/v8"]).created(created);
        let cache = ImageSpec::new("demo-cache").created(created);
        let tools = ImageSpec::new("demo-tools").platforms(&["linux/amd64", "linux/arm64"]).oci().attestations().created(created);
        let pushed = src.push_image("library/web:1.0", &web);
        // Signed as `cosign sign --key` would, so the demo shows the signature travel.
        let signature = common::signing::sign_image(&src, "library/web", &pushed.digest, &format!("{}/library/web", src.host()));
        lines.push(format!("WEB_SIGNATURE_TAG={}", signature.tag.as_deref().expect("a .sig tag")));
        lines.push(format!("WEB_SIGNATURE_DIGEST={}", signature.digest));
        src.push_image("team/cache:7", &cache);
        src.push_image("team/tools:latest", &tools);
        seeded.extend(["library/web:1.0", "team/cache:7", "team/tools:latest"]);
    } else {
        for i in 0..args.images {
            let spec = ImageSpec::new(&format!("bench-{i}-{}", args.size))
                .platforms(&["linux/amd64", "linux/arm64/v8"])
                .layer_size(args.size);
            src.push_image(&format!("bench/app{i}:v1"), &spec);
        }
        for i in 0..args.small {
            let spec = ImageSpec::new(&format!("small-{i}")).platforms(&["linux/amd64", "linux/arm64/v8"]).layer_size(64 << 10);
            let pushed = src.push_image(&format!("small/app{i}:v1"), &spec);
            let signature = (args.sign_small && i % 2 == 0)
                .then(|| common::signing::sign_image(&src, &format!("small/app{i}"), &pushed.digest, &format!("{}/small/app{i}", src.host())));
            if args.mirror_small {
                dst.push_image(&format!("mirror/app{i}:v1"), &spec);
                if let Some(sig) = &signature {
                    copy_manifest(&src, sig, &dst, &format!("mirror/app{i}"));
                }
            }
        }
    }
    let one_way = Duration::from_millis(args.latency_ms) / 2;
    let reach = |r: &Registry| -> String {
        if args.latency_ms > 0 {
            latency_proxy(r.host().parse().unwrap(), one_way, Arc::clone(&stop)).to_string()
        } else {
            r.host()
        }
    };
    lines.push(format!("SRC={}", reach(&src)));
    lines.push(format!("DST={}", reach(&dst)));
    let extra: Vec<Registry> = (0..args.targets).map(|_| Registry::start()).collect();
    for (i, r) in extra.iter().enumerate() {
        lines.push(format!("DST_{}={}", i + 1, reach(r)));
    }
    lines.push(format!("IMAGES={}", if args.demo { seeded.len() } else { args.images }));
    let tmp = format!("{}.tmp", args.state);
    std::fs::write(&tmp, lines.join("\n") + "\n").expect("write state");
    std::fs::rename(&tmp, &args.state).expect("publish state");
    while !stop.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(100));
    }
    // Registries stop on drop.
}
