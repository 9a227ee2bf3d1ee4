//! A repository as the HTTP API names it: the host to connect to and the
//! repository path. Docker Hub is `docker.io` for docker and
//! `registry-1.docker.io` for HTTP, with `library/` before one-part names.

use crate::reference::ImageRef;

pub const DOCKER_HUB_HOST: &str = "registry-1.docker.io";
/// Every name of Docker Hub, the one list (config keys and the read path):
/// the longer of the two lists there were (`hub.docker.com` was only in the
/// config one), so a Hub credential is never kept or sent under a name taken
/// for another registry.
const DOCKER_HUB_ALIASES: [&str; 5] = ["docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com", "hub.docker.com"];

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Repository {
    /// The registry as docker names it (`docker.io`, `ghcr.io`, `127.0.0.1:5000`):
    /// the key for credentials and insecure-registry settings.
    pub registry: String,
    /// `host[:port]` to connect to.
    pub host: String,
    /// `library/nginx`, `org/app`.
    pub name: String,
}

pub fn is_docker_hub(registry: &str) -> bool {
    DOCKER_HUB_ALIASES.iter().any(|a| registry.eq_ignore_ascii_case(a))
}

impl Repository {
    pub fn new(registry: &str, name: &str) -> Repository {
        if is_docker_hub(registry) {
            let name = if name.contains('/') { name.to_string() } else { format!("library/{name}") };
            Repository { registry: "docker.io".into(), host: DOCKER_HUB_HOST.into(), name }
        } else {
            Repository { registry: registry.to_string(), host: registry.to_string(), name: name.to_string() }
        }
    }

    pub fn of(image: &ImageRef) -> Repository {
        Repository::new(image.registry(), image.repository())
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry == "docker.io"
    }

    /// What to put after `/manifests/` for `image`: its digest when pinned
    /// (docker resolves `tag@digest` by digest), else its tag, else `latest`.
    pub fn reference_of(image: &ImageRef) -> String {
        image.digest().or(image.tag()).unwrap_or("latest").to_string()
    }

    /// The Bearer scope to read it: `repository:<name>:pull`.
    pub fn pull_scope(&self) -> String {
        format!("repository:{}:pull", self.name)
    }
}

impl std::fmt::Display for Repository {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.registry, self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_host_and_library() {
        let r = Repository::of(&ImageRef::parse("nginx:alpine").unwrap());
        assert_eq!((r.registry.as_str(), r.host.as_str(), r.name.as_str()), ("docker.io", DOCKER_HUB_HOST, "library/nginx"));
        assert_eq!(r.pull_scope(), "repository:library/nginx:pull");
        let r = Repository::new("index.docker.io", "mariadb");
        assert_eq!((r.host.as_str(), r.name.as_str()), (DOCKER_HUB_HOST, "library/mariadb"));
        let r = Repository::new("registry-1.docker.io", "bitnami/redis");
        assert_eq!(r.to_string(), "docker.io/bitnami/redis");
        assert!(r.is_docker_hub());
    }

    #[test]
    fn other_registries_keep_their_names() {
        let r = Repository::of(&ImageRef::parse("127.0.0.1:5000/app:v1").unwrap());
        assert_eq!((r.registry.as_str(), r.host.as_str(), r.name.as_str()), ("127.0.0.1:5000", "127.0.0.1:5000", "app"));
        let r = Repository::of(&ImageRef::parse("ghcr.io/o/i").unwrap());
        assert_eq!(r.pull_scope(), "repository:o/i:pull");
        assert_eq!(Repository::reference_of(&ImageRef::parse("ghcr.io/o/i").unwrap()), "latest");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(Repository::reference_of(&ImageRef::parse(&format!("ghcr.io/o/i:v1@{d}")).unwrap()), d);
        assert!(!r.is_docker_hub());
    }
}
