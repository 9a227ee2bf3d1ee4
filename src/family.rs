//! The families of failed steps: whether a failure is worth another attempt,
//! and the one-line fix shown to the user. `diagnose` decides the family.

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    Auth,
    Permission,
    NotFound,
    PlatformMissing,
    RateLimit,
    BadName,
    Disk,
    Network,
    /// "server gave HTTP response to HTTPS client": a plain-HTTP registry the
    /// daemon treats as HTTPS. It reads like a network error but is a setting,
    /// so it gets its own family (never retried) rather than a transient flag
    /// beside the family: every caller then needs only `Family`.
    Insecure,
    /// No Docker engine answers (the daemon engine needs one).
    Engine,
    /// The registry's TLS certificate is not trusted by the HTTP read path.
    TlsTrust,
    /// The token endpoint of a registry's `WWW-Authenticate` challenge failed.
    TokenEndpoint,
    Timeout,
    Interrupted,
    Other,
}

impl Family {
    #[cfg(test)]
    pub const ALL: [Family; 15] = [
        Family::Auth,
        Family::Permission,
        Family::NotFound,
        Family::PlatformMissing,
        Family::RateLimit,
        Family::BadName,
        Family::Disk,
        Family::Network,
        Family::Insecure,
        Family::Engine,
        Family::TlsTrust,
        Family::TokenEndpoint,
        Family::Timeout,
        Family::Interrupted,
        Family::Other,
    ];

    /// The same kebab-case name serde writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Auth => "auth",
            Family::Permission => "permission",
            Family::NotFound => "not-found",
            Family::PlatformMissing => "platform-missing",
            Family::RateLimit => "rate-limit",
            Family::BadName => "bad-name",
            Family::Disk => "disk",
            Family::Network => "network",
            Family::Insecure => "insecure",
            Family::Engine => "engine",
            Family::TlsTrust => "tls-trust",
            Family::TokenEndpoint => "token-endpoint",
            Family::Timeout => "timeout",
            Family::Interrupted => "interrupted",
            Family::Other => "other",
        }
    }

    /// Worth another attempt: the same command may succeed later. 5xx answers are `Network`.
    pub fn transient(self) -> bool {
        matches!(self, Family::Network | Family::RateLimit | Family::Timeout | Family::TokenEndpoint)
    }

    /// One line naming the fix.
    pub fn hint(self) -> &'static str {
        match self {
            Family::Auth => {
                "check the username and the token/password secret for this registry (re-create an expired token; \
                 Docker Hub needs an access token, Aliyun ACR the registry password set in the ACR console)"
            }
            Family::Permission => {
                "the credentials may not write here: give the token write/push access; on Aliyun ACR create the \
                 namespace first (names are namespace/repo); a GitHub workflow pushing to GHCR needs \
                 `permissions: packages: write`"
            }
            Family::NotFound => {
                "check that the image name and tag exist at the source (e.g. `docker manifest inspect IMAGE`); \
                 for a private source, log in to it"
            }
            Family::PlatformMissing => {
                "the source has no image for that platform: remove --platform or pick one the source has \
                 (`docker buildx imagetools inspect IMAGE` lists them)"
            }
            Family::RateLimit => {
                "registry rate limit: set DOCKERHUB_USERNAME/DOCKERHUB_TOKEN to pull as a logged-in user, \
                 or wait and run fewer jobs at once"
            }
            Family::BadName => {
                "image names must be lowercase a-z 0-9 separated by '.', '_', '-' or '/': \
                 fix the line in images.txt or the namespace setting"
            }
            Family::Disk => {
                "out of disk space: set CLEAN_DISK_SPACE=true, free disk space, \
                 or use the imagetools engine (it copies without local storage)"
            }
            Family::Network => {
                "network or registry trouble, retried automatically; if it persists, check the registry address \
                 and any proxy"
            }
            Family::Engine => {
                "no Docker engine answers: start it or point DOCKER_HOST at one; with the buildx plugin, \
                 --engine imagetools copies without an engine"
            }
            Family::Insecure => {
                "the registry speaks plain HTTP: list it in INSECURE_REGISTRIES (config.env) and in the docker \
                 daemon's insecure-registries (daemon.json; `imgsync doctor` checks both), or address it by a \
                 loopback address (127.0.0.1 or localhost)"
            }
            Family::TlsTrust => {
                "the registry's TLS certificate is not trusted: put its CA in /etc/docker/certs.d/<host:port>/ca.crt \
                 (as for docker; REGISTRY_CERTS_DIR moves that directory) or in the system's trust store; \
                 `imgsync doctor` shows the error; --inspect docker reads through docker instead"
            }
            Family::TokenEndpoint => {
                "the registry's token endpoint (the realm of its WWW-Authenticate challenge) failed: check that it \
                 is reachable from here (proxy, firewall, DNS; `imgsync doctor` pings each registry), retried automatically"
            }
            Family::Timeout => {
                "the docker step took too long: check that the registry is reachable, or raise --timeout if you set it"
            }
            Family::Interrupted => "the run was cancelled before this step finished; run it again to complete it",
            Family::Other => "see the docker error above",
        }
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
