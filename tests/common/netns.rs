//! A registry on a non-loopback address: its own network namespace joined to
//! this one by a veth pair (`10.231.N.1` here, `10.231.N.2` there). Docker
//! treats only loopback registries as plain HTTP by itself, so this is what an
//! INSECURE_REGISTRIES entry looks like to a run. Needs root and `ip`;
//! scripts/test.sh's private engine lists 10.231.0.0/16 in insecure-registries.

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::Registry;

/// Every namespace registry this test binary has made, for unique names and subnets.
static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The subnet whose registries scripts/test.sh's engine treats as insecure.
pub const INSECURE_CIDR: &str = "10.231.0.0/16";

/// A network namespace with one end of a veth pair; deleted (with the pair) on Drop.
pub struct Netns {
    pub name: String,
    /// This namespace's address (the registry's).
    pub ip: String,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).output().map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Netns {
    /// A new namespace reachable from here at its `ip`; `Err` says why not (not root, no `ip`).
    pub fn create() -> Result<Netns, String> {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        // Unique per process and call; the subnet from both keeps parallel tests apart.
        let subnet = (pid as usize * 7 + n) % 250 + 1;
        let name = format!("imgsync-{pid}-{n}");
        let (here, there) = (format!("isv{pid}h{n}"), format!("isv{pid}n{n}"));
        if here.len() > 15 {
            return Err(format!("interface name {here} is too long"));
        }
        ip(&["netns", "add", &name])?;
        let ns = Netns { name: name.clone(), ip: format!("10.231.{subnet}.2") };
        // From here on, Drop deletes the namespace (and the pair with it).
        ip(&["link", "add", &here, "type", "veth", "peer", "name", &there])?;
        let result = (|| {
            ip(&["link", "set", &there, "netns", &name])?;
            ip(&["addr", "add", &format!("10.231.{subnet}.1/24"), "dev", &here])?;
            ip(&["link", "set", &here, "up"])?;
            ip(&["netns", "exec", &name, "ip", "addr", "add", &format!("{}/24", ns.ip), "dev", &there])?;
            ip(&["netns", "exec", &name, "ip", "link", "set", &there, "up"])?;
            ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"])
        })();
        if let Err(e) = result {
            let _ = ip(&["link", "del", &here]);
            return Err(e);
        }
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its veth end, and so the pair.
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
        let reg = Registry::launch_at(None, &ns.ip.clone(), Some(&ns.name));
        Ok(NetnsRegistry { reg, ns })
    }
}
