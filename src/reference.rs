//! Image references, parsed with docker's grammar (oci-spec's port of it).

use std::fmt;

use oci_spec::distribution::{ParseError, Reference};

pub const DOCKER_HUB: &str = "docker.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses `[registry/]path[:tag][@sha256:hex]`, defaulting like docker does.
    pub fn parse(s: &str) -> Result<Self, String> {
        let inner = Reference::try_from(s).map_err(|e| describe(s, e))?;
        Ok(ImageRef { inner })
    }

    pub fn registry(&self) -> &str {
        self.inner.registry()
    }

    pub fn repository(&self) -> &str {
        self.inner.repository()
    }

    pub fn tag(&self) -> Option<&str> {
        self.inner.tag()
    }

    pub fn digest(&self) -> Option<&str> {
        self.inner.digest()
    }

    pub fn is_docker_hub(&self) -> bool {
        self.registry() == DOCKER_HUB
    }

    /// `registry/repository`, without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry(), self.repository())
    }

    /// `registry/repository@digest`: what pins one exact manifest.
    pub fn at_digest(&self, digest: &str) -> String {
        format!("{}@{}", self.name(), digest)
    }

}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // With both tag and digest, docker resolves by digest; keep both so the
        // report still says which tag was meant.
        write!(f, "{}", self.inner.whole())
    }
}

/// `registry/repo` of a `registry/repo:tag` reference (the registry may have a port).
pub fn without_tag(reference: &str) -> &str {
    reference.rsplit_once(':').filter(|(_, t)| !t.contains('/')).map_or(reference, |(n, _)| n)
}

/// Docker and buildx speak plain HTTP to loopback registries.
pub fn is_loopback_host(registry: &str) -> bool {
    let host = match registry.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => registry.rsplit_once(':').map_or(registry, |(h, _)| h),
    };
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

fn describe(s: &str, e: ParseError) -> String {
    let hint = match e {
        ParseError::ReferenceInvalidFormat if s != s.to_ascii_lowercase() && Reference::try_from(s.to_ascii_lowercase().as_str()).is_ok() => {
            return format!("invalid image reference {s:?}: repository names must be lowercase");
        }
        ParseError::ReferenceInvalidFormat => {
            "expected [registry/]path[:tag][@sha256:digest] with only a-z, 0-9, '.', '_', '-' and '/' in the path"
        }
        ParseError::NameContainsUppercase => "repository names must be lowercase",
        ParseError::NameTooLong => "the repository name is longer than 255 characters",
        ParseError::NameEmpty => "the reference is empty",
        ParseError::TagInvalidFormat => "a tag is up to 128 of A-Z a-z 0-9 '_' '.' '-' and cannot start with '.' or '-'",
        ParseError::DigestInvalidFormat | ParseError::DigestInvalidLength | ParseError::DigestUnsupported => {
            "a digest is sha256: followed by 64 hex characters"
        }
    };
    format!("invalid image reference {s:?}: {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_defaults() {
        let r = ImageRef::parse("nginx").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        let r = ImageRef::parse("bitnami/redis:7").unwrap();
        assert_eq!((r.registry(), r.repository(), r.tag()), ("docker.io", "bitnami/redis", Some("7")));
        let r = ImageRef::parse("index.docker.io/library/nginx:alpine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/nginx:alpine");
    }

    #[test]
    fn other_registries_and_digests() {
        let r = ImageRef::parse("quay.io/coreos/etcd:v3.5.0").unwrap();
        assert_eq!((r.registry(), r.repository()), ("quay.io", "coreos/etcd"));
        let r = ImageRef::parse("localhost:5000/a/b").unwrap();
        assert!(is_loopback_host(r.registry()));
        assert_eq!(without_tag("localhost:5000/a/b:v1"), "localhost:5000/a/b");
        assert_eq!(without_tag("localhost:5000/a/b"), "localhost:5000/a/b");
        let d = format!("sha256:{}", "a".repeat(64));
        let r = ImageRef::parse(&format!("alpine@{d}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest(), Some(d.as_str()));
        assert_eq!(r.at_digest("sha256:x"), "docker.io/library/alpine@sha256:x");
    }

    #[test]
    fn shell_text_is_not_a_reference() {
        for bad in ["nginx;touch /tmp/x", "$(id)", "`id`", "nginx|sh", "a b", "nginx:al pine", "nginx&", "x@sha256:zz"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn uppercase_is_named() {
        let e = ImageRef::parse("Nginx:alpine").unwrap_err();
        assert!(e.contains("lowercase"), "{e}");
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("127.0.0.1:5000"));
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("[::1]:5000"));
        assert!(!is_loopback_host("ghcr.io"));
        assert!(!is_loopback_host("registry.cn-hangzhou.aliyuncs.com"));
    }
}
