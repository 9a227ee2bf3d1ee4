//! One run: inspect every entry (in parallel), decide, copy what differs, and
//! record each outcome. Decisions come from `plan`; docker calls go through
//! the `Docker` trait; what to show the user goes out as events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::config::{Secret, Settings};
use crate::docker::{Counting, Docker};
use crate::engine::inspector::{self, Tool};
use crate::engine::{daemon, imagetools, Ctx, EngineKind, Event, Failure};
use crate::images::Entry;
use crate::inspect::{Image, Inspection};
use crate::plan::{self, Verdict};
use crate::report::{EntryReport, Report, Status, TargetReport};

pub struct Options {
    pub dry_run: bool,
    pub force: bool,
    pub engine: EngineKind,
    /// The inspector's tool: buildx when it answers, else `docker manifest`.
    pub tool: Tool,
    pub caps: imagetools::Caps,
    pub inspect_jobs: usize,
    pub transfer_jobs: usize,
    /// Docker's data root when it is on this machine, for the low-disk guard.
    pub docker_root: Option<std::path::PathBuf>,
    /// Image IDs the engine held before the run (daemon engine): never deleted.
    pub local_images: std::collections::HashSet<String>,
}

impl Options {
    pub fn default_jobs(engine: EngineKind, jobs: Option<usize>) -> (usize, usize) {
        match (jobs, engine) {
            (Some(j), _) => (j, j),
            (None, EngineKind::Imagetools) => (8, 4),
            // Disk: the daemon engine holds one entry's layers at a time.
            (None, EngineKind::Daemon) => (8, 1),
        }
    }
}

/// What the run decided for one target of one entry.
#[derive(Clone, Debug)]
enum Decision {
    UpToDate,
    Copy,
    Failed(Failure),
}

struct Inspected {
    inspection: Option<Inspection>,
    selected: Vec<Image>,
    decisions: Vec<Decision>,
    failure: Option<Failure>,
    calls: usize,
}

/// Image digests some daemon-engine entry is working with. Two entries with
/// the same source image must not overlap: one's clean-up would remove the
/// image the other is about to push.
#[derive(Default)]
pub struct InUse {
    held: Mutex<std::collections::HashSet<String>>,
    freed: std::sync::Condvar,
}

pub struct Held<'a> {
    owner: &'a InUse,
    keys: Vec<String>,
}

impl InUse {
    /// Waits until none of `keys` is held, then holds them all.
    pub fn hold(&self, keys: Vec<String>) -> Held<'_> {
        let mut held = self.held.lock().unwrap();
        while keys.iter().any(|k| held.contains(k)) {
            held = self.freed.wait(held).unwrap();
        }
        held.extend(keys.iter().cloned());
        Held { owner: self, keys }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut held = self.owner.held.lock().unwrap();
        for k in &self.keys {
            held.remove(k);
        }
        self.owner.freed.notify_all();
    }
}

/// Runs `f` over `items` on up to `jobs` threads; results keep the input order.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], jobs: usize, cancel: &AtomicBool, f: impl Fn(&T) -> R + Sync, skipped: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let out: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                let r = if cancel.load(Ordering::SeqCst) { skipped(item) } else { f(item) };
                out.lock().unwrap()[i] = Some(r);
            });
        }
    });
    out.into_inner().unwrap().into_iter().map(|r| r.expect("every item ran")).collect()
}

pub struct Run<'a> {
    pub docker: &'a dyn Docker,
    pub settings: &'a Settings,
    pub options: Options,
    pub cancel: &'a AtomicBool,
    pub events: &'a (dyn Fn(Event) + Sync),
    pub in_use: InUse,
}

impl Run<'_> {
    fn ctx<'b>(&'b self, docker: &'b dyn Docker, line: usize) -> Ctx<'b> {
        Ctx::new(docker, self.settings.retries, self.settings.timeout_secs, self.cancel, self.events).line(line)
    }

    /// Logs in to every target with credentials (and Docker Hub for pulls).
    /// A failed login fails that target's entries, not the run.
    pub fn login(&self) -> HashMap<String, Failure> {
        let ctx = self.ctx(self.docker, 0);
        let mut failed = HashMap::new();
        let mut done: Vec<(String, String)> = Vec::new();
        let mut logins: Vec<(&str, &str, &Secret)> = self
            .settings
            .targets
            .iter()
            .filter_map(|t| Some((t.registry.as_str(), t.username.as_deref()?, t.password.as_ref()?)))
            .collect();
        if let Some((user, secret)) = &self.settings.dockerhub_pull {
            logins.push(("docker.io", user.as_str(), secret));
        }
        for (registry, user, secret) in logins {
            if done.iter().any(|(r, u)| r == registry && u == user) {
                continue;
            }
            done.push((registry.to_string(), user.to_string()));
            if let Err(f) = crate::credentials::login(&ctx, registry, user, secret) {
                failed.insert(registry.to_string(), f);
            }
        }
        failed
    }

    pub fn execute(&self, entries: &[Entry], dests: &[plan::Destinations], login_failures: &HashMap<String, Failure>) -> Report {
        let work: Vec<(&Entry, &plan::Destinations)> = entries.iter().zip(dests).collect();
        let interrupted = |_: &(&Entry, &plan::Destinations)| Inspected {
            inspection: None,
            selected: Vec::new(),
            decisions: Vec::new(),
            failure: Some(Failure::new("interrupted before this entry started", "run imgsync again; entries already done are skipped")),
            calls: 0,
        };
        let inspected = parallel_map(
            &work,
            self.options.inspect_jobs,
            self.cancel,
            |(e, d)| self.inspect_entry(e, d, login_failures),
            interrupted,
        );
        let pending: Vec<(usize, &Entry, &plan::Destinations, &Inspected)> = work
            .iter()
            .zip(&inspected)
            .enumerate()
            .filter(|(_, (_, i))| !self.options.dry_run && i.decisions.iter().any(|d| matches!(d, Decision::Copy)))
            .map(|(n, ((e, d), i))| (n, *e, *d, i))
            .collect();
        let copied = parallel_map(
            &pending,
            self.options.transfer_jobs,
            self.cancel,
            |(_, e, d, i)| self.copy_entry(e, d, i),
            |(_, _, d, i)| {
                let f = Failure::new("interrupted before the copy started", "run imgsync again; entries already done are skipped");
                (d.refs.iter().zip(&i.decisions).map(|(_, dec)| match dec {
                    Decision::Copy => Err(f.clone()),
                    _ => Ok(String::new()),
                }).collect(), 0)
            },
        );
        let mut copy_results: HashMap<usize, (Vec<Result<String, Failure>>, usize)> =
            pending.iter().map(|(n, ..)| *n).zip(copied).collect();
        let reports = work
            .iter()
            .zip(inspected)
            .enumerate()
            .map(|(n, ((e, d), i))| self.entry_report(e, d, i, copy_results.remove(&n)))
            .collect();
        Report::new(self.options.engine.as_str(), reports)
    }

    fn inspect_entry(&self, entry: &Entry, dests: &plan::Destinations, login_failures: &HashMap<String, Failure>) -> Inspected {
        let counter = Counting::new(self.docker);
        let ctx = self.ctx(&counter, entry.line);
        let mut out = Inspected { inspection: None, selected: Vec::new(), decisions: Vec::new(), failure: None, calls: 0 };
        match self.inspect_source(&ctx, entry) {
            Ok((insp, selected)) => {
                out.decisions = self
                    .settings
                    .targets
                    .iter()
                    .zip(&dests.refs)
                    .map(|(t, r)| match login_failures.get(&t.registry) {
                        Some(f) => Decision::Failed(f.clone()),
                        None => self.decide(&ctx, r, entry, &insp, &selected),
                    })
                    .collect();
                out.inspection = Some(insp);
                out.selected = selected;
            }
            Err(f) => out.failure = Some(f),
        }
        let copying = !self.options.dry_run && out.decisions.iter().any(|d| matches!(d, Decision::Copy));
        if !copying {
            (self.events)(Event::Finished { line: entry.line });
        }
        out.calls = counter.count();
        out
    }

    fn inspect_source(&self, ctx: &Ctx, entry: &Entry) -> Result<(Inspection, Vec<Image>), Failure> {
        let src = entry.source.to_string();
        ctx.step(format!("inspect {src}"));
        let tool = self.options.tool;
        let mut insp = inspector::inspect(ctx, tool, &src, !entry.platforms.is_empty())
            .map_err(|e| Failure::from_docker(&e))?
            .ok_or_else(|| {
                Failure::new(
                    format!("{src} was not found in its registry"),
                    crate::diagnose::Family::NotFound.hint(),
                )
            })?;
        let mut selected = insp.select(&entry.platforms).map_err(|m| {
            Failure::new(format!("{src}: {m}"), crate::diagnose::Family::PlatformMissing.hint())
        })?;
        if selected.is_empty() {
            return Err(Failure::new(format!("{src} holds no runnable image (only attestations)"), "check the source tag"));
        }
        // The daemon engine keys local images by config digest (the image ID).
        if self.options.engine == EngineKind::Daemon && selected.iter().any(|i| i.config.is_none()) {
            let want: Vec<String> = selected.iter().map(|i| i.digest.clone()).collect();
            inspector::fill_configs(ctx, tool, &entry.source.name(), &mut insp, &want).map_err(|e| Failure::from_docker(&e))?;
            selected = insp.select(&entry.platforms).map_err(|m| Failure::new(m, "check --platform"))?;
        }
        Ok((insp, selected))
    }

    fn decide(&self, ctx: &Ctx, reference: &str, entry: &Entry, src: &Inspection, selected: &[Image]) -> Decision {
        if self.options.force {
            return Decision::Copy;
        }
        let tool = self.options.tool;
        let mut dst = match inspector::inspect(ctx, tool, reference, false) {
            Ok(d) => d,
            Err(e) => return Decision::Failed(Failure::from_docker(&e)),
        };
        let mut selected = selected.to_vec();
        let verdict = match plan::compare(&selected, dst.as_ref()) {
            Verdict::NeedConfigs => {
                let dst_insp = dst.as_mut().expect("NeedConfigs implies a target");
                let (want_src, want_dst) = plan::missing_configs(&selected, dst_insp);
                let mut src = src.clone();
                let name = crate::reference::without_tag(reference);
                let filled = inspector::fill_configs(ctx, tool, &entry.source.name(), &mut src, &want_src)
                    .and_then(|_| inspector::fill_configs(ctx, tool, name, dst_insp, &want_dst));
                if let Err(e) = filled {
                    return Decision::Failed(Failure::from_docker(&e));
                }
                for s in selected.iter_mut() {
                    if let Some(f) = src.images.iter().find(|i| i.digest == s.digest) {
                        s.config = f.config.clone();
                    }
                }
                plan::compare(&selected, dst.as_ref())
            }
            v => v,
        };
        match verdict {
            Verdict::Same => Decision::UpToDate,
            _ => Decision::Copy,
        }
    }

    fn copy_entry(&self, entry: &Entry, dests: &plan::Destinations, insp: &Inspected) -> (Vec<Result<String, Failure>>, usize) {
        let counter = Counting::new(self.docker);
        let ctx = self.ctx(&counter, entry.line);
        let to_copy: Vec<String> = dests
            .refs
            .iter()
            .zip(&insp.decisions)
            .filter(|(_, d)| matches!(d, Decision::Copy))
            .map(|(r, _)| r.clone())
            .collect();
        let inspection = insp.inspection.as_ref().expect("copied entries were inspected");
        let copied: Vec<Result<String, Failure>> = match self.options.engine {
            EngineKind::Daemon => match self.disk_shortfall(&insp.selected) {
                Some(f) => to_copy.iter().map(|_| Err(f.clone())).collect(),
                None => {
                    let _held = self.in_use.hold(insp.selected.iter().map(|i| i.digest.clone()).collect());
                    daemon::copy(&ctx, &self.options.local_images, &entry.source, &insp.selected, &to_copy)
                }
            },
            EngineKind::Imagetools => to_copy
                .iter()
                .map(|t| imagetools::copy(&ctx, self.options.caps, &entry.source, inspection, &insp.selected, t))
                .collect(),
        };
        let mut copied = copied.into_iter();
        let results = insp
            .decisions
            .iter()
            .map(|d| match d {
                Decision::Copy => copied.next().expect("one result per copied target"),
                _ => Ok(String::new()),
            })
            .collect();
        (self.events)(Event::Finished { line: entry.line });
        (results, counter.count())
    }

    /// Fails the entry up front rather than half-way through a pull.
    fn disk_shortfall(&self, images: &[Image]) -> Option<Failure> {
        let root = self.options.docker_root.as_ref()?;
        let need = plan::disk_needed(images)?;
        let free = crate::clean_disk::free_bytes(root).ok()?;
        (free < need).then(|| {
            Failure::new(
                format!(
                    "not enough disk under {}: {} MiB free, this entry needs about {} MiB",
                    root.display(),
                    free >> 20,
                    need >> 20
                ),
                crate::diagnose::Family::Disk.hint(),
            )
        })
    }

    fn entry_report(&self, entry: &Entry, dests: &plan::Destinations, insp: Inspected, copied: Option<(Vec<Result<String, Failure>>, usize)>) -> EntryReport {
        let (copied, copy_calls) = match copied {
            Some((c, n)) => (Some(c), n),
            None => (None, 0),
        };
        let targets = self
            .settings
            .targets
            .iter()
            .zip(&dests.refs)
            .enumerate()
            .map(|(i, (t, r))| {
                let (status, failure) = match (&insp.failure, insp.decisions.get(i)) {
                    (Some(f), _) => (Status::Failed, Some(f.clone())),
                    (None, Some(Decision::Failed(f))) => (Status::Failed, Some(f.clone())),
                    (None, Some(Decision::UpToDate)) => (Status::UpToDate, None),
                    (None, Some(Decision::Copy)) if self.options.dry_run => (Status::WouldSync, None),
                    (None, Some(Decision::Copy)) => match copied.as_ref().map(|c| &c[i]) {
                        Some(Ok(_)) => (Status::Synced, None),
                        Some(Err(f)) => (Status::Failed, Some(f.clone())),
                        None => (Status::Failed, Some(Failure::new("not copied", "run again"))),
                    },
                    (None, None) => (Status::Failed, Some(Failure::new("not inspected", "run again"))),
                };
                TargetReport {
                    target: t.kind.as_str().to_string(),
                    reference: r.clone(),
                    status,
                    error: failure.as_ref().map(|f| f.error.clone()),
                    hint: failure.map(|f| f.hint),
                }
            })
            .collect();
        let platforms = match &insp.inspection {
            Some(_) => insp.selected.iter().filter_map(|i| i.platform.as_ref()).map(|p| p.to_string()).collect(),
            None => entry.platforms.iter().map(|p| p.to_string()).collect(),
        };
        EntryReport {
            line: entry.line,
            source: entry.source.to_string(),
            platforms,
            targets,
            error: insp.failure.as_ref().map(|f| f.error.clone()),
            hint: insp.failure.map(|f| f.hint),
            docker_calls: insp.calls + copy_calls,
        }
    }
}

/// `auto` picks imagetools when buildx answers.
pub fn choose_engine(choice: crate::config::EngineChoice, buildx: bool) -> Result<EngineKind, String> {
    use crate::config::EngineChoice::*;
    match (choice, buildx) {
        (Daemon, _) | (Auto, false) => Ok(EngineKind::Daemon),
        (Imagetools, true) | (Auto, true) => Ok(EngineKind::Imagetools),
        (Imagetools, false) => Err(
            "--engine imagetools needs the docker buildx plugin, and `docker buildx version` did not answer. Install buildx (on GitHub runners: docker/setup-buildx-action) or use --engine auto".into(),
        ),
    }
}

pub fn buildx_available(docker: &dyn Docker) -> bool {
    docker
        .run(&crate::docker::Cmd::new(["buildx", "version"]).timeout(std::time::Duration::from_secs(30)))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{EngineChoice, Target, TargetKind};
    use crate::docker::{Cmd, DockerError, Output};
    use crate::images;

    /// Answers docker commands from a script; records every call.
    struct Scripted {
        answers: Vec<(String, Result<Vec<u8>, String>)>,
        calls: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(answers: Vec<(&str, Result<Vec<u8>, &str>)>) -> Self {
            let answers = answers.into_iter().map(|(k, v)| (k.to_string(), v.map_err(str::to_string))).collect();
            Scripted { answers, calls: Mutex::new(Vec::new()) }
        }
        fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }
    }

    impl Docker for Scripted {
        fn run(&self, cmd: &Cmd) -> Result<Output, DockerError> {
            let line = cmd.display();
            self.calls.lock().unwrap().push(line.clone());
            match self.answers.iter().find(|(k, _)| line.starts_with(k.as_str())) {
                Some((_, Ok(out))) => Ok(Output { stdout: out.clone(), stderr: String::new() }),
                Some((_, Err(stderr))) => Err(DockerError {
                    command: line,
                    status: Some(1),
                    stderr: stderr.clone(),
                    timed_out: false,
                    interrupted: false,
                }),
                None => panic!("unscripted docker call: {line}"),
            }
        }
    }

    fn fixture(p: &str) -> Vec<u8> {
        std::fs::read(format!("{}/tests/data/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    }

    fn settings() -> Settings {
        Settings {
            mode: "custom".into(),
            targets: vec![Target { kind: TargetKind::Custom, registry: "127.0.0.1:5102".into(), namespace: "ns".into(), username: None, password: None }],
            clean_disk: false,
            engine: EngineChoice::Auto,
            jobs: None,
            retries: 0,
            timeout_secs: None,
            dockerhub_pull: None,
            warnings: vec![],
            file: Default::default(),
        }
    }

    fn run_with(docker: &Scripted, lines: &str, engine: EngineKind, tool: Tool, dry_run: bool) -> Report {
        run_with_local(docker, lines, engine, tool, dry_run, &[])
    }

    fn run_with_local(docker: &Scripted, lines: &str, engine: EngineKind, tool: Tool, dry_run: bool, local: &[&str]) -> Report {
        let s = settings();
        let entries = images::parse("images.txt", lines).unwrap();
        let dests = plan::destinations("images.txt", &entries, &s.targets).unwrap();
        let cancel = AtomicBool::new(false);
        let run = Run {
            docker,
            settings: &s,
            options: Options { dry_run, force: false, engine, tool, caps: imagetools::Caps::default(), inspect_jobs: 4, transfer_jobs: 1, docker_root: None, local_images: local.iter().map(|s| s.to_string()).collect() },
            cancel: &cancel,
            events: &|_| {},
            in_use: InUse::default(),
        };
        run.execute(&entries, &dests, &HashMap::new())
    }

    const SRC: &str = "127.0.0.1:5101/fx/multi:v1";
    const DST: &str = "127.0.0.1:5102/ns/web:v1";

    #[test]
    fn imagetools_copies_a_missing_target_by_index_digest() {
        let d = Scripted::new(vec![
            (&format!("docker buildx imagetools inspect --raw {SRC}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
            (&format!("docker buildx imagetools inspect --raw {DST}"), Err("ERROR: 127.0.0.1:5102/ns/web:v1: not found")),
            ("docker buildx imagetools create", Ok(fixture("buildx-0.10.5/create-ok-multi.txt"))),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Imagetools, Tool::Buildx, false);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        let calls = d.calls();
        assert_eq!(
            calls.last().unwrap(),
            "docker buildx imagetools create -t 127.0.0.1:5102/ns/web:v1 127.0.0.1:5101/fx/multi@sha256:5d937f7bd5f8cd158875baa5020d4cf0298612402f74731d9a1c8f1a2bad9bbc"
        );
        assert_eq!(r.entries[0].docker_calls, 3);
        assert_eq!(r.entries[0].platforms, ["linux/amd64", "linux/arm64/v8"]);
    }

    #[test]
    fn identical_top_level_digest_is_up_to_date_in_two_calls() {
        let d = Scripted::new(vec![
            (&format!("docker buildx imagetools inspect --raw {SRC}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
            (&format!("docker buildx imagetools inspect --raw {DST}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Imagetools, Tool::Buildx, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate);
        assert_eq!(d.calls().len(), 2);
    }

    #[test]
    fn daemon_engine_plans_pull_push_list_and_cleanup() {
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
            (&format!("docker manifest inspect --insecure --verbose {DST}"), Err("no such manifest: 127.0.0.1:5102/ns/web:v1")),
            ("docker pull", Ok(vec![])),
            ("docker tag", Ok(vec![])),
            ("docker push", Ok(b"v1: digest: sha256:aaaa size: 524\n".to_vec())),
            ("docker manifest create", Ok(vec![])),
            ("docker manifest annotate", Ok(vec![])),
            ("docker manifest push", Ok(b"sha256:list\n".to_vec())),
            ("docker rmi", Ok(vec![])),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Daemon, Tool::ManifestCli, false);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        let calls = d.calls();
        let pulls: Vec<&String> = calls.iter().filter(|c| c.starts_with("docker pull")).collect();
        assert_eq!(pulls.len(), 2, "one pull per platform, by digest: {calls:#?}");
        // Platforms pull concurrently, so in either order.
        assert!(pulls.iter().any(|p| p.ends_with("127.0.0.1:5101/fx/multi@sha256:13065cdb0e11b4c2658a9313f3f8f431b7d5060653328973f667091f190ed531")));
        assert!(pulls.iter().any(|p| p.ends_with("127.0.0.1:5101/fx/multi@sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb")));
        assert!(calls.iter().any(|c| c.starts_with("docker manifest create --insecure 127.0.0.1:5102/ns/web:v1 127.0.0.1:5102/ns/web@sha256:aaaa")));
        assert!(calls.iter().any(|c| c.contains("--arch arm64 --variant v8")));
        assert!(calls.iter().any(|c| c == "docker manifest push --insecure --purge 127.0.0.1:5102/ns/web:v1"));
        assert!(calls.last().unwrap().starts_with("docker rmi "), "clean-up comes last: {calls:#?}");
    }

    #[test]
    fn daemon_engine_never_removes_a_users_image() {
        // The amd64 image (config df12c820...) was already local, tagged by the user.
        let amd64_config = "sha256:df12c8204f4a00320e8d9d86854ef075785e7d8e50d6d28d7437674e00059547";
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
            (&format!("docker manifest inspect --insecure --verbose {DST}"), Err("no such manifest")),
            ("docker image inspect", Ok(br#"["mine:1"] []"#.to_vec())),
            ("docker pull", Ok(vec![])),
            ("docker tag", Ok(vec![])),
            ("docker push", Ok(b"v1: digest: sha256:aaaa size: 524\n".to_vec())),
            ("docker manifest", Ok(b"sha256:list\n".to_vec())),
            ("docker rmi", Ok(vec![])),
        ]);
        let r = run_with_local(&d, &format!("{SRC} => web"), EngineKind::Daemon, Tool::ManifestCli, false, &[amd64_config]);
        assert_eq!(r.entries[0].targets[0].status, Status::Synced, "{r:#?}");
        let calls = d.calls();
        assert!(calls.contains(&format!("docker image inspect --format {{{{json .RepoTags}}}} {{{{json .RepoDigests}}}} {amd64_config}")), "{calls:#?}");
        let rmi = calls.iter().find(|c| c.starts_with("docker rmi")).unwrap();
        assert!(!rmi.contains("mine:1"), "the user's tag stays: {rmi}");
        assert!(rmi.contains("@sha256:2c84f2393b76db97ab27a52ff0edd13c673137102daff3675ea254ebf846bafb"), "the arm64 pull goes: {rmi}");
        assert!(rmi.contains("@sha256:13065cdb"), "the reference this run added to the user's image goes, the image stays: {rmi}");
    }

    #[test]
    fn dry_run_pushes_nothing_and_missing_source_fails_only_its_entry() {
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose {SRC}"), Ok(fixture("docker-cli-28.2/manifest-inspect-v-multi.json"))),
            (&format!("docker manifest inspect --insecure --verbose {DST}"), Err("no such manifest")),
            ("docker manifest inspect --insecure --verbose 127.0.0.1:5101/fx/missing:v1", Err("no such manifest: 127.0.0.1:5101/fx/missing:v1")),
        ]);
        let r = run_with(&d, &format!("{SRC} => web\n127.0.0.1:5101/fx/missing:v1"), EngineKind::Daemon, Tool::ManifestCli, true);
        assert_eq!(r.entries[0].targets[0].status, Status::WouldSync);
        assert_eq!(r.entries[1].targets[0].status, Status::Failed);
        assert!(r.entries[1].error.as_deref().unwrap().contains("not found"));
        assert!(d.calls().iter().all(|c| !c.starts_with("docker pull") && !c.starts_with("docker push")));
    }

    #[test]
    fn recompressed_target_is_compared_by_config_digest() {
        // The target holds the same configs under other manifest digests (a daemon-engine copy).
        let src = fixture("docker-cli-28.2/manifest-inspect-v-multi.json");
        let dst = String::from_utf8(src.clone()).unwrap().replace("13065cdb", "99999999").replace("2c84f239", "88888888");
        let d = Scripted::new(vec![
            (&format!("docker manifest inspect --insecure --verbose {SRC}"), Ok(src)),
            (&format!("docker manifest inspect --insecure --verbose {DST}"), Ok(dst.into_bytes())),
        ]);
        let r = run_with(&d, &format!("{SRC} => web"), EngineKind::Daemon, Tool::ManifestCli, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate, "{r:#?}");
    }

    #[test]
    fn buildx_inspector_fetches_child_configs_only_when_digests_differ() {
        let child = fixture("buildx-0.10.5/inspect-raw-multi-arm64-child.json");
        // Target: a daemon-engine copy (other manifest digests), arm64 only.
        let dst_index = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":524,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;
        let d = Scripted::new(vec![
            (&format!("docker buildx imagetools inspect --raw {SRC}"), Ok(fixture("buildx-0.10.5/inspect-raw-multi.json"))),
            (&format!("docker buildx imagetools inspect --raw {DST}"), Ok(dst_index.as_bytes().to_vec())),
            ("docker buildx imagetools inspect --raw 127.0.0.1:5101/fx/multi@sha256:2c84", Ok(child.clone())),
            ("docker buildx imagetools inspect --raw 127.0.0.1:5102/ns/web@sha256:1111", Ok(child)),
        ]);
        let r = run_with(&d, &format!("--platform=linux/arm64 {SRC} => web"), EngineKind::Imagetools, Tool::Buildx, false);
        assert_eq!(r.entries[0].targets[0].status, Status::UpToDate, "{r:#?}");
        assert_eq!(d.calls().len(), 4);
    }

    #[test]
    fn in_use_serialises_shared_images_only() {
        let in_use = InUse::default();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            let a = in_use.hold(vec!["d1".into(), "d2".into()]);
            s.spawn(|| {
                let _b = in_use.hold(vec!["d2".into()]);
                order.lock().unwrap().push("b");
            });
            let _c = in_use.hold(vec!["d3".into()]); // unrelated: no wait
            std::thread::sleep(std::time::Duration::from_millis(50));
            order.lock().unwrap().push("a");
            drop(a);
        });
        assert_eq!(*order.lock().unwrap(), ["a", "b"]);
    }

    #[test]
    fn parallel_map_keeps_order() {
        let cancel = AtomicBool::new(false);
        let v: Vec<usize> = (0..50).collect();
        let out = parallel_map(&v, 8, &cancel, |x| x * 2, |_| 0);
        assert_eq!(out, v.iter().map(|x| x * 2).collect::<Vec<_>>());
    }
}
