//! The docker CLI readers: `docker buildx imagetools inspect --raw` (exact
//! registry bytes, one manifest per call) and `docker manifest inspect
//! --verbose` (every child manifest in one call, no daemon needed).

use crate::ctx::Ctx;
use crate::diagnose::Classify;
use crate::family::Family;
use crate::docker::Cmd;
use crate::inspect::parse::{self, Inspection, Raw};
use crate::inspect::Inspector;
use crate::reference::ImageRef;
use crate::step_error::StepError;

/// Which docker CLI reader a run uses (the engine decides: `EngineKind::reader`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reader {
    Buildx,
    ManifestCli,
}

impl Reader {
    pub fn boxed(self) -> Box<dyn Inspector> {
        match self {
            Reader::Buildx => Box::new(Buildx),
            Reader::ManifestCli => Box::new(ManifestCli),
        }
    }
}

/// `docker buildx imagetools inspect --raw`: exact registry bytes, one manifest per call.
pub struct Buildx;

/// `docker manifest inspect --verbose`: every child manifest in one call, no daemon needed.
pub struct ManifestCli;

/// A failure that is an answer: the registry has no such reference.
fn absent<T>(r: Result<T, StepError>) -> Result<Option<T>, StepError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.family() == Family::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

impl Inspector for ManifestCli {
    fn inspect(&self, ctx: &Ctx, reference: &ImageRef, _want_platform: bool) -> Result<Option<Inspection>, StepError> {
        let reference = reference.to_string();
        let mut args = vec!["manifest", "inspect"];
        args.extend(ctx.insecure_flag(&reference));
        args.extend(["--verbose", "--", &reference]);
        let Some(out) = absent(ctx.run_step(Cmd::new(args).timeout(ctx.timeouts.inspect)))? else {
            return Ok(None);
        };
        parse::parse_manifest_verbose(&out.stdout).map(Some).map_err(|m| parse_error(&reference, m))
    }

    fn fill_configs(&self, _: &Ctx, _: &ImageRef, _: &mut Inspection, _: &[String]) -> Result<(), StepError> {
        Ok(()) // the verbose output already carried them
    }
}

impl Inspector for Buildx {
    fn inspect(&self, ctx: &Ctx, reference: &ImageRef, want_platform: bool) -> Result<Option<Inspection>, StepError> {
        let reference = reference.to_string();
        let Some(out) = absent(ctx.run_step(raw_cmd(ctx, &reference)))? else {
            return Ok(None);
        };
        let mut insp = match parse::parse_raw(&out.stdout) {
            Ok(Raw::Index(i)) => i,
            Ok(Raw::Manifest(img)) => Inspection { digest: Some(img.digest.clone()), index: false, images: vec![img], attestations: 0 },
            Err(m) => return Err(parse_error(&reference, m)),
        };
        // A single manifest's platform lives in its config; buildx's summary has it.
        if want_platform && !insp.index {
            let out = ctx.run_step(
                Cmd::new(["buildx", "imagetools", "inspect", "--format", "{{json .}}", "--", &reference]).timeout(ctx.timeouts.inspect),
            )?;
            let summary = parse::parse_buildx_json(&out.stdout).map_err(|m| parse_error(&reference, m))?;
            insp.images[0].platform = summary.platforms.into_iter().next();
        }
        Ok(Some(insp))
    }

    fn fill_configs(&self, ctx: &Ctx, repository: &ImageRef, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
        for img in insp.images.iter_mut().filter(|i| i.config.is_none() && digests.contains(&i.digest)) {
            let reference = repository.at_digest(&img.digest);
            let out = ctx.run_step(raw_cmd(ctx, &reference))?;
            match parse::parse_raw(&out.stdout) {
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
}

fn raw_cmd(ctx: &Ctx, reference: &str) -> Cmd {
    Cmd::new(["buildx", "imagetools", "inspect", "--raw", "--", reference]).timeout(ctx.timeouts.inspect)
}

fn parse_error(reference: &str, message: String) -> StepError {
    StepError::parse(format!("inspect {reference}"), message)
}
