//! The command line. Flags override the environment, which overrides config.env.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{EngineChoice, Overrides};

#[derive(Debug, Parser)]
#[command(name = "imgsync", version, about = "Mirror container images between registries by driving the docker CLI")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every image in images.txt that differs at a target.
    Sync(SyncArgs),
    /// Inspect and decide, change nothing (= sync --dry-run).
    Plan(SyncArgs),
    /// Copy one image given on the command line (the one-image workflows use this).
    Copy(CopyArgs),
    /// Check docker, buildx, disk, settings, logins and images.txt; one line each.
    Doctor(SyncArgs),
    /// Free disk on a GitHub-hosted runner by removing preinstalled toolchains.
    CleanDisk(CleanDiskArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell.
    Completions(crate::completions::CompletionsArgs),
    /// Print each original image's mirror reference (text, JSON or a markdown table).
    Map(crate::pull::MapArgs),
    /// On a server: pull images from the mirror and tag them with their original names.
    Pull(crate::pull::PullArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// config.env with SYNC_MODE, CLEAN_DISK_SPACE and target settings.
    #[arg(long, value_name = "FILE", default_value = "config.env")]
    pub config: PathBuf,
    /// Targets: aliyun, ghcr, double, dockerhub, custom, none, or a comma list.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// auto uses imagetools when buildx answers, else daemon.
    #[arg(long, value_enum)]
    pub engine: Option<EngineChoice>,
    /// Parallel copies, and docker inspections under --inspect docker (registry reads: --inspect-jobs).
    #[arg(long, value_name = "N")]
    pub jobs: Option<usize>,
    /// Retries of network errors, 5xx and rate limits (default 3, at most 20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: Option<u32>,
    /// Upper limit in seconds for any single docker step.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Copy even when the target already holds the same content.
    #[arg(long)]
    pub force: bool,
    /// How registries are read: auto (HTTP, falling back to docker per registry), registry (HTTP only), docker.
    #[arg(long, value_enum)]
    pub inspect: Option<crate::config::InspectChoice>,
    /// Parallel registry reads (default 32), separate from copy jobs.
    #[arg(long, value_name = "N")]
    pub inspect_jobs: Option<usize>,
    /// Remembered source/target digest pairs (default: the user's cache directory).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Write a JSON report of the run.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

impl Common {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            mode: self.mode.clone(),
            engine: self.engine,
            jobs: self.jobs,
            retries: self.retries,
            timeout_secs: self.timeout,
            inspect: self.inspect,
            inspect_jobs: self.inspect_jobs,
            state_file: self.state.clone(),
        }
    }
}

#[derive(Debug, Args, Clone, Default)]
pub struct SyncArgs {
    /// The list of images, one per line.
    #[arg(long, value_name = "FILE", default_value = "images.txt")]
    pub images: PathBuf,
    #[command(flatten)]
    pub common: Common,
    /// Inspect and decide, push nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Process only shard I of N (1-based), e.g. 2/4.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// Rewrite the "last sync" badge in this README when something synced.
    #[arg(long, value_name = "README")]
    pub badge: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct CopyArgs {
    /// The source image, e.g. nginx:alpine.
    pub source: String,
    /// Target NAME[:TAG] instead of the derived name.
    #[arg(long, value_name = "NAME[:TAG]")]
    pub name: Option<String>,
    /// os/arch[/variant], comma-separated for several.
    #[arg(long, value_name = "P")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub common: Common,
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args, Clone)]
pub struct CleanDiskArgs {
    /// Show what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Run even off a GitHub-hosted runner.
    #[arg(long)]
    pub force: bool,
    /// Also remove every docker image no container uses (`docker image prune --all`), yours included.
    #[arg(long)]
    pub prune_images: bool,
    /// Prefix every path (for tests).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}
