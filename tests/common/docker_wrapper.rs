//! A `docker` first on PATH that records every call, then runs the real CLI:
//! how the tests prove "no docker process" and count `docker pull`s.

use std::path::{Path, PathBuf};

/// The real docker CLI, first on the test's PATH (scripts/test.sh's).
pub fn real_docker() -> PathBuf {
    super::which("docker").expect("docker on PATH (run scripts/test.sh)")
}

/// Whether the tests run as root (network namespaces, bind mounts need it).
pub fn is_root() -> bool {
    #[cfg(unix)]
    // SAFETY: geteuid(2) reads a process attribute; it touches no memory.
    return unsafe { libc::geteuid() == 0 };
    #[cfg(not(unix))]
    false
}

pub struct RecordingDocker {
    dir: tempfile::TempDir,
}

impl RecordingDocker {
    pub fn new() -> RecordingDocker {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("calls.log");
        let script = format!("#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{}'\nexec '{}' \"$@\"\n", log.display(), real_docker().display());
        let path = dir.path().join("docker");
        std::fs::write(&path, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        RecordingDocker { dir }
    }

    /// Every call so far, its arguments joined by spaces.
    pub fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default().lines().map(str::to_string).collect()
    }

    pub fn clear(&self) {
        let _ = std::fs::remove_file(self.dir.path().join("calls.log"));
    }

    /// PATH with the wrapper (and `extra` dirs) first.
    pub fn path_with(&self, extra: &[&Path]) -> String {
        let mut parts: Vec<String> = vec![self.dir.path().display().to_string()];
        parts.extend(extra.iter().map(|p| p.display().to_string()));
        parts.push(std::env::var("PATH").unwrap_or_default());
        parts.join(":")
    }
}
