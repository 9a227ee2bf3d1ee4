//! The other end of the mirror: which mirror reference serves each original
//! reference (`nginx:alpine` -> `registry/ns/nginx:alpine`), for `imgsync map`
//! and `imgsync pull`. Pure: names come from [`plan::destinations`] and
//! [`naming`](crate::naming), exactly as sync names its targets, so the two never disagree.
//!
//! [`render`] turns mappings into text, JSON and markdown; [`pull`] decides,
//! per image, whether a pull is needed and which docker steps it takes.
//!
//! Wiring (`imgsync map` / `imgsync pull`):
//! 1. originals: [`Original::parse`] per argument (with `--platform`), or
//!    [`Original::from_entry`] per images.txt entry, or
//!    [`Original::from_service`] per [`compose::load`] service;
//! 2. `map(file, &entries, target, &originals)` with the `--from` target
//!    (default: the first of `Settings::targets`); an empty images.txt is fine;
//! 3. map: print [`render::text`] / [`render::json`] / [`render::markdown`],
//!    and [`render::problems`] on stderr (exit 1 if any is `Taken`);
//! 4. pull, per mapping: platform = `mapping.pull_platform()` or the host's;
//!    inspect the mirror through the registry client (None when absent; fill
//!    the config digest named by [`pull::config_needed`]); `docker image
//!    inspect` the original and the mirror reference ([`pull::LocalImage::from_inspect`]);
//!    [`pull::decide`]; for `Pull`, run the steps as [`pull::PullPlan`] says
//!    and [`pull::verify`]; report `pulled` / `present` / `failed`.

pub mod containerd;
pub mod document;
pub mod emit;
pub mod k3s;
pub mod podman;
pub mod previous;
pub mod pull;
pub mod render;
pub mod runtime_config;
pub mod sync_report;

use std::collections::HashSet;

use serde::Serialize;

use crate::compose;
use crate::config::Target;
use crate::images::{self, Entry};
use crate::line_error::LineError;
use crate::plan;
use crate::platform::Platform;
use crate::reference::{familiar, ImageRef};

/// Where an original reference came from, for messages and the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    CommandLine,
    ImagesTxt { line: usize },
    Compose { file: String, service: String },
}

/// An image the user wants under its own name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Original {
    /// As written (`nginx:alpine`): the name `docker images` should show.
    pub text: String,
    /// Normalised (`docker.io/library/nginx:alpine`), for matching.
    pub reference: ImageRef,
    /// The platform asked for (compose `platform:`, `--platform`); None: any / this host's.
    pub platform: Option<Platform>,
    pub origin: Origin,
}

impl Original {
    /// An image named on the command line.
    pub fn parse(text: &str, platform: Option<Platform>) -> Result<Self, String> {
        let reference = ImageRef::parse(text.trim())?;
        Ok(Original { text: text.trim().to_string(), reference, platform, origin: Origin::CommandLine })
    }

    /// A compose service's image, with its `platform:`.
    pub fn from_service(s: &compose::Service) -> Self {
        Original {
            text: s.image.clone(),
            reference: s.reference.clone(),
            platform: s.platform.clone(),
            origin: Origin::Compose { file: s.file.clone(), service: s.name.clone() },
        }
    }

    /// An images.txt line: it maps through itself, whatever else matches.
    pub fn from_entry(e: &Entry) -> Self {
        Original {
            text: familiar(&e.source),
            reference: e.source.clone(),
            platform: None,
            origin: Origin::ImagesTxt { line: e.line },
        }
    }
}

/// How an original relates to images.txt.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Listing {
    /// images.txt line `line` syncs it.
    Listed { line: usize },
    /// No line syncs it; the plain naming rule gives the mirror, and `add` is
    /// the exact images.txt line that would sync it there.
    Unlisted { add: String },
    /// No line syncs it, and its plain name is already taken by line `taken_by`
    /// (another image): there is no mirror to pull; `add` renames it free.
    Taken { add: String, taken_by: usize },
}

/// One original and its mirror.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub original: Original,
    /// `registry/namespace/name:tag`; None when [`Listing::Taken`].
    pub mirror: Option<String>,
    /// The line's platforms: what the mirror was synced with (empty: every
    /// platform of the source, or unknown for an unlisted image).
    pub platforms: Vec<Platform>,
    pub listing: Listing,
}

impl Mapping {
    pub fn line(&self) -> Option<usize> {
        match self.listing {
            Listing::Listed { line } => Some(line),
            _ => None,
        }
    }

    /// The line to add to images.txt, when none syncs this image.
    pub fn line_to_add(&self) -> Option<&str> {
        match &self.listing {
            Listing::Listed { .. } => None,
            Listing::Unlisted { add } | Listing::Taken { add, .. } => Some(add),
        }
    }

    /// The platform a pull asks for: the one wanted, else the line's only one.
    pub fn pull_platform(&self) -> Option<&Platform> {
        self.original.platform.as_ref().or(match self.platforms.as_slice() {
            [only] => Some(only),
            _ => None,
        })
    }

    /// `docker pull [--platform P] MIRROR`, to copy (references and platforms
    /// are validated, so nothing here needs shell quoting).
    pub fn pull_command(&self) -> Option<String> {
        let mirror = self.mirror.as_ref()?;
        Some(match self.pull_platform() {
            Some(p) => format!("docker pull --platform {p} {mirror}"),
            None => format!("docker pull {mirror}"),
        })
    }

    /// For a digest-only line, the mirror under the tag imgsync gave such lines
    /// before (`sha256-<hex>`, now `sha256_<hex>`): `pull` reads it when the
    /// new tag is absent, `map` knows it as this line's mirror.
    pub fn legacy_mirror(&self) -> Option<String> {
        legacy_of(self.mirror.as_deref()?)
    }
}

/// `R/ns/alpine:sha256_<hex>` -> `R/ns/alpine:sha256-<hex>`; None for other tags.
fn legacy_of(mirror: &str) -> Option<String> {
    let (name, tag) = mirror.rsplit_once(':').filter(|(_, t)| !t.contains('/'))?;
    let hex = tag.strip_prefix("sha256_").filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))?;
    Some(format!("{name}:sha256-{hex}"))
}

/// Same image name after docker's normalisation (`nginx` == `docker.io/library/nginx:latest`).
pub fn same_reference(a: &ImageRef, b: &ImageRef) -> bool {
    a.to_string() == b.to_string()
}

/// The mirror of each original, in order, duplicates (same image, platform
/// and line) dropped.
///
/// - An images.txt original ([`Original::from_entry`]) maps through its own line.
/// - An original that is a line's mirror reference maps to itself (through that line).
/// - Any other original matches the images.txt lines with the same normalised
///   reference. With a wanted platform, the first line that syncs it (no
///   `--platform`, or one that matches) wins, else the first line (the pull
///   then fails naming the platforms the mirror has). With no wanted platform
///   every matching line gives a mapping (e.g. one line per platform).
/// - With no matching line, the plain naming rule of a line holding just the
///   reference applies ([`Listing::Unlisted`]), unless that name is already
///   another line's target ([`Listing::Taken`]).
///
/// Errors are sync's own: a file whose lines sync would refuse (invalid
/// names, two lines on one target) is refused here too.
pub fn map(file: &str, entries: &[Entry], target: &Target, originals: &[Original]) -> Result<Vec<Mapping>, Vec<LineError>> {
    let targets = std::slice::from_ref(target);
    let dests = plan::destinations(file, entries, targets)?;
    // Destinations come one per entry, in order; an expanded selecting line
    // has several entries on one line, so match the entry itself, not its line.
    let mirror_of = |e: &Entry| -> String {
        let i = entries.iter().position(|x| std::ptr::eq(x, e)).or_else(|| entries.iter().position(|x| x == e));
        i.and_then(|i| dests.get(i)).and_then(|d| d.refs.first()).cloned().unwrap_or_default()
    };
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |out: &mut Vec<Mapping>, m: Mapping| {
        let key = (m.original.reference.to_string(), m.original.platform.clone(), m.line(), m.mirror.clone());
        if seen.insert(key) {
            out.push(m);
        }
    };
    for o in originals {
        let listed = |e: &Entry| Mapping {
            original: o.clone(),
            mirror: Some(mirror_of(e)),
            platforms: e.platforms.clone(),
            listing: Listing::Listed { line: e.line },
        };
        if let Origin::ImagesTxt { line } = o.origin {
            let on_line = |e: &&Entry| e.line == line;
            if let Some(e) = entries.iter().filter(on_line).find(|e| same_reference(&e.source, &o.reference)).or_else(|| entries.iter().find(on_line)) {
                push(&mut out, listed(e));
                continue;
            }
        }
        // The mirror reference itself: it is its own mirror.
        let is_target = |d: &&plan::Destinations| {
            d.refs.iter().flat_map(|r| [Some(r.clone()), legacy_of(r)]).flatten().any(|r| ImageRef::parse(&r).is_ok_and(|r| same_reference(&r, &o.reference)))
        };
        if let Some(e) = dests.iter().position(|d| is_target(&d)).and_then(|i| entries.get(i)) {
            push(&mut out, listed(e));
            continue;
        }
        let candidates: Vec<&Entry> = entries.iter().filter(|e| same_reference(&e.source, &o.reference)).collect();
        if !candidates.is_empty() {
            let chosen: Vec<&Entry> = match &o.platform {
                Some(p) => {
                    let covering = candidates.iter().find(|e| e.platforms.is_empty() || e.platforms.iter().any(|q| q.matches(p)));
                    vec![*covering.unwrap_or(&candidates[0])]
                }
                None => candidates,
            };
            for e in chosen {
                push(&mut out, listed(e));
            }
            continue;
        }
        match unlisted(o, &dests, targets) {
            Ok(m) => push(&mut out, m),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The plain naming rule for an image no line syncs: the mirror a line of
/// just this reference would get, named by sync's own functions.
fn unlisted(o: &Original, dests: &[plan::Destinations], targets: &[Target]) -> Result<Mapping, Vec<LineError>> {
    let label = "(not in images.txt)";
    let line = familiar(&o.reference);
    let entry = images::parse(label, &line)?
        .into_iter()
        .next()
        .ok_or_else(|| vec![LineError { file: label.into(), line: 1, message: format!("{line:?} is not an images.txt line") }])?;
    let mirror = plan::destinations(label, std::slice::from_ref(&entry), targets)?
        .remove(0)
        .refs
        .remove(0);
    let taken_by = dests.iter().find(|d| d.refs.contains(&mirror)).map(|d| d.line);
    let listing = match taken_by {
        None => Listing::Unlisted { add: line },
        Some(taken_by) => Listing::Taken { add: free_rename(&line, &entry, dests, targets), taken_by },
    };
    let mirror = matches!(listing, Listing::Unlisted { .. }).then_some(mirror);
    Ok(Mapping { original: o.clone(), mirror, platforms: Vec::new(), listing })
}

/// `LINE => NAME-2` (or -3, …): the first rename no line's target uses.
fn free_rename(line: &str, entry: &Entry, dests: &[plan::Destinations], targets: &[Target]) -> String {
    let naming = targets.first().map(|t| t.naming).unwrap_or_default();
    let (name, _) = crate::naming::target_name(entry, naming);
    // A rename is one component: in path mode, the repository's last one.
    let name = name.rsplit('/').next().unwrap_or(&name).to_string();
    for n in 2.. {
        let candidate = format!("{line} => {name}-{n}");
        let Ok(parsed) = images::parse("(rename)", &candidate) else { continue };
        let Ok(d) = plan::destinations("(rename)", &parsed, targets) else { continue };
        if !dests.iter().any(|x| x.refs.iter().any(|r| d[0].refs.contains(r))) {
            return candidate;
        }
    }
    unreachable!("an unbounded search finds a free name")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetKind;

    pub(crate) fn target() -> Target {
        Target {
            kind: TargetKind::Aliyun,
            registry: "registry.cn-hangzhou.aliyuncs.com".into(),
            namespace: "ns".into(),
            username: None,
            password: None,
            naming: crate::naming::Naming::Flat,
        }
    }

    pub(crate) fn entries(text: &str) -> Vec<Entry> {
        images::parse("images.txt", text).unwrap()
    }

    fn cli(text: &str) -> Original {
        Original::parse(text, None).unwrap()
    }

    fn on(text: &str, p: &str) -> Original {
        Original::parse(text, Some(p.parse().unwrap())).unwrap()
    }

    fn pairs(ms: &[Mapping]) -> Vec<(String, Option<String>, Option<usize>)> {
        ms.iter().map(|m| (m.original.text.clone(), m.mirror.clone(), m.line())).collect()
    }

    const R: &str = "registry.cn-hangzhou.aliyuncs.com/ns";

    #[test]
    fn normalised_originals_match_their_line() {
        let es = entries("nginx:alpine\nbitnami/redis:7\nquay.io/coreos/etcd:v3.5.0\nbusybox");
        let origs = [cli("docker.io/library/nginx:alpine"), cli("index.docker.io/bitnami/redis:7"), cli("quay.io/coreos/etcd:v3.5.0"), cli("busybox:latest")];
        let ms = map("images.txt", &es, &target(), &origs).unwrap();
        assert_eq!(
            pairs(&ms),
            [
                ("docker.io/library/nginx:alpine".into(), Some(format!("{R}/nginx:alpine")), Some(1)),
                ("index.docker.io/bitnami/redis:7".into(), Some(format!("{R}/bitnami_redis:7")), Some(2)),
                ("quay.io/coreos/etcd:v3.5.0".into(), Some(format!("{R}/quay-io_coreos_etcd:v3.5.0")), Some(3)),
                ("busybox:latest".into(), Some(format!("{R}/busybox:latest")), Some(4)),
            ]
        );
        // A different tag is a different image.
        let ms = map("images.txt", &es, &target(), &[cli("nginx:1.27")]).unwrap();
        assert_eq!(ms[0].line(), None);
    }

    #[test]
    fn same_names_as_sync() {
        // Whatever the rules, map must agree with plan::destinations line by line.
        let text = "nginx:alpine => web\n--platform=linux/arm64 mysql:8.0\n--platform=linux/amd64,linux/arm64 redis:7\nghcr.io/a/b:1 => b:stable";
        let es = entries(text);
        let t = target();
        let dests = plan::destinations("images.txt", &es, std::slice::from_ref(&t)).unwrap();
        let origs: Vec<Original> = es.iter().map(Original::from_entry).collect();
        let ms = map("images.txt", &es, &t, &origs).unwrap();
        assert_eq!(ms.len(), dests.len());
        for (m, d) in ms.iter().zip(&dests) {
            assert_eq!(m.mirror.as_deref(), Some(d.refs[0].as_str()));
            assert_eq!(m.line(), Some(d.line));
        }
        assert_eq!(ms[0].mirror.as_deref(), Some(format!("{R}/web:alpine").as_str()));
        assert_eq!(ms[0].original.text, "nginx:alpine");
        assert_eq!(ms[1].mirror.as_deref(), Some(format!("{R}/linux_arm64_mysql:8.0").as_str()));
        assert_eq!(ms[1].platforms, ["linux/arm64".parse::<Platform>().unwrap()]);
        assert_eq!(ms[3].original.text, "ghcr.io/a/b:1");
    }

    #[test]
    fn platform_lines_pick_by_wanted_platform() {
        let es = entries("--platform=linux/amd64 mysql:8.0\n--platform=linux/arm64 mysql:8.0");
        let t = target();
        let ms = map("images.txt", &es, &t, &[on("mysql:8.0", "linux/arm64/v8")]).unwrap();
        assert_eq!(pairs(&ms), [("mysql:8.0".into(), Some(format!("{R}/linux_arm64_mysql:8.0")), Some(2))]);
        // No platform wanted: every line.
        let ms = map("images.txt", &es, &t, &[cli("mysql:8.0")]).unwrap();
        assert_eq!(ms.iter().map(|m| m.line()).collect::<Vec<_>>(), [Some(1), Some(2)]);
        // A platform no line has: the first line, so the pull can say what there is.
        let ms = map("images.txt", &es, &t, &[on("mysql:8.0", "linux/s390x")]).unwrap();
        assert_eq!(ms[0].line(), Some(1));
        assert_eq!(ms[0].pull_command().unwrap(), format!("docker pull --platform linux/s390x {R}/linux_amd64_mysql:8.0"));
    }

    #[test]
    fn unlisted_uses_the_plain_rule_and_names_the_line() {
        let es = entries("nginx:alpine");
        let ms = map("images.txt", &es, &target(), &[cli("docker.io/library/redis:7"), cli("ghcr.io/o/app")]).unwrap();
        assert_eq!(ms[0].mirror.as_deref(), Some(format!("{R}/redis:7").as_str()));
        assert_eq!(ms[0].listing, Listing::Unlisted { add: "redis:7".into() });
        assert_eq!(ms[0].line_to_add(), Some("redis:7"));
        assert_eq!(ms[1].mirror.as_deref(), Some(format!("{R}/ghcr-io_o_app:latest").as_str()));
        assert_eq!(ms[1].line_to_add(), Some("ghcr.io/o/app:latest"));
        // The line to add really syncs to that mirror.
        let added = entries(ms[1].line_to_add().unwrap());
        let d = plan::destinations("x", &added, &[target()]).unwrap();
        assert_eq!(Some(d[0].refs[0].as_str()), ms[1].mirror.as_deref());
    }

    #[test]
    fn a_plain_name_taken_by_a_rename_is_not_the_image() {
        let es = entries("redis:7 => nginx\nnginx:7 => nginx-2");
        let ms = map("images.txt", &es, &target(), &[cli("nginx:7")]).unwrap();
        assert_eq!(ms[0].line(), Some(2), "listed under its rename");
        let ms = map("images.txt", &entries("redis:7 => nginx\nx:7 => nginx-2"), &target(), &[cli("nginx:7")]).unwrap();
        assert_eq!(ms[0].mirror, None);
        assert_eq!(ms[0].listing, Listing::Taken { add: "nginx:7 => nginx-3".into(), taken_by: 1 });
        assert_eq!(ms[0].pull_command(), None);
    }

    #[test]
    fn compose_services_and_duplicates() {
        let p = compose::project(&[("compose.yml", "services:\n  a:\n    image: nginx:alpine\n  b:\n    image: nginx:alpine\n  c:\n    image: nginx:alpine\n    platform: linux/arm64\n")], &|_| None).unwrap();
        let origs: Vec<Original> = p.services.iter().map(Original::from_service).collect();
        let ms = map("images.txt", &entries("nginx:alpine"), &target(), &origs).unwrap();
        assert_eq!(ms.len(), 2, "same image and platform once");
        assert_eq!(ms[0].original.origin, Origin::Compose { file: "compose.yml".into(), service: "a".into() });
        assert_eq!(ms[1].pull_command().unwrap(), format!("docker pull --platform linux/arm64 {R}/nginx:alpine"));
        assert_eq!((ms[0].mirror.clone(), ms[0].original.text.as_str()), (Some(format!("{R}/nginx:alpine")), "nginx:alpine"));
    }

    #[test]
    fn a_mirror_reference_is_its_own_mirror() {
        let es = entries("nginx:alpine => web");
        let ms = map("images.txt", &es, &target(), &[cli(&format!("{R}/web:alpine"))]).unwrap();
        assert_eq!(pairs(&ms), [(format!("{R}/web:alpine"), Some(format!("{R}/web:alpine")), Some(1))]);
    }

    #[test]
    fn a_digest_line_keeps_its_old_mirror_name_known() {
        let d = "e".repeat(64);
        let es = entries(&format!("alpine@sha256:{d}"));
        let ms = map("images.txt", &es, &target(), &[Original::from_entry(&es[0])]).unwrap();
        assert_eq!(ms[0].mirror.as_deref(), Some(format!("{R}/alpine:sha256_{d}").as_str()));
        assert_eq!(ms[0].legacy_mirror(), Some(format!("{R}/alpine:sha256-{d}")));
        // The old mirror reference, given to map, is that line's mirror.
        let ms = map("images.txt", &es, &target(), &[cli(&format!("{R}/alpine:sha256-{d}"))]).unwrap();
        assert_eq!(ms[0].line(), Some(1));
        let plain = map("images.txt", &entries("nginx:alpine"), &target(), &[cli("nginx:alpine")]).unwrap();
        assert_eq!(plain[0].legacy_mirror(), None);
    }

    #[test]
    fn sync_errors_are_map_errors() {
        let es = entries("nginx:alpine => x\nredis:alpine => x");
        let errs = map("images.txt", &es, &target(), &[cli("nginx:alpine")]).unwrap_err();
        assert!(errs[0].to_string().contains("both sync to"), "{}", errs[0]);
    }
}
