//! Asks a registry what a reference holds, with as few requests as it can:
//! the top level first, child manifests only when a decision needs them.
//!
//! [`Inspector`] is the seam: the run holds one inspector, chosen once per
//! session ([`choose`]), and never asks how it talks to the registry. Two
//! implementations drive the docker CLI; a native HTTP client implements the
//! same trait (see `src/registry/`) and is chosen in [`choose`] alone.

use crate::diagnose::Classify;
use crate::docker::Cmd;
use crate::engine::{Ctx, EngineKind};
use crate::family::Family;
use crate::inspect::{self, Image, Inspection, Raw};
use crate::plan::{self, Verdict};
use crate::step_error::StepError;

/// Reads manifests from registries. Implementations make their requests through
/// `ctx` where they can (retries, timeouts, cancellation and events come with it).
pub trait Inspector: Sync {
    /// What `reference` holds: `Ok(None)` when the registry has no such reference.
    /// `want_platform`: a single manifest's platform is needed (it lives in its config).
    fn inspect(&self, ctx: &Ctx, reference: &str, want_platform: bool) -> Result<Option<Inspection>, StepError>;

    /// Fills in config digests (and layer sizes) for the child manifests of
    /// `name` (a reference without tag) listed in `digests`.
    fn fill_configs(&self, ctx: &Ctx, name: &str, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError>;

    /// The top-level digest of `reference`, `Ok(None)` when absent. An HTTP
    /// client answers with one HEAD request; the docker CLI has only `inspect`.
    fn head_digest(&self, ctx: &Ctx, reference: &str) -> Result<Option<String>, StepError> {
        Ok(self.inspect(ctx, reference, false)?.and_then(|i| i.digest))
    }

    /// `head_digest` of `reference` is cheap (one HEAD, no process, no pull):
    /// the run then asks digests first and reads content only when they differ.
    fn head_first(&self, _reference: &str) -> bool {
        false
    }

    /// The references the run is about to ask about: an HTTP inspector may
    /// fetch their pull tokens in a few batched requests.
    fn expect(&self, _references: &[String]) {}
}

/// The run's inspector, chosen once per session: the one place an inspector
/// is wired in. `--inspect docker`: the docker CLI inspector of `engine`
/// (detected up front). `registry`: the HTTP read path alone. `auto`: the HTTP
/// read path, falling back per registry to `fallback` (a docker inspector),
/// with `before_docker` (the run's logins) run before its first docker call.
/// `Err`: the registry client could not be built (a message for users).
pub fn choose<'s>(
    session: &'s crate::session::Session,
    engine: EngineKind,
    fallback: &'s dyn Inspector,
    before_docker: &'s (dyn Fn() + Sync),
) -> Result<Box<dyn Inspector + 's>, String> {
    use crate::config::InspectChoice;
    use crate::engine::registry_inspector::RegistryInspector;
    match session.settings.inspect {
        InspectChoice::Docker => Ok(for_engine(engine)),
        InspectChoice::Registry => Ok(Box::new(RegistryInspector::new(session.registry()?, None, before_docker))),
        InspectChoice::Auto => Ok(Box::new(RegistryInspector::new(session.registry()?, Some(fallback), before_docker))),
    }
}

/// The docker-CLI inspector for an engine. imagetools needs the registry's exact digests and
/// gains from reading only the top level. The daemon engine re-compresses, so its
/// targets never share manifest digests with the source and configs are always
/// needed: one `docker manifest inspect --verbose` gets them all, where buildx
/// needs a call per platform (measured by scripts/bench.sh: half the time for the
/// same requests).
pub fn for_engine(engine: EngineKind) -> Box<dyn Inspector> {
    match engine {
        EngineKind::Imagetools => Box::new(Buildx),
        EngineKind::Daemon => Box::new(ManifestCli),
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
    fn inspect(&self, ctx: &Ctx, reference: &str, _want_platform: bool) -> Result<Option<Inspection>, StepError> {
        let mut args = vec!["manifest", "inspect"];
        args.extend(ctx.insecure_flag(reference));
        args.extend(["--verbose", "--", reference]);
        let Some(out) = absent(ctx.run_step(Cmd::new(args).timeout(ctx.timeouts.inspect)))? else {
            return Ok(None);
        };
        inspect::parse_manifest_verbose(&out.stdout).map(Some).map_err(|m| parse_error(reference, m))
    }

    fn fill_configs(&self, _: &Ctx, _: &str, _: &mut Inspection, _: &[String]) -> Result<(), StepError> {
        Ok(()) // the verbose output already carried them
    }
}

impl Inspector for Buildx {
    fn inspect(&self, ctx: &Ctx, reference: &str, want_platform: bool) -> Result<Option<Inspection>, StepError> {
        let Some(out) = absent(ctx.run_step(raw_cmd(ctx, reference)))? else {
            return Ok(None);
        };
        let mut insp = match inspect::parse_raw(&out.stdout) {
            Ok(Raw::Index(i)) => i,
            Ok(Raw::Manifest(img)) => Inspection { digest: Some(img.digest.clone()), index: false, images: vec![img], attestations: 0 },
            Err(m) => return Err(parse_error(reference, m)),
        };
        // A single manifest's platform lives in its config; buildx's summary has it.
        if want_platform && !insp.index {
            let out = ctx.run_step(
                Cmd::new(["buildx", "imagetools", "inspect", "--format", "{{json .}}", "--", reference]).timeout(ctx.timeouts.inspect),
            )?;
            let summary = inspect::parse_buildx_json(&out.stdout).map_err(|m| parse_error(reference, m))?;
            insp.images[0].platform = summary.platforms.into_iter().next();
        }
        Ok(Some(insp))
    }

    fn fill_configs(&self, ctx: &Ctx, name: &str, insp: &mut Inspection, digests: &[String]) -> Result<(), StepError> {
        for img in insp.images.iter_mut().filter(|i| i.config.is_none() && digests.contains(&i.digest)) {
            let reference = format!("{name}@{}", img.digest);
            let out = ctx.run_step(raw_cmd(ctx, &reference))?;
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
}

fn raw_cmd(ctx: &Ctx, reference: &str) -> Cmd {
    Cmd::new(["buildx", "imagetools", "inspect", "--raw", "--", reference]).timeout(ctx.timeouts.inspect)
}

fn parse_error(reference: &str, message: String) -> StepError {
    StepError::parse(format!("inspect {reference}"), message)
}

/// Compares the selected source images with what a target holds, fetching
/// config digests only when manifest digests alone cannot decide (a target
/// written by the daemon engine holds the same configs under other digests).
/// Lives beside the inspector because it is the one decision that needs more I/O.
pub fn compare_with_configs(
    inspector: &dyn Inspector,
    ctx: &Ctx,
    source_name: &str,
    source: &Inspection,
    selected: &[Image],
    target_ref: &str,
    target: Option<Inspection>,
) -> Result<Verdict, StepError> {
    let Some(mut dst) = target else {
        return Ok(plan::compare(selected, None));
    };
    match plan::compare(selected, Some(&dst)) {
        Verdict::NeedConfigs => {
            let (want_src, want_dst) = plan::missing_configs(selected, &dst);
            let mut src = source.clone();
            inspector.fill_configs(ctx, source_name, &mut src, &want_src)?;
            inspector.fill_configs(ctx, crate::reference::without_tag(target_ref), &mut dst, &want_dst)?;
            let selected: Vec<Image> = selected
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    if let Some(f) = src.images.iter().find(|i| i.digest == s.digest) {
                        s.config = f.config.clone();
                    }
                    s
                })
                .collect();
            Ok(plan::compare(&selected, Some(&dst)))
        }
        v => Ok(v),
    }
}
