//! Engines copy what the plan says differs, through the docker CLI.
//! `daemon` routes bytes through the local engine (pull/tag/push);
//! `imagetools` copies registry to registry with buildx. Reading registries
//! is `inspect`'s business. Which engine a run uses is decided here
//! (`choose_for`, `default_jobs`).

pub mod daemon;
pub mod imagetools;

use std::time::Duration;

use crate::docker::{Cmd, Docker};

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Daemon,
    Imagetools,
}

impl EngineKind {
    /// The docker-CLI reader for this engine. imagetools needs the registry's
    /// exact digests and gains from reading only the top level. The daemon
    /// engine re-compresses, so its targets never share manifest digests with
    /// the source and configs are always needed: one `docker manifest inspect
    /// --verbose` gets them all, where buildx needs a call per platform
    /// (measured by scripts/bench.sh: half the time for the same requests).
    pub fn reader(self) -> crate::inspect::docker::Reader {
        match self {
            EngineKind::Imagetools => crate::inspect::docker::Reader::Buildx,
            EngineKind::Daemon => crate::inspect::docker::Reader::ManifestCli,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Daemon => "daemon",
            EngineKind::Imagetools => "imagetools",
        }
    }
}

/// Inspection and transfer parallelism: `--jobs` sets both, else per engine.
pub fn default_jobs(engine: EngineKind, jobs: Option<usize>) -> (usize, usize) {
    match (jobs, engine) {
        (Some(j), _) => (j, j),
        (None, EngineKind::Imagetools) => (8, 4),
        // Disk: the daemon engine holds one entry's layers at a time.
        (None, EngineKind::Daemon) => (8, 1),
    }
}

/// `auto` picks imagetools when buildx answers.
pub fn choose(choice: crate::config::EngineChoice, buildx: bool) -> Result<EngineKind, String> {
    use crate::config::EngineChoice::*;
    match (choice, buildx) {
        (Daemon, _) | (Auto, false) => Ok(EngineKind::Daemon),
        (Imagetools, true) | (Auto, true) => Ok(EngineKind::Imagetools),
        (Imagetools, false) => Err(
            "--engine imagetools needs the docker buildx plugin, and `docker buildx version` did not answer. Install buildx (on GitHub runners: docker/setup-buildx-action) or use --engine auto".into(),
        ),
    }
}

/// `timeout`: [`crate::ctx::Timeouts::probe`], so `--timeout` bounds it too.
pub fn buildx_available(docker: &dyn Docker, timeout: Duration) -> bool {
    docker.run(&Cmd::new(["buildx", "version"]).timeout(timeout)).is_ok()
}

/// The engine for a run that touches `registries` (sources and targets).
/// imagetools reads registries from buildx's builder, which speaks plain HTTP
/// only to loopback unless the builder is a container configured for it (an
/// image from Docker Hub, and a buildkitd.toml); the daemon engine needs only
/// the engine's insecure-registries. So a run that touches a non-loopback
/// INSECURE_REGISTRIES entry uses the daemon engine as a whole (one engine per
/// run keeps one inspector and one report shape); `--engine imagetools` then
/// is an error. Returns the engine and, when `auto` was overridden, why.
pub fn choose_for(
    choice: crate::config::EngineChoice,
    buildx: bool,
    insecure: &[String],
    registries: &[&str],
) -> Result<(EngineKind, Option<String>), String> {
    let engine = choose(choice, buildx)?;
    let plain = registries
        .iter()
        .find(|r| crate::config::is_listed_insecure(insecure, r) && !crate::reference::is_loopback_host(r));
    match (engine, plain) {
        (EngineKind::Imagetools, Some(r)) if choice == crate::config::EngineChoice::Imagetools => Err(format!(
            "--engine imagetools cannot reach {r} (INSECURE_REGISTRIES, plain HTTP): buildx's builder speaks HTTPS to it. Use --engine daemon or auto (the Docker engine lists it in insecure-registries)"
        )),
        (EngineKind::Imagetools, Some(r)) => {
            Ok((EngineKind::Daemon, Some(format!("daemon engine: {r} is in INSECURE_REGISTRIES (plain HTTP), which buildx's imagetools cannot reach"))))
        }
        (engine, _) => Ok((engine, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EngineChoice::{Auto, Daemon, Imagetools};

    #[test]
    fn a_plain_http_registry_picks_the_daemon_engine_for_the_run() {
        let listed = vec!["10.0.0.9:5000".to_string(), "127.0.0.1:5000".to_string()];
        let regs = ["docker.io", "10.0.0.9:5000"];
        // auto with buildx: daemon, and it says why.
        let (e, why) = choose_for(Auto, true, &listed, &regs).unwrap();
        assert_eq!(e, EngineKind::Daemon);
        assert!(why.unwrap().contains("10.0.0.9:5000 is in INSECURE_REGISTRIES"));
        // Explicit imagetools: an error naming the registry and the way out.
        let err = choose_for(Imagetools, true, &listed, &regs).unwrap_err();
        assert!(err.contains("10.0.0.9:5000") && err.contains("--engine daemon"), "{err}");
        // Listed loopback registries are reachable by imagetools as before.
        assert_eq!(choose_for(Auto, true, &listed, &["127.0.0.1:5000"]).unwrap(), (EngineKind::Imagetools, None));
        // Untouched listed registries change nothing; daemon stays daemon.
        assert_eq!(choose_for(Auto, true, &listed, &["ghcr.io"]).unwrap(), (EngineKind::Imagetools, None));
        assert_eq!(choose_for(Daemon, true, &listed, &regs).unwrap(), (EngineKind::Daemon, None));
        assert_eq!(choose_for(Auto, false, &listed, &regs).unwrap(), (EngineKind::Daemon, None));
    }

    #[test]
    fn the_timeout_flag_bounds_the_probes() {
        // Audit 2 (side note): `--timeout 2` left `docker buildx version` at a fixed 30 s.
        struct Recording(std::sync::Mutex<Vec<Duration>>);
        impl Docker for Recording {
            fn run(&self, cmd: &Cmd) -> Result<crate::docker::Output, crate::docker::DockerError> {
                self.0.lock().unwrap().push(cmd.timeout);
                Ok(crate::docker::Output { stdout: Vec::new(), stderr: String::new() })
            }
        }
        let d = Recording(Default::default());
        assert!(buildx_available(&d, crate::ctx::Timeouts::new(Some(2)).probe));
        assert_eq!(*d.0.lock().unwrap(), [Duration::from_secs(2)]);
        assert_eq!(crate::ctx::Timeouts::new(None).probe, Duration::from_secs(30));
    }
}
