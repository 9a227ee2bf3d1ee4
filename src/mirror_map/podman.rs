//! `map --emit podman`: a containers-registries.conf(5) drop-in for podman,
//! CRI-O, buildah and skopeo (`/etc/containers/registries.conf.d/50-imgsync.conf`).
//!
//! A `[[registry]]` table is chosen by the longest `prefix` of the name
//! pulled, and each `[[registry.mirror]]` location replaces that prefix; the
//! image keeps its original name (and signature identity). Path mode needs
//! one table per source registry (`docker.io` -> `R/NS/docker.io`); flat mode
//! one per image (`docker.io/library/nginx` -> `R/NS/nginx`); a rename that
//! keeps the tag is one more table (`docker.io/library/redis` -> `R/NS/cache`).
//! A rename to another tag is listed as a comment: podman 4 matches prefixes
//! against the repository only.

use serde::Serialize;

use super::runtime_config::{by_registry, Emitted, Mirror, Pair};
use crate::naming::Naming;

/// Where the file goes under `--out DIR` (DIR = /etc/containers/registries.conf.d).
pub const FILE: &str = "50-imgsync.conf";

#[derive(Serialize)]
struct File {
    registry: Vec<Registry>,
}

#[derive(Serialize)]
struct Registry {
    prefix: String,
    /// The original itself, tried after the mirror (podman 4 requires it).
    location: String,
    mirror: Vec<MirrorTable>,
}

#[derive(Serialize)]
struct MirrorTable {
    location: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    insecure: bool,
}

/// One `[[registry]]` table with its comment lines.
struct Table {
    comments: Vec<String>,
    prefix: String,
    location: String,
}

pub fn emit(mirror: &Mirror, pairs: &[Pair]) -> Emitted {
    let mut tables: Vec<Table> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    match mirror.target.naming {
        Naming::Path => {
            for (registry, ps) in by_registry(pairs) {
                let covered: Vec<String> = ps.iter().filter(|p| mirror.follows_path_rule(p)).map(|p| p.describe()).collect();
                if !covered.is_empty() {
                    tables.push(Table { comments: covered, prefix: registry.clone(), location: mirror.path_base(&registry) });
                }
            }
            for p in pairs.iter().filter(|p| !mirror.follows_path_rule(p)) {
                add_exception(&mut tables, &mut notes, p);
            }
        }
        Naming::Flat => {
            // One table per source repository: the first mirror repository that keeps the tags.
            let mut repos: Vec<String> = Vec::new();
            for p in pairs {
                let name = p.source.name();
                if !repos.contains(&name) {
                    repos.push(name);
                }
            }
            for repo in &repos {
                let group: Vec<&Pair> = pairs.iter().filter(|p| &p.source.name() == repo).collect();
                let rule = group.iter().find(|p| p.same_tag()).map(|p| p.mirror.name());
                if let Some(location) = &rule {
                    let comments = group.iter().filter(|p| p.same_tag() && &p.mirror.name() == location).map(|p| p.describe()).collect();
                    tables.push(Table { comments, prefix: repo.clone(), location: location.clone() });
                }
                let served = |p: &Pair| p.same_tag() && Some(p.mirror.name()) == rule;
                for p in group.iter().filter(|p| !served(p)) {
                    add_exception(&mut tables, &mut notes, p);
                }
            }
        }
    }
    let mut out = String::new();
    out.push_str("# containers-registries.conf(5) drop-in written by `imgsync map --emit podman`:\n");
    out.push_str("# podman, CRI-O, buildah and skopeo pull the original names from the mirror.\n");
    out.push_str(&format!("# Install: /etc/containers/registries.conf.d/{FILE} (or ~/.config/containers/registries.conf.d/).\n"));
    out.push_str(&format!("# {}\n", mirror.credentials_note("log in on each server with `podman login` (containers-auth.json)")));
    if mirror.plain_http {
        out.push_str(&format!("# {} is reached over plain HTTP: each mirror says insecure = true.\n", mirror.target.registry));
    }
    out.push_str("# If the mirror lacks an image, the original registry is tried next (remove nothing from it).\n");
    out.push_str("# A [[registry]] with the same prefix in a file read earlier is replaced by the one here.\n");
    for n in &notes {
        out.push_str(&format!("# Not expressible here: {n}\n"));
    }
    for t in &tables {
        out.push('\n');
        for c in &t.comments {
            out.push_str(&format!("# {c}\n"));
        }
        let file = File {
            registry: vec![Registry {
                prefix: t.prefix.clone(),
                location: t.prefix.clone(),
                mirror: vec![MirrorTable { location: t.location.clone(), insecure: mirror.plain_http }],
            }],
        };
        out.push_str(&toml::to_string(&file).expect("plain strings serialise"));
    }
    Emitted { files: vec![(FILE.to_string(), out)], warnings: notes }
}

/// A pair the repository or registry rule does not serve (a rename): a table
/// for its repository, unless one already claims it (two platform lines of
/// one image: podman chooses by name, not platform). A rename to another tag
/// cannot be expressed: podman 4 matches a prefix against the repository
/// only (a prefix ending in a tag never matches there).
fn add_exception(tables: &mut Vec<Table>, notes: &mut Vec<String>, p: &Pair) {
    if !p.same_tag() {
        notes.push(format!("{} (a rename to another tag: podman matches the repository, not the tag)", p.describe()));
        return;
    }
    let prefix = p.source.name();
    if tables.iter().any(|t| t.prefix == prefix) {
        notes.push(format!("{} (another line already serves this repository; podman chooses by name, not tag or platform)", p.describe()));
        return;
    }
    tables.push(Table { comments: vec![p.describe()], prefix, location: p.mirror.name() });
}

#[cfg(test)]
mod tests {
    use super::super::runtime_config::tests::{pairs, target};
    use super::*;

    fn parsed(text: &str) -> toml::Value {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn tables(text: &str) -> Vec<(String, String, bool)> {
        parsed(text)["registry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let m = &r["mirror"][0];
                (r["prefix"].as_str().unwrap().to_string(), m["location"].as_str().unwrap().to_string(), m.get("insecure").and_then(|v| v.as_bool()).unwrap_or(false))
            })
            .collect()
    }

    #[test]
    fn path_mode_one_table_per_registry_and_renames_by_tag() {
        let t = target("127.0.0.1:5000", "team/mirror", Naming::Path);
        let m = Mirror { target: &t, plain_http: true, insecure_sources: &[] };
        let e = emit(&m, &pairs(&t, "nginx:1.27\nbitnami/redis:7\n127.0.0.1:5001/lib/web:1.0\nhttpd:2 => web\nquay.io/a/b --latest=1\nredis:7 => cache:stable"));
        let text = &e.files[0].1;
        assert_eq!(
            tables(text),
            [
                ("docker.io".to_string(), "127.0.0.1:5000/team/mirror/docker.io".to_string(), true),
                ("127.0.0.1:5001".into(), "127.0.0.1:5000/team/mirror/127.0.0.1-5001".into(), true),
                ("quay.io".into(), "127.0.0.1:5000/team/mirror/quay.io".into(), true),
                ("docker.io/library/httpd".into(), "127.0.0.1:5000/team/mirror/web".into(), true),
            ]
        );
        assert!(text.contains("# line 4: httpd:2 -> 127.0.0.1:5000/team/mirror/web:2\n"), "{text}");
        assert_eq!(e.warnings.len(), 1);
        assert!(e.warnings[0].contains("cache:stable") && e.warnings[0].contains("another tag"), "{:?}", e.warnings);
        assert!(text.contains("insecure = true") && text.contains("Credentials: none are written here"), "{text}");
    }

    #[test]
    fn flat_mode_one_table_per_image() {
        let t = target("registry.cn-hangzhou.aliyuncs.com", "ns", Naming::Flat);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        let d = "a".repeat(64);
        let lines = format!("nginx:1.27\nnginx:alpine\nredis:7 => cache:stable\n--platform=linux/amd64 mysql:8.0\n--platform=linux/arm64 mysql:8.0\nalpine@sha256:{d}");
        let e = emit(&m, &pairs(&t, &lines));
        let text = &e.files[0].1;
        let r = "registry.cn-hangzhou.aliyuncs.com/ns";
        assert_eq!(
            tables(text),
            [
                ("docker.io/library/nginx".to_string(), format!("{r}/nginx"), false),
                ("docker.io/library/mysql".into(), format!("{r}/linux_amd64_mysql"), false),
                ("docker.io/library/alpine".into(), format!("{r}/alpine"), false),
            ]
        );
        assert_eq!(e.warnings.len(), 2, "{:?}", e.warnings);
        assert!(e.warnings[0].contains("cache:stable"), "{:?}", e.warnings);
        assert!(e.warnings[1].contains("linux_arm64_mysql") && e.warnings[1].contains("platform"), "{:?}", e.warnings);
        assert!(!text.contains("insecure"), "{text}");
    }

    #[test]
    fn quoting_is_toml_s() {
        let t = target("r.example", "ns", Naming::Path);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        let text = emit(&m, &pairs(&t, "nginx:1")).files.remove(0).1;
        assert_eq!(tables(&text)[0].0, "docker.io");
    }
}
