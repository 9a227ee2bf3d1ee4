//! Turns a failed step (a docker call, an HTTP request) into its family of
//! causes ([`Family`]: whether to retry it, and the one-line fix to show the
//! user), and into a [`Failure`] in user terms. Pure: text in, family out.
//!
//! Docker exits 1 for nearly every failure (see `tests/data/**/err-*.txt`),
//! so the family comes from the stderr text and the timeout/interrupt flags.

use crate::docker::DockerError;
use crate::failure::Failure;
use crate::family::Family;
use crate::step_error::{Cause, StepError};

/// A failure `retry` can judge and `Ctx` can announce: docker's own error, or any step's.
pub trait Classify {
    fn family(&self) -> Family;
    /// What ran, as shown to users.
    fn what(&self) -> String;
    /// One line on why it failed.
    fn reason(&self) -> String;
    /// The wait the other side asked for before another try (a registry's `Retry-After`).
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
}

impl Classify for DockerError {
    fn family(&self) -> Family {
        classify(self)
    }
    fn what(&self) -> String {
        self.command.clone()
    }
    fn reason(&self) -> String {
        DockerError::reason(self)
    }
}

impl Classify for StepError {
    fn family(&self) -> Family {
        classify_step(self)
    }
    fn what(&self) -> String {
        self.what.clone()
    }
    fn reason(&self) -> String {
        StepError::reason(self)
    }
}

impl Failure {
    /// A failed docker call in user terms: docker's wording and its family's fix.
    pub fn from_docker(e: &DockerError) -> Self {
        Failure { error: e.to_string(), hint: classify(e).hint().to_string() }
    }

    /// Any failed step in user terms: its wording and its family's fix. A
    /// failure docker did not report has no "docker error above" to point at:
    /// its hint says where to look instead.
    pub fn from_step(e: &StepError) -> Self {
        let hint = match classify_step(e) {
            Family::Other if !e.came_from_docker() => crate::failure::NOT_FROM_DOCKER,
            f => f.hint(),
        };
        Failure { error: e.to_string(), hint: hint.to_string() }
    }
}

/// The family of any failed step. An HTTP status says it outright; the body
/// decides only what the status leaves open (e.g. a 400 naming a bad reference).
pub fn classify_step(err: &StepError) -> Family {
    match &err.cause {
        Cause::Interrupted => Family::Interrupted,
        Cause::Timeout => Family::Timeout,
        Cause::Exit { stderr, .. } => classify_text(stderr),
        Cause::Http { status, body } => match status {
            401 => Family::Auth,
            403 => Family::Permission,
            404 => Family::NotFound,
            429 => Family::RateLimit,
            500..=599 => Family::Network,
            _ => classify_text(body),
        },
        Cause::Parse(_) | Cause::TooLong(_) | Cause::Setup(_) => Family::Other,
        Cause::Insecure(_) => Family::Insecure,
        Cause::Tls(_) => Family::TlsTrust,
        Cause::Token(_) => Family::TokenEndpoint,
        Cause::Transport(_) => Family::Network,
    }
}

/// The family of a failed docker call. The flags win: a killed process's text is partial.
pub fn classify(err: &DockerError) -> Family {
    if err.interrupted {
        Family::Interrupted
    } else if err.timed_out {
        Family::Timeout
    } else {
        classify_text(&err.stderr)
    }
}

/// The family the error text points at. First match wins; the order is the point:
/// - disk, bad name and platform first: they are precise and may sit inside other messages;
/// - rate limit before network and auth: 429s come with "authenticating" advice and odd wrappers;
/// - "pull access denied ... repository does not exist" is docker's not-found, despite "denied";
/// - GHCR/Hub scope errors (insufficient_scope, permission_denied) are permission even with a 401;
/// - other 401s are auth even when the registry also says "denied";
/// - registry answers (auth, permission, not found) before network, which is a last resort.
pub fn classify_text(stderr: &str) -> Family {
    let t = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| t.contains(n));
    let any_word = |words: &[&str]| words.iter().any(|w| contains_word(&t, w));

    if any(&["no space left on device"]) {
        return Family::Disk;
    }
    if any(&["invalid reference format", "must be lowercase", "repository name must be canonical", "invalid tag format"]) {
        return Family::BadName;
    }
    if any(&["no matching manifest for"]) {
        return Family::PlatformMissing;
    }
    if any_word(&["toomanyrequests"]) || any(&["429 too many requests", "too many requests", "pull rate limit", "http 429", "status: 429"]) {
        return Family::RateLimit;
    }
    if any(&["server gave http response to https client"]) {
        return Family::Insecure;
    }
    if any(&["cannot connect to the docker daemon", "is the docker daemon running"]) {
        return Family::Engine;
    }
    // A missing credential helper says "executable file not found": not about the image.
    if any(&["executable file not found"]) {
        return Family::Other;
    }
    if any(&["pull access denied", "repository does not exist"]) {
        return Family::NotFound;
    }
    if any_word(&["insufficient_scope", "permission_denied"]) || any(&["installation not allowed to write"]) {
        return Family::Permission;
    }
    if any_word(&["unauthorized"])
        || any(&[
            "status: 401",
            "incorrect username or password",
            "no basic auth credentials",
            "authentication required",
            "authorization token has expired",
        ])
    {
        return Family::Auth;
    }
    if any(&["requested access to the resource is denied", "403 forbidden"]) || any_word(&["denied:"]) {
        return Family::Permission;
    }
    if any(&["manifest unknown", "not found", "no such manifest", "name unknown"]) {
        return Family::NotFound;
    }
    if any(&[
        // `docker manifest inspect` retries a failed read as a list and then
        // reports only this, hiding a 5xx or reset behind it.
        "unsupported manifest format",
        "connection reset",
        "connection refused",
        "broken pipe",
        "tls handshake timeout",
        "i/o timeout",
        "unexpected eof",
        "no such host",
        "net/http: request canceled",
        "client.timeout exceeded",
        "context deadline exceeded",
        "network is unreachable",
        "no route to host",
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
    ]) || ends_in_eof(&t)
    {
        return Family::Network;
    }
    Family::Other
}

/// Characters of an image reference. A keyword glued to one of them on the left is
/// part of a name (`fx/unauthorized:v1`), not docker speaking.
fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"._-/:@".contains(&c)
}

/// `word` occurs with no name character before it and no word character after it.
fn contains_word(text: &str, word: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + word.len()).copied();
        !before.is_some_and(is_name_char) && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
    })
}

/// Go's io.EOF as docker prints it, `...: EOF`, at the end of a line or of a wrapped cause.
fn ends_in_eof(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.match_indices(": eof").any(|(i, m)| !bytes.get(i + m.len()).is_some_and(|c| c.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};

    fn err(stderr: &str) -> DockerError {
        DockerError { command: "docker x".into(), status: Some(1), stderr: stderr.into(), timed_out: false, interrupted: false }
    }

    /// A fixture split into stderr and the status from its final `exit=N` line.
    fn load(path: &Path) -> DockerError {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let body = text.trim_end_matches('\n');
        let (stderr, last) = body.rsplit_once('\n').unwrap_or(("", body));
        let status = last
            .strip_prefix("exit=")
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: no trailing exit=N line", path.display()));
        DockerError { status: Some(status), ..err(stderr) }
    }

    /// Every recorded failure. A new fixture must be added here, see `table_covers_every_fixture`.
    const FIXTURES: &[(&str, Family)] = &[
        ("docker-cli-28.2/err-login-wrong-password.txt", Family::Auth),
        // Documented oddity: plain-HTTP registry without --insecure answers "no such manifest".
        ("docker-cli-28.2/err-manifest-inspect-https-to-http.txt", Family::NotFound),
        ("docker-cli-28.2/err-manifest-inspect-missing.txt", Family::NotFound),
        ("docker-cli-28.2/err-manifest-inspect-unauthorized.txt", Family::Auth),
        ("docker-cli-28.2/err-pull-missing-repo.txt", Family::NotFound),
        ("docker-cli-28.2/err-pull-missing-tag.txt", Family::NotFound),
        ("docker-cli-28.2/err-pull-platform-missing.txt", Family::PlatformMissing),
        ("docker-cli-28.2/err-pull-uppercase.txt", Family::BadName),
        ("docker-cli-28.2/err-push-unauthorized.txt", Family::Auth),
        ("docker-cli-28.2/err-rmi-in-use-by-tag.txt", Family::Other),
        ("buildx-0.10.5/err-create-prefer-index-unknown-flag.txt", Family::Other),
        ("buildx-0.10.5/err-create-unauthorized-target.txt", Family::Auth),
        ("buildx-0.10.5/err-inspect-missing-tag.txt", Family::NotFound),
        ("buildx-0.10.5/err-inspect-unauthorized.txt", Family::Auth),
        ("buildx-0.36.1/err-create-unknown-flag.txt", Family::Other),
        ("buildx-0.36.1/err-create-unauthorized-target.txt", Family::Auth),
        ("buildx-0.36.1/err-create-missing-source.txt", Family::NotFound),
        ("buildx-0.36.1/err-inspect-missing-repo.txt", Family::NotFound),
        ("buildx-0.36.1/err-inspect-missing-tag.txt", Family::NotFound),
        ("buildx-0.36.1/err-inspect-unauthorized.txt", Family::Auth),
        ("faults/buildx-create-to-429.txt", Family::RateLimit),
        ("faults/buildx-create-to-503.txt", Family::Network),
        ("faults/buildx-create-to-reset.txt", Family::Network),
        ("faults/buildx-inspect-429.txt", Family::RateLimit),
        ("faults/buildx-inspect-503.txt", Family::Network),
        ("faults/buildx-inspect-reset.txt", Family::Network),
        ("faults/manifest-inspect-429.txt", Family::RateLimit),
        ("faults/manifest-inspect-503.txt", Family::Network),
        ("faults/manifest-inspect-reset.txt", Family::Network),
        ("faults/pull-429.txt", Family::RateLimit),
        ("faults/pull-503.txt", Family::Network),
        ("faults/pull-reset.txt", Family::Network),
        ("faults/push-429.txt", Family::RateLimit),
        ("faults/push-503.txt", Family::Network),
        ("faults/push-reset.txt", Family::Network),
    ];

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
    }

    #[test]
    fn recorded_fixtures() {
        for (file, want) in FIXTURES {
            let e = load(&data_dir().join(file));
            assert_eq!(e.status, Some(if file.contains("unknown-flag") { 125 } else { 1 }), "{file}");
            assert_eq!(classify(&e), *want, "{file}: {:?}", e.stderr);
        }
    }

    #[test]
    fn table_covers_every_fixture() {
        let listed: HashSet<&str> = FIXTURES.iter().map(|(f, _)| *f).collect();
        let mut missing = Vec::new();
        for dir in std::fs::read_dir(data_dir()).unwrap() {
            let dir = dir.unwrap().path();
            if !dir.is_dir() {
                continue;
            }
            let faults = dir.file_name().unwrap() == "faults";
            for f in std::fs::read_dir(&dir).unwrap() {
                let name = f.unwrap().file_name().into_string().unwrap();
                let wanted = name.ends_with(".txt") && (faults || name.starts_with("err-"));
                let rel = format!("{}/{name}", dir.file_name().unwrap().to_string_lossy());
                if wanted && !listed.contains(rel.as_str()) {
                    missing.push(rel);
                }
            }
        }
        assert!(missing.is_empty(), "fixtures without an expected family: {missing:?}");
    }

    #[test]
    fn texts_as_registries_print_them() {
        let cases: &[(&str, Family)] = &[
            // auth
            ("unauthorized: authentication required", Family::Auth),
            ("Error response from daemon: Get \"https://registry-1.docker.io/v2/\": unauthorized: incorrect username or password", Family::Auth),
            ("Error response from daemon: login attempt to https://ghcr.io/v2/ failed with status: 401 Unauthorized", Family::Auth),
            ("ERROR: failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized", Family::Auth),
            ("no basic auth credentials", Family::Auth),
            ("denied: Your authorization token has expired. Reauthenticate and try again.", Family::Auth),
            // a 401 wins over the "denied" around it
            ("unauthorized: access denied: requested access to the resource is denied", Family::Auth),
            // permission
            ("denied: requested access to the resource is denied", Family::Permission),
            ("denied: permission_denied: write_package", Family::Permission),
            ("denied: installation not allowed to Write organization package", Family::Permission),
            ("ERROR: server message: insufficient_scope: authorization failed", Family::Permission),
            ("unexpected status from PUT request to https://ghcr.io/v2/o/r/manifests/v1: 403 Forbidden", Family::Permission),
            ("unauthorized: insufficient_scope: the token lacks push", Family::Permission),
            // not found
            ("Error response from daemon: pull access denied for nosuch/image, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", Family::NotFound),
            ("Error response from daemon: manifest for library/alpine:nope not found: manifest unknown: manifest unknown", Family::NotFound),
            ("ERROR: docker.io/library/alpine:nope: not found", Family::NotFound),
            ("no such manifest: docker.io/library/alpine:nope", Family::NotFound),
            ("name unknown: repository name not known to registry", Family::NotFound),
            // platform
            ("no matching manifest for linux/s390x in the manifest list entries", Family::PlatformMissing),
            ("no matching manifest for linux/arm64/v8 in the manifest list entries: not found", Family::PlatformMissing),
            // rate limit
            ("toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit", Family::RateLimit),
            ("ERROR: unexpected status: 429 Too Many Requests", Family::RateLimit),
            ("error parsing HTTP 429 response body: invalid character '<' looking for beginning of value", Family::RateLimit),
            ("Error response from daemon: Get \"https://registry-1.docker.io/v2/\": toomanyrequests: too many failed login attempts", Family::RateLimit),
            // bad name
            ("invalid reference format: repository name (fx/Upper) must be lowercase", Family::BadName),
            ("invalid reference format", Family::BadName),
            ("repository name must be canonical", Family::BadName),
            ("invalid tag format", Family::BadName),
            // disk
            ("write /var/lib/docker/tmp/GetImageBlob123: no space left on device", Family::Disk),
            ("failed to register layer: Error processing tar file(exit status 1): write /x: no space left on device", Family::Disk),
            // network
            ("Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: TLS handshake timeout", Family::Network),
            ("Get \"https://r.example/v2/\": dial tcp 10.0.0.1:443: i/o timeout", Family::Network),
            ("Get \"https://r.example/v2/\": dial tcp 127.0.0.1:5000: connect: connection refused", Family::Network),
            ("Get \"https://r.example/v2/\": dial tcp: lookup r.example on 127.0.0.53:53: no such host", Family::Network),
            ("Get \"https://r.example/v2/\": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)", Family::Network),
            ("ERROR: failed to do request: Head \"https://r.example/v2/x/manifests/v1\": EOF", Family::Network),
            ("Get \"https://r.example/v2/\": EOF\n", Family::Network),
            ("error reading blob: unexpected EOF", Family::Network),
            ("write tcp 1.2.3.4:1->5.6.7.8:443: write: broken pipe", Family::Network),
            ("received unexpected HTTP status: 500 Internal Server Error", Family::Network),
            ("received unexpected HTTP status: 502 Bad Gateway", Family::Network),
            ("ERROR: unexpected status: 504 Gateway Timeout", Family::Network),
            // insecure
            ("Error response from daemon: Get \"https://10.0.0.5:5000/v2/\": http: server gave HTTP response to HTTPS client", Family::Insecure),
            ("unsupported manifest format: &{{{2 application/vnd.docker.distribution.manifest.v2+json} [123 10]}}", Family::Network),
            ("Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?", Family::Engine),
            // other
            ("Error response from daemon: conflict: unable to delete 362fee245b5b (must be forced)", Family::Other),
            ("error getting credentials - err: exec: \"docker-credential-desktop\": executable file not found in $PATH, out: ``", Family::Other),
            ("", Family::Other),
        ];
        for (text, want) in cases {
            assert_eq!(classify_text(text), *want, "{text:?}");
        }
    }

    #[test]
    fn image_names_do_not_masquerade_as_errors() {
        // Keywords inside references are names, not docker's words.
        assert_eq!(classify_text("manifest for r.example/fx/unauthorized:v1 not found: manifest unknown"), Family::NotFound);
        assert_eq!(classify_text("manifest for r.example/toomanyrequests:v1 not found"), Family::NotFound);
        assert_eq!(classify_text("The push refers to repository [r.example/fx/eof]\nreceived unexpected HTTP status: 503 Service Unavailable"), Family::Network);
        assert_eq!(classify_text("copying to r.example/a/b:eof-denied: conflict"), Family::Other);
    }

    #[test]
    fn flags_win_over_text() {
        let e = DockerError { timed_out: true, status: None, ..err("no space left on device") };
        assert_eq!(classify(&e), Family::Timeout);
        let e = DockerError { interrupted: true, timed_out: true, status: None, ..err("connection reset by peer") };
        assert_eq!(classify(&e), Family::Interrupted);
    }

    #[test]
    fn transient_families() {
        let transient: Vec<Family> = Family::ALL.into_iter().filter(|f| f.transient()).collect();
        assert_eq!(transient, [Family::RateLimit, Family::Network, Family::TokenEndpoint, Family::Timeout]);
        assert!(!classify_text("http: server gave HTTP response to HTTPS client").transient());
    }

    #[test]
    fn every_family_has_a_one_line_hint_and_serde_name() {
        for f in Family::ALL {
            let h = f.hint();
            assert!(!h.trim().is_empty() && !h.contains('\n') && !h.contains("  "), "{f:?}: {h:?}");
            assert_eq!(serde_json::to_string(&f).unwrap(), format!("\"{}\"", f.as_str()));
        }
        assert_eq!(Family::PlatformMissing.to_string(), "platform-missing");
    }

    #[test]
    fn only_docker_failures_point_at_the_docker_error() {
        let registry = crate::step_error::StepError::parse("GET https://r.example/v2/a/manifests/1", "expected a JSON object");
        let f = crate::failure::Failure::from_step(&registry);
        assert!(!f.hint.contains("docker error"), "{f:?}");
        assert_eq!(f.hint, crate::failure::NOT_FROM_DOCKER);
        let setup = crate::step_error::StepError::setup("list the tags of r/a", "cannot read tag lists: broken config");
        assert_eq!(crate::failure::Failure::from_step(&setup).hint, crate::failure::NOT_FROM_DOCKER);
        let docker = crate::step_error::StepError::from(crate::docker::DockerError {
            command: "docker pull x".into(),
            status: Some(1),
            stderr: "something odd".into(),
            timed_out: false,
            interrupted: false,
        });
        assert_eq!(crate::failure::Failure::from_step(&docker).hint, Family::Other.hint());
        assert_eq!(crate::failure::Failure::from_step(&crate::step_error::StepError::http("GET u", 401, "")).hint, Family::Auth.hint());
    }
}
