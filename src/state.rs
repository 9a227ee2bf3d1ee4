//! Remembered pairs (issue 11, point 3): after a copy that cannot keep the
//! digest (daemon engine; a platform subset), the run remembers
//! `source digest -> target digest`, keyed by the source reference, the
//! selected platforms and the target reference. A later run that HEADs both
//! sides and finds exactly that pair knows the mirror is up to date without
//! a GET.
//!
//! Safety: a pair counts only when *both* current digests equal it exactly;
//! a missing, stale or corrupt file can only cost requests, never make a
//! changed image look up to date. A corrupt file is ignored (with a warning
//! the caller shows) and replaced on the next save. Writes are atomic (a temp
//! file in the same directory, then rename).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const VERSION: u32 = 1;

/// Pairs kept at most; the oldest go first.
const MAX_PAIRS: usize = 100_000;

/// What a pair is about: editing a line's platforms or target never matches
/// an old pair.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PairKey {
    pub source: String,
    /// Sorted, deduplicated; empty = all platforms.
    pub platforms: Vec<String>,
    pub target: String,
}

impl PairKey {
    pub fn new(source: &str, platforms: &[String], target: &str) -> PairKey {
        let mut platforms = platforms.to_vec();
        platforms.sort();
        platforms.dedup();
        PairKey { source: source.to_string(), platforms, target: target.to_string() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    #[serde(flatten)]
    key: PairKey,
    source_digest: String,
    target_digest: String,
    /// Unix seconds of the copy.
    at: u64,
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    pairs: Vec<Entry>,
}

/// The remembered pairs of one state file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pairs: BTreeMap<PairKey, (String, String, u64)>,
    changed: bool,
}

/// Why a state file was not used (for a warning; the run goes on without it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ignored {
    pub path: PathBuf,
    pub reason: String,
}

impl std::fmt::Display for Ignored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ignoring the state file {}: {} (it is rewritten at the end of the run)", self.path.display(), self.reason)
    }
}

fn valid_digest(d: &str) -> bool {
    crate::registry::manifest::is_digest(d)
}

impl State {
    /// Reads `path`. A missing file is an empty state; an unreadable or
    /// corrupt one is an empty state plus the reason.
    pub fn load(path: &Path) -> (State, Option<Ignored>) {
        let ignored = |reason: String| (State::default(), Some(Ignored { path: path.to_path_buf(), reason }));
        // Anyone who can write the file can plant pairs that hide a real
        // change: a file others may write is not trusted.
        #[cfg(unix)]
        if let Ok(meta) = std::fs::metadata(path) {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o022 != 0 {
                return ignored(format!("it is writable by group or others (mode {mode:o}), so anyone could plant entries; `chmod 600` it"));
            }
            use std::os::unix::fs::MetadataExt;
            let me = rustix::process::geteuid().as_raw();
            if meta.uid() != me {
                return ignored(format!("it belongs to another user (uid {}), who could plant entries", meta.uid()));
            }
        }
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (State::default(), None),
            Err(e) => return ignored(e.to_string()),
        };
        let file: File = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => return ignored(format!("not valid JSON: {e}")),
        };
        if file.version != VERSION {
            return ignored(format!("version {} is not {VERSION}", file.version));
        }
        let mut pairs = BTreeMap::new();
        for e in file.pairs {
            if !valid_digest(&e.source_digest) || !valid_digest(&e.target_digest) {
                return ignored(format!("a pair of {} has a malformed digest", e.key.source));
            }
            if e.key.source.is_empty() || e.key.target.is_empty() {
                return ignored("a pair has no source or target".into());
            }
            let key = PairKey::new(&e.key.source, &e.key.platforms, &e.key.target);
            pairs.insert(key, (e.source_digest, e.target_digest, e.at));
        }
        (State { pairs, changed: false }, None)
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// True only when `key` has a pair whose both digests equal the current ones.
    pub fn is_up_to_date(&self, key: &PairKey, source_digest: &str, target_digest: &str) -> bool {
        self.pairs.get(key).is_some_and(|(s, t, _)| s == source_digest && t == target_digest)
    }

    /// Records a successful copy (replacing the key's old pair).
    pub fn remember(&mut self, key: PairKey, source_digest: &str, target_digest: &str, now_unix: u64) {
        if !valid_digest(source_digest) || !valid_digest(target_digest) {
            return;
        }
        let new = (source_digest.to_string(), target_digest.to_string(), now_unix);
        if self.pairs.get(&key) != Some(&new) {
            self.pairs.insert(key, new);
            self.changed = true;
        }
    }

    /// Drops the key's pair (e.g. the target was found changed).
    #[cfg(test)]
    pub fn forget(&mut self, key: &PairKey) {
        self.changed |= self.pairs.remove(key).is_some();
    }

    /// Anything to save?
    pub fn changed(&self) -> bool {
        self.changed
    }

    /// Writes atomically: a temp file beside `path`, then rename; creates the
    /// directory. Keeps the newest [`MAX_PAIRS`] pairs.
    pub fn save(&mut self, path: &Path) -> std::io::Result<()> {
        let mut entries: Vec<Entry> = self
            .pairs
            .iter()
            .map(|(k, (s, t, at))| Entry { key: k.clone(), source_digest: s.clone(), target_digest: t.clone(), at: *at })
            .collect();
        if entries.len() > MAX_PAIRS {
            entries.sort_by_key(|e| std::cmp::Reverse(e.at));
            entries.truncate(MAX_PAIRS);
            entries.sort_by(|a, b| a.key.cmp(&b.key));
        }
        let text = serde_json::to_vec_pretty(&File { version: VERSION, pairs: entries })?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new().prefix(".state-").suffix(".tmp").tempfile_in(dir)?;
        tmp.write_all(&text)?;
        tmp.as_file().sync_all()?;
        tmp.persist(path).map_err(|e| e.error)?;
        self.changed = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn key() -> PairKey {
        PairKey::new("docker.io/library/nginx:1.27", &["linux/arm64".into(), "linux/amd64".into()], "r.lan/nginx:1.27")
    }

    #[test]
    fn a_pair_counts_only_when_both_digests_match() {
        let mut s = State::default();
        s.remember(key(), &d('a'), &d('b'), 1);
        assert!(s.is_up_to_date(&key(), &d('a'), &d('b')));
        assert!(!s.is_up_to_date(&key(), &d('a'), &d('c')), "target changed");
        assert!(!s.is_up_to_date(&key(), &d('c'), &d('b')), "source changed");
        // Other platforms or another target never match the old pair; order does not matter.
        assert!(!s.is_up_to_date(&PairKey::new("docker.io/library/nginx:1.27", &["linux/amd64".into()], "r.lan/nginx:1.27"), &d('a'), &d('b')));
        assert!(!s.is_up_to_date(&PairKey::new("docker.io/library/nginx:1.27", &[], "r.lan/nginx:1.27"), &d('a'), &d('b')));
        assert!(s.is_up_to_date(&PairKey::new("docker.io/library/nginx:1.27", &["linux/amd64".into(), "linux/arm64".into()], "r.lan/nginx:1.27"), &d('a'), &d('b')));
        s.forget(&key());
        assert!(!s.is_up_to_date(&key(), &d('a'), &d('b')));
        // Malformed digests are never remembered.
        s.remember(key(), "sha256:short", &d('b'), 1);
        assert!(s.is_empty());
    }

    #[test]
    fn save_and_load_round_trip_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/imgsync/state.json");
        let (mut s, warn) = State::load(&path);
        assert!(s.is_empty() && warn.is_none(), "a missing file is an empty state");
        s.remember(key(), &d('a'), &d('b'), 7);
        assert!(s.changed());
        s.save(&path).unwrap();
        assert!(!s.changed());
        let (loaded, warn) = State::load(&path);
        assert!(warn.is_none());
        assert!(loaded.is_up_to_date(&key(), &d('a'), &d('b')));
        assert_eq!(loaded.len(), 1);
        // No temp file left beside it.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        // Same pair again: nothing to save.
        let mut again = loaded.clone();
        again.remember(key(), &d('a'), &d('b'), 7);
        assert!(!again.changed());
    }

    #[test]
    #[cfg(unix)]
    fn a_state_file_writable_by_others_is_ignored_with_a_warning() {
        // Audit 2 #11: a 0666 file in a shared directory was used silently.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let mut s = State::default();
        s.remember(key(), &d('a'), &d('b'), 7);
        s.save(&path).unwrap();
        for mode in [0o666, 0o620] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let (loaded, warn) = State::load(&path);
            assert!(loaded.is_empty(), "mode {mode:o}");
            assert!(warn.expect("a warning").reason.contains("writable by"), "mode {mode:o}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(State::load(&path).0.len(), 1);
        // Another user's file (only root can make one here).
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            let (loaded, warn) = State::load(&path);
            assert!(loaded.is_empty());
            assert!(warn.expect("a warning").reason.contains("another user"));
        } else {
            eprintln!("SKIPPED the other-owner case: chown needs root");
        }
    }

    #[test]
    fn corrupt_files_are_ignored_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let good = format!(
            r#"{{"version":1,"pairs":[{{"source":"s","platforms":[],"target":"t","source_digest":"{}","target_digest":"{}","at":1}}]}}"#,
            d('a'),
            d('b')
        );
        for (text, why) in [
            ("{not json", "not valid JSON"),
            (r#"{"version":2,"pairs":[]}"#, "version 2"),
            (&good.replace(&d('b'), "sha256:zz"), "malformed digest"),
            (&good.replace(r#""target":"t""#, r#""target":"""#), "no source or target"),
            (&good[..good.len() - 5], "not valid JSON"),
        ] {
            std::fs::write(&path, text).unwrap();
            let (s, warn) = State::load(&path);
            assert!(s.is_empty(), "{text}");
            let warn = warn.expect(text);
            assert!(warn.reason.contains(why), "{text}: {}", warn.reason);
            assert!(warn.to_string().contains("ignoring the state file"));
        }
        std::fs::write(&path, &good).unwrap();
        let (s, warn) = State::load(&path);
        assert!(warn.is_none() && s.is_up_to_date(&PairKey::new("s", &[], "t"), &d('a'), &d('b')));
    }
}
