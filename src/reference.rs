//! Image references, parsed with docker's grammar (oci-spec's port of it).

use std::fmt;

use oci_spec::distribution::{ParseError, Reference};

pub const DOCKER_HUB: &str = "docker.io";
/// Longer text is refused before the grammar sees it: registry, a repository
/// of at most 255 characters, a 128-character tag and a digest fit well below.
const MAX_REFERENCE_LEN: usize = 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    inner: Reference,
}

impl ImageRef {
    /// Parses `[registry/]path[:tag][@sha256:hex]`, defaulting like docker does.
    /// Only ASCII is accepted: oci-spec's grammar lets Unicode letters into tags
    /// (`nginx:café`), which registries and docker refuse.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.len() > MAX_REFERENCE_LEN {
            let head: String = s.chars().take(40).collect();
            return Err(format!("invalid image reference {head:?}…: {} bytes, longer than any valid reference", s.len()));
        }
        if !s.is_ascii() {
            return Err(format!(
                "invalid image reference {s:?}: only ASCII is allowed (a tag is up to 128 of A-Z a-z 0-9 '_' '.' '-')"
            ));
        }
        if s.starts_with('[') {
            return Err(format!("invalid image reference {s:?}: {}", IPV6_UNSUPPORTED));
        }
        // docker refuses a bare 64-hex name: it looks like an image ID.
        if s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(format!(
                "invalid image reference {s:?}: a 64-character hexadecimal name looks like an image ID, which docker refuses as a repository name"
            ));
        }
        let inner = Reference::try_from(s).map_err(|e| describe(s, e))?;
        let inner = docker_domain(s, inner);
        if inner.repository() != inner.repository().to_ascii_lowercase() {
            return Err(format!("invalid image reference {s:?}: repository names must be lowercase"));
        }
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

    /// The same repository with `tag` instead of this reference's tag and digest.
    /// Built from parts already valid, not parsed again: the grammar's regex
    /// keeps a 2.6 MB cache for each thread that runs it at once, and a run asks
    /// this for every signature tag of every entry.
    pub fn with_tag(&self, tag: &str) -> Result<ImageRef, String> {
        check_tag(tag)?;
        let inner = Reference::with_tag(self.registry().to_string(), self.repository().to_string(), tag.to_string());
        Ok(ImageRef { inner })
    }
}

/// Whether the reference as written names a tag or a digest (the parser
/// fills in `latest` when it names neither).
pub fn names_tag_or_digest(written: &str) -> (bool, bool) {
    let last = written.rsplit('/').next().unwrap_or(written);
    let (before_digest, digest) = match last.split_once('@') {
        Some((b, _)) => (b, true),
        None => (last, false),
    };
    (before_digest.contains(':'), digest || written.contains('@'))
}

/// The tag grammar: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, ASCII only.
pub fn is_valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    !b.is_empty() && b.len() <= 128 && word(b[0]) && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// A name valid as one path component of a repository.
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.contains('/')
        && ImageRef::parse(&format!("registry.invalid/{name}")).is_ok_and(|r| r.repository() == name);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid target name {name:?}: use lowercase a-z, 0-9 and single '.', '_' or '-' between them, no '/'"
        ))
    }
}

pub fn check_tag(tag: &str) -> Result<(), String> {
    if is_valid_tag(tag) {
        Ok(())
    } else {
        Err(format!(
            "invalid tag {tag:?}: up to 128 of A-Z a-z 0-9 '_' '.' '-', not starting with '.' or '-'"
        ))
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

/// Why `[v6]:port` registries are refused, in plain words.
pub const IPV6_UNSUPPORTED: &str =
    "IPv6 registry addresses ([::1]:5000) are not supported: use a host name that resolves to it, or an IPv4 address";

/// A registry's `host[:port]` as docker writes it, split: `host`, `host:port`
/// or `[v6]:port` (brackets dropped from the host). The one such splitter:
/// anything else (a bare IPv6 without brackets, user info `a@b`, a path, a
/// port that is not a number up to 65535, an empty host) is `None`, so a
/// name such as `localhost:80@evil.test` is never taken for `localhost`.
pub fn split_host_port(registry: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match registry.strip_prefix('[') {
        Some(rest) => {
            let (inside, after) = rest.split_once(']')?;
            inside.parse::<std::net::Ipv6Addr>().ok()?;
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':')?),
            };
            (inside, port)
        }
        None => match registry.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (registry, None),
        },
    };
    let port = match port {
        None => None,
        Some(p) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => Some(p.parse::<u16>().ok()?),
        Some(_) => return None,
    };
    let plain = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
    if host.is_empty() || (!registry.starts_with('[') && !host.bytes().all(plain)) {
        return None;
    }
    Some((host, port))
}

/// The host a docker config key names (docker's `ConvertToHostname`):
/// `https://index.docker.io/v1/` -> `index.docker.io`, `r.lan:5000` as is.
pub fn config_key_host(key: &str) -> &str {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Docker and buildx speak plain HTTP to loopback registries.
pub fn is_loopback_host(registry: &str) -> bool {
    let Some((host, _)) = split_host_port(registry) else { return false };
    // An address, not a prefix: a name such as `127.example.com` is remote.
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// docker's `splitDockerDomain` takes a first component with capitals
/// (`Foo/bar`, `LOCALDOMAIN/app`) as a registry host; oci-spec's port only
/// looks for '.', ':' and `localhost`, and leaves it in a Hub repository.
fn docker_domain(written: &str, parsed: Reference) -> Reference {
    let Some((first, _)) = written.split_once('/') else { return parsed };
    let capitals = first.bytes().any(|b| b.is_ascii_uppercase());
    if !capitals || first.contains(['.', ':']) || first == "localhost" {
        return parsed;
    }
    let Some(rest) = parsed.repository().strip_prefix(first).and_then(|r| r.strip_prefix('/')) else { return parsed };
    let (registry, repository) = (first.to_string(), rest.to_string());
    match (parsed.tag(), parsed.digest()) {
        (Some(t), Some(d)) => Reference::with_tag_and_digest(registry, repository, t.to_string(), d.to_string()),
        (None, Some(d)) => Reference::with_digest(registry, repository, d.to_string()),
        (t, None) => Reference::with_tag(registry, repository, t.unwrap_or("latest").to_string()),
    }
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

/// `docker.io/library/nginx:alpine` -> `nginx:alpine`, `docker.io/a/b` -> `a/b`,
/// as docker shows names; the form an images.txt line is written in.
pub fn familiar(r: &ImageRef) -> String {
    let whole = r.to_string();
    if r.registry() != DOCKER_HUB {
        return whole;
    }
    let rest = whole.strip_prefix("docker.io/").unwrap_or(&whole);
    match rest.strip_prefix("library/") {
        Some(short) if !r.repository()["library/".len()..].contains('/') => short.to_string(),
        _ => rest.to_string(),
    }
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
    fn non_ascii_is_refused() {
        for bad in ["nginx:café", "ngïnx", "nginx:1\u{0660}", "régistry.io/a:b"] {
            let e = ImageRef::parse(bad).unwrap_err();
            assert!(e.contains("only ASCII"), "{e}");
        }
        assert!(check_tag("café").is_err());
        assert!(!is_valid_tag("caf\u{00e9}"));
    }

    #[test]
    fn tag_grammar() {
        for ok in ["1", "v1.2_3-x", "_x", "A.b-C", &"x".repeat(128)] {
            assert!(is_valid_tag(ok), "{ok}");
        }
        for bad in ["", ".x", "-x", "a:b", "a b", "a/b", "a\nb", &"x".repeat(129), "a+b"] {
            assert!(!is_valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn tag_or_digest_as_written() {
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(names_tag_or_digest("nginx"), (false, false));
        assert_eq!(names_tag_or_digest("localhost:5000/nginx"), (false, false));
        assert_eq!(names_tag_or_digest("localhost:5000/nginx:1"), (true, false));
        assert_eq!(names_tag_or_digest(&format!("nginx@{d}")), (false, true));
        assert_eq!(names_tag_or_digest(&format!("nginx:1@{d}")), (true, true));
        let r = ImageRef::parse(&format!("ghcr.io/a/b:1@{d}")).unwrap().with_tag("2.0").unwrap();
        assert_eq!(r.to_string(), "ghcr.io/a/b:2.0");
        assert!(ImageRef::parse("nginx").unwrap().with_tag("-x").is_err());
    }

    #[test]
    fn with_tag_equals_parsing_the_written_reference() {
        let digest_line = format!("localhost:5000/a/b/c@sha256:{}", "b".repeat(64));
        for (written, tag, expect) in [
            ("nginx", "sha256-abc.sig", "docker.io/library/nginx:sha256-abc.sig"),
            ("Reg/app:1", "2", "Reg/app:2"),
            (digest_line.as_str(), "x_1.y-z", "localhost:5000/a/b/c:x_1.y-z"),
            ("ghcr.io/o/r:latest", "sha256-abc", "ghcr.io/o/r:sha256-abc"),
        ] {
            let built = ImageRef::parse(written).unwrap().with_tag(tag).unwrap();
            let parsed = ImageRef::parse(expect).unwrap();
            assert_eq!(built, parsed, "{written} with {tag}");
            assert_eq!((built.registry(), built.repository(), built.to_string()), (parsed.registry(), parsed.repository(), parsed.to_string()));
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
        assert!(is_loopback_host("127.1.2.3:443"));
        // A name that merely starts like a loopback address is remote: no plain HTTP.
        assert!(!is_loopback_host("127.example.com:5000"));
    }

    #[test]
    fn userinfo_is_not_a_loopback_host() {
        // Audit 2 #5: a hand-written split read `localhost` out of this.
        assert!(!is_loopback_host("localhost:80@evil.test"));
        assert!(!is_loopback_host("localhost@evil.test"));
        assert!(!is_loopback_host("127.0.0.1:5000/x"));
        assert!(!is_loopback_host("::1"), "IPv6 is bracketed in a registry name");
    }

    #[test]
    fn one_host_port_splitter() {
        assert_eq!(split_host_port("ghcr.io"), Some(("ghcr.io", None)));
        assert_eq!(split_host_port("r.lan:5000"), Some(("r.lan", Some(5000))));
        assert_eq!(split_host_port("[::1]:5000"), Some(("::1", Some(5000))));
        assert_eq!(split_host_port("[2001:db8::1]"), Some(("2001:db8::1", None)));
        for bad in ["", ":5000", "h:", "h:x", "h:99999", "::1", "[::1", "[nope]:1", "[::1]5000", "a@b", "a/b", "h:1:2"] {
            assert_eq!(split_host_port(bad), None, "{bad:?}");
        }
        assert_eq!(config_key_host("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(config_key_host("r.lan:5000"), "r.lan:5000");
    }

    #[test]
    fn host_like_first_components_are_registries_as_docker_reads_them() {
        // docker's splitDockerDomain: a first component with '.', ':', or
        // capitals, or `localhost`, is a registry; anything else is a Hub namespace.
        for (text, registry, repo) in [
            ("Foo/bar", "Foo", "bar"),
            ("LOCALDOMAIN/fooo:1", "LOCALDOMAIN", "fooo"),
            ("localhost/app", "localhost", "app"),
            ("reg.example:5000/app", "reg.example:5000", "app"),
            ("foo/bar", "docker.io", "foo/bar"),
        ] {
            let r = ImageRef::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!((r.registry(), r.repository()), (registry, repo), "{text}");
        }
    }

    #[test]
    fn image_id_like_names_are_refused() {
        // docker: "invalid repository name (…), cannot specify 64-byte hexadecimal strings".
        let hex = "0123456789abcdef".repeat(4);
        let e = ImageRef::parse(&hex).unwrap_err();
        assert!(e.contains("64"), "{e}");
        assert!(ImageRef::parse(&format!("library/{hex}")).is_ok());
    }

    #[test]
    fn familiar_names() {
        let f = |s: &str| familiar(&ImageRef::parse(s).unwrap());
        assert_eq!(f("docker.io/library/nginx:alpine"), "nginx:alpine");
        assert_eq!(f("nginx"), "nginx:latest");
        assert_eq!(f("bitnami/redis:7"), "bitnami/redis:7");
        assert_eq!(f("library/a/b:1"), "library/a/b:1");
        assert_eq!(f("quay.io/coreos/etcd:v3.5.0"), "quay.io/coreos/etcd:v3.5.0");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(f(&format!("alpine@{d}")), format!("alpine@{d}"));
    }

}
