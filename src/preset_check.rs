//! The preset checks (issue 22), run by `doctor` and by `sync` before its
//! first copy: each a ✓ or a ✗ with the fix. Only read and token requests,
//! through the registry client; nothing is pushed.
//!
//! - every target whose registry issues JWT Bearer tokens: the token service
//!   is asked for `pull,push` on the target repository and the JWT's `access`
//!   claim says what was granted (read for a hint; no signature check: it is
//!   what the registry decided, not something imgsync trusts);
//! - Harbor: the project exists, and the robot user kept its `$`;
//! - ACR: the host's kind, and a VPC host from a GitHub-hosted runner;
//! - SWR, CNB, GitLab, TCR: login format and namespace shape (config.rs
//!   already refused a bad one: shown here as a ✓ with the rule);
//! - GHCR: a package a server cannot pull anonymously (private).

use base64::Engine as _;

use std::collections::HashMap;

use crate::check::Check;
use crate::config::{Target, TargetKind};
use crate::failure::Failure;
use crate::registry::{Client, Repository, Tally};
use crate::session::Session;

/// The read-only-token hint, one wording for doctor and sync.
pub const READ_ONLY_HINT: &str = "this token is read-only (Docker Hub's default is Public Repo Read-only); create one with Read & Write";

/// The actions a JWT grants on `repository` (its `access` claim), or `None`
/// when the token is not a JWT with such a claim (opaque tokens: GHCR).
pub fn granted_actions(token: &str, repository: &str) -> Option<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Access {
        #[serde(rename = "type", default)]
        kind: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        actions: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Claims {
        access: Option<Vec<Access>>,
    }
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let access = claims.access?;
    Some(access.into_iter().filter(|a| a.kind == "repository" && a.name == repository).flat_map(|a| a.actions).collect())
}

/// The repository a target's first image would go to, for the push probe:
/// any name under the namespace will do (the token service decides by the
/// namespace or project).
fn probe_repository(t: &Target) -> Repository {
    Repository::new(&t.registry, &format!("{}/imgsync-check", t.namespace))
}

/// The GitHub package settings page for a GHCR repository `owner/pkg[/...]`.
/// Users and organisations have different pages; which one is unknown
/// without an API call, so both are named when `org` is unknown.
pub fn ghcr_settings_url(repository: &str) -> String {
    let (owner, pkg) = repository.split_once('/').unwrap_or((repository, ""));
    // A nested package name is URL-encoded in the path.
    let pkg = pkg.replace('/', "%2F");
    format!("https://github.com/users/{owner}/packages/container/{pkg}/settings (an organisation's: https://github.com/orgs/{owner}/packages/container/{pkg}/settings)")
}

/// The warning for an anonymous HEAD's status on a GHCR mirror, if any.
pub fn ghcr_visibility(repository: &str, status: u16) -> Option<String> {
    matches!(status, 401 | 403).then(|| {
        format!(
            "ghcr.io/{repository} is private (an anonymous pull is refused; new GHCR packages are private and no API can change that): make it public at {}, or log in on the server",
            ghcr_settings_url(repository)
        )
    })
}

use crate::preset::harbor_project;

/// What a Harbor `HEAD /api/v2.0/projects?project_name=P` answered.
pub fn harbor_project_check(registry: &str, project: &str, status: u16) -> Check {
    let what = format!("Harbor project {project} on {registry}");
    match status {
        200 => Check::pass(what, "exists"),
        404 => Check::fail(what, format!("does not exist — create project {project} in Harbor (Projects → New Project) before the sync; a push to a missing project answers `unauthorized`")),
        401 | 403 => Check::fail(what, format!("the projects API refused to say ({status}) — check HARBOR_USERNAME/HARBOR_PASSWORD, and create project {project} if it does not exist")).optional(),
        s => Check::fail(what, format!("the projects API answered {s}: is {registry} a Harbor (v2.0 API)? create project {project} if it does not exist")).optional(),
    }
}

/// Aliyun ACR: which kind of host, and whether it can work from here.
pub fn acr_host_check(registry: &str, env: &dyn Fn(&str) -> Option<String>) -> Check {
    let host = registry.to_ascii_lowercase();
    let what = format!("Aliyun ACR host {registry}");
    let github_hosted = env("GITHUB_ACTIONS").as_deref() == Some("true") && env("RUNNER_ENVIRONMENT").as_deref() == Some("github-hosted");
    if host.starts_with("registry-vpc.") || host.starts_with("registry-intl-vpc.") || host.contains("-vpc.") {
        let c = Check::fail(what, "a VPC host, reachable only inside Aliyun's network — use the public host (registry.<region>.aliyuncs.com, or the instance's public endpoint) for ALIYUN_REGISTRY");
        return if github_hosted { c } else { c.optional() };
    }
    if host.ends_with(".personal.cr.aliyuncs.com") || crate::registry_rules::rules_for(&host).is_some_and(|r| r.name == "Aliyun ACR Personal") {
        return Check::pass(what, "Personal edition: one namespace level, 3 namespaces and 300 repositories; log in with the console's fixed registry password");
    }
    if host.ends_with(".cr.aliyuncs.com") {
        return Check::pass(what, "Enterprise edition: nested names allowed; log in with the instance's access credential");
    }
    Check::fail(what, "not an Aliyun ACR host (registry.<region>.aliyuncs.com, crpi-*.personal.cr.aliyuncs.com or *-registry.<region>.cr.aliyuncs.com); check ALIYUN_REGISTRY").optional()
}

/// Checks that need no registry: host kind, login and namespace shape, robot names.
pub fn static_checks(t: &Target, env: &dyn Fn(&str) -> Option<String>) -> Vec<Check> {
    let mut out = Vec::new();
    let p = t.kind.key_prefix();
    match t.kind {
        TargetKind::Aliyun => out.push(acr_host_check(&t.registry, env)),
        TargetKind::Harbor => {
            if let Some(w) = t.username.as_deref().and_then(crate::preset::eaten_dollar) {
                out.push(Check::fail(format!("{p}_USERNAME"), w).optional());
            }
        }
        _ => {}
    }
    let rules = crate::registry_rules::rules_for_preset(t.kind.as_str()).or_else(|| crate::registry_rules::rules_for(&t.registry));
    if let (Some(r), TargetKind::Swr | TargetKind::Cnb | TargetKind::Gitlab | TargetKind::Tcr | TargetKind::Harbor) = (rules, t.kind) {
        out.push(Check::pass(
            format!("{} namespace and login", t.kind.as_str()),
            format!("{p}_NAMESPACE={} is {}; login: {}", t.namespace, r.namespace_is, r.login),
        ));
    }
    out
}

/// The checks that ask the registry (token service, Harbor API). A failed
/// request is an optional ✗ (it informs), a definite answer a required one.
pub fn registry_checks(client: &Client, t: &Target) -> Vec<Check> {
    let tally = Tally::default();
    let mut out: Vec<Check> = Vec::new();
    if t.kind == TargetKind::Harbor {
        let project = harbor_project(&t.namespace);
        let path = format!("/api/v2.0/projects?project_name={project}");
        out.push(match client.head_status(&t.registry, &path, &tally) {
            Ok(status) => harbor_project_check(&t.registry, project, status),
            Err(e) => Check::fail(format!("Harbor project {project} on {}", t.registry), format!("{e}")).optional(),
        });
    }
    // SWR's derived login is stored, not tried by `docker login` (its user holds the key): try it here.
    if t.kind == TargetKind::Swr && t.username.is_some() {
        out.push(derived_login_check(client, t, &tally));
    }
    // GHCR's tokens are opaque; the others are asked when they use Bearer tokens.
    // A missing Harbor project grants nothing: that ✗ already says why.
    let project_missing = out.iter().any(|c| !c.ok && c.required);
    if t.kind != TargetKind::Ghcr && t.username.is_some() && !project_missing {
        let repo = probe_repository(t);
        let what = format!("push permission at {}/{}", t.registry, t.namespace);
        match client.token_for_actions(&repo, "pull,push", &tally) {
            Ok(Some(token)) => match granted_actions(&token, &repo.name) {
                Some(actions) if actions.iter().any(|a| a == "push" || a == "*") => out.push(Check::pass(what, format!("the token service grants {}", actions.join(",")))),
                Some(actions) => out.push(Check::fail(
                    what,
                    format!(
                        "granted {} only — {READ_ONLY_HINT} (or give {}_USERNAME push rights on {})",
                        if actions.is_empty() { "nothing".to_string() } else { actions.join(",") },
                        t.kind.key_prefix(),
                        t.namespace
                    ),
                )),
                None => {} // not a JWT: nothing to read
            },
            Ok(None) => {}
            Err(e) => out.push(Check::fail(what, format!("the token service refused: {e}")).optional()),
        }
    }
    out
}

/// Whether the registry accepts a login imgsync stored without `docker
/// login`: `/v2/` with Basic, or a pull token from its token service.
fn derived_login_check(client: &Client, t: &Target, tally: &Tally) -> Check {
    let what = format!("{} login at {} (derived from SWR_AK/SWR_SK)", t.kind.as_str(), t.registry);
    let user = t.shown_user().unwrap_or_default();
    let refused = || Check::fail(what.clone(), format!("{user} refused — {}", t.auth_hint()));
    match client.head_status(&t.registry, "/v2/", tally) {
        Ok(200) => Check::pass(what.clone(), format!("accepted as {user}")),
        Ok(401) => match client.token_for_actions(&probe_repository(t), "pull", tally) {
            Ok(Some(_)) => Check::pass(what.clone(), format!("accepted as {user}")),
            Ok(None) => refused(),
            Err(e) if e.is_auth() => refused(),
            Err(e) => Check::fail(what.clone(), format!("{e}")).optional(),
        },
        Ok(status) => Check::fail(what.clone(), format!("/v2/ answered {status}")).optional(),
        Err(e) => Check::fail(what.clone(), format!("{e}")).optional(),
    }
}

/// The `name invalid` family's hint with the target registry's own rules
/// (how deep names nest, what the namespace is), naming its variables.
pub fn name_hint(t: &Target, generic: &str) -> String {
    use crate::registry_rules::Nesting;
    let p = t.kind.key_prefix();
    let Some(r) = crate::registry_rules::rules_for_preset(t.kind.as_str()).or_else(|| crate::registry_rules::rules_for(&t.registry)) else {
        return generic.to_string();
    };
    let depth = match r.nesting {
        Nesting::Any => "any depth below it".to_string(),
        Nesting::NamespaceAndName => "one name below it".to_string(),
        Nesting::BelowNamespace(n) => format!("at most {n} levels below it"),
    };
    format!("{generic}; {} needs {p}_NAMESPACE to be {} and allows {depth}: for a deeper name set {p}_NAMING=flat", r.name, r.namespace_is)
}

/// A required check that failed, as the failure sync gives the target's copies.
pub fn as_failure(t: &Target, c: &Check) -> Failure {
    let (error, hint) = match c.detail.split_once(" — ") {
        Some((e, h)) => (e.to_string(), h.to_string()),
        None => (c.detail.clone(), t.auth_hint()),
    };
    Failure::new(format!("{} ({}): {error}", c.what, t.kind.as_str()), hint)
}

/// Every required preset check that fails, per target registry (the first
/// per target). Targets `skip` names (their login failed) are left out: that
/// failure says more. Without a registry client only the static checks run.
pub fn blocking_failures(client: Option<&Client>, targets: &[Target], env: &dyn Fn(&str) -> Option<String>, skip: &dyn Fn(&str) -> bool) -> Vec<(String, Failure)> {
    let mut out = Vec::new();
    for t in targets.iter().filter(|t| !skip(&t.registry)) {
        let mut checks = static_checks(t, env);
        if let Some(c) = client {
            checks.extend(registry_checks(c, t));
        }
        if let Some(c) = checks.into_iter().find(|c| !c.ok && c.required) {
            out.push((t.registry.clone(), as_failure(t, &c)));
        }
    }
    out
}

/// Sync's pre-copy step (after the logins, before the first push): the
/// targets that cannot work, each said once here; the caller fails their copies.
pub fn before_copies(session: &Session, login_failures: &HashMap<String, Failure>) -> Vec<(String, Failure)> {
    let warn = |message: String| (session.events())(crate::failure::Event::RunWarning { message });
    let client = session.registry().ok();
    let env = |k: &str| std::env::var(k).ok();
    // Warnings that do not stop the target (a robot user's eaten `$`, a VPC host off GitHub) are said too.
    for t in &session.settings.targets {
        for c in static_checks(t, &env).iter().filter(|c| !c.ok && !c.required) {
            warn(crate::sanitize::line(&format!("{}: {}", c.what, c.detail)));
        }
    }
    let failed = blocking_failures(client, &session.settings.targets, &env, &|r| login_failures.contains_key(r));
    for (_, f) in &failed {
        warn(crate::sanitize::line(&format!("{} — {}", f.error, f.hint)));
    }
    failed
}

/// The GHCR mirrors among `refs` (full references) that an anonymous HEAD
/// cannot read, one warning per package (repository), each package asked once.
pub fn ghcr_private_packages(client: &Client, refs: &[String]) -> Vec<String> {
    let tally = Tally::default();
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for r in refs {
        let Ok(image) = crate::reference::ImageRef::parse(r) else { continue };
        if image.registry() != "ghcr.io" || !seen.insert(image.repository().to_string()) {
            continue;
        }
        let repo = Repository::of(&image);
        if let Ok(status) = client.anonymous_manifest_status(&repo, &Repository::reference_of(&image), &tally) {
            out.extend(ghcr_visibility(image.repository(), status));
        }
    }
    out
}

/// After a sync: the GHCR packages it pushed to that a server cannot pull anonymously.
pub fn after_sync(session: &Session, report: &crate::report::Report) -> Vec<String> {
    let pushed: Vec<String> = report
        .entries
        .iter()
        .flat_map(|e| &e.targets)
        .filter(|t| t.target == TargetKind::Ghcr.as_str() && t.status == crate::report::Status::Synced)
        .map(|t| t.reference.clone())
        .collect();
    match (pushed.is_empty(), session.registry()) {
        (false, Ok(client)) => ghcr_private_packages(client, &pushed),
        _ => Vec::new(),
    }
}

/// Doctor's preset lines for every target; `logged_in` says whether the
/// target's login worked (the registry checks need it when it has one).
pub fn doctor_checks(session: &Session, logged_in: &dyn Fn(&Target) -> bool) -> Vec<Check> {
    let env = |k: &str| std::env::var(k).ok();
    let client = session.registry().ok();
    let mut out = Vec::new();
    for t in &session.settings.targets {
        out.extend(static_checks(t, &env));
        if let (Some(c), true) = (client, logged_in(t)) {
            out.extend(registry_checks(c, t));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jwt(payload: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!("{}.{}.sig", e(r#"{"alg":"RS256","typ":"JWT"}"#), e(payload))
    }

    use crate::registry::testserver::{reply, Server};
    use crate::registry::{ClientConfig, Credential, Credentials};

    fn target(kind: TargetKind, registry: &str, namespace: &str) -> Target {
        Target {
            kind,
            registry: registry.into(),
            namespace: namespace.into(),
            username: Some("me".into()),
            password: Some(crate::secret::Secret::new("pw")),
            naming: crate::naming::Naming::Flat,
        }
    }

    fn client_as(registry: &str) -> Client {
        let creds = Credentials::anonymous().with(registry, Credential::Basic { username: "me".into(), password: "pw".into() });
        Client::new(ClientConfig::default(), creds)
    }

    /// A Docker Hub-style token server on the registry's host: it grants
    /// `granted` whatever was asked, in a JWT's `access` claim.
    fn token_registry(granted: &'static str) -> Server {
        Server::start(move |r| {
            if r.path() == "/token" {
                let scope = r.query("scope").unwrap_or_default();
                let name = scope.split(':').nth(1).unwrap_or_default().to_string();
                let payload = format!(r#"{{"iss":"test","access":[{{"type":"repository","name":"{name}","actions":[{granted}]}}]}}"#);
                return reply(200, &[], format!(r#"{{"token":"{}"}}"#, jwt(&payload)).as_bytes());
            }
            let realm = format!(r#"Bearer realm="http://{}/token",service="test""#, r.header("host").unwrap());
            reply(401, &[("www-authenticate", &realm)], b"")
        })
    }

    #[test]
    fn a_token_that_grants_pull_only_is_read_only() {
        let s = token_registry(r#""pull""#);
        let t = target(TargetKind::Dockerhub, &s.host(), "me");
        let checks = registry_checks(&client_as(&s.host()), &t);
        assert_eq!(checks.len(), 1, "{checks:?}");
        let c = &checks[0];
        assert!(!c.ok && c.required && c.detail.contains(READ_ONLY_HINT), "{c:?}");
        // It asked for pull,push on a repository under the namespace, as the target's user.
        let asked = s.requests().into_iter().find(|r| r.path() == "/token").unwrap();
        assert_eq!(asked.query("scope").as_deref(), Some("repository:me/imgsync-check:pull,push"));
        assert!(asked.header("authorization").is_some_and(|a| a.starts_with("Basic ")));
        assert!(s.requests().iter().all(|r| r.method != "PUT" && r.method != "POST" && r.method != "PATCH"), "nothing pushed");
        // Sync's view: the target fails once, with the same hint.
        let failed = blocking_failures(Some(&client_as(&s.host())), &[t], &|_| None, &|_| false);
        assert_eq!(failed.len(), 1);
        assert!(failed[0].1.hint.contains(READ_ONLY_HINT), "{:?}", failed[0].1);
    }

    #[test]
    fn a_token_that_grants_push_passes() {
        let s = token_registry(r#""pull","push""#);
        let t = target(TargetKind::Custom, &s.host(), "team/mirror");
        let checks = registry_checks(&client_as(&s.host()), &t);
        assert!(checks.len() == 1 && checks[0].ok, "{checks:?}");
        assert!(blocking_failures(Some(&client_as(&s.host())), &[t], &|_| None, &|_| false).is_empty());
    }

    #[test]
    fn harbor_projects_api_with_and_without_the_project() {
        // A Harbor with project `present` only; the registry itself is open (no token check here).
        let s = Server::start(|r| match (r.method.as_str(), r.path(), r.query("project_name").as_deref()) {
            ("HEAD", "/api/v2.0/projects", Some("present")) => reply(200, &[], b""),
            ("HEAD", "/api/v2.0/projects", _) => reply(404, &[], b""),
            _ => reply(200, &[], b"{}"),
        });
        let c = client_as(&s.host());
        let ok = registry_checks(&c, &target(TargetKind::Harbor, &s.host(), "present/team"));
        assert!(ok[0].ok && ok[0].what.contains("Harbor project present"), "{ok:?}");
        let t = target(TargetKind::Harbor, &s.host(), "absent/team");
        let missing = registry_checks(&c, &t);
        assert!(!missing[0].ok && missing[0].required && missing[0].detail.contains("create project absent"), "{missing:?}");
        let failed = blocking_failures(Some(&c), &[t], &|_| None, &|_| false);
        assert!(failed[0].1.hint.starts_with("create project absent"), "{failed:?}");
        let head = s.requests().into_iter().find(|r| r.path() == "/api/v2.0/projects").unwrap();
        assert!(head.header("authorization").is_some_and(|a| a.starts_with("Basic ")), "asked as the target's user");
    }

    #[test]
    fn ghcr_style_anonymous_401_is_a_private_package() {
        // GHCR hands anonymous tokens out, then refuses the manifest of a private package.
        let s = Server::start(|r| {
            if r.path() == "/token" {
                assert!(r.header("authorization").is_none(), "anonymous");
                return reply(200, &[], br#"{"token":"anon"}"#);
            }
            let realm = format!(r#"Bearer realm="http://{}/token",service="ghcr.io""#, r.header("host").unwrap());
            if r.path().contains("/public/") && r.header("authorization") == Some("Bearer anon") {
                return reply(200, &[("docker-content-digest", "sha256:1111111111111111111111111111111111111111111111111111111111111111")], b"");
            }
            reply(401, &[("www-authenticate", &realm)], b"")
        });
        let c = client_as(&s.host());
        let repo = Repository::new(&s.host(), "owner/private/app");
        assert_eq!(c.anonymous_manifest_status(&repo, "1.0", &Tally::default()).unwrap(), 401);
        let repo = Repository::new(&s.host(), "owner/public/app");
        assert_eq!(c.anonymous_manifest_status(&repo, "1.0", &Tally::default()).unwrap(), 200);
        assert!(s.requests().iter().all(|r| r.header("authorization").is_none_or(|a| !a.starts_with("Basic "))), "never the run's credential");
        assert!(ghcr_visibility("owner/private/app", 401).unwrap().contains("packages/container/private%2Fapp/settings"));
    }

    #[test]
    fn the_summary_ends_with_the_run_warnings_escaped() {
        let mut report = crate::report::Report::new("daemon", vec![]);
        report.warnings = ghcr_visibility("owner/nginx", 403).into_iter().chain(["x\u{1b}[31m".to_string()]).collect();
        let tail = crate::ui::table_tail(&report);
        assert!(tail.contains("warning: ghcr.io/owner/nginx is private"), "{tail}");
        assert!(!tail.contains('\u{1b}'), "external text escaped: {tail:?}");
        assert!(report.to_json().contains("\"warnings\""));
        assert!(!crate::report::Report::new("daemon", vec![]).to_json().contains("warnings"), "absent when empty");
    }

    #[test]
    fn access_claims() {
        let t = jwt(r#"{"iss":"auth.docker.io","access":[{"type":"repository","name":"me/app","actions":["pull"]}]}"#);
        assert_eq!(granted_actions(&t, "me/app"), Some(vec!["pull".to_string()]));
        assert_eq!(granted_actions(&t, "me/other"), Some(vec![]));
        let t = jwt(r#"{"access":[{"type":"repository","name":"p/x","actions":["pull","push"]}]}"#);
        assert_eq!(granted_actions(&t, "p/x").unwrap(), ["pull", "push"]);
        assert_eq!(granted_actions("opaque-ghcr-token", "o/x"), None);
        assert_eq!(granted_actions(&jwt(r#"{"sub":"x"}"#), "o/x"), None, "no access claim: nothing to read");
    }

    #[test]
    fn ghcr_private_packages() {
        let w = ghcr_visibility("owner/nginx", 401).unwrap();
        assert!(w.contains("https://github.com/users/owner/packages/container/nginx/settings"), "{w}");
        assert!(w.contains("https://github.com/orgs/owner/packages/container/nginx/settings"), "{w}");
        assert!(ghcr_visibility("owner/a/b", 403).unwrap().contains("container/a%2Fb/settings"));
        assert_eq!(ghcr_visibility("owner/nginx", 200), None);
        assert_eq!(ghcr_visibility("owner/nginx", 404), None, "missing is not private");
    }

    #[test]
    fn harbor_projects() {
        assert_eq!(harbor_project("proj/team/x"), "proj");
        let ok = harbor_project_check("h", "proj", 200);
        assert!(ok.ok);
        let missing = harbor_project_check("h", "proj", 404);
        assert!(!missing.ok && missing.required && missing.detail.contains("create project proj"), "{missing:?}");
        assert!(!harbor_project_check("h", "proj", 401).required);
    }

    #[test]
    fn acr_hosts() {
        let gh = |k: &str| match k {
            "GITHUB_ACTIONS" => Some("true".to_string()),
            "RUNNER_ENVIRONMENT" => Some("github-hosted".to_string()),
            _ => None,
        };
        let local = |_: &str| None;
        let vpc = acr_host_check("registry-vpc.cn-hangzhou.aliyuncs.com", &gh);
        assert!(!vpc.ok && vpc.required, "{vpc:?}");
        assert!(!acr_host_check("registry-vpc.cn-hangzhou.aliyuncs.com", &local).required, "inside Aliyun it may work");
        assert!(acr_host_check("registry.cn-hangzhou.aliyuncs.com", &gh).detail.contains("Personal"));
        assert!(acr_host_check("crpi-x.cn-hangzhou.personal.cr.aliyuncs.com", &gh).detail.contains("fixed registry password"));
        assert!(acr_host_check("inst-registry.cn-hangzhou.cr.aliyuncs.com", &gh).detail.contains("Enterprise"));
        assert!(!acr_host_check("example.com", &gh).ok);
    }
}
