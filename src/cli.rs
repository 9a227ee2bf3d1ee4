//! The command line. Flags override the environment, which overrides config.env.
//! A flag takes the values its config.env key takes (`--jobs 0` is refused like `JOBS=0`),
//! and each command takes only the flags it uses.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::{EngineChoice, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "imgsync",
    version,
    about = "Mirror container images between registries by driving the docker CLI",
    after_help = "Examples:
  imgsync doctor                          check docker, settings, logins and images.txt
  imgsync plan                            what a sync would copy, and why
  imgsync sync --report report.json       copy what differs; the JSON report per entry
  imgsync copy nginx:alpine --platform linux/amd64
  imgsync pull --compose docker-compose.yml   on a server: pull from the mirror, tag as the originals

Settings come from config.env (SYNC_MODE, the target's registry and namespace), the
environment (secrets) and .env.local; flags override them. -v shows every docker command
and registry request."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Also print each docker command (secrets hidden) and each registry request.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Print only errors and the results' summary.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// How much the run says on stderr (`-q`, default, `-v`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

impl Cli {
    pub fn verbosity(&self) -> Verbosity {
        match (self.quiet, self.verbose) {
            (true, _) => Verbosity::Quiet,
            (_, true) => Verbosity::Verbose,
            _ => Verbosity::Normal,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy every image in images.txt that differs at a target.
    Sync(SyncArgs),
    /// Inspect and decide, change nothing (= sync --dry-run).
    Plan(PlanArgs),
    /// Copy one image given on the command line (the one-image workflows use this).
    Copy(CopyArgs),
    /// Check docker, buildx, disk, settings, logins and images.txt; one line each.
    Doctor(DoctorArgs),
    /// Free disk on a GitHub-hosted runner by removing preinstalled toolchains.
    CleanDisk(CleanDiskArgs),
    /// Print a shell completion script: bash, zsh, fish or powershell.
    Completions(CompletionsArgs),
    /// Print each original image's mirror reference (text, JSON or a markdown table).
    Map(MapArgs),
    /// On a server: pull images from the mirror and tag them with their original names.
    Pull(PullArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct Common {
    /// config.env with SYNC_MODE, CLEAN_DISK_SPACE and target settings (default: ./config.env
    /// when it exists; a file named here must exist).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Targets: aliyun, ghcr, double, dockerhub, custom, harbor, swr, cnb, gitlab, tcr, none, or a comma list.
    #[arg(long, value_name = "MODE")]
    pub mode: Option<String>,
    /// auto uses imagetools when buildx answers, else daemon.
    #[arg(long, value_enum)]
    pub engine: Option<EngineChoice>,
    /// Parallel copies, and docker inspections under --inspect docker (registry reads: --inspect-jobs).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub jobs: Option<usize>,
    /// Retries of network errors, 5xx and rate limits (default 3, at most 20).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(0..=20))]
    pub retries: Option<u32>,
    /// Upper limit in seconds for any single docker step.
    #[arg(long, value_name = "SECS", value_parser = |v: &str| at_least_one(v).map(|n| n as u64))]
    pub timeout: Option<u64>,
    /// How registries are read: auto (HTTP, falling back to docker per registry), registry (HTTP only), docker.
    #[arg(long, value_enum)]
    pub inspect: Option<crate::config::InspectChoice>,
    /// Parallel registry reads (default 32), separate from copy jobs.
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1024))]
    pub inspect_jobs: Option<usize>,
    /// Remembered source/target digest pairs (default: the user's cache directory).
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Seconds a registry may take to start answering an HTTP read (default 8).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=600))]
    pub read_timeout: Option<u64>,
    /// Copy the source's cosign signatures, attestations, SBOMs and OCI referrers (default: copy, except with the daemon engine).
    #[arg(long, value_enum)]
    pub signatures: Option<crate::signatures::Choice>,
}

/// A count or a time limit: the words config.env's check uses for `JOBS=0`.
fn at_least_one(v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err("expected a whole number of at least 1".to_string()),
    }
}

impl Common {
    /// The config.env to read: `--config`, else `./config.env` (which may be absent).
    pub fn config_path(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(|| PathBuf::from(crate::inputs::DEFAULT_CONFIG))
    }

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
            read_timeout_secs: self.read_timeout,
            signatures: self.signatures,
        }
    }
}

/// What a run that reports takes besides the settings (sync, plan, copy).
#[derive(Debug, Args, Clone, Default)]
pub struct RunFlags {
    /// Copy even when the target already holds the same content.
    #[arg(long)]
    pub force: bool,
    /// Write a JSON report of the run (`-`: to stdout, the table then goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SyncArgs {
    /// The list of images, one per line.
    #[arg(long, value_name = "FILE", default_value = "images.txt")]
    pub images: PathBuf,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub run: RunFlags,
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

/// `plan`: sync's inputs and report; it never pushes, so no --dry-run or --badge.
#[derive(Debug, Args, Clone, Default)]
pub struct PlanArgs {
    /// The list of images, one per line.
    #[arg(long, value_name = "FILE", default_value = "images.txt")]
    pub images: PathBuf,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub run: RunFlags,
    /// Process only shard I of N (1-based), e.g. 2/4.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
}

impl PlanArgs {
    /// The same run as `sync --dry-run`.
    pub fn as_sync(&self) -> SyncArgs {
        SyncArgs { images: self.images.clone(), common: self.common.clone(), run: self.run.clone(), dry_run: true, shard: self.shard.clone(), badge: None }
    }
}

/// `doctor`: the inputs and settings a sync would use, nothing about a run's output.
#[derive(Debug, Args, Clone, Default)]
pub struct DoctorArgs {
    /// The list of images, one per line.
    #[arg(long, value_name = "FILE", default_value = "images.txt")]
    pub images: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

impl DoctorArgs {
    /// What doctor checks: the sync these inputs would make.
    pub fn as_sync(&self) -> SyncArgs {
        SyncArgs { images: self.images.clone(), common: self.common.clone(), ..Default::default() }
    }
}

#[derive(Debug, Args, Clone)]
pub struct CopyArgs {
    /// The source image, e.g. nginx:alpine.
    pub source: String,
    /// Target `NAME[:TAG]` instead of the derived name.
    #[arg(long, value_name = "NAME[:TAG]")]
    pub name: Option<String>,
    /// os/arch[/variant], comma-separated for several.
    #[arg(long, value_name = "P")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub run: RunFlags,
    /// Inspect and decide, push nothing.
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
    /// Look for the toolchains under DIR instead of / (to try it on a copied tree).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct CompletionsArgs {
    /// The shell to write the completion script for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    #[value(name = "powershell")]
    PowerShell,
}

/// What `map` and `pull` both take: which images, and where the mirror is.
#[derive(Debug, Args, Clone, Default)]
pub struct Select {
    /// Images by their original names, e.g. nginx:alpine (default: every image of
    /// the --compose files, else every line of images.txt).
    #[arg(value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The sync's images.txt, for its renames and platform lines (default:
    /// ./images.txt when it exists; without it the plain naming rule applies).
    #[arg(long = "images", value_name = "FILE")]
    pub images_file: Option<PathBuf>,
    /// A compose file whose `image:`s to take (repeat like compose's -f; its
    /// .env is read as compose reads it).
    #[arg(long, value_name = "FILE")]
    pub compose: Vec<PathBuf>,
    /// A compose profile to activate (repeatable; adds to COMPOSE_PROFILES). Services
    /// whose `profiles:` are all inactive are skipped, as compose skips them.
    #[arg(long, value_name = "NAME")]
    pub profile: Vec<String>,
    /// Also pull services with `build:` (by default, as `docker compose pull
    /// --ignore-buildable`, compose builds them and they are skipped).
    #[arg(long)]
    pub include_buildable: bool,
    /// The target to read when config.env configures several (default: the first).
    #[arg(long, value_name = "TARGET", value_parser = clap::builder::PossibleValuesParser::new(crate::config::TargetKind::names()))]
    pub from: Option<String>,
    /// config.env with SYNC_MODE and the target's registry and namespace (default:
    /// ./config.env when it exists; a file named here must exist).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The mirror as REGISTRY/NAMESPACE, instead of config.env's targets (its login: docker's own on this machine).
    #[arg(long, value_name = "REGISTRY/NAMESPACE", conflicts_with = "from")]
    pub mirror: Option<String>,
    /// How the sync named the --mirror's images (NAMING): flat or path.
    #[arg(long, value_enum, requires = "mirror")]
    pub naming: Option<crate::naming::Naming>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// `original -> mirror`, one per line.
    #[default]
    Text,
    /// An array of objects with `source`, `mirror`, `platforms`, `pull`, ...
    Json,
    /// A table for people, with the `docker pull` command to copy (MIRRORS.md).
    Markdown,
}

#[derive(Debug, Args, Clone)]
pub struct MapArgs {
    #[command(flatten)]
    pub select: Select,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Print a runtime's configuration that pulls the original names from the mirror instead.
    #[arg(long, value_enum, value_name = "RUNTIME")]
    pub emit: Option<crate::mirror_map::runtime_config::Runtime>,
    /// With --emit: write the files into DIR in the runtime's own layout (e.g. /etc/containerd/certs.d).
    #[arg(long, value_name = "DIR", requires = "emit")]
    pub out: Option<PathBuf>,
    /// The sync's JSON report (`sync --report FILE`): list the tags its selecting lines chose.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The previous MIRRORS.md: a selecting line whose listing failed keeps its rows from there.
    #[arg(long, value_name = "FILE", requires = "report")]
    pub previous: Option<PathBuf>,
}

#[derive(Debug, Args, Clone)]
pub struct PullArgs {
    #[command(flatten)]
    pub select: Select,
    /// os/arch[/variant] to pull (default: the compose service's `platform:`, else the engine's).
    #[arg(long, value_name = "P")]
    pub platform: Option<String>,
    /// Keep the mirror's name as a second tag (by default a tag this run created is removed).
    #[arg(long)]
    pub keep_mirror_tag: bool,
    /// Retries of network errors, 5xx and rate limits (default 3).
    #[arg(long, value_name = "N")]
    pub retries: Option<u32>,
    /// Upper limit in seconds for any single docker step.
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<u64>,
    /// Write a JSON report of the run.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}
