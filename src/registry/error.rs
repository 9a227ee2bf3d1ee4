//! Errors of the registry client: what was asked (method and URL, never a
//! secret), what came back (HTTP status) and the registry's own error text.
//!
//! The registry's text is untrusted: it is kept for diagnosis
//! ([`Error::registry_message`]) but `Display` never prints it.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401 after authenticating (or with no way to authenticate).
    Unauthorized,
    /// 403.
    Denied,
    /// 404 where an answer was required (a HEAD or GET of a missing manifest is
    /// `Ok(None)`, not this).
    NotFound,
    /// 429.
    TooManyRequests,
    /// Any other unexpected status.
    Status,
    /// Connection, DNS, timeout or protocol failure, as ureq described it.
    Transport(String),
    /// TLS failed: an untrusted or invalid certificate, a handshake error
    /// (add the CA to `<certs dir>/<host:port>/ca.crt`, as for docker).
    Tls(String),
    /// The body's digest is not the one asked for or announced.
    DigestMismatch { expected: String, actual: String },
    /// The answer could not be understood (bad JSON, no token, no challenge...).
    InvalidResponse(String),
    /// Tag listing still had a next page after this many pages.
    TooManyPages(usize),
    /// The run was cancelled (Ctrl-C): not sent.
    Interrupted,
    /// The answer's body was larger than this many bytes (a manifest over 4 MiB).
    TooLarge(u64),
    /// A tag listing past one of its bounds (page size, total size, tag count, time).
    /// (`what` names the repository and the bound.)
    TagListTooLarge(Box<str>),
    /// A plain-HTTP URL for a host that is neither loopback nor listed as insecure.
    PlainHttpRefused,
    /// Credentials could not be read (a broken docker config or a failing helper).
    Credentials(String),
    /// The registry timed out again and again this run: given up, not asked again.
    Unreachable,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub method: &'static str,
    /// The URL asked, without credentials or query secrets.
    pub url: String,
    pub status: Option<u16>,
    pub kind: ErrorKind,
    registry_message: Option<String>,
    /// How long the registry asked to wait (`Retry-After` on a 429 or 503),
    /// in whole seconds (kept small: errors travel in `Result`s).
    retry_after_s: Option<u16>,
}

/// Longest registry error text kept.
const MAX_MESSAGE: usize = 1024;

impl Error {
    pub fn new(method: &'static str, url: &str, status: Option<u16>, kind: ErrorKind) -> Error {
        Error { method, url: redact(url), status, kind, registry_message: None, retry_after_s: None }
    }

    pub fn with_registry_message(mut self, body: &[u8]) -> Error {
        self.registry_message = registry_message(body);
        self
    }

    pub fn with_retry_after(mut self, wait: Option<std::time::Duration>) -> Error {
        // Rounded up: a registry asking for half a second gets one.
        self.retry_after_s = wait.map(|d| u16::try_from(d.as_secs() + u64::from(d.subsec_nanos() > 0)).unwrap_or(u16::MAX));
        self
    }

    /// The wait the registry asked for before another try, when it named one.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after_s.map(|s| std::time::Duration::from_secs(u64::from(s)))
    }

    /// The registry's error text (`errors[].code: message`, or the raw body,
    /// cut to 1 KiB). Untrusted: sanitize before showing it.
    pub fn registry_message(&self) -> Option<&str> {
        self.registry_message.as_deref()
    }

    /// Refused for lack of access (401/403 after authenticating as docker would).
    pub fn is_auth(&self) -> bool {
        matches!(self.kind, ErrorKind::Unauthorized | ErrorKind::Denied)
    }

    /// Worth another try after a backoff: 429, a 5xx other than 501/505, or
    /// a connection failure (reset, timeout, DNS) that is not about TLS trust.
    pub fn is_retryable(&self) -> bool {
        match self.kind {
            ErrorKind::TooManyRequests | ErrorKind::Transport(_) => true,
            ErrorKind::Status => self.status.is_some_and(|s| (500..600).contains(&s) && s != 501 && s != 505),
            _ => false,
        }
    }

    /// A connection or an answer that did not come in time (ureq's own wording).
    pub fn is_timeout(&self) -> bool {
        matches!(&self.kind, ErrorKind::Transport(t) if t.starts_with("timeout"))
    }

    /// From a ureq failure: TLS problems get their own kind.
    pub fn from_transport(method: &'static str, url: &str, e: ureq::Error) -> Error {
        let tls = match &e {
            ureq::Error::Tls(_) | ureq::Error::Pem(_) | ureq::Error::Rustls(_) => true,
            ureq::Error::Io(io) => io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()),
            _ => false,
        };
        let text = match &e {
            ureq::Error::Io(io) if tls => io.get_ref().map_or_else(|| e.to_string(), |inner| inner.to_string()),
            _ => e.to_string(),
        };
        let kind = if tls { ErrorKind::Tls(text) } else { ErrorKind::Transport(text) };
        Error::new(method, url, None, kind)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.url)?;
        if let Some(s) = self.status {
            write!(f, ": HTTP {s}")?;
        }
        match &self.kind {
            ErrorKind::Unauthorized => write!(f, ": unauthorized"),
            ErrorKind::Denied => write!(f, ": denied"),
            ErrorKind::NotFound => write!(f, ": not found"),
            ErrorKind::TooManyRequests => write!(f, ": too many requests (rate limit)"),
            ErrorKind::Status => Ok(()),
            ErrorKind::Transport(e) => write!(f, ": {e}"),
            ErrorKind::Tls(e) => write!(f, ": TLS: {e}"),
            ErrorKind::DigestMismatch { expected, actual } => {
                write!(f, ": content digest {actual} is not the expected {expected}")
            }
            ErrorKind::InvalidResponse(e) => write!(f, ": invalid response: {e}"),
            ErrorKind::TooManyPages(n) => write!(f, ": still a next page after {n} pages"),
            ErrorKind::Interrupted => write!(f, ": not sent, the run was interrupted"),
            ErrorKind::TooLarge(n) => write!(f, ": the answer is larger than {n} bytes"),
            ErrorKind::TagListTooLarge(what) => write!(f, ": {what} (pin a tag, or select from a smaller repository)"),
            ErrorKind::PlainHttpRefused => {
                write!(f, ": plain HTTP is only used for loopback and insecure registries")
            }
            ErrorKind::Credentials(e) => write!(f, ": credentials: {e}"),
            ErrorKind::Unreachable => write!(f, ": registry unreachable (it timed out before; not asked again this run)"),
        }
    }
}

impl std::error::Error for Error {}

/// Drops `user:password@` and the whole query of token URLs (they carry the
/// account name); keeps other queries (`n=`, `last=`), which hold no secret.
fn redact(url: &str) -> String {
    // Parsed as the request was (the `url` crate): the host named is the
    // host asked, whatever `@` or `#` the text holds.
    let Ok(mut u) = url::Url::parse(url) else { return url.split(['?', '#']).next().unwrap_or("").to_string() };
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_fragment(None);
    if u.query().is_some_and(|q| q.contains("account=") || q.contains("refresh_token")) {
        u.set_query(None);
    }
    u.to_string()
}

/// `code: message` of each entry of the registry's `{"errors": [...]}`, else
/// the raw text; cut to [`MAX_MESSAGE`] bytes on a char boundary.
fn registry_message(body: &[u8]) -> Option<String> {
    if body.is_empty() {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(body) {
        Ok(e) if !e.errors.is_empty() => {
            e.errors.iter().map(|e| format!("{}: {}", e.code, e.message)).collect::<Vec<_>>().join("; ")
        }
        _ => String::from_utf8_lossy(body).trim().to_string(),
    };
    let mut end = text.len().min(MAX_MESSAGE);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Some(text[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_the_request_not_the_registry_text() {
        let e = Error::new("HEAD", "https://u:p@ghcr.io/v2/o/i/manifests/v1", Some(401), ErrorKind::Unauthorized)
            .with_registry_message(br#"{"errors":[{"code":"UNAUTHORIZED","message":"\u001b[31mauthentication required"}]}"#);
        assert_eq!(e.to_string(), "HEAD https://ghcr.io/v2/o/i/manifests/v1: HTTP 401: unauthorized");
        assert_eq!(e.registry_message(), Some("UNAUTHORIZED: \u{1b}[31mauthentication required"));
        assert!(e.is_auth());
    }

    #[test]
    fn retryable_and_tls() {
        let status = |s: u16, k: ErrorKind| Error::new("GET", "u", Some(s), k);
        assert!(status(429, ErrorKind::TooManyRequests).is_retryable());
        assert!(status(503, ErrorKind::Status).is_retryable());
        assert!(!status(501, ErrorKind::Status).is_retryable());
        assert!(!status(401, ErrorKind::Unauthorized).is_retryable());
        assert!(Error::new("GET", "u", None, ErrorKind::Transport("reset".into())).is_retryable());
        let io = std::io::Error::other(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer));
        let e = Error::from_transport("HEAD", "https://r/v2/", ureq::Error::Io(io));
        assert!(matches!(&e.kind, ErrorKind::Tls(m) if m.contains("UnknownIssuer")), "{e:?}");
        assert!(!e.is_retryable());
        assert_eq!(e.to_string(), "HEAD https://r/v2/: TLS: invalid peer certificate: UnknownIssuer");
        let e = Error::from_transport("HEAD", "https://r/v2/", ureq::Error::HostNotFound);
        assert!(matches!(e.kind, ErrorKind::Transport(_)) && e.is_retryable());
    }

    #[test]
    fn token_queries_are_dropped_and_long_text_cut() {
        let e = Error::new("GET", "https://auth.docker.io/token?service=x&account=me&scope=a", Some(500), ErrorKind::Status)
            .with_registry_message("é".repeat(2000).as_bytes());
        assert_eq!(e.url, "https://auth.docker.io/token");
        assert!(e.registry_message().unwrap().len() <= MAX_MESSAGE);
        let e = Error::new("GET", "http://127.0.0.1:5000/v2/a/tags/list?n=1000", None, ErrorKind::TooManyPages(3));
        assert_eq!(e.to_string(), "GET http://127.0.0.1:5000/v2/a/tags/list?n=1000: still a next page after 3 pages");
    }
}
