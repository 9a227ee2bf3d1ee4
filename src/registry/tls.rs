//! Trust and transport rules, as docker has them:
//! - TLS trusts the system roots (`rustls-native-certs`) plus
//!   `<certs dir>/<host[:port]>/*.crt` (default `/etc/docker/certs.d`);
//! - plain HTTP only for loopback hosts and the registries the caller lists as
//!   insecure (the distribution setting `insecure-registries`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use ureq::tls::{Certificate, RootCerts};

pub const DOCKER_CERTS_DIR: &str = "/etc/docker/certs.d";

/// Does this registry get plain HTTP? Loopback (`localhost`, `127.*`, `::1`)
/// and the listed ones, by the same rule that gives docker `--insecure`
/// (`config::is_listed_insecure`: exact `host[:port]`), or a CIDR
/// (`10.0.0.0/8`) for IP-address registries, as docker's `insecure-registries`
/// takes them. One rule for reads and writes: a registry is never plain HTTP
/// for one and TLS for the other.
pub fn plain_http(registry: &str, insecure: &[String]) -> bool {
    if crate::reference::is_loopback_host(registry) || crate::config::is_listed_insecure(insecure, registry) {
        return true;
    }
    let Some((host, _)) = crate::reference::split_host_port(registry) else { return false };
    let ip: Option<std::net::IpAddr> = host.parse().ok();
    ip.is_some_and(|ip| insecure.iter().any(|i| in_cidr(ip, i)))
}

/// `ip` inside the CIDR `cidr` (`10.0.0.0/8`, `fd00::/8`); anything else is no match.
pub fn in_cidr(ip: std::net::IpAddr, cidr: &str) -> bool {
    cidr.parse::<ipnet::IpNet>().is_ok_and(|net| net.contains(&ip))
}

/// The system's roots, loaded once per process (empty when none are found).
fn native_roots() -> &'static Vec<Certificate<'static>> {
    static ROOTS: OnceLock<Vec<Certificate<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        rustls_native_certs::load_native_certs()
            .certs
            .into_iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect()
    })
}

/// `<dir>/<host>/*.crt`, parsed, in name order; unreadable or broken files are
/// reported, as docker fails on them too.
pub fn extra_certs(certs_dir: &Path, host: &str) -> Result<Vec<Certificate<'static>>, String> {
    let dir = certs_dir.join(host);
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(Vec::new()) };
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|x| x == "crt")).collect();
    files.sort();
    let mut certs = Vec::new();
    for f in files {
        let pem = std::fs::read(&f).map_err(|e| format!("{}: {e}", f.display()))?;
        let before = certs.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(ureq::tls::PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(e) => return Err(format!("{}: {e}", f.display())),
            }
        }
        if certs.len() == before {
            return Err(format!("{}: no PEM certificate in it", f.display()));
        }
    }
    Ok(certs)
}

/// Roots for a host: the system's plus its `certs.d` ones; `None` when the
/// host has no `certs.d` entry (the shared default roots then apply).
pub fn roots_for(certs_dir: &Path, host: &str) -> Result<Option<RootCerts>, String> {
    let extra = extra_certs(certs_dir, host)?;
    if extra.is_empty() {
        return Ok(None);
    }
    let mut all = native_roots().clone();
    all.extend(extra);
    Ok(Some(RootCerts::Specific(Arc::new(all))))
}

/// The roots for hosts without `certs.d` entries: the system's, or Mozilla's
/// (bundled with ureq) when the system has none.
pub fn default_roots() -> RootCerts {
    let native = native_roots();
    if native.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(Arc::new(native.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_rule() {
        let insecure = vec!["registry.lan:5000".to_string(), "mirror.lan".to_string()];
        assert!(plain_http("127.0.0.1:5000", &[]));
        assert!(plain_http("localhost", &[]));
        assert!(plain_http("[::1]:5000", &[]));
        assert!(plain_http("registry.lan:5000", &insecure));
        assert!(!plain_http("registry.lan:6000", &insecure));
        assert!(plain_http("mirror.lan", &insecure));
        // Exact host and port, as for docker's --insecure: `mirror.lan` is port 443 only.
        assert!(!plain_http("mirror.lan:8443", &insecure));
        assert!(!plain_http("ghcr.io", &insecure));
        assert!(!plain_http("10.0.0.1:5000", &[]));
        let cidr = vec!["10.0.0.0/8".to_string(), "fd00::/8".to_string(), "bogus/x".to_string()];
        assert!(plain_http("10.1.2.3:5000", &cidr));
        assert!(plain_http("10.1.2.3", &cidr));
        assert!(!plain_http("11.1.2.3:5000", &cidr));
        assert!(plain_http("[fd00::1]:5000", &cidr));
        assert!(!plain_http("registry.lan:5000", &cidr), "CIDRs match IP addresses only");
    }

    #[test]
    fn certs_d_files() {
        let dir = tempfile::tempdir().unwrap();
        assert!(roots_for(dir.path(), "r.lan:5000").unwrap().is_none());
        let host = dir.path().join("r.lan:5000");
        std::fs::create_dir(&host).unwrap();
        // A key file and a client cert are not roots.
        std::fs::write(host.join("client.key"), "not read").unwrap();
        std::fs::write(host.join("ca.crt"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").unwrap();
        // Parses as PEM; the DER inside is only checked by rustls when used.
        assert_eq!(extra_certs(dir.path(), "r.lan:5000").unwrap().len(), 1);
        std::fs::write(host.join("zz.crt"), "no pem here").unwrap();
        let e = extra_certs(dir.path(), "r.lan:5000").unwrap_err();
        assert!(e.contains("zz.crt"), "{e}");
    }
}
