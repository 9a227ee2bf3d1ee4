//! A registry with TLS and/or auth for the registry client's tests:
//! `docker-registry serve` with a server certificate from a private CA
//! ([`super::pki::Pki`]) and an `auth:` section (token server or htpasswd),
//! optionally on a non-loopback address inside a network namespace (a veth
//! pair, `ip netns add`; needs root), since loopback registries get plain
//! HTTP from docker and imgsync.
//!
//! Test content is pushed through [`SecureRegistry::backing`], a plain
//! loopback registry without auth serving the same storage directory, so the
//! existing push helpers work unchanged; the secure front only serves reads
//! and counts them (its own Prometheus metrics).

use std::net::{IpAddr, Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{agent, free_port, which, Registry};

/// Where the front listens.
pub enum Listen {
    /// 127.0.0.1 (plain HTTP for clients that follow docker's rules).
    Loopback,
    /// The private address of this network namespace ([`Netns::create`]; its
    /// address is known before the server certificate is made).
    Netns(Netns),
}

pub struct SecureOptions {
    pub listen: Listen,
    /// (certificate, key) for TLS; `None`: plain HTTP.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The registry config's `auth:` section (may be empty).
    pub auth_yaml: String,
}

/// A network namespace with a veth pair: host side `.1`, namespace side `.2`
/// of a /30 in 10.231.0.0/16. Removed on Drop.
pub struct Netns {
    pub name: String,
    host_if: String,
    pub host_ip: Ipv4Addr,
    pub ns_ip: Ipv4Addr,
}

fn ip(args: &[&str]) -> Result<String, String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// Creates it, or says why not (not root, no `ip`, no netns support).
    pub fn create() -> Result<Netns, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let name = format!("imgsync-{pid}-{n}");
        let host_if = format!("isy{:x}{n}h", pid % 0xfffffff);
        let ns_if = format!("isy{:x}{n}n", pid % 0xfffffff);
        // A /30 not in use on this host.
        let used = ip(&["-o", "-4", "addr", "show"])?;
        let start = (pid as usize * 31 + n * 7) % (256 * 64);
        let slot = (0..256 * 64)
            .map(|i| (start + i) % (256 * 64))
            .find(|s| !used.contains(&format!("10.231.{}.{} ", s / 64, (s % 64) * 4 + 1)) && !used.contains(&format!("10.231.{}.{}/", s / 64, (s % 64) * 4 + 1)))
            .ok_or("no free /30 in 10.231.0.0/16")?;
        let (a, b) = ((slot / 64) as u8, ((slot % 64) * 4) as u8);
        let host_ip = Ipv4Addr::new(10, 231, a, b + 1);
        let ns_ip = Ipv4Addr::new(10, 231, a, b + 2);
        ip(&["netns", "add", &name])?;
        let ns = Netns { name: name.clone(), host_if: host_if.clone(), host_ip, ns_ip };
        ip(&["link", "add", &host_if, "type", "veth", "peer", "name", &ns_if])?;
        ip(&["link", "set", &ns_if, "netns", &name])?;
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if])?;
        ip(&["link", "set", &host_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{ns_ip}/30"), "dev", &ns_if])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"])?;
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &self.host_if]);
        let _ = ip(&["netns", "del", &self.name]);
    }
}

pub struct SecureRegistry {
    /// Plain loopback registry on the same storage: push test content here.
    pub backing: Registry,
    child: Child,
    addr: String,
    debug: String,
    dir: tempfile::TempDir,
    agent: ureq::Agent,
    // Dropped last: after the registry process is gone.
    netns: Option<Netns>,
}

impl SecureRegistry {
    pub fn start(opts: SecureOptions) -> Result<SecureRegistry, String> {
        let bin = which("docker-registry").ok_or("docker-registry not on PATH")?;
        let backing = Registry::start();
        let netns = match opts.listen {
            Listen::Loopback => None,
            Listen::Netns(ns) => Some(ns),
        };
        let listen_ip: IpAddr = netns.as_ref().map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |n| IpAddr::V4(n.ns_ip));
        // In a fresh namespace every port is free; on loopback pick free ones.
        let (port, debug_port) = if netns.is_some() { (5000, 5001) } else { (free_port(), free_port()) };
        let dir = tempfile::Builder::new().prefix("imgsync-secreg-").tempdir().map_err(|e| e.to_string())?;
        let tls = opts.tls.as_ref().map_or(String::new(), |(c, k)| {
            format!("  tls:\n    certificate: {}\n    key: {}\n", c.display(), k.display())
        });
        let config = format!(
            "version: 0.1\n\
             log:\n  level: error\n  accesslog:\n    disabled: false\n\
             storage:\n  filesystem:\n    rootdirectory: {data}\n  maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: {listen_ip}:{port}\n{tls}  debug:\n    addr: {listen_ip}:{debug_port}\n    prometheus:\n      enabled: true\n      path: /metrics\n\
             {auth}",
            data = backing.dir.path().join("data").display(),
            auth = opts.auth_yaml,
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.path().join("registry.log")).map_err(|e| e.to_string())?;
        let mut cmd = match &netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name]).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        let child = cmd
            .arg("serve")
            .arg(&config_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn docker-registry: {e}"))?;
        let addr = format!("{listen_ip}:{port}");
        let debug = format!("{listen_ip}:{debug_port}");
        let mut reg = SecureRegistry { backing, child, addr, debug, dir, agent: agent(), netns };
        reg.wait_ready(Duration::from_secs(20))?;
        Ok(reg)
    }

    fn wait_ready(&mut self, limit: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("docker-registry exited early: {status}\n{}", self.log()));
            }
            let metrics = self.agent.get(format!("http://{}/metrics", self.debug)).call().is_ok_and(|r| r.status() == 200);
            if metrics && TcpStream::connect_timeout(&self.addr.parse().unwrap(), Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > limit {
                return Err(format!("docker-registry at {} not ready within {limit:?}\n{}", self.addr, self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `ip:port` of the secure front.
    pub fn host(&self) -> String {
        self.addr.clone()
    }

    pub fn netns(&self) -> Option<&Netns> {
        self.netns.as_ref()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// Requests the front has served, by handler (manifest, tags, base, ...)
    /// and method (get, head), from its Prometheus metrics.
    pub fn request_count(&self, handler: &str, method: &str) -> u64 {
        metric(&self.agent, &self.debug, handler, method)
    }
}

/// `registry_http_request_duration_seconds_count{handler,method}` at `debug` (`ip:port`).
pub fn metric(agent: &ureq::Agent, debug: &str, handler: &str, method: &str) -> u64 {
    let mut resp = agent.get(format!("http://{debug}/metrics")).call().expect("GET metrics");
    let text = resp.body_mut().read_to_string().unwrap();
    let want = format!("registry_http_request_duration_seconds_count{{handler=\"{handler}\",method=\"{method}\"}}");
    text.lines().find_map(|l| l.strip_prefix(&want)).map(|n| n.trim().parse::<f64>().unwrap() as u64).unwrap_or(0)
}

impl Drop for SecureRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
