//! A private DOCKER_CONFIG for the run: logins land there, not in the user's
//! `~/.docker/config.json`, and it is deleted when the run ends. It still sees
//! the user's CLI plugins (buildx), contexts and existing logins.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::secret::Secret;
use crate::docker::Cmd;
use crate::ctx::Ctx;
use crate::failure::Failure;

pub struct PrivateConfig {
    dir: tempfile::TempDir,
    /// The user's `credsStore`, dropped from the private copy because the run
    /// logs in somewhere: still the place to look for the registries the run
    /// only reads (see [`PrivateConfig::add_read_credentials`]).
    dropped_store: Option<String>,
}

/// The live private config, so a forced exit (a second Ctrl-C) can still
/// delete it: it holds the run's logins.
static LIVE: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

/// Deletes the live private config now; for an exit that skips destructors.
pub fn remove_live_private_config() {
    if let Some(p) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).take() {
        let _ = fs::remove_dir_all(p);
    }
}

impl Drop for PrivateConfig {
    fn drop(&mut self) {
        LIVE.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

/// The user's docker config directory: `$DOCKER_CONFIG` or `~/.docker`.
pub fn user_config_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    env("DOCKER_CONFIG")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
}

impl PrivateConfig {
    /// `login_registries` are the registries this run logs in to: their
    /// credentials must go to the private file, never to a system keychain.
    pub fn create(user_dir: Option<&Path>, login_registries: &[String]) -> Result<Self> {
        let mut builder = tempfile::Builder::new();
        builder.prefix("imgsync-docker-");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Only the user may list or enter it: it holds the run's logins.
            builder.permissions(fs::Permissions::from_mode(0o700));
        }
        let dir = builder.tempdir().context("creating a private DOCKER_CONFIG")?;
        let mut dropped_store = None;
        if let Some(user) = user_dir.filter(|d| d.is_dir()) {
            for entry in fs::read_dir(user).with_context(|| format!("reading {}", user.display()))? {
                let entry = entry?;
                let name = entry.file_name();
                // The local manifest-list store is left out on purpose: a stale
                // list there would shadow what the registry holds.
                if name == "config.json" || name == "manifests" {
                    continue;
                }
                symlink(&entry.path(), &dir.path().join(&name))?;
            }
            let cfg = user.join("config.json");
            if cfg.is_file() {
                let text = fs::read_to_string(&cfg).with_context(|| format!("reading {}", cfg.display()))?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("{} is not valid JSON; fix or move it", cfg.display()))?;
                if !login_registries.is_empty() {
                    dropped_store = value.get("credsStore").and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string);
                }
                write_private(dir.path(), &private_copy(value, login_registries))?;
            }
        }
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.path().to_path_buf());
        Ok(PrivateConfig { dir, dropped_store })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The user's `credsStore` the private copy left out (the run logs in somewhere).
    pub fn dropped_store(&self) -> Option<&str> {
        self.dropped_store.as_deref()
    }

    /// Writes `entries` (registry, docker `auths` entry) into the private
    /// config's `auths` where it has no credential for that registry yet
    /// (no `auths` entry, no `credHelpers` entry). The file stays 0600 and
    /// goes with the directory at exit.
    pub fn add_read_credentials(&self, entries: &[(String, serde_json::Value)]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let path = self.dir.path().join("config.json");
        let value = match fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t).context("reading the private docker config")?,
            Err(_) => serde_json::json!({}),
        };
        let value = with_read_auths(value, entries);
        let tmp = self.dir.path().join("config.json.new");
        let _ = fs::remove_file(&tmp);
        write_private_to(&tmp, &value)?;
        fs::rename(&tmp, &path).context("replacing the private docker config")?;
        Ok(())
    }
}

/// `value` with `entries` added to `auths`, except for registries it already
/// has a credential for (an `auths` or a `credHelpers` entry, any alias).
pub fn with_read_auths(mut value: serde_json::Value, entries: &[(String, serde_json::Value)]) -> serde_json::Value {
    let has = |v: &serde_json::Value, section: &str, reg: &str| {
        v.get(section).and_then(|s| s.as_object()).is_some_and(|o| o.keys().any(|k| registry_key(k) == registry_key(reg)))
    };
    for (registry, entry) in entries {
        if has(&value, "auths", registry) || has(&value, "credHelpers", registry) {
            continue;
        }
        let key = crate::registry::DockerConfig::server_key(registry);
        if let Some(obj) = value.as_object_mut() {
            let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
            if let Some(a) = auths.as_object_mut() {
                a.insert(key, entry.clone());
            }
        }
    }
    value
}

/// The user's config minus credential stores for the registries this run
/// logs in to (a login must not outlive the run in a keychain).
pub fn private_copy(mut value: serde_json::Value, login_registries: &[String]) -> serde_json::Value {
    if login_registries.is_empty() {
        return value;
    }
    let logins: Vec<String> = login_registries.iter().map(|r| registry_key(r)).collect();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("credsStore");
        if let Some(helpers) = obj.get_mut("credHelpers").and_then(|h| h.as_object_mut()) {
            helpers.retain(|k, _| !logins.contains(&registry_key(k)));
        }
    }
    value
}

/// The registry a config key names, in one spelling: scheme, path and
/// trailing slash dropped, lowercased, and every Docker Hub alias
/// (`https://index.docker.io/v1/`, `index.docker.io`, `registry-1.docker.io`,
/// `docker.io`, `registry.hub.docker.com`, `hub.docker.com`) as `docker.io`.
/// Docker logs in to Hub under `https://index.docker.io/v1/` and looks up
/// `credHelpers` by that exact key.
pub fn registry_key(key: &str) -> String {
    let k = key.trim().to_ascii_lowercase();
    let host = crate::reference::config_key_host(&k);
    if crate::registry::repository::is_docker_hub(host) {
        "docker.io".to_string()
    } else {
        host.to_string()
    }
}

fn write_private(dir: &Path, value: &serde_json::Value) -> Result<()> {
    write_private_to(&dir.join("config.json"), value)
}

fn write_private_to(path: &Path, value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path).context("writing the private docker config")?;
    f.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
    Ok(())
}

#[cfg(unix)]
fn symlink(from: &Path, to: &Path) -> Result<()> {
    std::os::unix::fs::symlink(from, to).with_context(|| format!("linking {}", from.display()))
}

#[cfg(not(unix))]
fn symlink(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        return Ok(()); // plugins are found through the system locations instead
    }
    fs::copy(from, to).map(|_| ()).with_context(|| format!("copying {}", from.display()))
}

/// `docker login --username USER --password-stdin -- REGISTRY`, the secret on stdin.
pub fn login(ctx: &Ctx, registry: &str, user: &str, secret: &Secret) -> Result<(), Failure> {
    ctx.step(format!("log in to {registry} as {user}"));
    let cmd = Cmd::new(["login", "--username", user, "--password-stdin", "--", registry])
        .stdin(secret.clone())
        .timeout(ctx.timeouts.quick);
    ctx.run(cmd).map(|_| ()).map_err(|e| {
        let mut f = Failure::from_docker(&e);
        f.error = format!("login to {registry} as {user} failed: {}", e.reason());
        f
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn private_copy_drops_keychains_only_when_logging_in() {
        let user = json!({"auths": {"a.io": {"auth": "eA=="}}, "credsStore": "desktop", "credHelpers": {"ghcr.io": "gh", "gcr.io": "gcloud"}, "currentContext": "x"});
        assert_eq!(private_copy(user.clone(), &[]), user);
        let p = private_copy(user, &["ghcr.io".into()]);
        assert_eq!(p, json!({"auths": {"a.io": {"auth": "eA=="}}, "credHelpers": {"gcr.io": "gcloud"}, "currentContext": "x"}));
    }

    #[test]
    fn docker_hub_helpers_are_dropped_under_every_alias() {
        let user = json!({"credHelpers": {
            "https://index.docker.io/v1/": "desktop",
            "index.docker.io": "desktop",
            "registry-1.docker.io": "desktop",
            "HTTPS://Registry.Hub.Docker.com/v2/": "desktop",
            "r:5000": "pass",
            "ghcr.io": "gh"
        }});
        let p = private_copy(user.clone(), &["docker.io".into(), "https://ghcr.io".into()]);
        assert_eq!(p, json!({"credHelpers": {"r:5000": "pass"}}));
        let p = private_copy(user, &["https://index.docker.io/v1/".into()]);
        assert_eq!(p["credHelpers"].as_object().unwrap().len(), 2);
        assert_eq!(registry_key("docker.io"), registry_key("https://index.docker.io/v1/"));
        assert_eq!(registry_key("R:5000"), "r:5000");
    }

    #[test]
    fn read_registries_get_the_dropped_stores_credentials_in_auths() {
        let home = tempfile::tempdir().unwrap();
        let user = home.path().join(".docker");
        fs::create_dir_all(&user).unwrap();
        let original = r#"{"auths":{"a.io":{"auth":"eA=="}},"credsStore":"desktop","credHelpers":{"gcr.io":"gcloud"}}"#;
        fs::write(user.join("config.json"), original).unwrap();
        // Logging in to ghcr.io: the store goes from the private copy, and is remembered.
        let p = PrivateConfig::create(Some(&user), &["ghcr.io".into()]).unwrap();
        assert_eq!(p.dropped_store(), Some("desktop"));
        let cred = crate::registry::Credential::Basic { username: "me".into(), password: "s3cret".into() };
        p.add_read_credentials(&[
            ("private.example:5000".into(), cred.to_auth_entry()),
            ("docker.io".into(), cred.to_auth_entry()),
            // Already known: never overwritten.
            ("a.io".into(), serde_json::json!({"auth": "other"})),
            ("gcr.io".into(), cred.to_auth_entry()),
        ])
        .unwrap();
        let path = p.path().join("config.json");
        let v: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["private.example:5000"], cred.to_auth_entry());
        assert_eq!(v["auths"]["https://index.docker.io/v1/"], cred.to_auth_entry());
        assert_eq!(v["auths"]["a.io"], json!({"auth": "eA=="}));
        assert!(v["auths"].get("gcr.io").is_none());
        assert!(v.get("credsStore").is_none(), "the run's own logins still never reach the keychain");
        // Docker's own lookup now finds the source's credentials in the file.
        let cfg = crate::registry::DockerConfig::load(p.path()).unwrap();
        assert_eq!(cfg.lookup("private.example:5000", &crate::registry::credentials::NoHelpers).unwrap(), Some(cred));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let dir = p.path().to_path_buf();
        drop(p);
        assert!(!dir.exists(), "deleted at exit");
        assert_eq!(fs::read_to_string(user.join("config.json")).unwrap(), original, "the user's file is untouched");
        // No login: nothing dropped, nothing to add.
        let p = PrivateConfig::create(Some(&user), &[]).unwrap();
        assert_eq!(p.dropped_store(), None);
    }

    #[cfg(unix)]
    #[test]
    fn private_dir_is_0700() {
        use std::os::unix::fs::PermissionsExt;
        let p = PrivateConfig::create(None, &[]).unwrap();
        let mode = fs::metadata(p.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{mode:o}");
    }

    #[test]
    fn creates_dir_with_links_and_no_manifest_store() {
        let home = tempfile::tempdir().unwrap();
        let user = home.path().join(".docker");
        fs::create_dir_all(user.join("cli-plugins")).unwrap();
        fs::create_dir_all(user.join("manifests/stale")).unwrap();
        fs::write(user.join("config.json"), r#"{"auths":{}}"#).unwrap();
        let before = fs::read(user.join("config.json")).unwrap();
        let p = PrivateConfig::create(Some(&user), &["r:1".into()]).unwrap();
        assert!(p.path().join("cli-plugins").is_dir());
        assert!(!p.path().join("manifests").exists());
        assert!(p.path().join("config.json").is_file());
        let path = p.path().to_path_buf();
        drop(p);
        assert!(!path.exists(), "removed at the end");
        assert_eq!(fs::read(user.join("config.json")).unwrap(), before);
    }

    #[test]
    fn user_dir_lookup() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_string()),
            _ => None,
        };
        assert_eq!(user_config_dir(&env), Some(PathBuf::from("/home/u/.docker")));
        let env2 = |k: &str| (k == "DOCKER_CONFIG").then(|| "/cfg".to_string());
        assert_eq!(user_config_dir(&env2), Some(PathBuf::from("/cfg")));
    }
}
