//! A private DOCKER_CONFIG for the run: logins land there, not in the user's
//! `~/.docker/config.json`, and it is deleted when the run ends. It still sees
//! the user's CLI plugins (buildx), contexts and existing logins.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::Secret;
use crate::docker::Cmd;
use crate::engine::{Ctx, Failure};

pub struct PrivateConfig {
    dir: tempfile::TempDir,
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
                write_private(dir.path(), &private_copy(value, login_registries))?;
            }
        }
        *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir.path().to_path_buf());
        Ok(PrivateConfig { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
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
    let k = k.strip_prefix("https://").or_else(|| k.strip_prefix("http://")).unwrap_or(&k);
    let host = k.split('/').next().unwrap_or("");
    match host {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" | "hub.docker.com" => {
            "docker.io".to_string()
        }
        h => h.to_string(),
    }
}

fn write_private(dir: &Path, value: &serde_json::Value) -> Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(dir.join("config.json")).context("writing the private docker config")?;
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
