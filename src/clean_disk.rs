//! `imgsync clean-disk`: frees disk on a GitHub-hosted runner by deleting
//! preinstalled toolchains that mirroring never uses.
//!
//! The list (`ITEMS`) is deliberately short: big trees that no step of an
//! image-mirroring job needs, and that nothing else on the runner links into.
//! Left alone on purpose: `/usr/local/lib/node_modules` (npm itself lives
//! there), the rest of `/opt/hostedtoolcache` (setup-python/-node/-go use it),
//! JVMs, browsers, the Azure CLI, apt packages (removing those needs apt, a
//! process) and swap.
//!
//! Safety: nothing outside `ITEMS` is touched. A listed path that is a symlink,
//! or is reached through one, is skipped; symlinks inside are removed as links,
//! never followed; a tree with another filesystem mounted inside, or with a
//! mount point inside (a bind mount of the same filesystem too, found in
//! `/proc/self/mountinfo` on Linux), or that is itself a mount point, is
//! skipped. `root` prefixes every path (tests). Off a GitHub-hosted runner
//! (`RUNNER_ENVIRONMENT=github-hosted`) only `--dry-run` or `--force` runs.
//! Unused docker images are removed only when asked (`--prune-images`):
//! a local image the user already had is never deleted otherwise.
//!
//! Portability: clean-disk is meant for Linux runners. Elsewhere it builds
//! (no mountinfo; on non-Unix systems hard links and filesystems are not
//! told apart) so the crate compiles on every platform.
//!
//! This module spawns no process: unused docker images and deletions that need
//! root are hooks the caller provides (`Hooks`).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One preinstalled tree that may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Item {
    pub path: &'static str,
    pub what: &'static str,
}

/// Everything clean-disk may delete (a few are absent on newer runner images).
pub const ITEMS: &[Item] = &[
    Item { path: "/usr/local/lib/android", what: "Android SDK" },
    Item { path: "/usr/share/dotnet", what: ".NET SDK" },
    Item { path: "/opt/ghc", what: "Haskell GHC" },
    Item { path: "/usr/local/.ghcup", what: "Haskell GHCup" },
    Item { path: "/opt/hostedtoolcache/CodeQL", what: "CodeQL bundle" },
    Item { path: "/usr/local/share/boost", what: "Boost C++ libraries" },
    Item { path: "/usr/local/share/powershell", what: "PowerShell" },
    Item { path: "/usr/share/swift", what: "Swift toolchain" },
];

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Measure and report; delete nothing.
    pub dry_run: bool,
    /// Run even off a GitHub-hosted runner.
    pub force: bool,
    /// Prefixes every path; `None` is `/`.
    pub root: Option<PathBuf>,
    /// `RUNNER_ENVIRONMENT=github-hosted`.
    pub hosted_runner: bool,
    /// Also `docker image prune --all --force` (`--prune-images`): deletes
    /// every image no container uses, the user's own included.
    pub prune_images: bool,
}

/// Removes unused docker images (or, given `true` for dry-run, only measures
/// them); returns the bytes freed or that would be.
pub type DockerHook<'a> = dyn Fn(bool) -> Result<u64, String> + Sync + 'a;

/// Deletes a listed tree this process may not (e.g. `sudo -n rm -rf
/// --one-file-system -- PATH`).
pub type RemoveHook<'a> = dyn Fn(&Path) -> Result<(), String> + Sync + 'a;

/// Work this module leaves to the caller, who owns process spawning.
#[derive(Clone, Copy, Default)]
pub struct Hooks<'a> {
    pub docker_images: Option<&'a DockerHook<'a>>,
    /// Called only with a listed path that passed every check, after the
    /// in-process removal met "permission denied".
    pub privileged_remove: Option<&'a RemoveHook<'a>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Removed,
    WouldRemove,
    Absent,
    Skipped(String),
    Failed(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ItemReport {
    /// The path as deleted (with the root prefix), or "unused docker images".
    pub name: String,
    pub what: String,
    /// Bytes in the tree (file sizes, each hard-linked file once), measured first.
    pub bytes: u64,
    pub state: State,
    pub elapsed: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanReport {
    pub dry_run: bool,
    pub items: Vec<ItemReport>,
    /// Where free space was measured: the root.
    pub volume: PathBuf,
    pub free_before: Option<u64>,
    pub free_after: Option<u64>,
    pub elapsed: Duration,
}

impl CleanReport {
    /// Bytes removed, or that would be in a dry run.
    pub fn freed(&self) -> u64 {
        self.items.iter().filter(|i| matches!(i.state, State::Removed | State::WouldRemove)).map(|i| i.bytes).sum()
    }

    pub fn failed(&self) -> bool {
        self.items.iter().any(|i| matches!(i.state, State::Failed(_)))
    }
}

/// Refuses off a hosted runner unless forced (a dry run is always allowed).
pub fn check_allowed(opts: &Options) -> Result<(), String> {
    if opts.dry_run || opts.force || opts.hosted_runner {
        return Ok(());
    }
    Err(format!(
        "refused: this is not a GitHub-hosted runner (RUNNER_ENVIRONMENT is not github-hosted), and clean-disk \
         deletes preinstalled toolchains ({}). See what it would remove with --dry-run; run it anyway with --force",
        ITEMS.iter().map(|i| i.path).collect::<Vec<_>>().join(", ")
    ))
}

/// Deletes (or measures) every listed tree in parallel.
pub fn clean(opts: &Options, hooks: &Hooks) -> Result<CleanReport, String> {
    check_allowed(opts)?;
    let root = opts.root.clone().unwrap_or_else(|| PathBuf::from("/"));
    if !root.is_dir() {
        return Err(format!("--root {}: not a directory", root.display()));
    }
    let start = Instant::now();
    let free_before = free_bytes(&root).ok();
    let mounts = mount_points();
    let items = std::thread::scope(|s| {
        let mut handles: Vec<_> = ITEMS
            .iter()
            .map(|item| s.spawn(|| clean_item(&root, *item, opts.dry_run, hooks.privileged_remove, &mounts)))
            .collect();
        if let Some(docker) = hooks.docker_images.filter(|_| opts.prune_images) {
            handles.push(s.spawn(move || docker_item(docker, opts.dry_run)));
        }
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| ItemReport {
                    name: "?".into(),
                    what: String::new(),
                    bytes: 0,
                    state: State::Failed("the worker panicked".into()),
                    elapsed: Duration::ZERO,
                })
            })
            .collect()
    });
    Ok(CleanReport {
        dry_run: opts.dry_run,
        items,
        free_after: free_bytes(&root).ok(),
        volume: root,
        free_before,
        elapsed: start.elapsed(),
    })
}

fn docker_item(hook: &DockerHook<'_>, dry_run: bool) -> ItemReport {
    let start = Instant::now();
    let (bytes, state) = match hook(dry_run) {
        Ok(b) => (b, if dry_run { State::WouldRemove } else { State::Removed }),
        Err(e) => (0, State::Failed(e)),
    };
    ItemReport { name: "unused docker images".into(), what: "images no container uses".into(), bytes, state, elapsed: start.elapsed() }
}

/// `root` + the listed absolute path.
pub fn full_path(root: &Path, listed: &str) -> PathBuf {
    root.join(listed.trim_start_matches('/'))
}

fn clean_item(root: &Path, item: Item, dry_run: bool, privileged: Option<&RemoveHook<'_>>, mounts: &[PathBuf]) -> ItemReport {
    let start = Instant::now();
    let full = full_path(root, item.path);
    let mut report =
        ItemReport { name: full.display().to_string(), what: item.what.into(), bytes: 0, state: State::Absent, elapsed: Duration::ZERO };
    report.state = match check_path(root, &full).and_then(|()| check_mounts(&full, mounts)) {
        Err(state) => state,
        Ok(()) => match tree_size(&full) {
            Err(e) => State::Failed(format!("measuring: {e}")),
            Ok(Size { crosses_mount: true, .. }) => {
                State::Skipped("another filesystem is mounted inside; unmount it first".into())
            }
            Ok(size) => {
                report.bytes = size.bytes;
                if dry_run {
                    State::WouldRemove
                } else {
                    remove(&full, &|p| std::fs::remove_dir_all(p), privileged)
                }
            }
        },
    };
    report.elapsed = start.elapsed();
    report
}

/// Every component from below `root` down to `full` must be a real directory.
fn check_path(root: &Path, full: &Path) -> Result<(), State> {
    let rel = full.strip_prefix(root).map_err(|_| State::Skipped("outside the root".into()))?;
    let mut at = root.to_path_buf();
    for part in rel.components() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(State::Absent),
            Err(e) => return Err(State::Failed(format!("{}: {e}", at.display()))),
            Ok(m) if m.file_type().is_symlink() => {
                return Err(State::Skipped(format!("{} is a symlink; not followed", at.display())))
            }
            Ok(m) if !m.is_dir() => return Err(State::Skipped(format!("{} is not a directory", at.display()))),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Skips a tree that is a mount point or has one inside: a bind mount of the
/// same filesystem has the same device number, so only the mount table shows it.
fn check_mounts(full: &Path, mounts: &[PathBuf]) -> Result<(), State> {
    let real = std::fs::canonicalize(full).unwrap_or_else(|_| full.to_path_buf());
    if let Some(m) = mounts.iter().find(|m| m.starts_with(&real)) {
        let why = if *m == real {
            "it is a mount point; not removed".to_string()
        } else {
            format!("{} is mounted inside; unmount it first", m.display())
        };
        return Err(State::Skipped(why));
    }
    Ok(())
}

/// Every mount point of this process's mount namespace (Linux); empty elsewhere.
pub fn mount_points() -> Vec<PathBuf> {
    #[cfg(target_os = "linux")]
    if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
        return parse_mountinfo(&text);
    }
    Vec::new()
}

/// The mount points (field 5) of `/proc/self/mountinfo`, octal escapes
/// (`\040` for a space) decoded.
pub fn parse_mountinfo(text: &str) -> Vec<PathBuf> {
    text.lines().filter_map(|l| l.split(' ').nth(4)).map(|p| PathBuf::from(unescape_octal(p))).collect()
}

#[cfg(unix)]
fn unescape_octal(s: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let oct = |j: usize| b.get(j).filter(|c| (b'0'..=b'7').contains(c)).map(|c| c - b'0');
        if b[i] == b'\\' {
            if let (Some(x), Some(y), Some(z)) = (oct(i + 1), oct(i + 2), oct(i + 3)) {
                out.push(x.wrapping_mul(64).wrapping_add(y * 8).wrapping_add(z));
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    std::ffi::OsString::from_vec(out)
}

#[cfg(not(unix))]
fn unescape_octal(s: &str) -> std::ffi::OsString {
    s.into()
}

/// Removes in-process; on "permission denied", hands the path to the hook.
fn remove(
    full: &Path,
    own: &dyn Fn(&Path) -> io::Result<()>,
    privileged: Option<&RemoveHook<'_>>,
) -> State {
    match own(full) {
        Ok(()) => State::Removed,
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => match privileged {
            Some(hook) => match hook(full) {
                Ok(()) if std::fs::symlink_metadata(full).is_err() => State::Removed,
                Ok(()) => State::Failed("still present after the privileged removal".into()),
                Err(e) => State::Failed(e),
            },
            None => State::Failed(format!("{e}: run clean-disk as root (e.g. with sudo)")),
        },
        Err(e) => State::Failed(e.to_string()),
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Size {
    pub bytes: u64,
    /// A directory inside lives on another filesystem.
    pub crosses_mount: bool,
}

/// Sums the sizes of the regular files under `dir`, each hard-linked file once.
/// Symlinks are not followed; unreadable subdirectories count as empty.
pub fn tree_size(dir: &Path) -> io::Result<Size> {
    let top = std::fs::symlink_metadata(dir)?;
    let mut size = Size::default();
    if !top.is_dir() {
        size.bytes = if top.is_file() { top.len() } else { 0 };
        return Ok(size);
    }
    let mut seen = HashSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            // DirEntry::metadata does not follow symlinks on Unix.
            let Ok(m) = entry.metadata() else { continue };
            if m.is_dir() {
                if device(&m) != device(&top) {
                    size.crosses_mount = true;
                } else {
                    stack.push(entry.path());
                }
            } else if m.is_file() && hard_link_id(&m).is_none_or(|id| seen.insert(id)) {
                size.bytes = size.bytes.saturating_add(m.len());
            }
        }
    }
    Ok(size)
}

/// The filesystem a file lives on (Unix); `None` where it cannot be told.
#[cfg(unix)]
fn device(m: &std::fs::Metadata) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    Some(m.dev())
}

#[cfg(not(unix))]
fn device(_: &std::fs::Metadata) -> Option<u64> {
    None
}

/// (device, inode) of a file with several hard links, so it counts once.
#[cfg(unix)]
fn hard_link_id(m: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    (m.nlink() >= 2).then(|| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn hard_link_id(_: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// Bytes available to unprivileged users on the filesystem holding `path`
/// (portable: `fs4`, statvfs on Unix, GetDiskFreeSpaceEx on Windows).
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    fs4::available_space(path)
}

/// `1.5 GiB`, `320.0 MiB`, `12 B`.
pub fn human(bytes: u64) -> String {
    bytesize::ByteSize(bytes).display().iec().to_string()
}

/// The table a person reads.
pub fn render(r: &CleanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "clean-disk{}: {} {}",
        if r.dry_run { " (dry run)" } else { "" },
        if r.dry_run { "would free" } else { "freed" },
        human(r.freed())
    );
    let name_w = r.items.iter().map(|i| i.name.chars().count()).max().unwrap_or(0);
    for i in &r.items {
        let (state, note) = match &i.state {
            State::Removed => ("removed", String::new()),
            State::WouldRemove => ("would remove", String::new()),
            State::Absent => ("absent", String::new()),
            State::Skipped(why) => ("skipped", format!(": {why}")),
            State::Failed(why) => ("FAILED", format!(": {why}")),
        };
        let size = if matches!(i.state, State::Absent) || (i.bytes == 0 && matches!(i.state, State::Skipped(_) | State::Failed(_))) {
            "-".to_string()
        } else {
            human(i.bytes)
        };
        let time = if matches!(i.state, State::Removed) { format!("{:.1}s", i.elapsed.as_secs_f64()) } else { String::new() };
        let line = format!("  {state:<12} {size:>10} {time:>7}  {:<name_w$}  {}{note}", i.name, i.what);
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let volume = r.volume.display();
    match (r.free_before, r.free_after) {
        (Some(b), Some(a)) if !r.dry_run => {
            let delta = if a >= b { format!("+{}", human(a - b)) } else { format!("-{}", human(b - a)) };
            let _ = write!(out, "free on {volume}: {} → {} ({delta})", human(b), human(a));
        }
        (Some(b), _) => {
            let _ = write!(out, "free on {volume}: {}", human(b));
        }
        _ => {
            let _ = write!(out, "free on {volume}: unknown");
        }
    }
    let _ = writeln!(out, "; took {:.1}s", r.elapsed.as_secs_f64());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_names_the_way_out() {
        let e = check_allowed(&Options::default()).unwrap_err();
        assert!(e.contains("--force") && e.contains("--dry-run") && e.contains("/usr/share/dotnet"), "{e}");
        assert!(check_allowed(&Options { dry_run: true, ..Default::default() }).is_ok());
        assert!(check_allowed(&Options { force: true, ..Default::default() }).is_ok());
        assert!(check_allowed(&Options { hosted_runner: true, ..Default::default() }).is_ok());
    }

    #[test]
    fn permission_denied_goes_to_the_hook() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t");
        std::fs::create_dir(&t).unwrap();
        let denied = |_: &Path| Err(io::Error::from(io::ErrorKind::PermissionDenied));
        let other = |_: &Path| Err(io::Error::other("disk on fire"));
        assert!(matches!(remove(&t, &denied, None), State::Failed(e) if e.contains("as root")));
        let calls = std::sync::Mutex::new(Vec::new());
        let hook = |p: &Path| {
            calls.lock().unwrap().push(p.to_path_buf());
            std::fs::remove_dir(p).map_err(|e| e.to_string())
        };
        assert_eq!(remove(&t, &denied, Some(&hook)), State::Removed);
        assert_eq!(*calls.lock().unwrap(), std::slice::from_ref(&t));
        std::fs::create_dir(&t).unwrap();
        let lying_hook = |_: &Path| Ok(());
        assert!(matches!(remove(&t, &denied, Some(&lying_hook)), State::Failed(e) if e.contains("still present")));
        // Only "permission denied" is handed over.
        assert_eq!(remove(&t, &other, Some(&hook)), State::Failed("disk on fire".into()));
        assert_eq!(calls.lock().unwrap().len(), 1);
    }

    #[test]
    fn sizes_and_free_space() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 * 1024 * 1024 * 1024), "5.0 GiB");
        assert!(free_bytes(Path::new("/")).unwrap() > 0);
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
        assert_eq!(full_path(Path::new("/tmp/r"), "/usr/share/dotnet"), Path::new("/tmp/r/usr/share/dotnet"));
        assert_eq!(full_path(Path::new("/"), "/usr/share/dotnet"), Path::new("/usr/share/dotnet"));
    }

    #[test]
    fn mount_points_inside_are_found() {
        let info = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    90 22 8:1 /victim /r/opt/ghc/bind rw shared:1 - ext4 /dev/sda1 rw\n\
                    91 22 0:5 / /r/usr/share/with\\040space rw - tmpfs tmpfs rw\n";
        let mounts = parse_mountinfo(info);
        assert_eq!(mounts, [PathBuf::from("/"), "/r/opt/ghc/bind".into(), "/r/usr/share/with space".into()]);
        let bind = check_mounts(Path::new("/r/opt/ghc"), &mounts[1..]);
        assert!(matches!(&bind, Err(State::Skipped(w)) if w.contains("/r/opt/ghc/bind is mounted inside")), "{bind:?}");
        assert!(matches!(check_mounts(Path::new("/r/opt/ghc/bind"), &mounts[1..]), Err(State::Skipped(w)) if w.contains("mount point")));
        assert_eq!(check_mounts(Path::new("/r/opt/ghcup"), &mounts[1..]), Ok(()));
        assert_eq!(check_mounts(Path::new("/r/usr/share/dotnet"), &mounts[1..]), Ok(()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_same_filesystem_bind_mount_is_skipped_and_its_files_kept() {
        // Needs CAP_SYS_ADMIN (CI runs as root); elsewhere there is nothing to test.
        let root = tempfile::tempdir().unwrap();
        let victim = root.path().join("victim");
        std::fs::create_dir_all(&victim).unwrap();
        std::fs::write(victim.join("file"), "keep me").unwrap();
        let bind = full_path(root.path(), "/opt/ghc").join("bind");
        std::fs::create_dir_all(&bind).unwrap();
        let mounted = std::process::Command::new("mount").arg("--bind").arg(&victim).arg(&bind).status().is_ok_and(|s| s.success());
        if !mounted {
            eprintln!("SKIPPED: cannot bind-mount here (not root?)");
            return;
        }
        struct Unmount(PathBuf);
        impl Drop for Unmount {
            fn drop(&mut self) {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
        let _guard = Unmount(bind.clone());
        let opts = Options { force: true, root: Some(root.path().to_path_buf()), ..Default::default() };
        let r = clean(&opts, &Hooks::default()).unwrap();
        let ghc = r.items.iter().find(|i| i.name.ends_with("/opt/ghc")).unwrap();
        assert!(matches!(&ghc.state, State::Skipped(w) if w.contains("mounted inside")), "{ghc:?}");
        assert_eq!(std::fs::read_to_string(victim.join("file")).unwrap(), "keep me");
    }

    #[test]
    fn images_are_pruned_only_when_asked() {
        let root = tempfile::tempdir().unwrap();
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let prune = |_: bool| {
            calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(5)
        };
        let hooks = Hooks { docker_images: Some(&prune), privileged_remove: None };
        let opts = Options { force: true, root: Some(root.path().to_path_buf()), ..Default::default() };
        let r = clean(&opts, &hooks).unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert!(!r.items.iter().any(|i| i.name == "unused docker images"));
        let r = clean(&Options { prune_images: true, ..opts }, &hooks).unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(r.items.iter().any(|i| i.name == "unused docker images"));
    }

    #[test]
    fn listed_paths_are_absolute_and_distinct() {
        let mut seen = HashSet::new();
        for i in ITEMS {
            assert!(i.path.starts_with('/') && !i.path.ends_with('/') && !i.path.contains(".."), "{}", i.path);
            assert!(i.path.matches('/').count() >= 2, "{} is too close to /", i.path);
            assert!(seen.insert(i.path));
        }
    }
}
