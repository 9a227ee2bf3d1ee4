//! Deterministic target names: `REGISTRY/NAMESPACE/NAME:TAG`, NAME without `/`
//! because Aliyun ACR accepts only namespace/repo.

use std::collections::HashMap;

use crate::images::Entry;
pub use crate::reference::{check_name, check_tag};

/// NAME and TAG of the target for an entry, before registry and namespace.
pub fn target_name(entry: &Entry) -> (String, String) {
    let src = &entry.source;
    let source_tag = match (src.tag(), src.digest()) {
        (Some(t), _) => t.to_string(),
        (None, Some(d)) => d.replace(':', "-"),
        (None, None) => "latest".to_string(),
    };
    if let Some(r) = &entry.rename {
        return (r.name.clone(), r.tag.clone().unwrap_or(source_tag));
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
pub fn expand(entries: &[Entry], selected: &HashMap<usize, Vec<String>>) -> Expansion {
    let explicit: HashMap<(String, String), usize> = entries
        .iter()
        .filter(|e| !e.is_selecting() && e.selected_by.is_none())
        .map(|e| (target_name(e), e.line))
        .collect();
    let mut out = Expansion::default();
    for e in entries {
        if !e.is_selecting() {
            out.entries.push(e.clone());
            continue;
        }
        for tag in selected.get(&e.line).into_iter().flatten() {
            // Tags come from `tag_selection::select`, which keeps only valid ones.
            let Ok(concrete) = e.with_selected_tag(tag) else { continue };
            match explicit.get(&target_name(&concrete)) {
                Some(&explicit_line) => out.dropped.push(Dropped { line: e.line, tag: tag.clone(), explicit_line }),
                None => out.entries.push(concrete),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images;

    fn name(line: &str) -> String {
        let e = images::parse("images.txt", line).unwrap().remove(0);
        let (n, t) = target_name(&e);
        format!("{n}:{t}")
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
        assert_eq!(name(&format!("alpine@sha256:{d}")), format!("alpine:sha256-{d}"));
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
}
