//! Manifests as the client reads them: media types, the descriptor a HEAD
//! answers with, and a GET's verified body.

use sha2::{Digest as _, Sha256, Sha512};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// All four, always: with fewer, registries rewrite a multi-platform tag to one
/// platform's manifest (no list type) or refuse OCI content (no OCI types).
pub const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// What a HEAD (or a GET) says about a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// `sha256:<hex>`: from `Docker-Content-Digest`, or the hash of the body.
    pub digest: String,
    /// `Content-Type` (empty when the registry sent none).
    pub media_type: String,
    /// `Content-Length`, when sent.
    pub size: Option<u64>,
}

impl Descriptor {
    pub fn is_index(&self) -> bool {
        is_index(&self.media_type)
    }
}

/// A manifest body whose digest was checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

impl Manifest {
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.bytes)
    }

    /// The media type from the `Content-Type`, else from the body's `mediaType`.
    pub fn media_type(&self) -> String {
        if !self.descriptor.media_type.is_empty() {
            return self.descriptor.media_type.clone();
        }
        self.json().ok().and_then(|v| v["mediaType"].as_str().map(str::to_string)).unwrap_or_default()
    }
}

/// `algorithm:hex` of `bytes` with the algorithm of `like` (sha256 unless it
/// names sha512).
pub fn digest_of(bytes: &[u8], like: Option<&str>) -> String {
    if like.is_some_and(|d| d.starts_with("sha512:")) {
        format!("sha512:{}", hex(&Sha512::digest(bytes)))
    } else {
        format!("sha256:{}", hex(&Sha256::digest(bytes)))
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A well-formed `sha256:<64 hex>` or `sha512:<128 hex>`, lowercase.
pub fn is_digest(s: &str) -> bool {
    let ok = |hex: &str, n: usize| hex.len() == n && hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match s.split_once(':') {
        Some(("sha256", h)) => ok(h, 64),
        Some(("sha512", h)) => ok(h, 128),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_names_all_four_types() {
        for t in [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST] {
            assert!(ACCEPT.split(", ").any(|a| a == t), "{t}");
        }
        assert!(is_index(DOCKER_LIST) && is_index(OCI_INDEX) && !is_index(OCI_MANIFEST));
    }

    #[test]
    fn digests() {
        let d = digest_of(b"", None);
        assert_eq!(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert!(is_digest(&d));
        assert!(digest_of(b"", Some("sha512:00")).starts_with("sha512:cf83e1357eefb8bd"));
        assert!(is_digest(&digest_of(b"x", Some("sha512:"))));
        assert!(!is_digest("sha256:E3B0"));
        assert!(!is_digest("md5:abc"));
    }

    #[test]
    fn media_type_falls_back_to_the_body() {
        let m = Manifest {
            descriptor: Descriptor { digest: "sha256:x".into(), media_type: String::new(), size: None },
            bytes: br#"{"mediaType":"application/vnd.oci.image.index.v1+json"}"#.to_vec(),
        };
        assert_eq!(m.media_type(), OCI_INDEX);
    }
}
