//! `os/arch[/variant]` with containerd's normalisation, so `linux/arm64`
//! matches `linux/arm64/v8` and `linux/arm` matches `linux/arm/v7`.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub arch: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, arch: &str, variant: Option<&str>) -> Self {
        Platform {
            os: os.to_string(),
            arch: arch.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// A platform as a registry or docker reports it (an index's `os`,
    /// `architecture` and `variant`). The OCI spec gives no grammar, so
    /// anything but a plain `[a-z0-9._-]` word is refused: these values are
    /// printed, and a registry must not be able to put line breaks or
    /// workflow commands into imgsync's output through them.
    pub fn from_registry(os: &str, arch: &str, variant: Option<&str>) -> Result<Self, String> {
        let word = |what: &str, v: &str| {
            if !v.is_empty() && v.len() <= 32 && v.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-')) {
                Ok(())
            } else {
                Err(format!(
                    "the registry reports a platform {what} {}: expected a plain lowercase word ([a-z0-9._-], at most 32 characters)",
                    crate::sanitize::line(&format!("{v:?}"))
                ))
            }
        };
        word("os", os)?;
        word("architecture", arch)?;
        if let Some(v) = variant.filter(|v| !v.is_empty()) {
            word("variant", v)?;
        }
        Ok(Platform::new(os, arch, variant))
    }

    /// Attestation manifests (BuildKit provenance, SBOM) carry `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" || self.arch == "unknown"
    }

    /// The form containerd compares (its `normalizeArch`): default variants
    /// filled in (`arm64` is `v8`, `arm` is `v7`), aliases folded, `v8.0` and
    /// `v9.0` as `v8` and `v9`, case ignored.
    pub fn normalized(&self) -> Platform {
        let os = self.os.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase);
        let (arch, variant) = match (self.arch.to_ascii_lowercase().as_str(), variant.as_deref()) {
            ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_string(), v.filter(|v| *v != "v1").map(str::to_string)),
            ("aarch64" | "arm64", None | Some("8" | "v8" | "v8.0")) => ("arm64".to_string(), Some("v8".to_string())),
            ("aarch64" | "arm64", Some("9" | "9.0" | "v9.0")) => ("arm64".to_string(), Some("v9".to_string())),
            ("aarch64" | "arm64", Some(v)) => ("arm64".to_string(), Some(v.to_string())),
            ("armhf", _) => ("arm".to_string(), Some("v7".to_string())),
            ("armel", _) => ("arm".to_string(), Some("v6".to_string())),
            ("arm", None | Some("7" | "v7")) => ("arm".to_string(), Some("v7".to_string())),
            ("arm", Some(v @ ("5" | "6" | "8"))) => ("arm".to_string(), Some(format!("v{v}"))),
            ("arm", Some(v)) => ("arm".to_string(), Some(v.to_string())),
            ("i386" | "386", _) => ("386".to_string(), None),
            (a, v) => (a.to_string(), v.map(str::to_string)),
        };
        Platform { os, arch, variant }
    }

    pub fn matches(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }

    /// `linux/arm64/v8` -> `linux_arm64_v8`, for target names.
    pub fn slug(&self) -> String {
        self.to_string().replace('/', "_")
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.arch)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid_part = |p: &&str| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
        };
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(valid_part) {
            return Err(format!("invalid platform {s:?}: expected os/arch[/variant], e.g. linux/arm64"));
        }
        Ok(Platform::new(parts[0], parts[1], parts.get(2).copied()))
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn arm64_defaults_to_v8() {
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/aarch64").matches(&p("linux/arm64/v8")));
        assert!(!p("linux/arm64").matches(&p("linux/arm64/v9")));
    }

    #[test]
    fn arm_defaults_to_v7() {
        assert!(p("linux/arm").matches(&p("linux/arm/v7")));
        assert!(!p("linux/arm").matches(&p("linux/arm/v6")));
        assert!(p("linux/arm/6").matches(&p("linux/arm/v6")));
    }

    #[test]
    fn amd64_is_not_arm64() {
        assert!(!p("linux/amd64").matches(&p("linux/arm64")));
        assert!(p("linux/x86_64").matches(&p("linux/amd64")));
        assert!(!p("windows/amd64").matches(&p("linux/amd64")));
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["linux", "linux/", "/amd64", "linux/amd64/v8/x", "linux/am d64", "linux/$(id)"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_fields_are_plain_words() {
        assert_eq!(Platform::from_registry("linux", "arm64", Some("v8")).unwrap(), p("linux/arm64/v8"));
        assert_eq!(Platform::from_registry("linux", "amd64", Some("")).unwrap(), p("linux/amd64"));
        assert!(Platform::from_registry("unknown", "unknown", None).unwrap().is_unknown());
        for (os, arch, variant) in [
            ("linux\n::warning title=INJ::x\r::notice::y", "s390x", None),
            ("linux", "", None),
            ("Linux", "amd64", None),
            ("linux", "amd64", Some("v8 x")),
            ("linux", "amd\u{1b}64", None),
            ("linux", "amd64", Some("v8\r")),
        ] {
            let e = Platform::from_registry(os, arch, variant).unwrap_err();
            assert!(!e.contains(['\n', '\r', '\u{1b}']), "{e:?}");
        }
    }

    #[test]
    fn slug_and_display() {
        assert_eq!(p("linux/arm64").slug(), "linux_arm64");
        assert_eq!(p("linux/arm/v7").to_string(), "linux/arm/v7");
        assert!(p("unknown/unknown").is_unknown());
    }

    #[test]
    fn variants_compare_as_containerd_normalises_them() {
        // containerd's normalizeArch: arm64 `8`/`v8`/`v8.0` is the default,
        // `9`/`9.0`/`v9.0` is `v9`; x86_64 keeps a variant other than v1.
        for (a, b) in [
            ("linux/arm64/v9", "linux/arm64/v9.0"),
            ("linux/arm64/9", "linux/arm64/v9"),
            ("linux/arm64/v8.0", "linux/arm64"),
            ("linux/x86_64/v3", "linux/amd64/v3"),
            ("linux/x86_64/v1", "linux/amd64"),
            ("linux/ARM64/V9", "linux/arm64/v9"),
        ] {
            assert!(p(a).matches(&p(b)), "{a} = {b}");
        }
        assert!(!p("linux/arm64/v9").matches(&p("linux/arm64")));
        assert!(!p("linux/x86_64/v3").matches(&p("linux/amd64")));
    }
}
