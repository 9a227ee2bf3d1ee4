//! Deterministic target names: `REGISTRY/NAMESPACE/NAME:TAG`.
//!
//! Two modes ([`Naming`]): `flat` (the default) makes NAME one path
//! component (`bitnami_redis`), because Aliyun ACR Personal and Docker Hub
//! accept only namespace/repo; `path` keeps the source's registry and
//! repository (`docker.io/bitnami/redis`), the layout of `skopeo sync
//! --scoped`, so one rule per source registry maps originals to mirrors
//! (podman, containerd and k3s can then pull the original names).

use std::collections::HashMap;

use crate::images::Entry;
use crate::reference::check_name;

/// How a target names its mirrors (`NAMING`, `<TARGET>_NAMING`, `--naming`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Naming {
    /// `NAMESPACE/NAME:TAG`, NAME one component (`bitnami_redis`).
    #[default]
    Flat,
    /// `NAMESPACE/<source registry>/<source repository>:TAG`.
    Path,
}

impl Naming {
    pub fn as_str(self) -> &'static str {
        match self {
            Naming::Flat => "flat",
            Naming::Path => "path",
        }
    }
}

/// The tag of a digest-only line (`alpine@sha256:<hex>` -> `sha256_<hex>`).
/// Not `sha256-<hex>`: that is the OCI 1.1 referrers fallback tag, which a
/// signing tool would overwrite with an index of referrers.
pub fn digest_tag(digest: &str) -> String {
    digest.replacen(':', "_", 1)
}

/// A source registry as one path component: lowercased, a port's `:` as `-`
/// (`127.0.0.1:5000` -> `127.0.0.1-5000`), IPv6 brackets dropped.
pub fn registry_component(registry: &str) -> String {
    registry.to_ascii_lowercase().replace(['[', ']'], "").replace(':', "-")
}

/// A namespace: one or more repository path components separated by `/`.
pub fn check_namespace(namespace: &str) -> Result<(), String> {
    for part in namespace.split('/') {
        if check_name(part).is_err() {
            return Err(format!(
                "{part:?} is not a valid repository path component (lowercase a-z, 0-9, single '.', '_' or '-' between them; parts separated by '/')"
            ));
        }
    }
    Ok(())
}

/// Checks a target NAME: one component, or several separated by `/` (path mode).
pub fn check_path(name: &str) -> Result<(), String> {
    if name.split('/').all(|p| check_name(p).is_ok()) {
        Ok(())
    } else {
        Err(format!("invalid target name {name:?}: each part between '/' must use lowercase a-z, 0-9 and single '.', '_' or '-' between them"))
    }
}

/// NAME and TAG of the target for an entry, before registry and namespace.
pub fn target_name(entry: &Entry, naming: Naming) -> (String, String) {
    let src = &entry.source;
    let source_tag = match (src.tag(), src.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => digest_tag(d),
        (None, None) => "latest".to_string(),
    };
    if let Some(r) = &entry.rename {
        return (r.name.clone(), r.tag.clone().unwrap_or(source_tag));
    }
    if naming == Naming::Path {
        // A platform line keeps the original name too: a runtime on that platform pulls it as the original.
        return (format!("{}/{}", registry_component(src.registry()), src.repository()), source_tag);
    }
    let mut parts = Vec::new();
    if let [only] = entry.platforms.as_slice() {
        parts.push(only.slug());
    }
    if !src.is_docker_hub() {
        parts.push(src.registry().replace(['.', ':'], "-"));
    }
    let path = if src.is_docker_hub() {
        src.repository().strip_prefix("library/").unwrap_or(src.repository())
    } else {
        src.repository()
    };
    parts.push(path.replace('/', "_"));
    (parts.join("_").to_ascii_lowercase(), source_tag)
}

/// Selecting entries replaced by one entry per selected tag.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expansion {
    /// In line order; a selecting line's tags in the order given.
    pub entries: Vec<Entry>,
    /// Selected tags left out because another line lists their target explicitly.
    pub dropped: Vec<Dropped>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub line: usize,
    pub tag: String,
    /// The explicit line that owns the target.
    pub explicit_line: usize,
}

/// Replaces each selecting entry by one concrete entry per tag in
/// `selected[line]` (same line, platforms and `=> NAME`). A selecting line
/// missing from `selected` (its listing or selection failed) yields nothing.
///
/// A selected tag whose target name an explicit line already produces is
/// dropped: the explicit line wins, so a new upstream release cannot turn a
/// scheduled run into a collision. Two selections producing one target stay
/// the collision error of `plan::destinations`, for those lines only.
///
/// `namings` are the targets' modes: a target owned in any of them counts.
pub fn expand(entries: &[Entry], selected: &HashMap<usize, Vec<String>>, namings: &[Naming]) -> Expansion {
    let namings = if namings.is_empty() { &[Naming::Flat][..] } else { namings };
    let explicit: HashMap<(Naming, String, String), usize> = entries
        .iter()
        .filter(|e| !e.is_selecting() && e.selected_by.is_none())
        .flat_map(|e| namings.iter().map(move |&n| {
            let (name, tag) = target_name(e, n);
            ((n, name, tag), e.line)
        }))
        .collect();
    let owner = |c: &Entry| {
        namings.iter().find_map(|&n| {
            let (name, tag) = target_name(c, n);
            explicit.get(&(n, name, tag)).copied()
        })
    };
    let mut out = Expansion::default();
    for e in entries {
        if !e.is_selecting() {
            out.entries.push(e.clone());
            continue;
        }
        for tag in selected.get(&e.line).into_iter().flatten() {
            // Tags come from `tag_selection::select`, which keeps only valid ones.
            let Ok(concrete) = e.with_selected_tag(tag) else { continue };
            match owner(&concrete) {
                Some(explicit_line) => out.dropped.push(Dropped { line: e.line, tag: tag.clone(), explicit_line }),
                None => out.entries.push(concrete),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{check_name, check_tag};
    use crate::images;

    fn name(line: &str) -> String {
        let e = images::parse("images.txt", line).unwrap().remove(0);
        let (n, t) = target_name(&e, Naming::Flat);
        format!("{n}:{t}")
    }

    fn path(line: &str) -> String {
        let e = images::parse("images.txt", line).unwrap().remove(0);
        let (n, t) = target_name(&e, Naming::Path);
        check_path(&n).unwrap();
        format!("{n}:{t}")
    }

    #[test]
    fn path_mode_keeps_the_source_registry_and_repository() {
        assert_eq!(path("nginx:1.27"), "docker.io/library/nginx:1.27");
        assert_eq!(path("bitnami/redis:7"), "docker.io/bitnami/redis:7");
        assert_eq!(path("quay.io/coreos/etcd:v3.5.0"), "quay.io/coreos/etcd:v3.5.0");
        assert_eq!(path("127.0.0.1:5000/lib/web:1.0"), "127.0.0.1-5000/lib/web:1.0");
        assert_eq!(path("Registry.K8S.io/pause:3.9".to_lowercase().as_str()), "registry.k8s.io/pause:3.9");
        // A platform line keeps the original path and tag.
        assert_eq!(path("--platform=linux/arm64 mysql:8.0"), "docker.io/library/mysql:8.0");
        // A rename still wins.
        assert_eq!(path("nginx:alpine => web"), "web:alpine");
        let d = "b".repeat(64);
        assert_eq!(path(&format!("alpine@sha256:{d}")), format!("docker.io/library/alpine:sha256_{d}"));
    }

    #[test]
    fn digest_tags() {
        let d = format!("sha256:{}", "c".repeat(64));
        assert_eq!(digest_tag(&d), format!("sha256_{}", "c".repeat(64)));
        assert!(check_tag(&digest_tag(&d)).is_ok());
    }

    #[test]
    fn namespaces_may_nest() {
        assert!(check_namespace("team/mirror").is_ok());
        assert!(check_namespace("a/b/c").is_ok());
        for bad in ["", "a//b", "/a", "a/", "A/b", "a/-b"] {
            assert!(check_namespace(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issue_examples() {
        assert_eq!(name("nginx:alpine"), "nginx:alpine");
        assert_eq!(name("bitnami/redis:latest"), "bitnami_redis:latest");
        assert_eq!(name("--platform=linux/arm64 mysql:8.0"), "linux_arm64_mysql:8.0");
        assert_eq!(name("quay.io/coreos/etcd:v3.5.0"), "quay-io_coreos_etcd:v3.5.0");
    }

    #[test]
    fn more_rules() {
        assert_eq!(name("localhost:5000/Team/App:1".to_lowercase().as_str()), "localhost-5000_team_app:1");
        assert_eq!(name("--platform=linux/arm/v7 busybox"), "linux_arm_v7_busybox:latest");
        assert_eq!(name("--platform=linux/amd64,linux/arm64 busybox:1"), "busybox:1", "several platforms: no prefix");
        let d = "a".repeat(64);
        assert_eq!(name(&format!("alpine@sha256:{d}")), format!("alpine:sha256_{d}"), "not the referrers fallback tag");
        assert_eq!(name(&format!("alpine:3@sha256:{d}")), "alpine:3");
        assert_eq!(name("ghcr.io/OWNER/x:1".to_lowercase().as_str()), "ghcr-io_owner_x:1");
    }

    #[test]
    fn rename_wins() {
        assert_eq!(name("nginx:alpine => web"), "web:alpine");
        assert_eq!(name("nginx:alpine => Web:stable"), "web:stable");
        assert_eq!(name("--platform=linux/arm64 nginx:alpine => web"), "web:alpine");
    }

    #[test]
    fn validity() {
        assert!(check_name("a_b.c-d").is_ok());
        for bad in ["", "a/b", "-a", "a-", "A", "a b", "a..b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_tag("v1.2_3-x").is_ok());
        assert!(check_tag(&"x".repeat(129)).is_err());
        assert!(check_tag(".x").is_err());
        assert!(check_tag("a:b").is_err());
    }

    fn entries_of(text: &str) -> Vec<Entry> {
        images::parse_with_warnings("images.txt", text).unwrap().entries
    }

    fn selected(pairs: &[(usize, &str)]) -> HashMap<usize, Vec<String>> {
        pairs.iter().map(|(l, tags)| (*l, tags.split_whitespace().map(str::to_string).collect())).collect()
    }

    fn shown(x: &Expansion) -> Vec<String> {
        x.entries
            .iter()
            .map(|e| {
                let (n, t) = target_name(e, Naming::Flat);
                format!("{} {n}:{t}", e.key())
            })
            .collect()
    }

    #[test]
    fn expansion_keeps_line_order_and_renames_the_repository() {
        let entries = entries_of("busybox\nnginx --semver=~1.27\n--platform=linux/arm64 postgres --latest=2 => pg\nredis --latest=1");
        let x = expand(&entries, &selected(&[(2, "1.27.0 1.27.1"), (3, "16.6 17.2")]), &[]);
        assert_eq!(shown(&x), ["1 busybox:latest", "2:1.27.0 nginx:1.27.0", "2:1.27.1 nginx:1.27.1", "3:16.6 pg:16.6", "3:17.2 pg:17.2"]);
        assert!(x.dropped.is_empty());
        assert_eq!(x.entries[1].selected_by.as_deref(), Some("--semver='~1.27'"));
        assert_eq!(x.entries[3].source.to_string(), "docker.io/library/postgres:16.6");
        assert_eq!(x.entries[3].platforms.len(), 1);
        // Line 4 is missing from the map (its listing failed): it yields nothing here.
        assert!(x.entries.iter().all(|e| e.line != 4));
    }

    #[test]
    fn an_explicit_line_wins_over_a_selection() {
        let entries = entries_of("nginx --semver=~1.27\nnginx:1.27.1\nredis:7 => web:1.0\nhttpd --latest=2 => web\n--platform=linux/arm64 nginx --latest=1");
        let x = expand(&entries, &selected(&[(1, "1.27.0 1.27.1 1.27.2"), (4, "1.0 2.0"), (5, "1.27.1")]), &[]);
        assert_eq!(
            shown(&x),
            ["1:1.27.0 nginx:1.27.0", "1:1.27.2 nginx:1.27.2", "2 nginx:1.27.1", "3 web:1.0", "4:2.0 web:2.0", "5:1.27.1 linux_arm64_nginx:1.27.1"]
        );
        assert_eq!(
            x.dropped,
            [Dropped { line: 1, tag: "1.27.1".into(), explicit_line: 2 }, Dropped { line: 4, tag: "1.0".into(), explicit_line: 3 }]
        );
    }

    #[test]
    fn two_selections_on_one_target_are_a_collision_of_those_lines() {
        use crate::config::{Target, TargetKind};
        let target = Target { kind: TargetKind::Custom, registry: "r:5000".into(), namespace: "ns".into(), username: None, password: None, naming: Naming::Flat };
        let entries = entries_of("nginx --latest=1 => web\nhttpd --latest=1 => web\nredis:7");
        let x = expand(&entries, &selected(&[(1, "2.4"), (2, "2.4")]), &[]);
        let errs = crate::plan::destinations("images.txt", &x.entries, std::slice::from_ref(&target)).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert!(msgs[0].starts_with("images.txt:2: line 1 and line 2 both sync to r:5000/ns/web:2.4"), "{}", msgs[0]);
        let x = expand(&entries, &selected(&[(1, "2.4"), (2, "2.5")]), &[]);
        assert_eq!(crate::plan::destinations("images.txt", &x.entries, &[target]).unwrap().len(), 3);
    }

}
