//! The vocabulary of runtime configuration (`imgsync map --emit`): which
//! runtime, the mirror as a runtime reaches it, each original with the mirror
//! that serves it, and the files emitted. Each runtime's writer (podman.rs,
//! containerd.rs, k3s.rs) and the dispatch in emit.rs build on these.

use std::collections::BTreeMap;

use clap::ValueEnum;

use super::{Listing, Mapping};
use crate::reference::familiar;
use crate::config::Target;
use crate::images::Entry;
use crate::naming;
use crate::platform::Platform;
use crate::reference::ImageRef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Runtime {
    /// podman, CRI-O, skopeo, buildah: a registries.conf.d drop-in.
    Podman,
    /// containerd (ctr, nerdctl, Kubernetes with containerd): certs.d/<registry>/hosts.toml.
    Containerd,
    /// k3s and RKE2: /etc/rancher/k3s/registries.yaml.
    K3s,
    /// The Docker daemon: what it can and cannot do, and the imgsync pull line.
    Docker,
}

/// One original and the mirror that serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pair {
    pub source: ImageRef,
    pub mirror: ImageRef,
    /// The images.txt line, for comments.
    pub line: Option<usize>,
    /// The line's platforms (empty: all).
    pub platforms: Vec<Platform>,
    /// From a tag-selecting line: every tag it selects, so only the repository counts.
    pub any_tag: bool,
}

impl Pair {
    /// The originals of `map` and their mirrors: images.txt's, and images
    /// named on the command line under the plain rule (a server with only
    /// `--mirror` knows no images.txt; in path mode that rule is the registry's).
    /// An image whose plain name another line took has no mirror to serve it.
    pub fn from_mappings(mappings: &[Mapping]) -> Vec<Pair> {
        let mut out: Vec<Pair> = Vec::new();
        for m in mappings {
            let line = match &m.listing {
                Listing::Listed { line } => Some(*line),
                Listing::Unlisted { .. } => None,
                Listing::Taken { .. } => continue,
            };
            let Some(Ok(mirror)) = m.mirror.as_deref().map(ImageRef::parse) else { continue };
            let p = Pair { source: m.original.reference.clone(), mirror, line, platforms: m.platforms.clone(), any_tag: false };
            if !out.contains(&p) {
                out.push(p);
            }
        }
        out
    }

    /// A tag-selecting line: its repository's mirror repository (any tag it selects).
    pub fn from_selecting(e: &Entry, target: &Target) -> Option<Pair> {
        let concrete = e.with_selected_tag("latest").ok()?;
        let (name, tag) = naming::target_name(&concrete, target.naming);
        let mirror = ImageRef::parse(&target.reference(&name, &tag)).ok()?;
        Some(Pair { source: concrete.source, mirror, line: Some(e.line), platforms: e.platforms.clone(), any_tag: true })
    }

    /// The source's tag, or for a digest-only source the tag its mirror has.
    fn source_tag(&self) -> String {
        match (self.source.tag(), self.source.digest()) {
            (Some(t), _) => t.to_string(),
            (None, Some(d)) => naming::digest_tag(d),
            (None, None) => "latest".into(),
        }
    }

    /// Whether the mirror keeps the source's tag (a rename to another tag does not).
    pub fn same_tag(&self) -> bool {
        self.any_tag || self.mirror.tag() == Some(self.source_tag().as_str())
    }

    /// What a comment says about this pair: `line 3: nginx:alpine -> R/ns/web:stable`.
    pub fn describe(&self) -> String {
        let line = self.line.map(|l| format!("line {l}: ")).unwrap_or_default();
        let platforms = if self.platforms.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", "))
        };
        let source = if self.any_tag { familiar(&self.source).trim_end_matches(":latest").to_string() + ":<selected tags>" } else { familiar(&self.source) };
        let mirror = if self.any_tag { self.mirror.name() + ":<same tags>" } else { self.mirror.to_string() };
        crate::sanitize::line(&format!("{line}{source}{platforms} -> {mirror}"))
    }
}

/// What `--emit` produces.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Emitted {
    /// (path relative to `--out DIR`, contents), in order.
    pub files: Vec<(String, String)>,
    /// Said on stderr too (each file carries them as comments).
    pub warnings: Vec<String>,
}

impl Emitted {
    /// The files as one text for stdout: a lone file as it is, several each
    /// under a `# ==> PATH <==` comment line.
    pub fn to_text(&self) -> String {
        match self.files.as_slice() {
            [(_, only)] => only.clone(),
            files => files.iter().map(|(p, c)| format!("# ==> {p} <==\n{c}")).collect::<Vec<_>>().join("\n"),
        }
    }
}

/// What every runtime output needs to know about the mirror.
#[derive(Clone, Debug)]
pub struct Mirror<'a> {
    pub target: &'a Target,
    /// Reached over plain HTTP (INSECURE_REGISTRIES or a loopback address).
    pub plain_http: bool,
    /// Source registries reached over plain HTTP (for containerd's `server`).
    pub insecure_sources: &'a [String],
}

impl<'a> Mirror<'a> {
    /// The target, plain HTTP when loopback or listed in INSECURE_REGISTRIES (`insecure`).
    pub fn new(target: &'a Target, insecure: &'a [String]) -> Mirror<'a> {
        let plain_http = crate::config::is_listed_insecure(insecure, &target.registry) || crate::reference::is_loopback_host(&target.registry);
        Mirror { target, plain_http, insecure_sources: insecure }
    }

    /// `REGISTRY/NAMESPACE/<source registry>`: where path mode puts a source registry.
    pub fn path_base(&self, source_registry: &str) -> String {
        format!("{}/{}/{}", self.target.registry, self.target.namespace, naming::registry_component(source_registry))
    }

    /// Whether a pair follows path mode's one rule per source registry (a rename does not).
    pub fn follows_path_rule(&self, p: &Pair) -> bool {
        p.same_tag() && p.mirror.name() == format!("{}/{}", self.path_base(p.source.registry()), p.source.repository())
    }

    pub fn scheme(&self) -> &'static str {
        if self.plain_http {
            "http"
        } else {
            "https"
        }
    }

    /// GHCR and the containerd token-scope bug (containerd issue 9648).
    pub fn ghcr_warning(&self, runtime: &str) -> Option<String> {
        (self.target.registry == "ghcr.io").then(|| {
            format!(
                "{runtime} asks the token service for the original repository's scope as well as the mirror's, \
                 and GHCR refuses the whole request (containerd issue 9648, not fixed): pulls through this mirror on ghcr.io fail. \
                 Use podman (--emit podman) or imgsync pull on such servers, or a mirror on a registry with a lenient token service (Harbor, distribution)"
            )
        })
    }

    /// The comment every output carries about credentials.
    pub fn credentials_note(&self, how: &str) -> String {
        format!(
            "Credentials: none are written here. If {} needs a login, {how}.",
            self.target.registry
        )
    }
}

/// Source registries in first-seen order, with their pairs.
pub fn by_registry(pairs: &[Pair]) -> Vec<(String, Vec<&Pair>)> {
    let mut order: Vec<String> = Vec::new();
    let mut groups: BTreeMap<String, Vec<&Pair>> = BTreeMap::new();
    for p in pairs {
        let r = p.source.registry().to_string();
        if !groups.contains_key(&r) {
            order.push(r.clone());
        }
        groups.entry(r).or_default().push(p);
    }
    order.into_iter().map(|r| {
        let ps = groups.remove(&r).unwrap_or_default();
        (r, ps)
    }).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::TargetKind;
    use crate::naming::Naming;

    pub(crate) fn target(registry: &str, namespace: &str, naming: Naming) -> Target {
        Target { kind: TargetKind::Custom, registry: registry.into(), namespace: namespace.into(), username: None, password: None, naming }
    }

    /// Pairs for `lines` (an images.txt), as `map` makes them.
    pub(crate) fn pairs(t: &Target, lines: &str) -> Vec<Pair> {
        let es = crate::images::parse_with_warnings("images.txt", lines).unwrap().entries;
        let (selecting, plain): (Vec<Entry>, Vec<Entry>) = es.into_iter().partition(Entry::is_selecting);
        let origs: Vec<super::super::Original> = plain.iter().map(super::super::Original::from_entry).collect();
        let ms = super::super::map("images.txt", &plain, t, &origs).unwrap();
        let mut ps = Pair::from_mappings(&ms);
        ps.extend(selecting.iter().filter_map(|e| Pair::from_selecting(e, t)));
        ps
    }

    #[test]
    fn pairs_know_renames_and_the_path_rule() {
        let t = target("r.example:5000", "team/mirror", Naming::Path);
        let m = Mirror { target: &t, plain_http: false, insecure_sources: &[] };
        let ps = pairs(&t, "nginx:1.27\nredis:7 => cache:stable\nquay.io/a/b --latest=2");
        assert!(m.follows_path_rule(&ps[0]));
        assert!(!ps[1].same_tag() && !m.follows_path_rule(&ps[1]));
        assert!(ps[2].any_tag && m.follows_path_rule(&ps[2]));
        assert_eq!(ps[1].describe(), "line 2: redis:7 -> r.example:5000/team/mirror/cache:stable");
        assert_eq!(m.path_base("127.0.0.1:5001"), "r.example:5000/team/mirror/127.0.0.1-5001");
    }

    #[test]
    fn images_named_on_a_server_without_images_txt_count() {
        let t = target("r.example", "team/mirror", Naming::Path);
        let origs = [super::super::Original::parse("nginx:1.27", None).unwrap()];
        let ms = super::super::map("images.txt", &[], &t, &origs).unwrap();
        let ps = Pair::from_mappings(&ms);
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].mirror.to_string(), "r.example/team/mirror/docker.io/library/nginx:1.27");
        assert_eq!(ps[0].describe(), "nginx:1.27 -> r.example/team/mirror/docker.io/library/nginx:1.27");
    }
}
