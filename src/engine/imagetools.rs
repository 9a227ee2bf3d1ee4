//! Registry-to-registry copies with `docker buildx imagetools create`: no
//! local disk, and every manifest keeps its digest.

use crate::docker::Cmd;
use crate::ctx::Ctx;
use crate::failure::Failure;
use crate::inspect::parse::{Image, Inspection};
use crate::reference::ImageRef;

/// What the installed buildx can do, read once from its help text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// `--prefer-index=false` copies a single manifest as is (buildx 0.11+);
    /// without it buildx wraps the manifest in a one-entry index.
    pub prefer_index: bool,
    /// `--metadata-file` writes the pushed descriptor as JSON (newer buildx,
    /// e.g. 0.36.1); without it the digest is read from the progress text.
    pub metadata_file: bool,
}

pub fn caps_from_help(help: &str) -> Caps {
    Caps { prefer_index: help.contains("--prefer-index"), metadata_file: help.contains("--metadata-file") }
}

pub fn detect_caps(ctx: &Ctx) -> Caps {
    match ctx.run_once(Cmd::new(["buildx", "imagetools", "create", "--help"]).timeout(ctx.timeouts.quick)) {
        Ok(out) => caps_from_help(&format!("{}{}", out.stdout_text(), out.stderr)),
        Err(_) => Caps::default(),
    }
}

/// The `imagetools create` arguments that copy `selected` of `source` to `target`.
pub fn create_args(caps: Caps, source: &ImageRef, inspected: &Inspection, selected: &[Image], target: &str) -> Vec<String> {
    let mut args: Vec<String> = ["buildx", "imagetools", "create"].map(String::from).to_vec();

    let whole = selected.len() == inspected.images.len();
    let sources: Vec<String> = match (&inspected.digest, whole && inspected.index) {
        // The whole index, attestations included: its digest is preserved.
        (Some(top), true) => vec![source.at_digest(top)],
        _ => selected.iter().map(|i| source.at_digest(&i.digest)).collect(),
    };
    if sources.len() == 1 && !(whole && inspected.index) && caps.prefer_index {
        args.push("--prefer-index=false".into());
    }
    args.extend(["-t".to_string(), target.to_string(), "--".to_string()]);
    args.extend(sources);
    args
}

/// Copies and returns the digest buildx pushed: from `--metadata-file` when the
/// plugin has it, else from its progress text. No digest is an error, never "".
pub fn copy(ctx: &Ctx, caps: Caps, source: &ImageRef, inspected: &Inspection, selected: &[Image], target: &str) -> Result<String, Failure> {
    ctx.step(format!("copy to {target}"));
    let digest = create(ctx, caps, create_args(caps, source, inspected, selected, target), target)?;
    if let Some(want) = expected_digest(caps, inspected, selected) {
        if digest != want {
            ctx.warn(format!("{target} was pushed as {digest}, not the source's {want}: the next run will see it as different"));
        }
    }
    Ok(digest)
}

/// The `imagetools create` arguments that copy one manifest or index
/// (`source`, at its digest) to `target` byte for byte: a single index
/// source keeps its bytes, a single manifest does with `--prefer-index=false`.
pub fn exact_args(source: &str, target: &str) -> Vec<String> {
    ["buildx", "imagetools", "create", "--prefer-index=false", "-t", target, "--", source].map(String::from).to_vec()
}

/// Copies an attachment (a signature, an attestation, a referrers index)
/// byte for byte; `digest`: the source's, which the copy must keep.
pub fn copy_exact(ctx: &Ctx, caps: Caps, source: &str, digest: &str, target: &str) -> Result<(), Failure> {
    if !caps.prefer_index {
        return Err(Failure::new(
            format!("{target} was not written: this buildx wraps a single manifest in a new index (no --prefer-index)"),
            "update buildx to 0.11 or later (docker buildx version), or set SIGNATURES=off",
        ));
    }
    ctx.step(format!("copy to {target}"));
    let pushed = create(ctx, caps, exact_args(source, target), target)?;
    if pushed != digest {
        return Err(Failure::new(
            format!("{target} was pushed as {pushed}, not the source's {digest}: a signature is only valid byte for byte"),
            "report this with `docker buildx version`; meanwhile set SIGNATURES=off",
        ));
    }
    Ok(())
}

/// The `imagetools create` arguments that write an index of `descriptors`
/// (each JSON, every field kept) to `target`; buildx reads each manifest
/// from the target's repository, where it must already be.
pub fn index_args(descriptors: &[serde_json::Value], target: &str) -> Vec<String> {
    let mut args: Vec<String> = ["buildx", "imagetools", "create", "-t", target, "--"].map(String::from).to_vec();
    args.extend(descriptors.iter().map(|d| d.to_string()));
    args
}

/// Writes a referrers index that joins two lists; returns its digest.
pub fn write_index(ctx: &Ctx, caps: Caps, descriptors: &[serde_json::Value], target: &str) -> Result<String, Failure> {
    ctx.step(format!("write the referrers index {target}"));
    create(ctx, caps, index_args(descriptors, target), target)
}

/// Runs one `imagetools create` and returns the digest it pushed.
fn create(ctx: &Ctx, caps: Caps, mut args: Vec<String>, target: &str) -> Result<String, Failure> {
    let metadata = if caps.metadata_file {
        let file = tempfile::Builder::new()
            .prefix("imgsync-buildx-")
            .suffix(".json")
            .tempfile()
            .map_err(|e| Failure::new(format!("could not create a temp file for buildx's --metadata-file: {e}"), "check that TMPDIR is writable"))?;
        args.splice(3..3, ["--metadata-file".to_string(), file.path().display().to_string()]);
        Some(file)
    } else {
        None
    };
    let out = ctx.run(Cmd::new(args).timeout(ctx.timeouts.transfer)).map_err(|e| Failure::from_docker(&e))?;
    let progress = format!("{}\n{}", out.stderr, out.stdout_text());
    let digest = match &metadata {
        Some(file) => {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            metadata_digest(&text).or_else(|| pushed_digest(&progress))
        }
        None => pushed_digest(&progress),
    };
    digest.ok_or_else(|| {
        Failure::new(
            format!(
                "docker buildx imagetools create reported no pushed digest for {target} ({}); the copy is unconfirmed",
                if metadata.is_some() { "neither in --metadata-file nor in its output" } else { "none in its output" }
            ),
            "run the sync again; if this repeats, check the buildx version (docker buildx version) or use --engine daemon",
        )
    })
}

/// The digest a copy must keep: the whole index's, or a single manifest's carbon copy.
pub fn expected_digest(caps: Caps, inspected: &Inspection, selected: &[Image]) -> Option<String> {
    let whole = selected.len() == inspected.images.len();
    if whole && inspected.index {
        inspected.digest.clone()
    } else if selected.len() == 1 && caps.prefer_index {
        Some(selected[0].digest.clone())
    } else {
        None
    }
}

/// The digest in buildx's `--metadata-file` JSON: `containerimage.digest`, or
/// the digest of `containerimage.descriptor`.
pub fn metadata_digest(json: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let d = v.get("containerimage.digest").and_then(|d| d.as_str()).or_else(|| {
        v.get("containerimage.descriptor").and_then(|d| d.get("digest")).and_then(|d| d.as_str())
    })?;
    d.starts_with("sha256:").then(|| d.to_string())
}

/// The digest buildx reports pushing: `#1 0.064 pushing sha256:... to REF`.
pub fn pushed_digest(output: &str) -> Option<String> {
    output.lines().rev().find_map(|l| {
        let rest = &l[l.find("pushing sha256:")? + "pushing ".len()..];
        rest.split_whitespace().next().map(str::to_string)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::parse::{parse_raw, Raw};

    fn data(p: &str) -> String {
        data_of("0.10.5", p)
    }

    fn data_of(version: &str, p: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/data/buildx-{version}/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn new(p: &str) -> String {
        data_of("0.36.1", p)
    }

    fn index(p: &str) -> Inspection {
        index_of("0.10.5", p)
    }

    fn index_of(version: &str, p: &str) -> Inspection {
        match parse_raw(data_of(version, p).as_bytes()).unwrap() {
            Raw::Index(i) => i,
            Raw::Manifest(m) => Inspection { digest: Some(m.digest.clone()), index: false, images: vec![m], attestations: 0 },
        }
    }

    #[test]
    fn caps_from_recorded_help() {
        assert_eq!(caps_from_help(&data("create-help.txt")), Caps { prefer_index: false, metadata_file: false });
        assert!(caps_from_help("      --prefer-index   When only a single source is specified...").prefer_index);
        assert_eq!(caps_from_help(&new("create-help.txt")), Caps { prefer_index: true, metadata_file: true });
    }

    #[test]
    fn digest_from_the_metadata_file_of_0_36_1() {
        // 0.36.1 writes only `containerimage.descriptor`; buildx build also writes `containerimage.digest`.
        for (file, want) in [
            ("create-metadata-multi.json", "sha256:df824242edfd2b3da91774c63c7d2924579045957f115dcfa2e82c8b84b638ed"),
            ("create-metadata-oci-attest.json", "sha256:9a02c3d0cf66622edc620c726da56eccace80dbe488c85ef836d174546d3e0de"),
            ("create-metadata-single-carbon-copy.json", "sha256:3ff82dffe785e942b46b268896530a2c511bc7b634923a4d21a98a1aa22d8933"),
            ("create-metadata-subset-arm64.json", "sha256:b5f2ddbcc02740bf6dba862cc1688abaa696c6e025bd3a25d3769a0cbbe71a89"),
        ] {
            assert_eq!(metadata_digest(&new(file)).as_deref(), Some(want), "{file}");
        }
        assert_eq!(metadata_digest(r#"{"containerimage.digest":"sha256:abc"}"#).as_deref(), Some("sha256:abc"));
        for nothing in ["", "{}", "null", r#"{"containerimage.descriptor":{}}"#, r#"{"containerimage.digest":""}"#, "not json"] {
            assert_eq!(metadata_digest(nothing), None, "{nothing:?}");
        }
    }

    #[test]
    fn digest_from_create_output_of_0_36_1() {
        // The progress text still names the pushed digest (the fallback when the file is empty).
        assert_eq!(
            pushed_digest(&new("create-ok-multi.txt")).as_deref(),
            Some("sha256:df824242edfd2b3da91774c63c7d2924579045957f115dcfa2e82c8b84b638ed")
        );
        assert_eq!(
            pushed_digest(&new("create-ok-single-carbon-copy.txt")).as_deref(),
            Some("sha256:3ff82dffe785e942b46b268896530a2c511bc7b634923a4d21a98a1aa22d8933")
        );
        assert_eq!(
            pushed_digest(&new("create-ok-oci-attest.txt")).as_deref(),
            Some("sha256:9a02c3d0cf66622edc620c726da56eccace80dbe488c85ef836d174546d3e0de")
        );
        for failed in ["err-create-unauthorized-target.txt", "err-create-missing-source.txt"] {
            assert_eq!(pushed_digest(&new(failed)), None, "{failed}");
        }
    }

    #[test]
    fn expected_digests_of_0_36_1_copies() {
        let caps = caps_from_help(&new("create-help.txt"));
        let multi = index_of("0.36.1", "inspect-raw-multi.json");
        assert_eq!(
            expected_digest(caps, &multi, &multi.images).as_deref(),
            metadata_digest(&new("create-metadata-multi.json")).as_deref(),
            "the whole index keeps its digest"
        );
        let arm = multi.select(&["linux/arm64".parse().unwrap()]).unwrap();
        assert_eq!(
            expected_digest(caps, &multi, &arm).as_deref(),
            metadata_digest(&new("create-metadata-subset-arm64.json")).as_deref(),
            "one platform with --prefer-index=false is a carbon copy"
        );
        let single = index_of("0.36.1", "inspect-raw-single.json");
        assert_eq!(
            expected_digest(caps, &single, &single.images).as_deref(),
            metadata_digest(&new("create-metadata-single-carbon-copy.json")).as_deref()
        );
        // 0.10.5 wraps a single manifest in a new list: no digest to expect.
        assert_eq!(expected_digest(Caps::default(), &single, &single.images), None);
        let oci = index_of("0.36.1", "inspect-raw-oci-attest.json");
        assert_eq!(
            expected_digest(caps, &oci, &oci.images).as_deref(),
            metadata_digest(&new("create-metadata-oci-attest.json")).as_deref()
        );
    }

    #[test]
    fn args_for_0_36_1_match_its_recorded_dry_runs() {
        // The subset dry run without --prefer-index=false wrapped the child in a list; with it, the
        // manifest itself. create_args asks for the latter.
        assert!(new("create-dry-run-subset.json").contains("manifest.list.v2+json"));
        assert!(!new("create-dry-run-subset-prefer-index-false.json").contains("\"manifests\""));
        let caps = caps_from_help(&new("create-help.txt"));
        let src = ImageRef::parse("127.0.0.1:5101/library/web:1.0").unwrap();
        let multi = index_of("0.36.1", "inspect-raw-multi.json");
        let arm = multi.select(&["linux/arm64".parse().unwrap()]).unwrap();
        let args = create_args(caps, &src, &multi, &arm, "127.0.0.1:5103/fx/arm:v1");
        assert_eq!(
            args[3..],
            [
                "--prefer-index=false",
                "-t",
                "127.0.0.1:5103/fx/arm:v1",
                "--",
                "127.0.0.1:5101/library/web@sha256:b5f2ddbcc02740bf6dba862cc1688abaa696c6e025bd3a25d3769a0cbbe71a89"
            ]
        );
    }

    #[test]
    fn whole_index_is_copied_by_its_digest() {
        let src = ImageRef::parse("127.0.0.1:5101/fx/multi:v1").unwrap();
        let i = index("inspect-raw-multi.json");
        let args = create_args(Caps::default(), &src, &i, &i.images, "r/ns/multi:v1");
        assert_eq!(
            args[3..],
            ["-t", "r/ns/multi:v1", "--", "127.0.0.1:5101/fx/multi@sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc"]
        );
    }

    #[test]
    fn subset_copies_children_by_digest() {
        let src = ImageRef::parse("127.0.0.1:5101/fx/multi:v1").unwrap();
        let i = index("inspect-raw-multi.json");
        let arm = i.select(&["linux/arm64".parse().unwrap()]).unwrap();
        let args = create_args(Caps { prefer_index: true, metadata_file: false }, &src, &i, &arm, "r/ns/x:v1");
        assert_eq!(
            args[3..],
            [
                "--prefer-index=false",
                "-t",
                "r/ns/x:v1",
                "--",
                "127.0.0.1:5101/fx/multi@sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb"
            ]
        );
        let old = create_args(Caps::default(), &src, &i, &arm, "r/ns/x:v1");
        assert!(!old.iter().any(|a| a.starts_with("--prefer-index")), "0.10.5 has no such flag");
    }

    #[test]
    fn single_manifest_asks_for_a_carbon_copy() {
        let src = ImageRef::parse("127.0.0.1:5101/fx/single:v1").unwrap();
        let i = index("inspect-raw-single.json");
        let args = create_args(Caps { prefer_index: true, metadata_file: false }, &src, &i, &i.images, "r/ns/s:v1");
        assert_eq!(args[3], "--prefer-index=false");
        assert!(args.last().unwrap().ends_with("@sha256:0c09c22ce5f030c154074639f15f9238648587160b93f65483f271bbfc14ed54"));
    }

    #[test]
    fn digest_from_create_output() {
        assert_eq!(
            pushed_digest(&data("create-ok-single-wraps-index.txt")).as_deref(),
            Some("sha256:e28bbd81270c51761ed516b694c67a016ddf3b6c25948456a248fb97b7038e64")
        );
        assert_eq!(
            pushed_digest(&data("create-ok-multi.txt")).as_deref(),
            Some("sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc")
        );
    }
}
