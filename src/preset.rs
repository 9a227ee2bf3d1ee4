//! Registry presets (issue 22): harbor, swr, cnb, gitlab and tcr targets
//! beside aliyun, ghcr, dockerhub and custom. What each preset sets for the
//! user (a default registry, a fixed user, a login derived from keys), and
//! the login-format rules config.rs checks. The nesting rules live in
//! `registry_rules` (one table); the checks against the registry in
//! `preset_check`.
//!
//! Sources: ../shared/notes/naming-signatures-registries.md §4.

use hmac::{KeyInit, Mac};

use crate::secret::Secret;

/// Tencent CNB's registry.
pub const CNB_REGISTRY: &str = "docker.cnb.cool";
/// Tencent CNB's fixed login user (the token is the password).
pub const CNB_USER: &str = "cnb";
/// Tencent TCR Personal's default registry (regional hosts exist too).
pub const TCR_REGISTRY: &str = "ccr.ccs.tencentyun.com";
/// GitLab.com's registry.
pub const GITLAB_REGISTRY: &str = "registry.gitlab.com";

/// The region of a `swr.<region>.myhuaweicloud.com` host.
pub fn swr_region_of(registry: &str) -> Option<&str> {
    let rest = registry.strip_prefix("swr.")?.strip_suffix(".myhuaweicloud.com")?;
    (!rest.is_empty() && !rest.contains('.')).then_some(rest)
}

/// Huawei SWR's long-term login: user `<project>@<AK>`, password the hex
/// HMAC-SHA256 of AK keyed with SK (SWR's "obtaining a long-term valid login
/// command"). Both are secrets: the user carries the access key.
pub fn swr_login(project: &str, ak: &Secret, sk: &Secret) -> (String, Secret) {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(sk.expose().as_bytes()).expect("HMAC takes a key of any length");
    mac.update(ak.expose().as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    (format!("{project}@{}", ak.expose()), Secret::new(hex))
}

/// Who may not push where, for a preset target (the `denied` family),
/// naming the preset's own variables; quotas answer `denied` too. `None`:
/// not a preset (`config.rs` has the others' wording).
pub fn permission_hint(preset: &str, namespace: &str) -> Option<String> {
    let ns = namespace;
    Some(match preset {
        "harbor" => format!("create project {} in Harbor first, and give HARBOR_USERNAME push rights there (Developer or Maintainer; a robot account needs push permission); a project's tag immutability rules also refuse overwrites", harbor_project(ns)),
        "swr" => format!("create the organization {ns} in SWR first (SWR_NAMESPACE), and give the IAM user of SWR_AK write permission on it; SWR takes 20 pushes per second per tenant"),
        "cnb" => format!("CNB_NAMESPACE={ns} must start with an existing repository (org/repo), and CNB_TOKEN needs push permission on it"),
        "gitlab" => format!("GITLAB_TOKEN needs write_registry (a deploy token or access token) on the project {ns} (GITLAB_NAMESPACE)"),
        "tcr" => format!("create the namespace {ns} first (TCR_NAMESPACE); TCR Personal has quotas (namespaces, repositories, 100 tags per repository): delete old tags or select fewer"),
        _ => return None,
    })
}

/// The Harbor project of a namespace: its first part.
pub fn harbor_project(namespace: &str) -> &str {
    namespace.split('/').next().unwrap_or(namespace)
}

/// A user name that carries a key (SWR: `<project>@<AK>`) as logs may show it.
pub fn shown_user(user: &str) -> String {
    match user.split_once('@') {
        Some((project, _)) => format!("{project}@***"),
        None => "***".to_string(),
    }
}

/// Checks a target's login user against its preset's format; `Err` says why
/// and what to set. `prefix` is the target's key prefix (`HARBOR`, ...).
pub fn check_user(preset: &str, prefix: &str, user: &str) -> Result<(), String> {
    match preset {
        "cnb" if user != CNB_USER => Err(format!(
            "{prefix}_USERNAME={user:?}: Tencent CNB logs in as the user `cnb`, with a CNB access token as {prefix}_TOKEN; leave {prefix}_USERNAME unset"
        )),
        "swr" if !user.contains('@') => Err(format!(
            "{prefix}_USERNAME={user:?}: Huawei SWR's login user is <project>@<access key>; set SWR_AK and SWR_SK instead and imgsync derives the login"
        )),
        _ => Ok(()),
    }
}

/// A Harbor robot user whose `$` a shell or CI variable ate: `robot+proj+name`
/// or `robotproj+name` where `robot$proj+name` was meant. `None`: looks fine.
pub fn eaten_dollar(user: &str) -> Option<String> {
    let rest = user.strip_prefix("robot")?;
    if rest.starts_with('$') || !rest.contains('+') {
        return None;
    }
    let fixed = format!("robot${}", rest.trim_start_matches('+'));
    Some(format!(
        "the Harbor user {user:?} looks like a robot account whose `$` was eaten (expected something like {fixed:?}): quote it with single quotes in a shell ('{fixed}'), write it as $$ in a compose or Makefile, or store it as a secret/variable and pass it with `env:`"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swr_login_matches_an_independent_computation() {
        // Expected value computed when this test was written with
        // python3 -c 'import hmac,hashlib; print(hmac.new(b"SKEXAMPLE0123456789abcdefghijklmnopqrstu", b"AKEXAMPLE0123456789", hashlib.sha256).hexdigest())'
        let (user, password) = swr_login("cn-north-4", &Secret::new("AKEXAMPLE0123456789"), &Secret::new("SKEXAMPLE0123456789abcdefghijklmnopqrstu"));
        assert_eq!(user, "cn-north-4@AKEXAMPLE0123456789");
        assert_eq!(password.expose(), "c1a4e821a093c5bd5d047e7557827a9ea913d8193ecb506db1b1031beeca33ed");
    }

    #[test]
    fn swr_region_from_the_host() {
        assert_eq!(swr_region_of("swr.cn-north-4.myhuaweicloud.com"), Some("cn-north-4"));
        assert_eq!(swr_region_of("swr.ap-southeast-1.myhuaweicloud.com"), Some("ap-southeast-1"));
        assert_eq!(swr_region_of("swr.a.b.myhuaweicloud.com"), None);
        assert_eq!(swr_region_of("127.0.0.1:5000"), None);
    }

    #[test]
    fn robot_users_with_an_eaten_dollar() {
        assert_eq!(eaten_dollar("robot$proj+ci"), None);
        assert_eq!(eaten_dollar("admin"), None);
        assert_eq!(eaten_dollar("robotic"), None);
        assert!(eaten_dollar("robot+proj+ci").unwrap().contains("\"robot$proj+ci\""));
        assert!(eaten_dollar("robotproj+ci").unwrap().contains("'robot$proj+ci'"));
    }

    #[test]
    fn hints_name_the_presets_own_variables() {
        use crate::config::{Target, TargetKind};
        let t = |kind, registry: &str, namespace: &str| Target {
            kind,
            registry: registry.into(),
            namespace: namespace.into(),
            username: None,
            password: None,
            naming: crate::naming::Naming::Flat,
        };
        assert!(permission_hint("harbor", "proj/x").unwrap().starts_with("create project proj in Harbor first, and give HARBOR_USERNAME"));
        let swr = permission_hint("swr", "org").unwrap();
        assert!(swr.contains("SWR_NAMESPACE") && swr.contains("SWR_AK"), "{swr}");
        assert!(permission_hint("tcr", "ns").unwrap().contains("100 tags per repository"));
        assert_eq!(permission_hint("custom", "ns"), None);
        assert!(t(TargetKind::Cnb, "docker.cnb.cool", "o/r").permission_hint().contains("CNB_TOKEN"), "through Target::permission_hint too");
        assert!(t(TargetKind::Gitlab, "registry.gitlab.com", "g/p").auth_hint().contains("GITLAB_TOKEN"));
        let bad = crate::family::Family::BadName.hint();
        let h = crate::preset_check::name_hint(&t(TargetKind::Gitlab, "gitlab.example.com", "g/p"), bad);
        assert!(h.contains("GitLab needs GITLAB_NAMESPACE to be the project path") && h.contains("at most 2 levels") && h.contains("GITLAB_NAMING=flat"), "{h}");
        assert_eq!(crate::preset_check::name_hint(&t(TargetKind::Custom, "r:5000", "ns"), bad), bad, "no rules known: the generic hint");
    }

    #[test]
    fn every_preset_is_a_from_target() {
        use clap::Parser;
        for preset in ["harbor", "swr", "cnb", "gitlab", "tcr"] {
            assert!(crate::cli::Cli::try_parse_from(["imgsync", "map", "--from", preset]).is_ok(), "map --from {preset}");
            assert!(crate::cli::Cli::try_parse_from(["imgsync", "pull", "x", "--from", preset]).is_ok(), "pull --from {preset}");
            assert_eq!(crate::config::parse_mode(preset).unwrap()[0].as_str(), preset);
        }
    }

    #[test]
    fn login_formats() {
        assert!(check_user("cnb", "CNB", "cnb").is_ok());
        assert!(check_user("cnb", "CNB", "me").unwrap_err().contains("logs in as the user `cnb`"));
        assert!(check_user("swr", "SWR", "me").is_err());
        assert!(check_user("harbor", "HARBOR", "anything").is_ok());
    }
}
