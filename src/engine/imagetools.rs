//! Registry-to-registry copies with `docker buildx imagetools create`: no
//! local disk, and every manifest keeps its digest.

use crate::docker::Cmd;
use crate::engine::{Ctx, Failure};
use crate::inspect::{Image, Inspection};
use crate::reference::ImageRef;

/// What the installed buildx can do, read once from its help text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps {
    /// `--prefer-index=false` copies a single manifest as is (buildx 0.11+);
    /// without it buildx wraps the manifest in a one-entry index.
    pub prefer_index: bool,
}

pub fn caps_from_help(help: &str) -> Caps {
    Caps { prefer_index: help.contains("--prefer-index") }
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

pub fn copy(ctx: &Ctx, caps: Caps, source: &ImageRef, inspected: &Inspection, selected: &[Image], target: &str) -> Result<String, Failure> {
    ctx.step(format!("copy to {target}"));
    let out = ctx
        .run(Cmd::new(create_args(caps, source, inspected, selected, target)).timeout(ctx.timeouts.transfer))
        .map_err(|e| Failure::from_docker(&e))?;
    Ok(pushed_digest(&format!("{}\n{}", out.stderr, out.stdout_text())).unwrap_or_default())
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
    use crate::inspect::{parse_raw, Raw};

    fn data(p: &str) -> String {
        std::fs::read_to_string(format!("{}/tests/data/buildx-0.10.5/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn index(p: &str) -> Inspection {
        match parse_raw(data(p).as_bytes()).unwrap() {
            Raw::Index(i) => i,
            Raw::Manifest(m) => Inspection { digest: Some(m.digest.clone()), index: false, images: vec![m], attestations: 0 },
        }
    }

    #[test]
    fn caps_from_recorded_help() {
        assert_eq!(caps_from_help(&data("create-help.txt")), Caps { prefer_index: false });
        assert!(caps_from_help("      --prefer-index   When only a single source is specified...").prefer_index);
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
        let args = create_args(Caps { prefer_index: true }, &src, &i, &arm, "r/ns/x:v1");
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
        let args = create_args(Caps { prefer_index: true }, &src, &i, &i.images, "r/ns/s:v1");
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
