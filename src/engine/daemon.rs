//! pull/tag/push through the local Docker engine. Each platform is pulled by
//! manifest digest (exactly what was inspected), pushed, and for several
//! platforms joined into one manifest list. Afterwards every reference this
//! entry added is removed, but an image the user already had is never deleted.

use std::collections::HashSet;

use crate::concurrency::bounded_map;
use crate::docker::{Cmd, DockerError};
use crate::ctx::Ctx;
use crate::failure::Failure;
use crate::inspect::parse::Image;
use crate::reference::ImageRef;

/// A local image's references before the run, when it was already there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Existing {
    refs: Vec<String>,
}

/// Most platforms one entry may pull: an index is the registry's to shape,
/// and a few hundred "platforms" would mean as many pulls and local images.
pub const MAX_PLATFORMS: usize = 64;
/// Pulls at once within one entry (entries themselves run `--jobs` at a time).
pub const PULL_JOBS: usize = 4;

/// Refuses more platform images than the engine pulls for one entry (the
/// plan asks before it reads any child manifest).
pub fn check_platforms(images: &[Image]) -> Result<(), Failure> {
    if images.len() > MAX_PLATFORMS {
        return Err(Failure::new(
            format!("the source has {} platform images; the daemon engine pulls at most {MAX_PLATFORMS} per entry", images.len()),
            "pick the platforms you need with --platform=os/arch[,os/arch...] on this line, or use the imagetools engine",
        ));
    }
    Ok(())
}

/// Copies the selected images of `source` to every target reference.
/// Returns one outcome per target: the pushed digest, or why it failed.
/// `local` is every image ID the engine held when the run started.
pub fn copy(ctx: &Ctx, local: &HashSet<String>, source: &ImageRef, images: &[Image], targets: &[String]) -> Vec<Result<String, Failure>> {
    if let Err(f) = check_platforms(images) {
        return targets.iter().map(|_| Err(f.clone())).collect();
    }
    let mut added: Vec<(String, Option<Existing>)> = Vec::new();
    let outcome = pull_all(ctx, local, source, images, &mut added);
    let results = match outcome {
        Err(f) => targets.iter().map(|_| Err(f.clone())).collect(),
        Ok(()) => targets.iter().map(|t| push_one(ctx, source, images, t, &mut added)).collect(),
    };
    clean_up(ctx, &added);
    results
}

/// Every image ID in the engine: taken once, before the run changes anything.
pub fn local_images(ctx: &Ctx) -> Result<HashSet<String>, Failure> {
    let out = ctx
        .run(Cmd::new(["image", "ls", "--all", "--no-trunc", "--quiet"]).timeout(ctx.timeouts.quick))
        .map_err(|e| Failure::from_docker(&e))?;
    Ok(out.stdout_text().lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect())
}

fn pull_all(ctx: &Ctx, local: &HashSet<String>, source: &ImageRef, images: &[Image], added: &mut Vec<(String, Option<Existing>)>) -> Result<(), Failure> {
    let before: Vec<Option<Existing>> = images
        .iter()
        .map(|img| match &img.config {
            Some(id) if local.contains(id) => Some(existing(ctx, id).unwrap_or_default()),
            _ => None,
        })
        .collect();
    // Platforms pull concurrently, each its own download, through a small
    // pool: at most PULL_JOBS threads and pulls, whatever the index holds.
    let pull = |img: &Image| {
        let pinned = source.at_digest(&img.digest);
        ctx.step(format!("pull {}", platform_label(img)));
        ctx.run(Cmd::new(["pull", "--quiet", "--", pinned.as_str()]).timeout(ctx.timeouts.transfer))
            .map(|_| pinned)
            .map_err(|e| Failure::from_docker(&e))
    };
    let pulled = bounded_map(images, PULL_JOBS, pull);
    let mut first_failure = None;
    for (result, existing) in pulled.into_iter().zip(before) {
        match result {
            Ok(pinned) => added.push((pinned, existing)),
            Err(f) => {
                first_failure.get_or_insert(f);
            }
        }
    }
    first_failure.map_or(Ok(()), Err)
}

fn push_one(
    ctx: &Ctx,
    source: &ImageRef,
    images: &[Image],
    target: &str,
    added: &mut Vec<(String, Option<Existing>)>,
) -> Result<String, Failure> {
    let fail = |e: DockerError| Failure::from_docker(&e);
    let name = crate::reference::without_tag(target);
    let mut pushed = Vec::new();
    for img in images {
        let pinned = source.at_digest(&img.digest);
        let existing = added.iter().find(|(r, _)| *r == pinned).and_then(|(_, e)| e.clone());
        ctx.run(Cmd::new(["tag", "--", pinned.as_str(), target]).timeout(ctx.timeouts.quick)).map_err(fail)?;
        if !added.iter().any(|(r, _)| r == target) {
            added.push((target.to_string(), existing.clone()));
        }
        ctx.step(format!("push {} to {target}", platform_label(img)));
        let out = ctx.run(Cmd::new(["push", "--", target]).timeout(ctx.timeouts.transfer)).map_err(fail)?;
        let digest = pushed_digest(&out.stdout_text())
            .ok_or_else(|| Failure::new(format!("`docker push {target}` did not print the pushed digest"), "report this: the docker CLI output was not understood"))?;
        // The push also recorded `name@digest` on the local image.
        added.push((format!("{name}@{digest}"), existing));
        pushed.push((img, digest));
    }
    if let [(_, digest)] = pushed.as_slice() {
        return Ok(digest.clone());
    }
    // Several platforms: one tag that serves each architecture.
    ctx.step(format!("manifest list {target}"));
    let mut create = vec!["manifest".to_string(), "create".into()];
    create.extend(ctx.insecure_flag(target).map(str::to_string));
    create.extend(["--".to_string(), target.to_string()]);
    create.extend(pushed.iter().map(|(_, d)| format!("{name}@{d}")));
    ctx.run(Cmd::new(create).timeout(ctx.timeouts.inspect)).map_err(fail)?;
    for (img, digest) in &pushed {
        // docker takes os/arch/variant from the image config; only a variant
        // the config may lack (arm64's v8 often is) needs to be set by hand.
        let Some(p) = img.platform.as_ref().filter(|p| p.variant.is_some()) else { continue };
        let child = format!("{name}@{digest}");
        let mut args = vec!["manifest", "annotate", "--os", p.os.as_str(), "--arch", p.arch.as_str()];
        if let Some(v) = &p.variant {
            args.extend(["--variant", v.as_str()]);
        }
        args.extend(["--", target, child.as_str()]);
        ctx.run(Cmd::new(args).timeout(ctx.timeouts.quick)).map_err(fail)?;
    }
    let mut push = vec!["manifest", "push"];
    push.extend(ctx.insecure_flag(target));
    push.extend(["--purge", "--", target]);
    let out = ctx.run(Cmd::new(push).timeout(ctx.timeouts.transfer)).map_err(fail)?;
    let text = out.stdout_text();
    Ok(text.lines().map(str::trim).rfind(|l| l.starts_with("sha256:")).unwrap_or("").to_string())
}

/// Removes images no container uses (clean-disk), or in a dry run measures
/// them; returns the bytes docker reports.
pub fn prune_images(ctx: &Ctx, dry_run: bool) -> Result<u64, String> {
    if dry_run {
        let out = ctx
            .run(Cmd::new(["system", "df", "--format", "{{.Type}}\t{{.Reclaimable}}"]).timeout(ctx.timeouts.inspect))
            .map_err(|e| e.to_string())?;
        let text = out.stdout_text();
        let line = text.lines().find(|l| l.starts_with("Images")).ok_or("`docker system df` printed no Images line")?;
        let size = line.split('\t').nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("0B");
        return parse_size(size).ok_or_else(|| format!("unexpected size {size:?} from `docker system df`"));
    }
    let out = ctx
        .run(Cmd::new(["image", "prune", "--all", "--force"]).timeout(ctx.timeouts.transfer))
        .map_err(|e| e.to_string())?;
    let text = out.stdout_text();
    let size = text
        .lines()
        .find_map(|l| l.strip_prefix("Total reclaimed space:"))
        .map(str::trim)
        .unwrap_or("0B");
    parse_size(size).ok_or_else(|| format!("unexpected size {size:?} from `docker image prune`"))
}

/// docker's human sizes (`1.5GB`, `512kB`, `0B`): decimal units, as docker prints them.
pub fn parse_size(s: &str) -> Option<u64> {
    s.trim().parse::<bytesize::ByteSize>().ok().map(|b| b.as_u64())
}

/// The digest from `docker push` output: `TAG: digest: sha256:... size: N`.
pub fn pushed_digest(stdout: &str) -> Option<String> {
    stdout.lines().rev().find_map(|l| {
        let rest = &l[l.find("digest: ")? + "digest: ".len()..];
        let d = rest.split_whitespace().next()?;
        d.starts_with("sha256:").then(|| d.to_string())
    }).or_else(|| {
        // Some versions print `name@sha256:...` instead.
        stdout.lines().rev().find_map(|l| l.trim().rsplit_once('@').map(|(_, d)| d.to_string()).filter(|d| d.starts_with("sha256:")))
    })
}

fn platform_label(img: &Image) -> String {
    img.platform.as_ref().map_or_else(|| img.digest[..img.digest.len().min(19)].to_string(), |p| p.to_string())
}

/// The references of a local image with this ID, if there is one.
fn existing(ctx: &Ctx, image_id: &str) -> Option<Existing> {
    let cmd = Cmd::new(["image", "inspect", "--format", "{{json .RepoTags}} {{json .RepoDigests}}", "--", image_id])
        .timeout(ctx.timeouts.quick);
    let out = ctx.run_once(cmd).ok()?;
    let text = out.stdout_text();
    let mut refs = Vec::new();
    for part in text.split_whitespace() {
        if let Ok(v) = serde_json::from_str::<Option<Vec<String>>>(part) {
            refs.extend(v.unwrap_or_default());
        }
    }
    Some(Existing { refs })
}

/// Removes what this entry added. For an image that was there before, only
/// references it did not have are removed, and only while another remains,
/// since removing the last reference would delete the user's image.
fn clean_up(ctx: &Ctx, added: &[(String, Option<Existing>)]) {
    // Newest first: digest references before the tag that deletes the image.
    let removable: Vec<&str> = added
        .iter()
        .rev()
        .filter(|(r, existing)| match existing {
            None => true,
            Some(e) => !e.refs.iter().any(|x| x == r) && !e.refs.is_empty(),
        })
        .map(|(r, _)| r.as_str())
        .collect();
    if removable.is_empty() {
        return;
    }
    let mut args = vec!["rmi", "--"];
    args.extend(removable.iter().copied());
    if let Err(e) = ctx.run_once(Cmd::new(args).timeout(ctx.timeouts.quick).cleanup()) {
        ctx.warn(format!("could not remove local images of this entry: {}", e.reason()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    use crate::docker::{Docker, Output};

    /// Pulls that take a moment and count how many run at once.
    #[derive(Default)]
    struct SlowPulls {
        now: AtomicUsize,
        max: AtomicUsize,
        calls: Mutex<Vec<String>>,
    }

    impl Docker for SlowPulls {
        fn run(&self, cmd: &Cmd) -> Result<Output, DockerError> {
            self.calls.lock().unwrap().push(cmd.display());
            if cmd.args[0] == "pull" {
                let n = self.now.fetch_add(1, Ordering::SeqCst) + 1;
                self.max.fetch_max(n, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                self.now.fetch_sub(1, Ordering::SeqCst);
                return Ok(Output::default());
            }
            if cmd.args[0] == "push" {
                return Ok(Output { stdout: b"v1: digest: sha256:aaaa size: 1\n".to_vec(), stderr: String::new() });
            }
            Ok(Output::default())
        }
    }

    fn images(n: usize) -> Vec<Image> {
        (0..n)
            .map(|i| Image {
                platform: Some(format!("linux/arch{i}").parse().unwrap()),
                digest: format!("sha256:{i:064x}"),
                config: None,
                layers_size: None,
            })
            .collect()
    }

    #[test]
    fn pulls_are_bounded_and_huge_indexes_refused() {
        let cancel = AtomicBool::new(false);
        let d = SlowPulls::default();
        let ctx = Ctx::new(&d, &crate::config::Limits::default(), &cancel, &|_| {});
        let source = ImageRef::parse("127.0.0.1:5000/x/y:v1").unwrap();
        let targets = vec!["127.0.0.1:5001/n/y:v1".to_string()];
        let out = copy(&ctx, &HashSet::new(), &source, &images(MAX_PLATFORMS), &targets);
        assert_eq!(out.len(), 1);
        let max = d.max.load(Ordering::SeqCst);
        assert!((2..=PULL_JOBS).contains(&max), "{max} pulls at once");
        assert_eq!(d.calls.lock().unwrap().iter().filter(|c| c.starts_with("docker pull")).count(), MAX_PLATFORMS);

        let d = SlowPulls::default();
        let ctx = Ctx::new(&d, &crate::config::Limits::default(), &cancel, &|_| {});
        let out = copy(&ctx, &HashSet::new(), &source, &images(MAX_PLATFORMS + 1), &targets);
        let e = out[0].as_ref().unwrap_err();
        assert!(e.error.contains("65 platform images") && e.hint.contains("--platform"), "{e:?}");
        assert!(d.calls.lock().unwrap().is_empty(), "nothing was pulled");
    }

    #[test]
    fn docker_sizes() {
        assert_eq!(parse_size("0B"), Some(0));
        assert_eq!(parse_size("1.5GB"), Some(1_500_000_000));
        assert_eq!(parse_size("512kB"), Some(512_000));
        assert_eq!(parse_size("12MB"), Some(12_000_000));
        assert_eq!(parse_size("lots"), None);
    }

    #[test]
    fn digest_from_push_output() {
        let out = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/docker-cli-28.2/push-ok.txt")).unwrap();
        assert_eq!(
            pushed_digest(&out).as_deref(),
            Some("sha256:34b9f89ccf66e893cfc24e2e4aad9b7a6e4ffcfabaee635fb6a085cfcdcad7c8")
        );
        assert_eq!(pushed_digest("r/x@sha256:abc\n").as_deref(), Some("sha256:abc"));
        assert_eq!(pushed_digest("r/x:v1\n"), None);
    }
}
