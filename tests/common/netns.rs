//! A registry on a non-loopback address: its own network namespace joined to
//! this one by a veth pair (a free /30 of 10.231.0.0/16: `.1` here, `.2` there). Docker
//! treats only loopback registries as plain HTTP by itself, so this is what an
//! INSECURE_REGISTRIES entry looks like to a run. Needs root and `ip`;
//! scripts/test.sh's private engine lists 10.231.0.0/16 in insecure-registries.

use std::net::Ipv4Addr;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Registry;

/// The subnet whose registries scripts/test.sh's engine treats as insecure.
pub const INSECURE_CIDR: &str = "10.231.0.0/16";

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

/// A registry inside its own namespace; the registry stops before the namespace goes.
pub struct NetnsRegistry {
    pub reg: Registry,
    pub ns: Netns,
}

impl NetnsRegistry {
    pub fn start() -> Result<NetnsRegistry, String> {
        let ns = Netns::create()?;
        let reg = Registry::launch_at(None, &ns.ns_ip.to_string(), Some(&ns.name));
        Ok(NetnsRegistry { reg, ns })
    }
}
