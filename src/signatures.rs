//! Signatures, SBOMs and attestations stored beside an image (issue 23): what
//! they are called, how a referrers index is read and joined, and what a run
//! decided to do with each one. Pure: the run's steps live in
//! `sync/signatures.rs`, the writes in `engine/imagetools.rs`.
//!
//! Two schemes live outside the image, in its repository, named after the
//! digest they belong to (the third, BuildKit attestations, travels inside the
//! image index and needs nothing here):
//! - cosign's tags `sha256-<hex>.sig`, `.att` and `.sbom`;
//! - OCI 1.1 referrers, found through the registry's referrers API or, where
//!   it has none (GHCR, distribution 2.8), through the fallback tag
//!   `sha256-<hex>`: an index of the referrers' descriptors.

use serde::Serialize;
use serde_json::Value;

use crate::failure::Failure;

/// SIGNATURES / `--signatures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// Copy what the source has, when the engine keeps digests.
    Copy,
    /// Copy none and ask for none.
    Off,
}

/// One kind of attachment, by where it is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// cosign's `.sig` tag.
    Signature,
    /// cosign's `.att` tag (in-toto attestations).
    Attestation,
    /// cosign's `.sbom` tag.
    Sbom,
    /// The OCI referrers fallback tag: an index of referrers.
    Referrers,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Signature, Kind::Attestation, Kind::Sbom, Kind::Referrers];

    /// The tag this kind of attachment of `digest` is stored under, or None
    /// for a digest that is not `<algorithm>:<hex>`.
    pub fn tag(self, digest: &str) -> Option<String> {
        let base = fallback_tag(digest)?;
        Some(match self {
            Kind::Signature => format!("{base}.sig"),
            Kind::Attestation => format!("{base}.att"),
            Kind::Sbom => format!("{base}.sbom"),
            Kind::Referrers => base,
        })
    }
}

/// The referrers tag schema of the distribution spec: the algorithm
/// truncated to 32 characters, `-`, the encoded digest truncated to 64.
pub fn fallback_tag(digest: &str) -> Option<String> {
    let (alg, hex) = digest.split_once(':')?;
    let plain = |s: &str, ok: fn(char) -> bool| !s.is_empty() && s.chars().all(ok);
    if !plain(alg, |c| c.is_ascii_lowercase() || c.is_ascii_digit()) || !plain(hex, |c| c.is_ascii_hexdigit()) {
        return None;
    }
    let cut = |s: &str, n: usize| s.chars().take(n).collect::<String>();
    Some(format!("{}-{}", cut(alg, 32), cut(hex, 64)))
}

/// A tag that holds an attachment, never an image of its own:
/// `sha256-<64 hex>` with or without `.sig`, `.att` or `.sbom`. Tag
/// selection never selects one, and `pull` does not list them.
pub fn is_attachment_tag(tag: &str) -> bool {
    let base = ["sig", "att", "sbom"].iter().find_map(|s| tag.strip_suffix(&format!(".{s}"))).unwrap_or(tag);
    base.strip_prefix("sha256-").is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The referrers a fallback tag (or the referrers API) lists: each entry the
/// descriptor as the registry sent it, every field kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Referrers {
    pub descriptors: Vec<Value>,
}

/// What a fallback tag holds.
#[derive(Clone, Debug, PartialEq)]
pub enum FallbackContent {
    /// An index of referrers.
    Referrers(Referrers),
    /// An image or an image index: something of the user's under that name,
    /// e.g. an old digest-only mirror. Never overwritten.
    Image,
}

/// Reads a fallback tag's manifest. An OCI index whose entries carry no
/// platform (referrers are artifacts) is a referrers index; an index of
/// platform images or any single manifest is an image.
pub fn read_fallback(bytes: &[u8]) -> Result<FallbackContent, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let Some(manifests) = v.get("manifests").and_then(Value::as_array) else { return Ok(FallbackContent::Image) };
    let oci = v.get("mediaType").and_then(Value::as_str).is_none_or(|m| m == "application/vnd.oci.image.index.v1+json");
    // buildx writes `{"architecture":"","os":"linux"}` on each entry of an
    // index it joins (tests/data/buildx-0.36.1/SIGNATURES.md, d): an image has an architecture.
    let platform =
        |d: &Value| d.get("platform").and_then(|p| p.get("architecture")).and_then(Value::as_str).is_some_and(|a| !a.is_empty());
    let artifacts = manifests.iter().all(|d| !platform(d) || d.get("artifactType").is_some());
    if !oci || !artifacts {
        return Ok(FallbackContent::Image);
    }
    if manifests.iter().any(|d| digest_of(d).is_none()) {
        return Err("an entry without a digest".into());
    }
    Ok(FallbackContent::Referrers(Referrers { descriptors: manifests.clone() }))
}

fn digest_of(d: &Value) -> Option<&str> {
    d.get("digest").and_then(Value::as_str)
}

impl Referrers {
    pub fn digests(&self) -> Vec<&str> {
        self.descriptors.iter().filter_map(digest_of).collect()
    }

    /// Every referrer of `other` is listed here too.
    pub fn covers(&self, other: &Referrers) -> bool {
        let mine = self.digests();
        other.digests().iter().all(|d| mine.contains(d))
    }

    /// This list, then what only `other` has: every descriptor of both, once.
    pub fn union(&self, other: &Referrers) -> Referrers {
        let mine = self.digests();
        let extra = other.descriptors.iter().filter(|d| digest_of(d).is_some_and(|x| !mine.contains(&x)));
        Referrers { descriptors: self.descriptors.iter().chain(extra).cloned().collect() }
    }
}

/// One attachment of one mirrored digest, as found on both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub kind: Kind,
    /// The digest it belongs to.
    pub subject: String,
    pub tag: String,
    /// Its digest at the source.
    pub source: String,
    /// Its digest at the target before the run, when there was one.
    pub target: Option<String>,
}

/// What the run does with one attachment.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    UpToDate,
    /// Copy the source's manifest, byte for byte, to the same tag.
    Copy,
    /// The target's referrers index lists referrers the source's lacks: copy
    /// the source's, then write one index with every descriptor of both.
    Merge(Referrers),
    /// Not copied: why, and the fix.
    Refused(Failure),
}

/// One target's attachments: what was found and what the run does with each.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    pub items: Vec<(Attachment, Action)>,
    /// The source could not be asked what it has: counted as one failure.
    pub failure: Option<Failure>,
}

impl Plan {
    /// Something to write.
    pub fn pending(&self) -> bool {
        self.items.iter().any(|(_, a)| matches!(a, Action::Copy | Action::Merge(_)))
    }

    /// The counts before anything is written: refusals have failed already.
    pub fn counts(&self) -> Counts {
        let mut c = Counts { found: self.items.len(), failed: usize::from(self.failure.is_some()), ..Counts::default() };
        for (_, a) in &self.items {
            match a {
                Action::UpToDate => c.up_to_date += 1,
                Action::Refused(_) => c.failed += 1,
                Action::Copy | Action::Merge(_) => {}
            }
        }
        c
    }

    /// The first refusal, or why the source could not be asked.
    pub fn first_failure(&self) -> Option<&Failure> {
        self.failure.as_ref().or_else(|| {
            self.items.iter().find_map(|(_, a)| match a {
                Action::Refused(f) => Some(f),
                _ => None,
            })
        })
    }
}

/// Per target and for the run: attachments found at the source for the
/// mirrored digests, and what became of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub found: usize,
    pub copied: usize,
    pub up_to_date: usize,
    pub failed: usize,
    /// Referrers indexes written by joining two lists (the target's and the
    /// source's): buildx writes those itself, so they are not byte copies
    /// (each entry gains `"platform":{"architecture":"","os":"linux"}`).
    #[serde(skip_serializing_if = "is_zero")]
    pub joined: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, o: Counts) {
        self.found += o.found;
        self.copied += o.copied;
        self.up_to_date += o.up_to_date;
        self.failed += o.failed;
        self.joined += o.joined;
    }
}

/// Why a run carried no attachments (said once, in the summary).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NotCopied {
    /// The daemon engine rebuilds manifests: no signature would verify.
    DaemonEngine,
    /// A copy produced another digest than the source's.
    DigestChanged,
    /// A registry is read with the docker CLI, which has no cheap HEAD.
    DockerReadPath,
    /// buildx before 0.11 wraps a single manifest in a new index.
    OldBuildx,
}

impl NotCopied {
    pub fn reason(self) -> &'static str {
        match self {
            NotCopied::DaemonEngine => {
                "signatures were not copied: the daemon engine rebuilds manifests (new digests), so no signature could verify against its copies; use --engine imagetools"
            }
            NotCopied::DigestChanged => {
                "some signatures were not copied: the mirror's digest is not the source's (a copy by the daemon engine, or by a buildx that wrapped it in a new index), so the source's signatures do not apply to it; copy with --engine imagetools --force"
            }
            NotCopied::DockerReadPath => {
                "signatures were not copied for registries read with the docker CLI (--inspect docker, or HTTP unavailable): they are found with HEAD requests over HTTP"
            }
            NotCopied::OldBuildx => "signatures were not copied: this buildx cannot copy a manifest byte for byte (--prefer-index needs buildx 0.11 or later); update buildx",
        }
    }
}

/// The digest an up-to-date target's attachments belong to, from the
/// entry's `--platform` count and the two top-level digests: the image
/// itself (the same digest on both sides), a single platform's carbon copy
/// (the target's digest is the source child's), or none for a platform
/// subset (a new index; its children's attachments come with each copy).
pub fn subject(platforms: usize, source: &str, target: &str) -> Result<Option<String>, NotCopied> {
    match platforms {
        0 if source == target => Ok(Some(source.to_string())),
        0 => Err(NotCopied::DigestChanged),
        1 => Ok(Some(target.to_string())),
        _ => Ok(None),
    }
}

/// The decision for one cosign tag found at the source.
pub fn decide_tag(source: &str, target: Option<&str>) -> Action {
    if target == Some(source) {
        Action::UpToDate
    } else {
        Action::Copy
    }
}

/// The decision for a fallback tag whose digests differ on the two sides,
/// from what both hold (`target`: None when it has no such tag).
pub fn decide_fallback(source: &Referrers, target: Option<&FallbackContent>, tag: &str, target_ref: &str) -> Action {
    match target {
        None => Action::Copy,
        Some(FallbackContent::Image) => Action::Refused(Failure::new(
            format!("{target_ref}:{tag} holds an image, not an index of referrers; it was left as it is and the source's referrers were not copied"),
            format!("delete the tag {tag} in the target (an old digest mirror?) or set SIGNATURES=off"),
        )),
        Some(FallbackContent::Referrers(t)) if t.covers(source) => Action::UpToDate,
        Some(FallbackContent::Referrers(t)) if source.covers(t) => Action::Copy,
        Some(FallbackContent::Referrers(t)) => Action::Merge(source.union(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tags_follow_cosign_and_the_referrers_tag_schema() {
        assert_eq!(Kind::Signature.tag(D).unwrap(), format!("sha256-{HEX}.sig"));
        assert_eq!(Kind::Attestation.tag(D).unwrap(), format!("sha256-{HEX}.att"));
        assert_eq!(Kind::Sbom.tag(D).unwrap(), format!("sha256-{HEX}.sbom"));
        assert_eq!(Kind::Referrers.tag(D).unwrap(), format!("sha256-{HEX}"));
        // The schema truncates the algorithm to 32 characters and the hex to 64 (sha512).
        let long = format!("sha512:{}", "ab".repeat(64));
        assert_eq!(fallback_tag(&long).unwrap(), format!("sha512-{}", "ab".repeat(32)));
        let alg = format!("{}:{HEX}", "a".repeat(40));
        assert_eq!(fallback_tag(&alg).unwrap(), format!("{}-{HEX}", "a".repeat(32)));
        for bad in ["latest", "sha256:", ":abc", "sha256:xyz", "SHA256:ab"] {
            assert_eq!(fallback_tag(bad), None, "{bad}");
        }
    }

    #[test]
    fn attachment_tags_are_recognised_and_nothing_else() {
        for yes in [format!("sha256-{HEX}"), format!("sha256-{HEX}.sig"), format!("sha256-{HEX}.att"), format!("sha256-{HEX}.sbom")] {
            assert!(is_attachment_tag(&yes), "{yes}");
        }
        for no in [
            "latest".to_string(),
            format!("sha256_{HEX}"), // imgsync's own digest-only mirror tag
            format!("sha256-{HEX}.txt"),
            format!("sha256-{}", &HEX[..63]),
            format!("sha256-{HEX}0"),
            "sha256-abc.sig".to_string(),
            format!("v1-sha256-{HEX}"),
        ] {
            assert!(!is_attachment_tag(&no), "{no}");
        }
    }

    fn referrer(d: &str) -> Value {
        json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": 10, "artifactType": "application/vnd.example.sbom", "annotations": {"x": "y"}})
    }

    fn index(ds: &[&str]) -> Vec<u8> {
        serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ds.iter().map(|d| referrer(d)).collect::<Vec<_>>()})).unwrap()
    }

    fn refs(ds: &[&str]) -> Referrers {
        match read_fallback(&index(ds)).unwrap() {
            FallbackContent::Referrers(r) => r,
            FallbackContent::Image => panic!("an image"),
        }
    }

    #[test]
    fn a_fallback_tag_is_a_referrers_index_or_left_alone() {
        assert_eq!(refs(&["sha256:a", "sha256:b"]).digests(), ["sha256:a", "sha256:b"]);
        assert_eq!(refs(&[]).digests(), Vec::<&str>::new(), "an empty index is still an index of referrers");
        let image = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}, "layers": []});
        assert_eq!(read_fallback(&serde_json::to_vec(&image).unwrap()).unwrap(), FallbackContent::Image);
        let multi = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a", "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}]});
        assert_eq!(read_fallback(&serde_json::to_vec(&multi).unwrap()).unwrap(), FallbackContent::Image, "a platform image index");
        let joined = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:a", "size": 1, "platform": {"architecture": "", "os": "linux"}}]});
        assert!(matches!(read_fallback(&serde_json::to_vec(&joined).unwrap()).unwrap(), FallbackContent::Referrers(_)), "buildx's platform without an architecture is none");
        let docker = json!({"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json", "manifests": []});
        assert_eq!(read_fallback(&serde_json::to_vec(&docker).unwrap()).unwrap(), FallbackContent::Image);
        assert!(read_fallback(b"not json").is_err());
    }

    #[test]
    fn union_keeps_every_descriptor_of_both_once_and_byte_for_byte() {
        let s = refs(&["sha256:a", "sha256:b"]);
        let t = refs(&["sha256:b", "sha256:c"]);
        let u = s.union(&t);
        assert_eq!(u.digests(), ["sha256:a", "sha256:b", "sha256:c"]);
        assert_eq!(u.descriptors[2], referrer("sha256:c"), "artifactType and annotations kept");
        assert!(u.covers(&s) && u.covers(&t));
        assert!(!s.covers(&t));
    }

    #[test]
    fn fallback_decisions() {
        let s = refs(&["sha256:a", "sha256:b"]);
        let t = "sha256-x";
        assert_eq!(decide_fallback(&s, None, t, "r/ns/app"), Action::Copy);
        assert_eq!(decide_fallback(&s, Some(&FallbackContent::Referrers(refs(&["sha256:a"]))), t, "r/ns/app"), Action::Copy, "the source's list covers the target's");
        assert_eq!(decide_fallback(&s, Some(&FallbackContent::Referrers(refs(&["sha256:b", "sha256:a", "sha256:z"]))), t, "r/ns/app"), Action::UpToDate);
        match decide_fallback(&s, Some(&FallbackContent::Referrers(refs(&["sha256:z"]))), t, "r/ns/app") {
            Action::Merge(u) => assert_eq!(u.digests(), ["sha256:a", "sha256:b", "sha256:z"]),
            other => panic!("{other:?}"),
        }
        match decide_fallback(&s, Some(&FallbackContent::Image), t, "r/ns/app") {
            Action::Refused(f) => {
                assert!(f.error.contains("r/ns/app:sha256-x holds an image"), "{f:?}");
                assert!(f.hint.contains("delete the tag sha256-x"), "{f:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_subject_of_an_up_to_date_target() {
        assert_eq!(subject(0, "sha256:a", "sha256:a"), Ok(Some("sha256:a".into())));
        assert_eq!(subject(0, "sha256:a", "sha256:b"), Err(NotCopied::DigestChanged));
        assert_eq!(subject(1, "sha256:index", "sha256:child"), Ok(Some("sha256:child".into())));
        assert_eq!(subject(2, "sha256:a", "sha256:b"), Ok(None));
    }

    #[test]
    fn plan_counts_and_pending() {
        let a = |k| Attachment { kind: k, subject: D.into(), tag: k.tag(D).unwrap(), source: "sha256:s".into(), target: None };
        let mut p = Plan::default();
        assert!(!p.pending());
        p.items.push((a(Kind::Signature), Action::UpToDate));
        assert!(!p.pending());
        p.items.push((a(Kind::Attestation), Action::Copy));
        p.items.push((a(Kind::Referrers), Action::Refused(Failure::new("x", "y"))));
        assert!(p.pending());
        assert_eq!(p.counts(), Counts { found: 3, copied: 0, up_to_date: 1, failed: 1, joined: 0 });
        assert_eq!(p.first_failure().map(|f| f.error.as_str()), Some("x"));
        let asked = Plan { items: vec![], failure: Some(Failure::new("source down", "retry")) };
        assert_eq!(asked.counts(), Counts { found: 0, copied: 0, up_to_date: 0, failed: 1, joined: 0 });
        assert_eq!(decide_tag("sha256:s", Some("sha256:s")), Action::UpToDate);
        assert_eq!(decide_tag("sha256:s", Some("sha256:t")), Action::Copy);
        assert_eq!(decide_tag("sha256:s", None), Action::Copy);
    }
}
