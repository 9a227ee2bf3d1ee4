//! `map --emit containerd`: one `certs.d/<source registry>/hosts.toml` per
//! source registry (containerd's hosts.md; `ctr image pull --hosts-dir DIR`,
//! or `config_path = "/etc/containerd/certs.d"` in the CRI registry config).
//!
//! A host entry with `override_path = true` takes its URL path as the API
//! root, so `http://R/v2/NS/docker.io` serves `docker.io/library/nginx` from
//! `R/NS/docker.io/library/nginx`: path mode only. Flat names differ per
//! image, which a host entry cannot express.

use std::collections::BTreeMap;

use serde::Serialize;

use super::runtime_config::{by_registry, Emitted, Mirror, Pair};
use crate::naming::Naming;
use crate::reference::{is_loopback_host, DOCKER_HUB};

#[derive(Serialize)]
struct HostsToml {
    server: String,
    host: BTreeMap<String, Host>,
}

#[derive(Serialize)]
struct Host {
    capabilities: Vec<&'static str>,
    override_path: bool,
}

pub fn emit(mirror: &Mirror, pairs: &[Pair]) -> Result<Emitted, String> {
    if mirror.target.naming != Naming::Path {
        return Err(format!(
            "containerd cannot pull the original names from a flat mirror: a hosts.toml maps a whole source registry to one \
             path on the mirror (override_path), and flat names ({}/{}/bitnami_redis) differ per image. \
             Sync with NAMING=path (then --naming path here), or use --emit k3s or --emit podman, which can map each image",
            mirror.target.registry, mirror.target.namespace
        ));
    }
    let mut warnings: Vec<String> = mirror.ghcr_warning("containerd").into_iter().collect();
    fn rename(p: &Pair) -> String {
        format!("{} (a rename: only the path rule is expressible; pull it by its mirror name)", p.describe())
    }
    warnings.extend(pairs.iter().filter(|p| !mirror.follows_path_rule(p)).map(rename));
    let mut files = Vec::new();
    for (registry, ps) in by_registry(pairs) {
        let covered: Vec<&&Pair> = ps.iter().filter(|p| mirror.follows_path_rule(p)).collect();
        if covered.is_empty() {
            continue;
        }
        let mut notes: Vec<String> = mirror.ghcr_warning("containerd").into_iter().collect();
        notes.extend(ps.iter().filter(|p| !mirror.follows_path_rule(p)).map(|p| rename(p)));
        let url = format!("{}://{}/v2/{}/{}", mirror.scheme(), mirror.target.registry, mirror.target.namespace, crate::naming::registry_component(&registry));
        let file = HostsToml {
            server: server_of(&registry, mirror.insecure_sources),
            host: BTreeMap::from([(url, Host { capabilities: vec!["pull", "resolve"], override_path: true })]),
        };
        let mut out = String::new();
        out.push_str(&format!("# containerd hosts.toml for {registry}, written by `imgsync map --emit containerd`.\n"));
        out.push_str(&format!("# Install: /etc/containerd/certs.d/{registry}/hosts.toml (ctr: --hosts-dir /etc/containerd/certs.d).\n"));
        out.push_str(&format!(
            "# {}\n",
            mirror.credentials_note("give them to the client (ctr --user; the CRI plugin's registry.configs auth, or kubelet's image pull secrets)")
        ));
        if mirror.plain_http {
            out.push_str(&format!("# {} is reached over plain HTTP: the host is an http:// URL.\n", mirror.target.registry));
        }
        for w in &notes {
            out.push_str(&format!("# WARNING: {w}\n"));
        }
        for p in &covered {
            out.push_str(&format!("# {}\n", p.describe()));
        }
        out.push_str(&toml::to_string(&file).expect("plain strings serialise"));
        files.push((format!("{registry}/hosts.toml"), out));
    }
    Ok(Emitted { files, warnings })
}

/// The source registry itself, tried when the mirror lacks an image.
fn server_of(registry: &str, insecure: &[String]) -> String {
    if registry == DOCKER_HUB {
        return "https://registry-1.docker.io".into();
    }
    let plain = is_loopback_host(registry) || crate::config::is_listed_insecure(insecure, registry);
    format!("{}://{registry}", if plain { "http" } else { "https" })
}

#[cfg(test)]
mod tests {
    use super::super::runtime_config::tests::{pairs, target};
    use super::*;

    #[test]
    fn one_hosts_file_per_source_registry() {
        let t = target("127.0.0.1:5000", "team/mirror", Naming::Path);
        let m = Mirror { target: &t, plain_http: true, insecure_sources: &[] };
        let e = emit(&m, &pairs(&t, "nginx:1.27\n127.0.0.1:5001/lib/web:1.0\nredis:7 => cache")).unwrap();
        assert_eq!(e.files.iter().map(|(p, _)| p.as_str()).collect::<Vec<_>>(), ["docker.io/hosts.toml", "127.0.0.1:5001/hosts.toml"]);
        let v: toml::Value = toml::from_str(&e.files[1].1).unwrap();
        assert_eq!(v["server"].as_str(), Some("http://127.0.0.1:5001"));
        let host = &v["host"]["http://127.0.0.1:5000/v2/team/mirror/127.0.0.1-5001"];
        assert_eq!(host["override_path"].as_bool(), Some(true));
        assert_eq!(host["capabilities"].as_array().unwrap().len(), 2);
        let hub: toml::Value = toml::from_str(&e.files[0].1).unwrap();
        assert_eq!(hub["server"].as_str(), Some("https://registry-1.docker.io"));
        assert_eq!(e.warnings.len(), 1);
        assert!(e.warnings[0].contains("redis:7") && e.warnings[0].contains("a rename"), "{:?}", e.warnings);
    }

    #[test]
    fn flat_is_refused_and_ghcr_warned() {
        let t = target("ghcr.io", "owner", Naming::Flat);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        assert!(emit(&m, &pairs(&t, "nginx:1")).unwrap_err().contains("NAMING=path"));
        let t = target("ghcr.io", "owner", Naming::Path);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        let e = emit(&m, &pairs(&t, "nginx:1")).unwrap();
        assert!(e.warnings[0].contains("containerd issue 9648"));
        assert!(e.files[0].1.contains("# WARNING: containerd asks"), "{}", e.files[0].1);
        let v: toml::Value = toml::from_str(&e.files[0].1).unwrap();
        assert!(v["host"].get("https://ghcr.io/v2/owner/docker.io").is_some());
    }
}
