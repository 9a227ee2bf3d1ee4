//! Asks a registry what a reference holds, with as few requests as it can:
//! the top level first, child manifests only when a decision needs them.

use crate::diagnose::{self, Family};
use crate::docker::{Cmd, DockerError};
use crate::engine::{insecure_flag, Ctx};
use crate::inspect::{self, Inspection, Raw};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `docker buildx imagetools inspect --raw`: exact registry bytes, one manifest per call.
    Buildx,
    /// `docker manifest inspect --verbose`: every child manifest in one call, no daemon needed.
    ManifestCli,
}

fn not_found(e: &DockerError) -> bool {
    diagnose::classify(e) == Family::NotFound
}

/// `Ok(None)` when the registry has no such reference.
pub fn inspect(ctx: &Ctx, tool: Tool, reference: &str, want_platform: bool) -> Result<Option<Inspection>, DockerError> {
    let result = match tool {
        Tool::ManifestCli => {
            let mut args = vec!["manifest", "inspect"];
            args.extend(insecure_flag(reference));
            args.extend(["--verbose", reference]);
            ctx.run(Cmd::new(args).timeout(ctx.timeouts.inspect)).map(|out| {
                inspect::parse_manifest_verbose(&out.stdout).map_err(|m| parse_error(reference, m))
            })
        }
        Tool::Buildx => ctx.run(raw_cmd(ctx, reference)).map(|out| match inspect::parse_raw(&out.stdout) {
            Ok(Raw::Index(i)) => Ok(i),
            Ok(Raw::Manifest(img)) => {
                Ok(Inspection { digest: Some(img.digest.clone()), index: false, images: vec![img], attestations: 0 })
            }
            Err(m) => Err(parse_error(reference, m)),
        }),
    };
    let mut insp = match result {
        Ok(parsed) => parsed?,
        Err(e) if not_found(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    // A single manifest's platform lives in its config; buildx's summary has it.
    if tool == Tool::Buildx && want_platform && !insp.index {
        let out = ctx.run(
            Cmd::new(["buildx", "imagetools", "inspect", "--format", "{{json .}}", reference]).timeout(ctx.timeouts.inspect),
        )?;
        let summary = inspect::parse_buildx_json(&out.stdout).map_err(|m| parse_error(reference, m))?;
        insp.images[0].platform = summary.platforms.into_iter().next();
    }
    Ok(Some(insp))
}

/// Fills in config digests (and layer sizes) for the given child manifests.
pub fn fill_configs(ctx: &Ctx, tool: Tool, name: &str, insp: &mut Inspection, digests: &[String]) -> Result<(), DockerError> {
    if tool == Tool::ManifestCli {
        return Ok(()); // the verbose output already carried them
    }
    for img in insp.images.iter_mut().filter(|i| i.config.is_none() && digests.contains(&i.digest)) {
        let reference = format!("{name}@{}", img.digest);
        let out = ctx.run(raw_cmd(ctx, &reference))?;
        match inspect::parse_raw(&out.stdout) {
            Ok(Raw::Manifest(m)) => {
                img.config = m.config;
                img.layers_size = m.layers_size;
            }
            Ok(Raw::Index(_)) => return Err(parse_error(&reference, "a nested index is not supported".into())),
            Err(m) => return Err(parse_error(&reference, m)),
        }
    }
    Ok(())
}

fn raw_cmd(ctx: &Ctx, reference: &str) -> Cmd {
    Cmd::new(["buildx", "imagetools", "inspect", "--raw", reference]).timeout(ctx.timeouts.inspect)
}

fn parse_error(reference: &str, message: String) -> DockerError {
    DockerError {
        command: format!("inspect {reference}"),
        status: None,
        stderr: format!("could not read what the registry returned: {message}"),
        timed_out: false,
        interrupted: false,
    }
}
