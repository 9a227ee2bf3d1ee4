//! A fake `docker-credential-<name>` for tests that go through the real
//! process path (the "credential helper script on PATH"): a shell
//! script that answers `get` from a table, prints docker's "credentials not
//! found" otherwise, and logs each server it was asked for.

use std::path::{Path, PathBuf};

pub struct FakeCredentialHelper {
    /// The directory holding `docker-credential-<name>`: put it first on PATH.
    pub dir: PathBuf,
    log: PathBuf,
}

impl FakeCredentialHelper {
    /// `entries`: (server, username, secret); a username of `<token>` makes the
    /// secret an identity token, as docker's helpers do.
    pub fn write(dir: &Path, name: &str, entries: &[(&str, &str, &str)]) -> FakeCredentialHelper {
        std::fs::create_dir_all(dir).unwrap();
        let log = dir.join(format!("docker-credential-{name}.log"));
        let mut cases = String::new();
        for (server, user, secret) in entries {
            let json = serde_json::json!({"ServerURL": server, "Username": user, "Secret": secret}).to_string();
            cases.push_str(&format!("  {})\n    printf '%s\\n' {}\n    exit 0 ;;\n", shell_quote(server), shell_quote(&json)));
        }
        let script = format!(
            "#!/bin/sh\n\
             # fake docker credential helper (imgsync tests)\n\
             [ \"$1\" = get ] || {{ echo \"unsupported: $1\" >&2; exit 1; }}\n\
             read -r server\n\
             printf '%s\\n' \"$server\" >> {log}\n\
             case \"$server\" in\n{cases}esac\n\
             echo 'credentials not found in native keychain'\n\
             exit 1\n",
            log = shell_quote(&log.display().to_string()),
        );
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, script).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        FakeCredentialHelper { dir: dir.to_path_buf(), log }
    }

    /// The servers asked for so far, in order.
    pub fn asked(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log).unwrap_or_default().lines().map(str::to_string).collect()
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
