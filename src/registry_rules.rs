//! What each known registry allows in a repository name: how deep a path may
//! nest and how many parts its namespace needs. One table, so the presets
//! (issue 22) extend it instead of scattering host checks. A registry not in
//! the table (GHCR, Harbor, Quay, SWR, any distribution registry) nests freely.
//!
//! Sources: ../shared/notes/naming-signatures-registries.md §1 (ACR Personal:
//! "tier-1 repository names" only; Docker Hub: `namespace/repo` only; Tencent
//! TCR Personal: `<ns>/<repo>`; GitLab: the project path plus at most two
//! levels; Tencent CNB: images live under an existing `org/repo`).

use crate::naming::Naming;

/// How deep a registry lets repository paths nest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// Any depth.
    Any,
    /// Exactly `namespace/name`: one namespace part, one name part.
    NamespaceAndName,
    /// The namespace (a project path) plus at most this many parts below it.
    BelowNamespace(usize),
}

/// One known registry kind and its rules.
#[derive(Debug)]
pub struct Rules {
    /// What users call it, for messages.
    pub name: &'static str,
    /// Whether a registry host (`host[:port]`, lowercase) is of this kind.
    pub matches: fn(&str) -> bool,
    pub nesting: Nesting,
    /// Parts the namespace needs at least (CNB: `org/repo`; GitLab: `group/project`).
    pub min_namespace_parts: usize,
    /// What the namespace is, for the message when it has too few parts.
    pub namespace_is: &'static str,
}

/// The table. The first match wins.
pub const TABLE: &[Rules] = &[
    Rules {
        name: "Aliyun ACR Personal",
        matches: is_acr_personal,
        nesting: Nesting::NamespaceAndName,
        min_namespace_parts: 1,
        namespace_is: "a namespace",
    },
    Rules {
        name: "Docker Hub",
        matches: |h| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"),
        nesting: Nesting::NamespaceAndName,
        min_namespace_parts: 1,
        namespace_is: "your user or organisation",
    },
    Rules {
        name: "Tencent TCR Personal",
        // ccr.ccs.tencentyun.com and the regional hkccr., sgccr., jpccr., … hosts.
        matches: |h| h == "ccr.ccs.tencentyun.com" || h.strip_suffix("ccr.ccs.tencentyun.com").is_some_and(|p| !p.contains('.') && !p.is_empty()),
        nesting: Nesting::NamespaceAndName,
        min_namespace_parts: 1,
        namespace_is: "a namespace",
    },
    Rules {
        name: "GitLab",
        matches: |h| h == "registry.gitlab.com",
        nesting: Nesting::BelowNamespace(2),
        min_namespace_parts: 2,
        namespace_is: "the project path, group/project",
    },
    Rules {
        name: "Tencent CNB",
        matches: |h| h == "docker.cnb.cool",
        nesting: Nesting::Any,
        min_namespace_parts: 2,
        namespace_is: "an existing repository's path, org/repo",
    },
];

/// `registry.<region>.aliyuncs.com`, `registry-vpc.<region>.aliyuncs.com`,
/// `registry-intl.<region>.aliyuncs.com` and `crpi-*.<region>.personal.cr.aliyuncs.com`.
/// Enterprise hosts (`*-registry.<region>.cr.aliyuncs.com`) are not Personal: no rule is known for them.
fn is_acr_personal(h: &str) -> bool {
    if h.ends_with(".personal.cr.aliyuncs.com") {
        return true;
    }
    let Some(rest) = h.strip_suffix(".aliyuncs.com") else { return false };
    match rest.split_once('.') {
        Some((first, region)) => matches!(first, "registry" | "registry-vpc" | "registry-intl" | "registry-intl-vpc") && !region.contains('.'),
        None => false,
    }
}

/// The rules for a registry host, if it is a known kind.
pub fn rules_for(registry: &str) -> Option<&'static Rules> {
    let host = registry.to_ascii_lowercase();
    TABLE.iter().find(|r| (r.matches)(&host))
}

/// Why a target cannot be used as configured. Each says why; the caller adds
/// which variable to change (it knows the target's keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Path mode on a registry that does not nest deeply enough.
    PathMode { registry: &'static str, why: String },
    /// The namespace has more parts than the registry allows.
    NamespaceTooDeep { registry: &'static str, why: String },
    /// The namespace has fewer parts than the registry needs.
    NamespaceTooShallow { registry: &'static str, why: String },
}

impl Refusal {
    pub fn why(&self) -> &str {
        match self {
            Refusal::PathMode { why, .. } | Refusal::NamespaceTooDeep { why, .. } | Refusal::NamespaceTooShallow { why, .. } => why,
        }
    }
}

/// Checks a target's namespace and naming mode against the table.
pub fn check_target(registry: &str, namespace: &str, naming: Naming) -> Result<(), Refusal> {
    let Some(rules) = rules_for(registry) else { return Ok(()) };
    let parts = namespace.split('/').count();
    let name = rules.name;
    if parts < rules.min_namespace_parts {
        return Err(Refusal::NamespaceTooShallow {
            registry: name,
            why: format!("{name} needs the namespace to be {}, {} parts at least", rules.namespace_is, rules.min_namespace_parts),
        });
    }
    match rules.nesting {
        Nesting::Any => Ok(()),
        Nesting::NamespaceAndName if parts > 1 => Err(Refusal::NamespaceTooDeep {
            registry: name,
            why: format!("{name} accepts only NAMESPACE/NAME: a namespace cannot contain '/'"),
        }),
        Nesting::NamespaceAndName if naming == Naming::Path => Err(Refusal::PathMode {
            registry: name,
            why: format!(
                "{name} accepts only NAMESPACE/NAME, and path naming keeps the source's path (NAMESPACE/docker.io/library/nginx)"
            ),
        }),
        Nesting::NamespaceAndName => Ok(()),
        Nesting::BelowNamespace(n) if naming == Naming::Path => Err(Refusal::PathMode {
            registry: name,
            why: format!(
                "{name} allows at most {n} levels below the project, and path naming needs at least 3 for most images (docker.io/library/nginx)"
            ),
        }),
        Nesting::BelowNamespace(_) => Ok(()),
    }
}

/// Checks one target repository path (`namespace/name`) against the table's
/// depth limit (a rename or a path-mode name can be deeper than the target's
/// check foresaw).
pub fn check_depth(registry: &str, namespace: &str, name: &str) -> Result<(), String> {
    let Some(rules) = rules_for(registry) else { return Ok(()) };
    let below = name.split('/').count();
    let limit = match rules.nesting {
        Nesting::Any => return Ok(()),
        Nesting::NamespaceAndName => 1,
        Nesting::BelowNamespace(n) => n,
    };
    if below > limit {
        return Err(format!(
            "{registry}/{namespace}/{name}: {} allows {limit} level{} below the namespace; use NAMING=flat for this target or a shorter `=> NAME`",
            rules.name,
            if limit == 1 { "" } else { "s" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hosts() {
        let kind = |h: &str| rules_for(h).map(|r| r.name);
        assert_eq!(kind("registry.cn-hangzhou.aliyuncs.com"), Some("Aliyun ACR Personal"));
        assert_eq!(kind("registry-vpc.cn-shanghai.aliyuncs.com"), Some("Aliyun ACR Personal"));
        assert_eq!(kind("crpi-abc123.cn-hangzhou.personal.cr.aliyuncs.com"), Some("Aliyun ACR Personal"));
        assert_eq!(kind("myinst-registry.cn-hangzhou.cr.aliyuncs.com"), None, "Enterprise: no known rule");
        assert_eq!(kind("docker.io"), Some("Docker Hub"));
        assert_eq!(kind("ccr.ccs.tencentyun.com"), Some("Tencent TCR Personal"));
        assert_eq!(kind("hkccr.ccs.tencentyun.com"), Some("Tencent TCR Personal"));
        assert_eq!(kind("registry.gitlab.com"), Some("GitLab"));
        assert_eq!(kind("docker.cnb.cool"), Some("Tencent CNB"));
        assert_eq!(kind("REGISTRY.GITLAB.COM"), Some("GitLab"));
        for free in ["ghcr.io", "quay.io", "harbor.example.com", "127.0.0.1:5000", "swr.cn-north-4.myhuaweicloud.com"] {
            assert_eq!(kind(free), None, "{free}");
        }
    }

    #[test]
    fn flat_only_registries() {
        let acr = "registry.cn-hangzhou.aliyuncs.com";
        assert_eq!(check_target(acr, "ns", Naming::Flat), Ok(()));
        let e = check_target(acr, "ns", Naming::Path).unwrap_err();
        assert!(matches!(e, Refusal::PathMode { .. }) && e.why().contains("ACR Personal accepts only NAMESPACE/NAME"), "{e:?}");
        assert!(matches!(check_target(acr, "a/b", Naming::Flat), Err(Refusal::NamespaceTooDeep { .. })));
        assert!(check_target("docker.io", "me", Naming::Path).is_err());
        assert!(check_target("ccr.ccs.tencentyun.com", "ns", Naming::Path).is_err());
    }

    #[test]
    fn nesting_registries() {
        assert_eq!(check_target("ghcr.io", "owner/mirror", Naming::Path), Ok(()));
        assert_eq!(check_target("registry.gitlab.com", "group/project", Naming::Flat), Ok(()));
        assert!(matches!(check_target("registry.gitlab.com", "group/project", Naming::Path), Err(Refusal::PathMode { .. })));
        assert!(matches!(check_target("registry.gitlab.com", "group", Naming::Flat), Err(Refusal::NamespaceTooShallow { .. })));
        assert!(matches!(check_target("docker.cnb.cool", "org", Naming::Path), Err(Refusal::NamespaceTooShallow { .. })));
        assert_eq!(check_target("docker.cnb.cool", "org/repo", Naming::Path), Ok(()));
    }

    #[test]
    fn depth_of_one_reference() {
        assert_eq!(check_depth("registry.gitlab.com", "g/p", "a/b"), Ok(()));
        assert!(check_depth("registry.gitlab.com", "g/p", "docker.io/library/nginx").unwrap_err().contains("allows 2 levels"));
        assert!(check_depth("docker.io", "me", "a/b").is_err());
        assert_eq!(check_depth("ghcr.io", "o", "docker.io/library/nginx"), Ok(()));
    }
}
