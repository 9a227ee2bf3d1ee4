//! `map --emit k3s`: `/etc/rancher/k3s/registries.yaml` (k3s and RKE2).
//!
//! Each source registry gets a `mirrors` entry whose endpoint is the mirror's
//! registry and whose `rewrite` rules (a regular expression on the repository,
//! and its replacement, as k3s documents them) turn the original repository
//! into the mirror's: path mode one rule per source registry (`^(.*)$` ->
//! `NS/docker.io/$1`), flat mode one per image (`^library/nginx$` -> `NS/nginx`).
//! Rules of one registry are anchored and never overlap, so their order (a Go
//! map's) does not matter. A rewrite cannot change a tag: renames to another
//! tag are listed as comments.
//!
//! Keys and values are written as JSON strings, which YAML reads as
//! double-quoted scalars: the quoting is serde_json's.

use super::runtime_config::{by_registry, Emitted, Mirror, Pair};
use crate::naming::Naming;

/// Where the file goes under `--out DIR` (DIR = /etc/rancher/k3s).
pub const FILE: &str = "registries.yaml";

fn q(s: &str) -> String {
    serde_json::to_string(s).expect("a string serialises")
}

/// A regular expression on the repository and its replacement.
type Rule = (String, String);

/// One `mirrors` entry: the source registry, comment lines, its rules.
type Block = (String, Vec<String>, Vec<Rule>);

pub fn emit(mirror: &Mirror, pairs: &[Pair]) -> Emitted {
    let mut warnings: Vec<String> = mirror.ghcr_warning("k3s (its containerd)").into_iter().collect();
    let mut blocks: Vec<Block> = Vec::new();
    for (registry, ps) in by_registry(pairs) {
        let mut comments = Vec::new();
        let mut rules: Vec<Rule> = Vec::new();
        match mirror.target.naming {
            Naming::Path => {
                for p in &ps {
                    if mirror.follows_path_rule(p) {
                        comments.push(p.describe());
                    } else {
                        warnings.push(format!("{} (a rename: only the path rule is expressible; pull it by its mirror name)", p.describe()));
                    }
                }
                if !comments.is_empty() {
                    let base = format!("{}/{}", mirror.target.namespace, crate::naming::registry_component(&registry));
                    rules.push(("^(.*)$".into(), format!("{base}/$1")));
                }
            }
            Naming::Flat => {
                for p in &ps {
                    let pattern = format!("^{}$", regex::escape(p.source.repository()));
                    let replacement = p.mirror.repository().to_string();
                    match rules.iter().find(|(pat, _)| *pat == pattern) {
                        None if p.same_tag() => {
                            comments.push(p.describe());
                            rules.push((pattern, replacement));
                        }
                        Some((_, r)) if *r == replacement && p.same_tag() => comments.push(p.describe()),
                        Some(_) => warnings.push(format!("{} (another line already serves this repository; k3s rewrites by repository, not tag or platform)", p.describe())),
                        None => warnings.push(format!("{} (a rename to another tag: a rewrite changes the repository only)", p.describe())),
                    }
                }
            }
        }
        if !rules.is_empty() {
            blocks.push((registry, comments, rules));
        }
    }
    let mut out = String::new();
    out.push_str("# k3s / RKE2 registries.yaml written by `imgsync map --emit k3s`: pods pull the original names from the mirror.\n");
    out.push_str(&format!("# Install: /etc/rancher/k3s/{FILE} on every node (merge with what is there), then restart k3s.\n"));
    out.push_str(&format!(
        "# {}\n",
        mirror.credentials_note("add `configs: {\"REGISTRY\": {auth: {username: ..., password: ...}}}` to this file on each node yourself")
    ));
    if mirror.plain_http {
        out.push_str(&format!("# {} is reached over plain HTTP: the endpoint is an http:// URL.\n", mirror.target.registry));
    }
    out.push_str("# An image the mirror lacks is pulled from its own registry (k3s's default endpoint).\n");
    for w in &warnings {
        out.push_str(&format!("# Not expressible here / WARNING: {w}\n"));
    }
    out.push_str(if blocks.is_empty() { "mirrors: {}\n" } else { "mirrors:\n" });
    for (registry, comments, rules) in &blocks {
        for c in comments {
            out.push_str(&format!("  # {c}\n"));
        }
        out.push_str(&format!("  {}:\n", q(registry)));
        out.push_str("    endpoint:\n");
        out.push_str(&format!("      - {}\n", q(&format!("{}://{}", mirror.scheme(), mirror.target.registry))));
        out.push_str("    rewrite:\n");
        for (pattern, replacement) in rules {
            out.push_str(&format!("      {}: {}\n", q(pattern), q(replacement)));
        }
    }
    Emitted { files: vec![(FILE.to_string(), out)], warnings }
}

#[cfg(test)]
mod tests {
    use super::super::runtime_config::tests::{pairs, target};
    use super::*;

    /// `(registry, endpoint, rules)` read back with a YAML parser.
    fn read(text: &str) -> Vec<(String, String, Vec<Rule>)> {
        use saphyr::{LoadableYamlNode, Yaml};
        let docs = Yaml::load_from_str(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mirrors = docs[0].as_mapping_get("mirrors").unwrap().as_mapping().unwrap();
        mirrors
            .iter()
            .map(|(k, v)| {
                let endpoint = v.as_mapping_get("endpoint").unwrap().as_sequence().unwrap()[0].as_str().unwrap().to_string();
                let rules = v
                    .as_mapping_get("rewrite")
                    .unwrap()
                    .as_mapping()
                    .unwrap()
                    .iter()
                    .map(|(p, r)| (p.as_str().unwrap().to_string(), r.as_str().unwrap().to_string()))
                    .collect();
                (k.as_str().unwrap().to_string(), endpoint, rules)
            })
            .collect()
    }

    #[test]
    fn path_mode_one_rule_per_registry() {
        let t = target("127.0.0.1:5000", "team/mirror", Naming::Path);
        let m = Mirror { target: &t, plain_http: true, insecure_sources: &[] };
        let e = emit(&m, &pairs(&t, "nginx:1.27\nquay.io/a/b:1"));
        assert_eq!(
            read(&e.files[0].1),
            [
                ("docker.io".to_string(), "http://127.0.0.1:5000".to_string(), vec![("^(.*)$".to_string(), "team/mirror/docker.io/$1".to_string())]),
                ("quay.io".into(), "http://127.0.0.1:5000".into(), vec![("^(.*)$".into(), "team/mirror/quay.io/$1".into())]),
            ]
        );
    }

    #[test]
    fn flat_mode_one_anchored_rule_per_image() {
        let t = target("registry.cn-hangzhou.aliyuncs.com", "ns", Naming::Flat);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        let e = emit(&m, &pairs(&t, "nginx:1.27\nnginx:alpine\nbitnami/redis:7\nhttpd:2 => web:stable\nghcr.io/o/app.x --latest=2"));
        let r = read(&e.files[0].1);
        assert_eq!(r[0].0, "docker.io");
        assert_eq!(r[0].1, "https://registry.cn-hangzhou.aliyuncs.com");
        assert_eq!(r[0].2, [("^library/nginx$".to_string(), "ns/nginx".to_string()), ("^bitnami/redis$".into(), "ns/bitnami_redis".into())]);
        assert_eq!(r[1], ("ghcr.io".to_string(), "https://registry.cn-hangzhou.aliyuncs.com".to_string(), vec![("^o/app\\.x$".to_string(), "ns/ghcr-io_o_app.x".to_string())]));
        assert_eq!(e.warnings.len(), 1);
        assert!(e.warnings[0].contains("httpd:2"), "{:?}", e.warnings);
        // Rules applied as k3s applies them map each original to its mirror.
        let re = regex::Regex::new(&r[0].2[1].0).unwrap();
        assert_eq!(re.replace("bitnami/redis", r[0].2[1].1.as_str()), "ns/bitnami_redis");
    }
}
