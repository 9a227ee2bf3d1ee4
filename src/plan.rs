//! Pure decisions: which target references each entry maps to, whether a
//! target already holds the same content as the source, and the plan itself:
//! the value the inspect phase produces and the execute phase carries out.

use std::collections::HashMap;

use crate::config::{Target, TargetKind};
use crate::failure::Failure;
use crate::images::Entry;
use crate::inspect::parse::{Image, Inspection};
use crate::line_error::LineError;
use crate::naming;
use crate::reference::{check_tag, ImageRef};

/// Where one entry goes: one reference per selected target, in target order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destinations {
    pub line: usize,
    pub refs: Vec<String>,
}

/// What the run decided for one target of one entry, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The target holds the same images.
    UpToDate,
    Copy(Why),
    /// The target could not be judged (login or inspection failed): it fails.
    Failed(Failure),
}

/// Why a target gets a copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// The target has no such reference.
    Missing,
    /// It holds other images; `target`: the digest it has.
    Differs { target: Option<String> },
    /// It lacks some of the selected platforms (named).
    PlatformMissing { platforms: Vec<String>, target: Option<String> },
    /// `--force`: copied without looking.
    Forced,
}

impl Why {
    /// For `plan`'s table and the report: `missing`, `digest differs`, ...
    pub fn reason(&self) -> String {
        match self {
            Why::Missing => "missing at the target".to_string(),
            Why::Differs { .. } => "digest differs".to_string(),
            Why::PlatformMissing { platforms, .. } => format!("platform missing: {}", platforms.join(", ")),
            Why::Forced => "--force".to_string(),
        }
    }

    /// The digest the target holds now, when it holds the reference.
    pub fn target_digest(&self) -> Option<&str> {
        match self {
            Why::Differs { target } | Why::PlatformMissing { target, .. } => target.as_deref(),
            Why::Missing | Why::Forced => None,
        }
    }
}

impl Decision {
    pub fn copies(&self) -> bool {
        matches!(self, Decision::Copy(_))
    }
}

/// One target of one entry: where it goes and what the run decided.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetPlan {
    pub kind: TargetKind,
    /// The target's registry as configured (logins are keyed by it).
    pub registry: String,
    /// Who the run logs in as there, if anyone (a name, never the secret).
    pub username: Option<String>,
    pub reference: ImageRef,
    pub decision: Decision,
    /// Up to date by content under another digest (the daemon engine's
    /// copies): the target's digest, for the state file to remember.
    pub verified: Option<String>,
    /// The source's signatures and referrers for an up-to-date image, and
    /// what the target needs of them (None: not looked for). A copied
    /// image's are looked for after its copy, which settles its digest.
    pub signatures: Option<crate::signatures::Plan>,
}

/// One entry of the plan: the entry, what its source holds, the images
/// selected from it (with config digests when the daemon engine copies), and
/// one [`TargetPlan`] per target, in target order.
#[derive(Clone, Debug)]
pub struct EntryPlan {
    pub entry: Entry,
    pub inspection: Option<Inspection>,
    pub selected: Vec<Image>,
    pub targets: Vec<TargetPlan>,
    /// The entry as a whole failed (e.g. its source was not found): every target fails.
    pub failure: Option<Failure>,
}

impl EntryPlan {
    /// A plan for `entry` whose targets are all still to be decided (`Failed`
    /// with "not inspected" until the run decides them).
    pub fn new(entry: &Entry, dests: &Destinations, targets: &[Target]) -> Self {
        let undecided = Decision::Failed(Failure::new("not inspected", "run again"));
        let targets = targets
            .iter()
            .zip(&dests.refs)
            .map(|(t, r)| {
                let reference = ImageRef::parse(r).map_err(|m| Failure::new(m, "fix the line or the target's namespace"));
                let decision = match &reference {
                    Ok(_) => undecided.clone(),
                    Err(f) => Decision::Failed(f.clone()),
                };
                // A checked destination always parses; the fallback keeps the line's place.
                let reference = reference.unwrap_or_else(|_| entry.source.clone());
                TargetPlan { kind: t.kind, registry: t.registry.clone(), username: t.username.clone(), reference, decision, verified: None, signatures: None }
            })
            .collect();
        EntryPlan { entry: entry.clone(), inspection: None, selected: Vec::new(), targets, failure: None }
    }

    /// The whole entry failed: so does every target.
    pub fn fail(mut self, failure: Failure) -> Self {
        for t in &mut self.targets {
            t.decision = Decision::Failed(failure.clone());
        }
        self.failure = Some(failure);
        self
    }

    /// Something to write: an image, or an up-to-date image's new signatures.
    pub fn copies(&self) -> bool {
        self.targets.iter().any(|t| t.decision.copies() || t.signatures.as_ref().is_some_and(crate::signatures::Plan::pending))
    }

    #[cfg(test)]
    pub fn decisions(&self) -> Vec<Decision> {
        self.targets.iter().map(|t| t.decision.clone()).collect()
    }
}

/// The plan: one [`EntryPlan`] per entry, in file order. Final once made:
/// execution copies what it says and records the outcomes.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    pub entries: Vec<EntryPlan>,
}

/// Target references for every entry. Invalid names and two lines landing on
/// the same reference are errors, found before anything is pulled or pushed.
/// Each target names by its own mode ([`naming::Naming`]).
pub fn destinations(file: &str, entries: &[Entry], targets: &[Target]) -> Result<Vec<Destinations>, Vec<LineError>> {
    let mut errors = Vec::new();
    let mut seen: HashMap<String, &Entry> = HashMap::new();
    let mut out = Vec::new();
    for e in entries {
        let mut bad: Vec<String> = Vec::new();
        let mut refs = Vec::new();
        // Names checked once per mode: the same name is the same error for every target.
        let mut checked = Vec::new();
        for t in targets {
            let (name, tag) = naming::target_name(e, t.naming);
            if !checked.contains(&t.naming) {
                checked.push(t.naming);
                if let Err(m) = naming::check_path(&name) {
                    bad.push(m);
                }
                if let Err(m) = check_tag(&tag) {
                    bad.push(m);
                }
            }
            if let Err(m) = crate::registry_rules::check_depth(&t.registry, &t.namespace, &name) {
                bad.push(m);
            }
            refs.push(t.reference(&name, &tag));
        }
        if targets.is_empty() {
            // No target: the names are still checked (doctor shows them).
            let (name, tag) = naming::target_name(e, naming::Naming::Flat);
            bad.extend(naming::check_path(&name).err());
            bad.extend(check_tag(&tag).err());
        }
        for r in &refs {
            let tag_len = r.rsplit_once(':').map_or(0, |(_, t)| t.len());
            if r.len() > 255 + tag_len + 1 {
                bad.push(format!("target reference {r} is too long"));
            }
            if let Some(first) = seen.get(r) {
                bad.push(collision(first, e, r));
            } else {
                seen.insert(r.clone(), e);
            }
        }
        if bad.is_empty() {
            out.push(Destinations { line: e.line, refs });
        } else {
            errors.extend(bad.into_iter().map(|message| LineError { file: file.to_string(), line: e.line, message }));
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Two lines on one target reference, with the one-line fix. Two platform
/// lines of one image meet in path mode (each keeps the original name): the
/// fix is one line with both platforms.
fn collision(first: &Entry, e: &Entry, r: &str) -> String {
    let platform_lines = !first.platforms.is_empty() && !e.platforms.is_empty() && first.rename.is_none() && e.rename.is_none();
    if platform_lines && first.source == e.source {
        let mut ps: Vec<String> = first.platforms.iter().map(|p| p.to_string()).collect();
        for p in &e.platforms {
            if !ps.contains(&p.to_string()) {
                ps.push(p.to_string());
            }
        }
        return format!(
            "line {} and line {} both sync to {r} (path naming keeps the original name for a platform line); \
             make them one line: --platform={} {}",
            first.line,
            e.line,
            ps.join(","),
            crate::reference::familiar(&e.source)
        );
    }
    format!("line {} and line {} both sync to {r}; rename one with `=> NAME[:TAG]`", first.line, e.line)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Same content for every selected platform and no other platform.
    Same,
    Differs,
    /// Manifest digests differ; config digests are needed to tell.
    NeedConfigs,
}

/// Compares what the target holds with the selected source images. Equal
/// manifest digests prove equality; otherwise equal config digests (image IDs)
/// do, since docker re-compresses layers on push. Timestamps never count.
pub fn compare(selected: &[Image], target: Option<&Inspection>) -> Verdict {
    let Some(target) = target else { return Verdict::Differs };
    if selected.is_empty() || target.images.len() != selected.len() {
        return Verdict::Differs;
    }
    let mut need = false;
    for s in selected {
        let t = match (selected.len(), &s.platform) {
            // One image on each side: platform is part of the config, so digests decide.
            (1, _) => &target.images[0],
            (_, Some(p)) => match target.find(p) {
                Some(t) => t,
                None => return Verdict::Differs,
            },
            (_, None) => return Verdict::Differs,
        };
        if s.digest == t.digest {
            continue;
        }
        match (&s.config, &t.config) {
            (Some(a), Some(b)) if a == b => {}
            (Some(_), Some(_)) => return Verdict::Differs,
            _ => need = true,
        }
    }
    if need {
        Verdict::NeedConfigs
    } else {
        Verdict::Same
    }
}

/// The manifest digests whose configs `compare` still needs, source and target side.
pub fn missing_configs(selected: &[Image], target: &Inspection) -> (Vec<String>, Vec<String>) {
    let mut src = Vec::new();
    let mut dst = Vec::new();
    for s in selected {
        let t = if selected.len() == 1 {
            target.images.first()
        } else {
            s.platform.as_ref().and_then(|p| target.find(p))
        };
        let Some(t) = t else { continue };
        if s.digest == t.digest {
            continue;
        }
        if s.config.is_none() {
            src.push(s.digest.clone());
        }
        if t.config.is_none() {
            dst.push(t.digest.clone());
        }
    }
    (src, dst)
}

/// Disk the daemon engine needs to pull `images`: compressed layers are kept
/// while being unpacked, and unpacked data is usually two to three times
/// larger, so four times the compressed size plus a fixed margin.
pub fn disk_needed(images: &[Image]) -> Option<u64> {
    const MARGIN: u64 = 256 << 20;
    let mut total = 0u64;
    for i in images {
        total = total.saturating_add(i.layers_size?);
    }
    Some(total.saturating_mul(4).saturating_add(MARGIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Target, TargetKind};
    use crate::images;

    fn img(p: &str, digest: &str, config: Option<&str>) -> Image {
        Image {
            platform: Some(p.parse().unwrap()),
            digest: digest.into(),
            config: config.map(str::to_string),
            layers_size: None,
        }
    }

    fn index(images: Vec<Image>) -> Inspection {
        Inspection { digest: Some("sha256:top".into()), index: true, images, attestations: 0 }
    }

    fn custom() -> Target {
        Target { kind: TargetKind::Custom, registry: "r:5000".into(), namespace: "ns".into(), username: None, password: None, naming: crate::naming::Naming::Flat }
    }

    #[test]
    fn equal_manifest_digests_are_same() {
        let src = vec![img("linux/amd64", "m1", None), img("linux/arm64/v8", "m2", None)];
        let dst = index(vec![img("linux/arm64", "m2", None), img("linux/amd64", "m1", None)]);
        assert_eq!(compare(&src, Some(&dst)), Verdict::Same);
    }

    #[test]
    fn recompressed_needs_configs_then_decides_by_config() {
        let src = vec![img("linux/amd64", "m1", None)];
        let dst = index(vec![img("linux/amd64", "x1", None)]);
        assert_eq!(compare(&src, Some(&dst)), Verdict::NeedConfigs);
        assert_eq!(missing_configs(&src, &dst), (vec!["m1".to_string()], vec!["x1".to_string()]));
        let src = vec![img("linux/amd64", "m1", Some("c1"))];
        assert_eq!(compare(&src, Some(&index(vec![img("linux/amd64", "x1", Some("c1"))]))), Verdict::Same);
        assert_eq!(compare(&src, Some(&index(vec![img("linux/amd64", "x1", Some("c2"))]))), Verdict::Differs);
    }

    #[test]
    fn extra_or_missing_platforms_differ() {
        let src = vec![img("linux/amd64", "m1", None)];
        let dst = index(vec![img("linux/amd64", "m1", None), img("linux/arm64", "m2", None)]);
        assert_eq!(compare(&src, Some(&dst)), Verdict::Differs);
        let src2 = vec![img("linux/amd64", "m1", None), img("linux/arm64", "m2", None)];
        assert_eq!(compare(&src2, Some(&index(vec![img("linux/amd64", "m1", None)]))), Verdict::Differs);
        assert_eq!(compare(&src2, None), Verdict::Differs);
        let dst3 = index(vec![img("linux/amd64", "m1", None), img("linux/s390x", "m2", None)]);
        assert_eq!(compare(&src2, Some(&dst3)), Verdict::Differs);
    }

    #[test]
    fn single_manifest_wrapped_in_one_entry_index_is_same() {
        // buildx 0.10.5 wraps a single manifest in a new list; the child is the same manifest.
        let src = vec![Image { platform: None, digest: "m1".into(), config: Some("c1".into()), layers_size: None }];
        assert_eq!(compare(&src, Some(&index(vec![img("linux/amd64", "m1", None)]))), Verdict::Same);
    }

    #[test]
    fn created_time_is_not_identity() {
        // Same Created, different content: configs differ, so it differs.
        let src = vec![img("linux/amd64", "m-new", Some("c-new"))];
        let dst = index(vec![img("linux/amd64", "m-old", Some("c-old"))]);
        assert_eq!(compare(&src, Some(&dst)), Verdict::Differs);
    }

    #[test]
    fn disk_estimate_needs_every_size() {
        let mut a = img("linux/amd64", "m1", None);
        assert_eq!(disk_needed(&[a.clone()]), None);
        a.layers_size = Some(100 << 20);
        assert_eq!(disk_needed(&[a.clone(), a.clone()]), Some((800 << 20) + (256 << 20)));
        // Sizes from a registry cannot wrap the sum into a small number.
        let mut huge = a;
        huge.layers_size = Some(u64::MAX - 1);
        assert_eq!(disk_needed(&[huge.clone(), huge]), Some(u64::MAX));
    }

    #[test]
    fn destinations_and_collisions() {
        let entries = images::parse("images.txt", "nginx:alpine\nlibrary/nginx:alpine\nredis => web\nbusybox => web").unwrap();
        let errs = destinations("images.txt", &entries, &[custom()]).unwrap_err();
        let msgs: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs[0].starts_with("images.txt:2: line 1 and line 2 both sync to r:5000/ns/nginx:alpine"), "{}", msgs[0]);
        assert!(msgs[1].starts_with("images.txt:4: line 3 and line 4 both sync to r:5000/ns/web:latest"), "{}", msgs[1]);
        let ok = destinations("images.txt", &entries[..1], &[custom()]).unwrap();
        assert_eq!(ok[0].refs, ["r:5000/ns/nginx:alpine"]);
    }

    #[test]
    fn each_target_names_by_its_mode() {
        let path = Target { naming: crate::naming::Naming::Path, namespace: "team/mirror".into(), ..custom() };
        let entries = images::parse("images.txt", "nginx:1.27\n--platform=linux/arm64 mysql:8.0\nghcr.io/o/app:1 => app").unwrap();
        let d = destinations("images.txt", &entries, &[custom(), path.clone()]).unwrap();
        assert_eq!(d[0].refs, ["r:5000/ns/nginx:1.27", "r:5000/team/mirror/docker.io/library/nginx:1.27"]);
        assert_eq!(d[1].refs, ["r:5000/ns/linux_arm64_mysql:8.0", "r:5000/team/mirror/docker.io/library/mysql:8.0"]);
        assert_eq!(d[2].refs, ["r:5000/ns/app:1", "r:5000/team/mirror/app:1"]);
        // Two platform lines of one image meet in path mode: one line with both platforms is the fix.
        let two = images::parse("images.txt", "--platform=linux/amd64 mysql:8.0\n--platform=linux/arm64 mysql:8.0").unwrap();
        assert!(destinations("images.txt", &two, &[custom()]).is_ok());
        let errs = destinations("images.txt", &two, &[path]).unwrap_err();
        assert_eq!(errs.len(), 1);
        let m = errs[0].to_string();
        assert!(m.starts_with("images.txt:2: line 1 and line 2 both sync to r:5000/team/mirror/docker.io/library/mysql:8.0"), "{m}");
        assert!(m.ends_with("make them one line: --platform=linux/amd64,linux/arm64 mysql:8.0"), "{m}");
    }
}
