//! What a registry holds under a reference, parsed from the registry's JSON
//! (or docker's). Pure: the reads that produce the bytes live beside it
//! (`inspect::docker`, `inspect::http`).

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use serde::Deserialize;

use crate::platform::Platform;

/// One platform image: a manifest and, once known, its config digest (the image ID).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub platform: Option<Platform>,
    /// Manifest digest.
    pub digest: String,
    pub config: Option<String>,
    /// Compressed layer bytes, once the manifest has been read.
    pub layers_size: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inspection {
    /// Digest of what the reference resolves to (index or manifest), when known.
    pub digest: Option<String>,
    pub index: bool,
    /// Runnable images, attestations left out. A single manifest gives one.
    pub images: Vec<Image>,
    pub attestations: usize,
}

impl Inspection {
    pub fn platforms(&self) -> Vec<Platform> {
        self.images.iter().filter_map(|i| i.platform.clone()).collect()
    }

    /// The images for the wanted platforms (all when `wanted` is empty), in
    /// the order wanted. A missing platform names the ones there are.
    pub fn select(&self, wanted: &[Platform]) -> Result<Vec<Image>, String> {
        if wanted.is_empty() {
            return Ok(self.images.clone());
        }
        wanted
            .iter()
            .map(|w| {
                self.images
                    .iter()
                    .find(|i| i.platform.as_ref().is_some_and(|p| p.matches(w)))
                    .cloned()
                    .ok_or_else(|| {
                        let have: Vec<String> = self.platforms().iter().map(|p| p.to_string()).collect();
                        format!(
                            "platform {w} is not in the source; it has: {}",
                            if have.is_empty() { "no platform information".into() } else { have.join(", ") }
                        )
                    })
            })
            .collect()
    }

    /// The image for a platform, by containerd matching.
    pub fn find(&self, p: &Platform) -> Option<&Image> {
        self.images.iter().find(|i| i.platform.as_ref().is_some_and(|q| q.matches(p)))
    }
}

pub fn sha256_digest(bytes: &[u8]) -> String {
    crate::registry::manifest::digest_of(bytes, None)
}

/// `docker buildx imagetools inspect --raw REF`: the registry's exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Raw {
    Index(Inspection),
    /// A single manifest; its platform lives in the config blob, not here.
    Manifest(Image),
}

fn is_attestation(d: &Descriptor) -> Result<bool, String> {
    let annotated = d
        .annotations()
        .as_ref()
        .and_then(|a| a.get("vnd.docker.reference.type"))
        .is_some_and(|t| t == "attestation-manifest");
    Ok(annotated || platform_of(d)?.is_some_and(|p| p.is_unknown()))
}

/// The descriptor's platform; fields that are not plain words are refused.
fn platform_of(d: &Descriptor) -> Result<Option<Platform>, String> {
    d.platform()
        .as_ref()
        .map(|p| Platform::from_registry(&p.os().to_string(), &p.architecture().to_string(), p.variant().as_deref()))
        .transpose()
}

/// Most entries an index may have: refused when parsed, before any child is
/// read (real indexes hold a few dozen platforms plus their attestations).
pub const MAX_INDEX_ENTRIES: usize = 1000;

fn check_index_len(n: usize) -> Result<(), String> {
    if n > MAX_INDEX_ENTRIES {
        Err(format!("the index lists {n} manifests, more than the {MAX_INDEX_ENTRIES} imgsync reads: refusing it"))
    } else {
        Ok(())
    }
}

fn index_images(index: &ImageIndex, digest: Option<String>) -> Result<Inspection, String> {
    check_index_len(index.manifests().len())?;
    let mut images = Vec::new();
    let mut attestations = 0;
    for d in index.manifests() {
        if is_attestation(d)? {
            attestations += 1;
            continue;
        }
        images.push(Image { platform: platform_of(d)?, digest: d.digest().to_string(), config: None, layers_size: None });
    }
    Ok(Inspection { digest, index: true, images, attestations })
}

/// Largest layer size believed: 1 TiB. A registry's manifest sets these numbers.
pub const MAX_LAYER_SIZE: u64 = 1 << 40;

/// Compressed layer bytes of a manifest, summed without overflow; a layer
/// of more than `MAX_LAYER_SIZE` is refused (a negative size is already
/// refused by the parser).
fn layers_size(m: &ImageManifest) -> Result<u64, String> {
    m.layers().iter().try_fold(0u64, |sum, l| {
        if l.size() > MAX_LAYER_SIZE {
            Err(format!("the manifest lists a layer of {} bytes (more than 1 TiB): refusing it", l.size()))
        } else {
            Ok(sum.saturating_add(l.size()))
        }
    })
}

fn manifest_image(m: &ImageManifest, digest: String) -> Result<Image, String> {
    Ok(Image {
        platform: None,
        digest,
        config: Some(m.config().digest().to_string()),
        layers_size: Some(layers_size(m)?),
    })
}

pub fn parse_raw(bytes: &[u8]) -> Result<Raw, String> {
    let digest = sha256_digest(bytes);
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    if v.get("schemaVersion").and_then(|s| s.as_u64()) == Some(1) {
        return Err("schema 1 manifests are not supported (the image is too old for registries to serve)".into());
    }
    if let Some(list) = v.get("manifests") {
        check_index_len(list.as_array().map_or(0, Vec::len))?;
        let idx: ImageIndex = serde_json::from_value(v).map_err(|e| format!("bad index: {e}"))?;
        Ok(Raw::Index(index_images(&idx, Some(digest))?))
    } else {
        let m: ImageManifest = serde_json::from_value(v).map_err(|e| format!("bad manifest: {e}"))?;
        Ok(Raw::Manifest(manifest_image(&m, digest)?))
    }
}

/// `docker manifest inspect --verbose REF`: an object for one manifest, an
/// array for a list. The list's own digest is not in it.
pub fn parse_manifest_verbose(bytes: &[u8]) -> Result<Inspection, String> {
    #[derive(Deserialize)]
    struct Verbose {
        #[serde(rename = "Descriptor")]
        descriptor: Descriptor,
        #[serde(rename = "SchemaV2Manifest")]
        docker: Option<ImageManifest>,
        #[serde(rename = "OCIManifest")]
        oci: Option<ImageManifest>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        List(Vec<Verbose>),
        One(Box<Verbose>),
    }
    let shape: Shape = serde_json::from_slice(bytes).map_err(|e| format!("unexpected `docker manifest inspect` output: {e}"))?;
    let image = |v: &Verbose| -> Result<Image, String> {
        let m = v.docker.as_ref().or(v.oci.as_ref()).ok_or("manifest of an unsupported media type")?;
        let mut img = manifest_image(m, v.descriptor.digest().to_string())?;
        img.platform = platform_of(&v.descriptor)?;
        Ok(img)
    };
    match shape {
        Shape::One(v) => {
            let img = image(&v)?;
            Ok(Inspection { digest: Some(img.digest.clone()), index: false, images: vec![img], attestations: 0 })
        }
        Shape::List(list) => {
            check_index_len(list.len())?;
            let mut images = Vec::new();
            let mut attestations = 0;
            for v in &list {
                if is_attestation(&v.descriptor)? {
                    attestations += 1;
                } else {
                    images.push(image(v)?);
                }
            }
            Ok(Inspection { digest: None, index: true, images, attestations })
        }
    }
}

/// `docker buildx imagetools inspect --format '{{json .}}' REF`. Its `image`
/// is one config object for a single platform and a map keyed by platform for
/// several; the map keys drop arm64's `v8`, so platforms come from the objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildxSummary {
    pub digest: String,
    pub index: bool,
    pub platforms: Vec<Platform>,
}

pub fn parse_buildx_json(bytes: &[u8]) -> Result<BuildxSummary, String> {
    #[derive(Deserialize)]
    struct Top {
        manifest: Desc,
        image: Option<ImageField>,
    }
    #[derive(Deserialize)]
    struct Desc {
        digest: String,
        #[serde(rename = "mediaType", default)]
        media_type: String,
        manifests: Option<Vec<serde_json::Value>>,
    }
    #[derive(Deserialize)]
    struct Cfg {
        os: String,
        architecture: String,
        variant: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ImageField {
        One(Cfg),
        Many(BTreeMap<String, Cfg>),
    }
    let top: Top = serde_json::from_slice(bytes).map_err(|e| format!("unexpected `imagetools inspect` output: {e}"))?;
    check_index_len(top.manifest.manifests.as_ref().map_or(0, Vec::len))?;
    let index = top.manifest.manifests.is_some() || top.manifest.media_type.contains("list") || top.manifest.media_type.contains("index");
    let platforms = match top.image {
        None => Vec::new(),
        Some(ImageField::One(c)) => vec![Platform::from_registry(&c.os, &c.architecture, c.variant.as_deref())?],
        Some(ImageField::Many(m)) => {
            m.values().map(|c| Platform::from_registry(&c.os, &c.architecture, c.variant.as_deref())).collect::<Result<_, _>>()?
        }
    };
    Ok(BuildxSummary { digest: top.manifest.digest, index, platforms })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(path: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn plats(i: &Inspection) -> Vec<String> {
        i.platforms().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn raw_index_digest_is_sha_of_bytes() {
        let Raw::Index(i) = parse_raw(&data("buildx-0.10.5/inspect-raw-multi.json")).unwrap() else { panic!() };
        assert_eq!(i.digest.as_deref(), Some("sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc"));
        assert_eq!(plats(&i), ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(i.images[1].digest, "sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb");
        assert_eq!(i.images[0].config, None);
    }

    #[test]
    fn raw_single_manifest_has_config() {
        let Raw::Manifest(m) = parse_raw(&data("buildx-0.10.5/inspect-raw-single.json")).unwrap() else { panic!() };
        assert_eq!(m.digest, "sha256:0c09c22ce5f030c154074639f15f9238648587160b93f65483f271bbfc14ed54");
        assert!(m.config.as_deref().unwrap().starts_with("sha256:"));
        assert!(m.layers_size.unwrap() > 0);
        let Raw::Manifest(child) = parse_raw(&data("buildx-0.10.5/inspect-raw-multi-arm64-child.json")).unwrap() else { panic!() };
        assert_eq!(child.digest, "sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb");
        assert_eq!(child.config.as_deref(), Some("sha256:6cd9ebad1b879416275d5874656a2674b855ba1ed618301d66be8cbcece448bb"));
    }

    #[test]
    fn raw_oci_index_drops_attestations() {
        let Raw::Index(i) = parse_raw(&data("buildx-0.10.5/inspect-raw-oci-attest.json")).unwrap() else { panic!() };
        assert_eq!(plats(&i), ["linux/amd64", "linux/arm64"]);
        assert_eq!(i.attestations, 1);
        let Raw::Index(i) = parse_raw(&data("buildx-0.10.5/inspect-raw-one-plus-attest.json")).unwrap() else { panic!() };
        assert_eq!((plats(&i), i.attestations), (vec!["linux/amd64".to_string()], 1));
    }

    #[test]
    fn raw_wrapped_single_after_create() {
        let Raw::Index(i) = parse_raw(&data("buildx-0.10.5/inspect-raw-after-create-single.json")).unwrap() else { panic!() };
        assert_eq!(i.images.len(), 1);
        assert_eq!(i.images[0].digest, "sha256:0c09c22ce5f030c154074639f15f9238648587160b93f65483f271bbfc14ed54");
    }

    #[test]
    fn verbose_list_and_single() {
        let i = parse_manifest_verbose(&data("docker-cli-28.2/manifest-inspect-v-multi.json")).unwrap();
        assert!(i.index && i.digest.is_none());
        assert_eq!(plats(&i), ["linux/amd64", "linux/arm64/v8"]);
        assert_eq!(i.images[1].config.as_deref(), Some("sha256:6cd9ebad1b879416275d5874656a2674b855ba1ed618301d66be8cbcece448bb"));
        let i = parse_manifest_verbose(&data("docker-cli-28.2/manifest-inspect-v-single.json")).unwrap();
        assert!(!i.index);
        assert_eq!(i.digest.as_deref(), Some("sha256:0c09c22ce5f030c154074639f15f9238648587160b93f65483f271bbfc14ed54"));
        assert_eq!(plats(&i), ["linux/amd64"]);
        assert_eq!(i.images[0].config.as_deref(), Some("sha256:b1be06c2c51d56776882bff72a030dc15c2a1faeaf227ca4eb606e7c41760cd9"));
    }

    #[test]
    fn verbose_oci_with_attestation() {
        let i = parse_manifest_verbose(&data("docker-cli-28.2/manifest-inspect-v-oci-attest.json")).unwrap();
        assert_eq!(plats(&i), ["linux/amd64", "linux/arm64"]);
        assert_eq!(i.attestations, 1);
        assert_eq!(i.images[0].config.as_deref(), Some("sha256:d0299713f0758f7fec10184ff1b13c3216b0ac0688054c21ddfdd93ced4cdc75"));
        let i = parse_manifest_verbose(&data("docker-cli-28.2/manifest-inspect-v-single-oci.json")).unwrap();
        assert_eq!(i.images[0].config.as_deref(), Some("sha256:0f194215a73dfbfb4be23ca063f9b905582d279d552a5dcec8e85a98aa2c8163"));
    }

    #[test]
    fn verbose_arm_variants() {
        let i = parse_manifest_verbose(&data("docker-cli-28.2/manifest-inspect-v-arm.json")).unwrap();
        assert_eq!(plats(&i), ["linux/amd64", "linux/arm/v7", "linux/arm/v6", "linux/arm64/v8", "linux/386"]);
    }

    #[test]
    fn buildx_json_shapes() {
        let s = parse_buildx_json(&data("buildx-0.10.5/inspect-json-single.json")).unwrap();
        assert_eq!((s.index, s.platforms.len()), (false, 1));
        assert_eq!(s.platforms[0].to_string(), "linux/amd64");
        let s = parse_buildx_json(&data("buildx-0.10.5/inspect-json-one-plus-attest.json")).unwrap();
        assert!(s.index, "one platform plus attestation is still an index");
        assert_eq!(s.platforms[0].to_string(), "linux/amd64");
        let s = parse_buildx_json(&data("buildx-0.10.5/inspect-json-arm.json")).unwrap();
        let mut p: Vec<String> = s.platforms.iter().map(|p| p.to_string()).collect();
        p.sort();
        assert_eq!(p, ["linux/386", "linux/amd64", "linux/arm/v6", "linux/arm/v7", "linux/arm64/v8"]);
        let s = parse_buildx_json(&data("buildx-0.10.5/inspect-json-multi.json")).unwrap();
        assert_eq!(s.digest, "sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc");
    }

    // buildx 0.36.1 (the version on GitHub's runners), recorded from the same kinds of images.
    #[test]
    fn raw_shapes_of_0_36_1() {
        let Raw::Index(i) = parse_raw(&data("buildx-0.36.1/inspect-raw-multi.json")).unwrap() else { panic!() };
        assert_eq!(i.digest.as_deref(), Some("sha256:df824242edfd2b3da91774c63c7d2924579045957f115dcfa2e82c8b84b638ed"));
        assert_eq!((plats(&i), i.attestations), (vec!["linux/amd64".to_string(), "linux/arm64/v8".to_string()], 0));
        assert_eq!(i.images[1].digest, "sha256:b5f2ddbcc02740bf6dba862cc1688abaa696c6e025bd3a25d3769a0cbbe71a89");

        let Raw::Index(i) = parse_raw(&data("buildx-0.36.1/inspect-raw-oci-attest.json")).unwrap() else { panic!() };
        assert_eq!(i.digest.as_deref(), Some("sha256:9a02c3d0cf66622edc620c726da56eccace80dbe488c85ef836d174546d3e0de"));
        assert_eq!((plats(&i), i.attestations), (vec!["linux/amd64".to_string(), "linux/arm64".to_string()], 2));

        let Raw::Manifest(m) = parse_raw(&data("buildx-0.36.1/inspect-raw-single.json")).unwrap() else { panic!() };
        assert_eq!(m.digest, "sha256:3ff82dffe785e942b46b268896530a2c511bc7b634923a4d21a98a1aa22d8933");
        assert!(m.config.is_some() && m.layers_size.unwrap() > 0);

        let Raw::Manifest(c) = parse_raw(&data("buildx-0.36.1/inspect-raw-multi-arm64-child.json")).unwrap() else { panic!() };
        assert_eq!(c.digest, "sha256:b5f2ddbcc02740bf6dba862cc1688abaa696c6e025bd3a25d3769a0cbbe71a89");
        assert_eq!(c.config.as_deref(), Some("sha256:a8893ca2fe3d2b99acc1ba22a841548aecf27620e445c3184b51f9df20e26094"));
    }

    #[test]
    fn raw_after_0_36_1_creates() {
        // --prefer-index=false: the very manifest; without it, a new one-entry list around it.
        let Raw::Manifest(m) = parse_raw(&data("buildx-0.36.1/inspect-raw-after-create-single-carbon-copy.json")).unwrap() else { panic!() };
        assert_eq!(m.digest, "sha256:3ff82dffe785e942b46b268896530a2c511bc7b634923a4d21a98a1aa22d8933");
        let Raw::Index(i) = parse_raw(&data("buildx-0.36.1/inspect-raw-after-create-single-wraps-index.json")).unwrap() else { panic!() };
        assert_eq!(i.digest.as_deref(), Some("sha256:34ec7e7d2b9642e09b759e1e3348d78d48760e547231e56070201db112d6aa67"));
        assert_eq!(i.images.len(), 1);
        assert_eq!(i.images[0].digest, "sha256:3ff82dffe785e942b46b268896530a2c511bc7b634923a4d21a98a1aa22d8933");
    }

    #[test]
    fn buildx_json_shapes_of_0_36_1() {
        let s = parse_buildx_json(&data("buildx-0.36.1/inspect-json-multi.json")).unwrap();
        assert_eq!(s.digest, "sha256:df824242edfd2b3da91774c63c7d2924579045957f115dcfa2e82c8b84b638ed");
        assert!(s.index);
        let mut p: Vec<String> = s.platforms.iter().map(|p| p.to_string()).collect();
        p.sort();
        assert_eq!(p, ["linux/amd64", "linux/arm64/v8"], "the map key drops v8; the object keeps it");

        let s = parse_buildx_json(&data("buildx-0.36.1/inspect-json-oci-attest.json")).unwrap();
        assert_eq!(s.digest, "sha256:9a02c3d0cf66622edc620c726da56eccace80dbe488c85ef836d174546d3e0de");
        assert!(s.index);
        let mut p: Vec<String> = s.platforms.iter().map(|p| p.to_string()).collect();
        p.sort();
        assert_eq!(p, ["linux/amd64", "linux/arm64"], "attestations are not platforms");

        let s = parse_buildx_json(&data("buildx-0.36.1/inspect-json-single.json")).unwrap();
        assert_eq!((s.index, s.digest.as_str()), (false, "sha256:3ff82dffe785e942b46b268896530a2c511bc7b634923a4d21a98a1aa22d8933"));
        assert_eq!(s.platforms[0].to_string(), "linux/amd64");

        let s = parse_buildx_json(&data("buildx-0.36.1/inspect-json-multi-arm64-child.json")).unwrap();
        assert_eq!((s.index, s.digest.as_str()), (false, "sha256:b5f2ddbcc02740bf6dba862cc1688abaa696c6e025bd3a25d3769a0cbbe71a89"));
        assert_eq!(s.platforms[0].to_string(), "linux/arm64/v8");
    }

    #[test]
    fn absurd_layer_sizes_are_refused_and_sums_saturate() {
        let manifest = |sizes: &[u64]| {
            let layers: Vec<_> = sizes
                .iter()
                .map(|s| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": format!("sha256:{}", "b".repeat(64)), "size": s}))
                .collect();
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{}", "c".repeat(64)), "size": 1},
                "layers": layers
            })
            .to_string()
        };
        let size = |sizes: &[u64]| match parse_raw(manifest(sizes).as_bytes()) {
            Ok(Raw::Manifest(m)) => Ok(m.layers_size.unwrap()),
            Ok(_) => panic!(),
            Err(e) => Err(e),
        };
        assert_eq!(size(&[10, 20]), Ok(30));
        assert_eq!(size(&[MAX_LAYER_SIZE; 3]), Ok(3 * MAX_LAYER_SIZE));
        assert!(size(&[u64::MAX, 2]).unwrap_err().contains("more than 1 TiB"));
        assert!(size(&[MAX_LAYER_SIZE + 1]).is_err());
        // A negative size is not a u64: the manifest is refused.
        assert!(parse_raw(manifest(&[1]).replace("\"size\":1}]", "\"size\":-1}]").as_bytes()).is_err());
    }

    #[test]
    fn hostile_platform_fields_are_refused() {
        let index = |os: &str| {
            serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.index.v1+json",
                "manifests": [{
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{}", "a".repeat(64)),
                    "size": 10,
                    "platform": {"os": os, "architecture": "s390x"}
                }]
            })
            .to_string()
        };
        assert!(parse_raw(index("linux").as_bytes()).is_ok());
        let e = parse_raw(index("linux\n::warning title=INJ::x\r::notice::y").as_bytes()).unwrap_err();
        assert!(e.contains("platform os") && !e.contains(['\n', '\r']), "{e}");
    }

    #[test]
    fn select_matches_and_lists_what_exists() {
        let Raw::Index(i) = parse_raw(&data("buildx-0.10.5/inspect-raw-multi.json")).unwrap() else { panic!() };
        let arm = i.select(&["linux/arm64".parse().unwrap()]).unwrap();
        assert_eq!(arm[0].platform.as_ref().unwrap().to_string(), "linux/arm64/v8");
        let e = i.select(&["linux/s390x".parse().unwrap()]).unwrap_err();
        assert_eq!(e, "platform linux/s390x is not in the source; it has: linux/amd64, linux/arm64/v8");
        assert_eq!(i.select(&[]).unwrap().len(), 2);
    }
}

#[cfg(test)]
mod index_cap_tests {
    use super::*;

    fn index_of(n: usize) -> Vec<u8> {
        let d = format!("sha256:{}", "a".repeat(64));
        let entries: Vec<String> = (0..n)
            .map(|i| format!(r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{d}","size":1,"platform":{{"os":"linux","architecture":"a{i}"}}}}"#))
            .collect();
        format!(r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}"#, entries.join(",")).into_bytes()
    }

    #[test]
    fn an_index_of_more_than_1000_entries_is_refused_when_parsed() {
        // Audit 2 #2: 3,000 platforms meant 3,000 child reads before any cap.
        assert!(parse_raw(&index_of(1000)).is_ok());
        let Err(e) = parse_raw(&index_of(3000)) else { panic!("a 3,000-entry index was accepted") };
        assert!(e.contains("3000") && e.contains("1000"), "{e}");
        // The docker readers' shapes too.
        let verbose: Vec<String> = (0..1001)
            .map(|i| format!(r#"{{"Descriptor":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":1,"platform":{{"os":"linux","architecture":"a{i}"}}}}}}"#, "b".repeat(64)))
            .collect();
        let e = parse_manifest_verbose(format!("[{}]", verbose.join(",")).as_bytes()).unwrap_err();
        assert!(e.contains("1000"), "{e}");
        let many: Vec<String> = (0..1001).map(|_| "{}".to_string()).collect();
        let buildx = format!(r#"{{"manifest":{{"digest":"sha256:{}","mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{}]}}}}"#, "c".repeat(64), many.join(","));
        let e = parse_buildx_json(buildx.as_bytes()).unwrap_err();
        assert!(e.contains("1000"), "{e}");
    }
}
