//! A private PKI for TLS tests, made with the `openssl` CLI (on every Debian
//! and Ubuntu image; no crate needed): a CA, server certificates for given IP
//! addresses and names, and an RSA key + self-signed certificate for signing
//! registry tokens (RS256, as Docker Hub and GHCR do).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Pki {
    dir: PathBuf,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl on PATH (apt-get install openssl)");
    assert!(out.status.success(), "openssl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

impl Pki {
    /// A new CA in `dir` (`ca.crt`, `ca.key`).
    pub fn new(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            dir,
            &[
                "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key", "-out",
                "ca.crt", "-days", "2", "-subj", "/CN=imgsync test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Pki { dir: dir.to_path_buf() }
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// `<name>.crt` / `<name>.key`: a server certificate signed by the CA for
    /// these IP addresses and DNS names. Returns (cert, key).
    pub fn server_cert(&self, name: &str, ips: &[IpAddr], dns: &[&str]) -> (PathBuf, PathBuf) {
        let mut san: Vec<String> = ips.iter().map(|ip| format!("IP:{ip}")).collect();
        san.extend(dns.iter().map(|d| format!("DNS:{d}")));
        let ext = format!(
            "subjectAltName={}\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
            san.join(",")
        );
        std::fs::write(self.dir.join(format!("{name}.ext")), ext).unwrap();
        let (key, csr, crt) = (format!("{name}.key"), format!("{name}.csr"), format!("{name}.crt"));
        openssl(&self.dir, &["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", &key, "-out", &csr, "-subj", &format!("/CN={name}")]);
        openssl(
            &self.dir,
            &[
                "x509", "-req", "-in", &csr, "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", &crt, "-days", "2",
                "-extfile", &format!("{name}.ext"),
            ],
        );
        (self.dir.join(crt), self.dir.join(key))
    }

    /// An RSA-2048 key (PKCS#8) and a self-signed certificate for it, for
    /// signing tokens; the registry trusts the certificate (`rootcertbundle`).
    /// Returns (cert, key).
    pub fn token_signer(&self) -> (PathBuf, PathBuf) {
        openssl(&self.dir, &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", "token.key"]);
        openssl(&self.dir, &["req", "-x509", "-key", "token.key", "-out", "token.crt", "-days", "2", "-subj", "/CN=imgsync test token issuer"]);
        (self.dir.join("token.crt"), self.dir.join("token.key"))
    }

    /// A docker-style certs directory holding the CA for `host` (`host:port`):
    /// `<dir>/certs.d/<host>/ca.crt`. Returns the certs directory.
    pub fn certs_d(&self, host: &str) -> PathBuf {
        let d = self.dir.join("certs.d");
        std::fs::create_dir_all(d.join(host)).unwrap();
        std::fs::copy(self.ca_cert(), d.join(host).join("ca.crt")).unwrap();
        d
    }
}
