//! clean-disk on a fake runner tree under a temporary root.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use imgsync::clean_disk::{self, Hooks, Options, State};

fn file(path: &Path, bytes: usize) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, vec![b'x'; bytes]).unwrap();
}

/// A runner-like tree, plus a directory outside the root that symlinks point at.
struct Fake {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    outside: std::path::PathBuf,
}

fn fake() -> Fake {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let outside = dir.path().join("outside");
    file(&outside.join("precious.bin"), 5000);
    // Listed: dotnet 100 + 250 (+ a hard link counted once), android 1000, CodeQL 10.
    file(&root.join("usr/share/dotnet/a"), 100);
    file(&root.join("usr/share/dotnet/sdk/8.0/b"), 250);
    fs::hard_link(root.join("usr/share/dotnet/a"), root.join("usr/share/dotnet/sdk/a-link")).unwrap();
    symlink(&outside, root.join("usr/share/dotnet/sdk/escape")).unwrap();
    symlink(outside.join("precious.bin"), root.join("usr/share/dotnet/file-link")).unwrap();
    file(&root.join("usr/local/lib/android/sdk/ndk/c"), 1000);
    file(&root.join("opt/hostedtoolcache/CodeQL/2.0/x"), 10);
    // Not listed: neighbours with similar names must survive.
    file(&root.join("usr/share/dotnet-extra/keep"), 7);
    file(&root.join("usr/share/keep.txt"), 7);
    file(&root.join("opt/hostedtoolcache/Python/3.12/keep"), 7);
    file(&root.join("usr/local/lib/node_modules/npm/keep"), 7);
    Fake { _dir: dir, root, outside }
}

fn survivors(f: &Fake) {
    for keep in ["usr/share/dotnet-extra/keep", "usr/share/keep.txt", "opt/hostedtoolcache/Python/3.12/keep", "usr/local/lib/node_modules/npm/keep"] {
        assert!(f.root.join(keep).exists(), "{keep} was removed");
    }
    assert_eq!(fs::read(f.outside.join("precious.bin")).unwrap().len(), 5000, "the symlink target outside the root was touched");
}

fn item<'a>(r: &'a clean_disk::CleanReport, listed: &str) -> &'a clean_disk::ItemReport {
    r.items.iter().find(|i| i.name.ends_with(listed)).unwrap_or_else(|| panic!("{listed} not reported"))
}

#[test]
fn dry_run_measures_and_removes_nothing() {
    let f = fake();
    let opts = Options { dry_run: true, root: Some(f.root.clone()), ..Default::default() };
    let r = clean_disk::clean(&opts, &Hooks::default()).unwrap();
    assert!(r.dry_run);
    assert_eq!((item(&r, "/usr/share/dotnet").bytes, &item(&r, "/usr/share/dotnet").state), (350, &State::WouldRemove));
    assert_eq!(item(&r, "/usr/local/lib/android").bytes, 1000);
    assert_eq!(item(&r, "/opt/hostedtoolcache/CodeQL").bytes, 10);
    assert_eq!(item(&r, "/opt/ghc").state, State::Absent);
    assert_eq!(r.freed(), 1360);
    assert_eq!(r.items.len(), clean_disk::ITEMS.len());
    assert!(f.root.join("usr/share/dotnet/a").exists());
    let text = clean_disk::render(&r);
    assert!(text.starts_with("clean-disk (dry run): would free 1.3 KiB\n"), "{text}");
    assert!(text.contains("would remove"), "{text}");
    survivors(&f);
}

#[test]
fn removes_exactly_the_listed_trees() {
    let f = fake();
    let docker_calls = AtomicUsize::new(0);
    let docker = |dry_run: bool| {
        assert!(!dry_run);
        docker_calls.fetch_add(1, Ordering::SeqCst);
        Ok(4096)
    };
    let hooks = Hooks { docker_images: Some(&docker), ..Default::default() };
    let opts = Options { force: true, prune_images: true, root: Some(f.root.clone()), ..Default::default() };
    let r = clean_disk::clean(&opts, &hooks).unwrap();
    assert_eq!(docker_calls.load(Ordering::SeqCst), 1);
    for listed in ["/usr/share/dotnet", "/usr/local/lib/android", "/opt/hostedtoolcache/CodeQL"] {
        assert_eq!(item(&r, listed).state, State::Removed, "{listed}");
        assert!(!clean_disk::full_path(&f.root, listed).exists(), "{listed} still there");
    }
    assert_eq!(item(&r, "unused docker images").bytes, 4096);
    assert_eq!(r.freed(), 1360 + 4096);
    assert!(!r.failed());
    assert!(r.free_before.is_some() && r.free_after.is_some());
    // Parents of removed trees stay.
    assert!(f.root.join("usr/share").is_dir() && f.root.join("opt/hostedtoolcache").is_dir());
    survivors(&f);
    let text = clean_disk::render(&r);
    assert!(text.starts_with("clean-disk: freed 5.3 KiB\n"), "{text}");
    assert!(text.contains(" removed ") && text.contains("free on ") && text.contains(" → "), "{text}");
}

#[test]
fn a_listed_path_reached_through_a_symlink_is_skipped() {
    let f = fake();
    // root/usr/local -> outside/local: android would resolve outside the root.
    let elsewhere = f.outside.join("local");
    fs::rename(f.root.join("usr/local"), &elsewhere).unwrap();
    symlink(&elsewhere, f.root.join("usr/local")).unwrap();
    // And the listed path itself a symlink.
    fs::create_dir_all(f.outside.join("swift/bin")).unwrap();
    symlink(f.outside.join("swift"), f.root.join("usr/share/swift")).unwrap();
    let opts = Options { force: true, root: Some(f.root.clone()), ..Default::default() };
    let r = clean_disk::clean(&opts, &Hooks::default()).unwrap();
    assert!(matches!(&item(&r, "/usr/local/lib/android").state, State::Skipped(why) if why.contains("symlink")));
    assert!(matches!(&item(&r, "/usr/share/swift").state, State::Skipped(why) if why.contains("symlink")));
    assert!(elsewhere.join("lib/android/sdk/ndk/c").exists());
    assert!(f.outside.join("swift/bin").is_dir());
    assert_eq!(item(&r, "/usr/share/dotnet").state, State::Removed);
    assert_eq!(fs::read(f.outside.join("precious.bin")).unwrap().len(), 5000);
}

#[test]
fn refuses_off_runner_without_force() {
    let f = fake();
    let opts = Options { root: Some(f.root.clone()), ..Default::default() };
    let e = clean_disk::clean(&opts, &Hooks::default()).unwrap_err();
    assert!(e.contains("--force"), "{e}");
    assert!(f.root.join("usr/share/dotnet/a").exists());
    // On a hosted runner no flag is needed.
    let opts = Options { hosted_runner: true, root: Some(f.root.clone()), ..Default::default() };
    let r = clean_disk::clean(&opts, &Hooks::default()).unwrap();
    assert_eq!(item(&r, "/usr/share/dotnet").state, State::Removed);
    survivors(&f);
}

#[test]
fn a_failing_docker_hook_is_reported_not_fatal() {
    let f = fake();
    let docker = |dry_run: bool| if dry_run { Err("docker: not running".to_string()) } else { Ok(0) };
    let hooks = Hooks { docker_images: Some(&docker), ..Default::default() };
    let opts = Options { dry_run: true, prune_images: true, root: Some(f.root.clone()), ..Default::default() };
    let r = clean_disk::clean(&opts, &hooks).unwrap();
    assert!(r.failed());
    assert!(matches!(&item(&r, "unused docker images").state, State::Failed(e) if e == "docker: not running"));
    assert!(clean_disk::render(&r).contains("FAILED"));
    assert!(clean_disk::clean(&Options { dry_run: true, root: Some(f.root.join("nope")), ..Default::default() }, &Hooks::default()).is_err());
}
