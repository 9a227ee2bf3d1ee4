//! `imgsync pull`, decided from values: the mapping, what the registry holds
//! under the mirror reference, and what the engine holds under the original
//! name. The caller runs the [`Step`]s; nothing here starts a process.
//!
//! # Is the local image already the mirror's?
//!
//! Engines identify a local image by one of two digests:
//! - the classic store (graph drivers): the image ID is the config digest,
//!   whatever registry or manifest it came from;
//! - the containerd image store: the image ID is the digest of what the name
//!   points to: the index digest after a pull by a tag that names an index,
//!   the manifest digest for a single manifest. The config digest is never
//!   the ID there.
//!
//! In both, `RepoDigests` lists `repo@DIGEST` for the digest a pull resolved
//! (index or manifest); a digest is content-addressed, so the repository part
//! does not matter. The three digests hash three different kinds of document
//! (config, manifest, index), so a local ID or repo digest equal to any of the
//! mirror's identifies that content, in either store, without knowing which
//! store the engine uses. An index digest names every platform at once, so it
//! proves the wanted platform only together with the local image's platform;
//! a config or per-platform manifest digest includes the platform. A local
//! image of another platform is never present. After a run removed the
//! mirror tag, the classic store also drops its repo digests, so what proves
//! "present" there is the config digest: the registry read must fill the
//! wanted platform's `config` (see [`config_needed`]).

use serde::Deserialize;

use super::{Listing, Mapping};
use crate::inspect::parse::{Image, Inspection};
use crate::platform::Platform;

/// A local image, from `docker image inspect`. With the containerd image
/// store, inspect with `--platform P` (API 1.49+) where the engine has it, so
/// `Os`/`Architecture` describe the platform pulled, not the host's default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LocalImage {
    pub id: String,
    pub repo_digests: Vec<String>,
    pub platform: Option<Platform>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InspectJson {
    id: String,
    #[serde(default)]
    repo_digests: Option<Vec<String>>,
    #[serde(default)]
    os: Option<String>,
    #[serde(default)]
    architecture: Option<String>,
    #[serde(default)]
    variant: Option<String>,
}

impl LocalImage {
    /// Parses `docker image inspect REF` output (an array of one object, or the object).
    pub fn from_inspect(bytes: &[u8]) -> Result<LocalImage, String> {
        let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("docker image inspect: not JSON: {e}"))?;
        let obj = match v {
            serde_json::Value::Array(mut a) if !a.is_empty() => a.swap_remove(0),
            other => other,
        };
        let j: InspectJson = serde_json::from_value(obj).map_err(|e| format!("docker image inspect: {e}"))?;
        let platform = match (j.os.as_deref(), j.architecture.as_deref()) {
            (Some(os), Some(arch)) if !os.is_empty() && !arch.is_empty() => Some(Platform::new(os, arch, j.variant.as_deref())),
            _ => None,
        };
        Ok(LocalImage { id: j.id, repo_digests: j.repo_digests.unwrap_or_default(), platform })
    }

    fn digests(&self) -> impl Iterator<Item = &str> {
        self.repo_digests.iter().filter_map(|r| r.rsplit_once('@').map(|(_, d)| d))
    }
}

/// The mirror's image for one platform: what a pull must end with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub platform: Platform,
    /// The per-platform manifest digest.
    pub manifest: String,
    /// Its config digest (the classic store's image ID), once read.
    pub config: Option<String>,
    /// The digest the mirror tag resolves to, when it is an index.
    pub index: Option<String>,
}

impl Expected {
    /// Why `local` is this image, or None. See the module comment.
    pub fn matched_by(&self, local: &LocalImage) -> Option<&'static str> {
        let platform_known_same = match &local.platform {
            Some(p) if !p.matches(&self.platform) => return None,
            Some(_) => true,
            None => false,
        };
        if self.config.as_deref() == Some(local.id.as_str()) {
            return Some("its image ID is the mirror's config digest");
        }
        if local.id == self.manifest {
            return Some("its image ID is the mirror's manifest digest");
        }
        if local.digests().any(|d| d == self.manifest) {
            return Some("its repo digests include the mirror's manifest digest");
        }
        if let (Some(index), true) = (&self.index, platform_known_same) {
            if &local.id == index {
                return Some("its image ID is the mirror's index digest and its platform matches");
            }
            if local.digests().any(|d| d == index) {
                return Some("its repo digests include the mirror's index digest and its platform matches");
            }
        }
        None
    }
}

/// One docker call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Pull { reference: String, platform: Platform },
    Tag { from: String, to: String },
    /// Removes a name only: the image stays under the original name.
    Untag { reference: String },
}

/// Run `pull`; inspect the mirror reference and check it with [`verify`]
/// (before anything is tagged, so a mirror that changed meanwhile leaves the
/// original name as it was); if it matches run `tag`; then `untag` in any
/// case (it removes only a name this run created).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullPlan {
    pub pull: Step,
    pub expect: Expected,
    pub tag: Option<Step>,
    pub untag: Option<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Nothing to do: the local original already is the mirror's image.
    Present { why: &'static str },
    Pull(Box<PullPlan>),
    Failed { message: String },
}

/// What `decide` needs for one image.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub mapping: &'a Mapping,
    /// The platform to pull: the mapping's wanted one, else this host's.
    pub platform: &'a Platform,
    /// What the registry holds under the mirror reference; None: nothing.
    pub mirror: Option<&'a Inspection>,
    /// The local image under the original name before this run, if any.
    pub local: Option<&'a LocalImage>,
    /// The mirror reference already named a local image before this run
    /// (then it is the user's, and stays).
    pub mirror_tag_existed: bool,
    pub keep_mirror_tag: bool,
}

/// The mirror's image for `platform`. A single manifest carries its platform
/// in its config, so the line's `--platform` (if it names one) stands in.
pub fn wanted_image<'a>(mirror: &'a Inspection, platform: &Platform, line_platforms: &[Platform]) -> Result<&'a Image, Vec<Platform>> {
    if let Some(i) = mirror.find(platform) {
        return Ok(i);
    }
    if let [single] = mirror.images.as_slice() {
        if single.platform.is_none() {
            return match line_platforms {
                [p] if !p.matches(platform) => Err(vec![p.clone()]),
                // Unknown until pulled: docker's --platform pull checks it, and verify() the result.
                _ => Ok(single),
            };
        }
    }
    let mut have = mirror.platforms();
    if have.is_empty() {
        have = line_platforms.to_vec();
    }
    Err(have)
}

/// The manifest digest whose config the registry read should fetch so that
/// [`decide`] can recognise a classic-store image (None: known or not needed).
pub fn config_needed(mirror: &Inspection, platform: &Platform, line_platforms: &[Platform]) -> Option<String> {
    wanted_image(mirror, platform, line_platforms).ok().filter(|i| i.config.is_none()).map(|i| i.digest.clone())
}

pub fn decide(r: &Request) -> Decision {
    let m = r.mapping;
    let failed = |message: String| Decision::Failed { message };
    let mirror_ref = match (&m.mirror, &m.listing) {
        (_, Listing::Taken { add, taken_by }) => {
            return failed(format!(
                "not mirrored: its plain name is the target of images.txt line {taken_by} (another image); add this line to images.txt and run sync: {add}"
            ))
        }
        (Some(r), _) => r,
        (None, _) => return failed("not mirrored".into()),
    };
    let Some(mirror) = r.mirror else {
        return failed(match &m.listing {
            Listing::Listed { line } => {
                format!("{mirror_ref} is not in the registry yet, though images.txt line {line} lists it: run sync first")
            }
            _ => format!("not mirrored ({mirror_ref} does not exist); add this line to images.txt and run sync: {}", m.line_to_add().unwrap_or("")),
        });
    };
    let image = match wanted_image(mirror, r.platform, &m.platforms) {
        Ok(i) => i,
        Err(have) => {
            let have: Vec<String> = have.iter().map(|p| p.to_string()).collect();
            let mut msg = format!("{mirror_ref} has no {} image", r.platform);
            if have.is_empty() {
                msg.push_str(" (and no platform information)");
            } else {
                msg.push_str(&format!("; it has {}: pull one of those with --platform {}", have.join(", "), have[0]));
            }
            if let Some(line) = m.line() {
                msg.push_str(&format!(", or add {} to images.txt line {line} and sync", r.platform));
            }
            return failed(msg);
        }
    };
    let expect = Expected {
        platform: r.platform.clone(),
        manifest: image.digest.clone(),
        config: image.config.clone(),
        index: if mirror.index { mirror.digest.clone() } else { None },
    };
    if let Some(why) = r.local.and_then(|l| expect.matched_by(l)) {
        return Decision::Present { why };
    }
    let pull = Step::Pull { reference: mirror_ref.clone(), platform: r.platform.clone() };
    let same_name = crate::reference::ImageRef::parse(mirror_ref).is_ok_and(|mr| super::same_reference(&mr, &m.original.reference));
    let tag = (!same_name).then(|| Step::Tag { from: mirror_ref.clone(), to: m.original.text.clone() });
    let untag = (!same_name && !r.mirror_tag_existed && !r.keep_mirror_tag).then(|| Step::Untag { reference: mirror_ref.clone() });
    Decision::Pull(Box::new(PullPlan { pull, expect, tag, untag }))
}

/// After the pull: the local image under the mirror reference (`docker image
/// inspect MIRROR`, while it still has its repo digests) must be the expected one.
pub fn verify(expect: &Expected, mirror_ref: &str, local: &LocalImage) -> Result<(), String> {
    match expect.matched_by(local) {
        Some(_) => Ok(()),
        None => Err(format!(
            "after the pull, {mirror_ref} is {} ({}), not the {} image the registry listed ({}); the mirror may have changed meanwhile: run again",
            local.id,
            local.platform.as_ref().map_or("platform unknown".to_string(), |p| p.to_string()),
            expect.platform,
            expect.manifest
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{entries, target};
    use super::super::{map, Original};
    use super::*;

    const R: &str = "registry.cn-hangzhou.aliyuncs.com/ns";

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    fn img(plat: Option<&str>, digest: &str, config: Option<&str>) -> Image {
        Image { platform: plat.map(p), digest: digest.into(), config: config.map(str::to_string), layers_size: None }
    }

    /// The mirror: an index with amd64 (manifest m-amd, config c-amd) and arm64.
    fn index() -> Inspection {
        Inspection {
            digest: Some("sha256:idx".into()),
            index: true,
            images: vec![img(Some("linux/amd64"), "sha256:m-amd", Some("sha256:c-amd")), img(Some("linux/arm64/v8"), "sha256:m-arm", Some("sha256:c-arm"))],
            attestations: 2,
        }
    }

    fn mapping(images_txt: &str, original: &str, platform: Option<&str>) -> Mapping {
        let o = Original::parse(original, platform.map(p)).unwrap();
        map("images.txt", &entries(images_txt), &target(), &[o]).unwrap().remove(0)
    }

    fn local(id: &str, digests: &[&str], plat: Option<&str>) -> LocalImage {
        LocalImage { id: id.into(), repo_digests: digests.iter().map(|d| d.to_string()).collect(), platform: plat.map(p) }
    }

    fn req<'a>(m: &'a Mapping, plat: &'a Platform, mirror: Option<&'a Inspection>, l: Option<&'a LocalImage>) -> Request<'a> {
        Request { mapping: m, platform: plat, mirror, local: l, mirror_tag_existed: false, keep_mirror_tag: false }
    }

    #[test]
    fn present_in_the_classic_store_by_config_digest() {
        let m = mapping("nginx:alpine", "nginx:alpine", None);
        let amd = p("linux/amd64");
        let mirror = index();
        // Pulled earlier (from anywhere): ID is the config digest, repo digests of another repo.
        let l = local("sha256:c-amd", &["nginx@sha256:source-index"], Some("linux/amd64"));
        assert_eq!(decide(&req(&m, &amd, Some(&mirror), Some(&l))), Decision::Present { why: "its image ID is the mirror's config digest" });
        // The arm64 image under the same name is not the amd64 one.
        let arm = p("linux/arm64");
        assert!(matches!(decide(&req(&m, &arm, Some(&mirror), Some(&l))), Decision::Pull(_)));
    }

    #[test]
    fn present_in_the_containerd_store_by_index_or_manifest_digest() {
        let m = mapping("nginx:alpine", "nginx:alpine", None);
        let amd = p("linux/amd64");
        let mirror = index();
        let l = local("sha256:idx", &[], Some("linux/amd64"));
        assert!(matches!(decide(&req(&m, &amd, Some(&mirror), Some(&l))), Decision::Present { .. }));
        // An index ID alone does not say which platform is there.
        let unknown = local("sha256:idx", &[], None);
        assert!(matches!(decide(&req(&m, &amd, Some(&mirror), Some(&unknown))), Decision::Pull(_)));
        let wrong = local("sha256:idx", &[], Some("linux/arm64"));
        assert!(matches!(decide(&req(&m, &amd, Some(&mirror), Some(&wrong))), Decision::Pull(_)));
        // Pulled by the per-platform manifest: ID is that manifest digest.
        let l = local("sha256:m-amd", &[], None);
        assert_eq!(decide(&req(&m, &amd, Some(&mirror), Some(&l))), Decision::Present { why: "its image ID is the mirror's manifest digest" });
    }

    #[test]
    fn present_by_repo_digests() {
        let m = mapping("nginx:alpine", "nginx:alpine", None);
        let amd = p("linux/amd64");
        let mirror = index();
        let l = local("sha256:other-id", &[&format!("{R}/nginx@sha256:m-amd")], None);
        assert!(matches!(decide(&req(&m, &amd, Some(&mirror), Some(&l))), Decision::Present { .. }));
        let l = local("sha256:c-amd-old", &["nginx@sha256:idx"], Some("linux/amd64"));
        assert!(matches!(decide(&req(&m, &amd, Some(&mirror), Some(&l))), Decision::Present { .. }));
        let l = local("sha256:c-old", &["nginx@sha256:old-idx"], Some("linux/amd64"));
        assert!(matches!(decide(&req(&m, &amd, Some(&mirror), Some(&l))), Decision::Pull(_)));
    }

    #[test]
    fn pull_tags_and_removes_only_a_mirror_tag_it_created() {
        let m = mapping("nginx:alpine", "nginx:alpine", None);
        let amd = p("linux/amd64");
        let mirror = index();
        let old = local("sha256:c-old", &[], Some("linux/amd64"));
        let Decision::Pull(plan) = decide(&req(&m, &amd, Some(&mirror), Some(&old))) else { panic!() };
        let PullPlan { pull, expect, tag, untag } = *plan;
        assert_eq!(pull, Step::Pull { reference: format!("{R}/nginx:alpine"), platform: amd.clone() });
        assert_eq!(tag, Some(Step::Tag { from: format!("{R}/nginx:alpine"), to: "nginx:alpine".into() }));
        assert_eq!(untag, Some(Step::Untag { reference: format!("{R}/nginx:alpine") }));
        assert_eq!(expect, Expected { platform: amd.clone(), manifest: "sha256:m-amd".into(), config: Some("sha256:c-amd".into()), index: Some("sha256:idx".into()) });
        for (existed, keep) in [(true, false), (false, true), (true, true)] {
            let r = Request { mirror_tag_existed: existed, keep_mirror_tag: keep, ..req(&m, &amd, Some(&mirror), None) };
            let Decision::Pull(plan) = decide(&r) else { panic!() };
        let PullPlan { tag, untag, .. } = *plan;
            assert!(tag.is_some());
            assert_eq!(untag, None, "existed={existed} keep={keep}");
        }
        // Pulling the mirror reference itself: no tag, nothing removed.
        let m = mapping("nginx:alpine", &format!("{R}/nginx:alpine"), None);
        let Decision::Pull(plan) = decide(&req(&m, &amd, Some(&mirror), None)) else { panic!() };
        let PullPlan { tag, untag, .. } = *plan;
        assert_eq!((tag, untag), (None, None));
    }

    #[test]
    fn verify_the_pulled_mirror() {
        let e = Expected { platform: p("linux/amd64"), manifest: "sha256:m-amd".into(), config: None, index: Some("sha256:idx".into()) };
        // Classic store right after a pull by tag: ID is the config, repo digest is the index.
        let classic = local("sha256:c-amd", &[&format!("{R}/nginx@sha256:idx")], Some("linux/amd64"));
        assert!(verify(&e, "m", &classic).is_ok());
        let containerd = local("sha256:idx", &[&format!("{R}/nginx@sha256:idx")], Some("linux/amd64"));
        assert!(verify(&e, "m", &containerd).is_ok());
        let changed = local("sha256:c-new", &[&format!("{R}/nginx@sha256:idx2")], Some("linux/amd64"));
        let err = verify(&e, "REG/nginx:alpine", &changed).unwrap_err();
        assert!(err.contains("REG/nginx:alpine is sha256:c-new (linux/amd64)") && err.contains("run again"), "{err}");
    }

    #[test]
    fn missing_platform_fails_with_what_the_mirror_has() {
        let m = mapping("--platform=linux/arm64 mysql:8.0", "mysql:8.0", None);
        let amd = p("linux/amd64");
        let arm_only = Inspection { digest: Some("sha256:i".into()), index: true, images: vec![img(Some("linux/arm64"), "sha256:m", None)], attestations: 0 };
        let Decision::Failed { message } = decide(&req(&m, &amd, Some(&arm_only), None)) else { panic!() };
        assert_eq!(
            message,
            format!("{R}/linux_arm64_mysql:8.0 has no linux/amd64 image; it has linux/arm64: pull one of those with --platform linux/arm64, or add linux/amd64 to images.txt line 1 and sync")
        );
        // A single manifest: its platform is the line's.
        let single = Inspection { digest: Some("sha256:m".into()), index: false, images: vec![img(None, "sha256:m", Some("sha256:c"))], attestations: 0 };
        let Decision::Failed { message } = decide(&req(&m, &amd, Some(&single), None)) else { panic!() };
        assert!(message.contains("it has linux/arm64"), "{message}");
        let arm = p("linux/arm64");
        let Decision::Pull(plan) = decide(&req(&m, &arm, Some(&single), None)) else { panic!() };
        let PullPlan { expect, .. } = *plan;
        assert_eq!((expect.manifest.as_str(), expect.index), ("sha256:m", None));
    }

    #[test]
    fn not_mirrored_fails_with_the_line_to_add() {
        let amd = p("linux/amd64");
        let m = mapping("nginx:alpine", "redis:7", None);
        let Decision::Failed { message } = decide(&req(&m, &amd, None, None)) else { panic!() };
        assert_eq!(message, format!("not mirrored ({R}/redis:7 does not exist); add this line to images.txt and run sync: redis:7"));
        let m = mapping("nginx:alpine", "nginx:alpine", None);
        let Decision::Failed { message } = decide(&req(&m, &amd, None, None)) else { panic!() };
        assert!(message.contains("images.txt line 1 lists it: run sync first"), "{message}");
        let m = mapping("redis:7 => nginx", "nginx:7", None);
        let Decision::Failed { message } = decide(&req(&m, &amd, Some(&index()), None)) else { panic!() };
        assert!(message.ends_with("nginx:7 => nginx-2"), "{message}");
        // Unlisted but present in the registry (synced from another list): pulled.
        let m = mapping("nginx:alpine", "redis:7", None);
        assert!(matches!(decide(&req(&m, &amd, Some(&index()), None)), Decision::Pull(_)));
    }

    #[test]
    fn config_needed_names_the_manifest() {
        let mut mirror = index();
        assert_eq!(config_needed(&mirror, &p("linux/amd64"), &[]), None);
        mirror.images[0].config = None;
        assert_eq!(config_needed(&mirror, &p("linux/amd64"), &[]).as_deref(), Some("sha256:m-amd"));
        assert_eq!(config_needed(&mirror, &p("linux/s390x"), &[]), None);
    }

    #[test]
    fn local_image_from_docker_inspect() {
        let j = br#"[{"Id":"sha256:abc","RepoTags":["nginx:alpine"],"RepoDigests":["nginx@sha256:def"],"Os":"linux","Architecture":"arm64","Variant":"v8"}]"#;
        let l = LocalImage::from_inspect(j).unwrap();
        assert_eq!(l, local("sha256:abc", &["nginx@sha256:def"], Some("linux/arm64/v8")));
        let l = LocalImage::from_inspect(br#"{"Id":"sha256:x","RepoDigests":null}"#).unwrap();
        assert_eq!(l, local("sha256:x", &[], None));
        assert!(LocalImage::from_inspect(b"[]").is_err());
        assert!(LocalImage::from_inspect(b"nope").is_err());
    }
}
