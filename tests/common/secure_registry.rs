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

pub use super::netns::Netns;

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
